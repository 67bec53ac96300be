/**
 * gadget.yaml as a tree of plain values that remembers where each came from.
 *
 * The YAML is read with the failsafe schema, so every scalar is the text written: `type: 0C`,
 * `type: 83` and `size: 1e3` are the strings snapd's yaml.v2 decoder hands to its own parsers
 * (a size `1e3` must be refused, not read as 1000). An empty value, `~` or `null` (unquoted) is
 * "not given", as in snapd.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Document, type Node } from 'yaml';
import { GadgetError } from '../errors.js';

/** A YAML value as read: strings, lists and maps; null for an empty/null scalar. */
export type Raw = string | null | Raw[] | { [key: string]: Raw };
export type Path = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
}

export class YamlSource {
  private constructor(
    readonly file: string,
    readonly raw: Raw,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Parses `text`; a syntax error, a duplicate key or an empty document is a GadgetError
   * `ERR_GADGET_YAML` at the line and column of the problem.
   */
  static parse(text: string, file: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines, uniqueKeys: true, prettyErrors: false });
    const err = doc.errors[0];
    if (err) {
      const p = lines.linePos(err.pos[0]);
      // The library's message ends with its own " at line L, column C" and an excerpt.
      const message =
        err.code === 'MULTIPLE_DOCS'
          ? 'more than one YAML document (a second ---): gadget.yaml is one document'
          : err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '');
      throw new GadgetError(`invalid YAML: ${message}`, file, p.line, p.col, undefined, 'ERR_GADGET_YAML');
    }
    const raw = toRaw(doc, doc.contents as Node | null, file, lines, 0);
    return new YamlSource(file, raw, doc, lines);
  }

  /** The node at `path`, or undefined. */
  node(path: Path): Node | undefined {
    if (path.length === 0) return (this.doc.contents as Node | null) ?? undefined;
    const n = this.doc.getIn(path as (string | number)[], true) as unknown;
    return isAlias(n) ? (n.resolve(this.doc) as Node | undefined) : ((n as Node | undefined) ?? undefined);
  }

  /**
   * Line and column of the value at `path`; when that value is absent, of the nearest enclosing
   * value that is present (so "size is missing" points at the structure).
   */
  pos(path: Path): Position | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.node(path.slice(0, n));
      if (node?.range) return this.at(node.range[0]);
    }
    return undefined;
  }

  /** Line and column of the key `key` of the map at `path`. */
  keyPos(path: Path, key: string): Position | undefined {
    const map = this.node(path);
    if (isMap(map)) {
      for (const pair of map.items) {
        if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) return this.at(pair.key.range[0]);
      }
    }
    return this.pos(path);
  }

  /** The raw value at `path`, or undefined when absent. */
  get(path: Path): Raw | undefined {
    let cur: Raw | undefined = this.raw;
    for (const k of path) {
      if (cur === null || cur === undefined || typeof cur === 'string') return undefined;
      cur = Array.isArray(cur) ? cur[k as number] : Object.hasOwn(cur, k) ? cur[k as string] : undefined;
    }
    return cur;
  }

  private at(offset: number): Position {
    const p = this.lines.linePos(offset);
    return { line: p.line, col: p.col };
  }
}

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);

function toRaw(doc: Document, node: Node | null | undefined, file: string, lines: LineCounter, depth: number): Raw {
  const fail = (why: string, n: Node | null | undefined) => {
    const p = n?.range ? lines.linePos(n.range[0]) : undefined;
    return new GadgetError(why, file, p?.line, p?.col, undefined, 'ERR_GADGET_YAML');
  };
  if (depth > 64) throw fail('invalid YAML: nested too deeply (an alias that refers to itself?)', node);
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return toRaw(doc, node.resolve(doc) as Node | undefined, file, lines, depth + 1);
  if (isScalar(node)) {
    const s = node as Scalar;
    const text = s.value === null || s.value === undefined ? '' : String(s.value);
    if (s.type === Scalar.PLAIN && NULLS.has(text)) return null;
    return text;
  }
  if (isSeq(node)) return node.items.map((item) => toRaw(doc, item as Node, file, lines, depth + 1));
  if (isMap(node)) {
    const out: { [key: string]: Raw } = Object.create(null) as { [key: string]: Raw };
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) throw fail('invalid YAML: map keys must be plain strings', (pair as { key?: Node }).key ?? node);
      out[String(pair.key.value)] = toRaw(doc, pair.value as Node | null, file, lines, depth + 1);
    }
    return out;
  }
  throw fail('invalid YAML: unexpected node', node);
}
