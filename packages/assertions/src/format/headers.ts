import type { HeaderValue, Headers } from '../assertion.js';

/**
 * snapd's header grammar: a YAML-like subset where every scalar is a string. Not YAML: `16`, `true`
 * and dates stay strings, and indentation is fixed (2 for list/map entries, 4 for multiline text).
 */

const NAME = /^[a-z](?:-?[a-z0-9])*$/;
const COMMON = '  ';
const MULTILINE = '    ';
const LIST = '  -';

/** A header syntax error at a line, counted from 1 at the first header line. */
export class HeaderSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const indent = (n: number, prefix: string) => ' '.repeat(n) + prefix;
const q = (s: string) => JSON.stringify(s);

export function isValidHeaderName(name: string): boolean {
  return NAME.test(name);
}

/** Parses the header block (no trailing newline). Throws HeaderSyntaxError with the line. */
export function parseHeaders(head: string): Headers {
  const lines = head.split('\n');
  const headers: Headers = {};
  let i = 0;
  while (i < lines.length) {
    const entry = lines[i]!;
    const colon = entry.indexOf(':');
    if (colon === -1) throw new HeaderSyntaxError(`header entry missing ':' separator: ${q(entry)}`, i + 1);
    const name = entry.slice(0, colon);
    if (!NAME.test(name)) throw new HeaderSyntaxError(`invalid header name ${q(name)}: expected lower-case letters, digits and single dashes, starting with a letter`, i + 1);
    const first = i;
    let value: HeaderValue;
    [value, i] = parseEntry(colon + 1, i, lines, 0);
    if (Object.hasOwn(headers, name)) throw new HeaderSyntaxError(`repeated header: ${q(name)}`, first + 1);
    headers[name] = value;
  }
  return headers;
}

function parseEntry(consumed: number, first: number, lines: string[], base: number): [HeaderValue, number] {
  const entry = lines[first]!;
  const next = first + 1;
  if (consumed === entry.length) {
    const basePrefix = indent(base, COMMON);
    const following = lines[next];
    if (following !== undefined && following.startsWith(basePrefix)) {
      const rest = following.slice(basePrefix.length);
      if (rest.startsWith('-')) return parseList(next, lines, base);
      if (rest.length > 0 && rest[0] !== ' ') return parseMap(next, lines, base);
    }
    return parseMultiline(next, lines, base);
  }
  if (entry[consumed] !== ' ') {
    throw new HeaderSyntaxError(`header entry should have a space or newline (for multiline) before value: ${q(entry)}`, first + 1);
  }
  return [entry.slice(consumed + 1), next];
}

function parseMultiline(first: number, lines: string[], base: number): [HeaderValue, number] {
  const prefix = indent(base, MULTILINE);
  let j = first;
  while (j < lines.length && lines[j]!.startsWith(prefix)) j++;
  if (j === first) {
    const found = first === lines.length ? 'end of headers' : q(lines[first]!);
    throw new HeaderSyntaxError(
      `expected a list, a map or text indented by ${prefix.length} spaces after ${q(lines[first - 1]!)}, found ${found} (bad indentation?)`,
      Math.min(first, lines.length - 1) + 1,
    );
  }
  return [lines.slice(first, j).map((l) => l.slice(prefix.length)).join('\n'), j];
}

function parseList(first: number, lines: string[], base: number): [HeaderValue, number] {
  const prefix = indent(base, LIST);
  const list: HeaderValue[] = [];
  let j = first;
  while (j < lines.length && lines[j]!.startsWith(prefix)) {
    let v: HeaderValue;
    [v, j] = parseEntry(prefix.length, j, lines, base + LIST.length - 1);
    list.push(v);
  }
  return [list, j];
}

function parseMap(first: number, lines: string[], base: number): [HeaderValue, number] {
  const prefix = indent(base, COMMON);
  const map: { [k: string]: HeaderValue } = {};
  let j = first;
  while (j < lines.length && lines[j]!.startsWith(prefix)) {
    const entry = lines[j]!.slice(prefix.length);
    const colon = entry.indexOf(':');
    if (colon === -1) throw new HeaderSyntaxError(`map entry missing ':' separator: ${q(entry)}`, j + 1);
    const key = entry.slice(0, colon);
    if (!NAME.test(key)) throw new HeaderSyntaxError(`invalid map entry key: ${q(key)}`, j + 1);
    const at = j;
    let v: HeaderValue;
    [v, j] = parseEntry(prefix.length + colon + 1, j, lines, prefix.length);
    if (Object.hasOwn(map, key)) throw new HeaderSyntaxError(`repeated map entry: ${q(key)}`, at + 1);
    map[key] = v;
  }
  return [map, j];
}

/**
 * Appends one header the way snapd writes it: strings with newlines as 4-space indented text,
 * empty lists and maps omitted, map keys sorted.
 */
export function encodeEntry(out: string[], intro: string, v: HeaderValue | undefined, base: number): void {
  if (v === undefined) return;
  if (typeof v === 'string') {
    if (v.includes('\n')) {
      const pfx = indent(base, MULTILINE);
      out.push(intro, ...v.split('\n').map((l) => pfx + l));
    } else {
      out.push(`${intro} ${v}`);
    }
    return;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return;
    out.push(intro);
    const pfx = indent(base, LIST);
    for (const item of v) encodeEntry(out, pfx, item, base + LIST.length - 1);
    return;
  }
  const keys = Object.keys(v).sort();
  if (keys.length === 0) return;
  out.push(intro);
  const pfx = indent(base, COMMON);
  for (const k of keys) encodeEntry(out, `${pfx}${k}:`, v[k], pfx.length);
}

/** Checks a value given by a user (YAML/JSON) is a header value: strings, lists, maps only. */
export function checkHeaderValue(v: unknown, path: string): HeaderValue {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x, i) => checkHeaderValue(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: HeaderValue } = {};
    for (const [k, x] of Object.entries(v)) {
      if (!NAME.test(k)) throw new Error(`${path}: invalid map key ${q(k)}`);
      out[k] = checkHeaderValue(x, `${path}.${k}`);
    }
    return out;
  }
  throw new Error(`${path}: header values must be strings, lists or maps of strings, found ${v === null ? 'null' : typeof v} ${JSON.stringify(v)}`);
}
