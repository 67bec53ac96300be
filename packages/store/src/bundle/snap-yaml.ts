/**
 * `meta/snap.yaml`, the metadata of a bundle, checked with snapd's rules for the fields edgeimage
 * uses (name, version, type, architectures, base, apps with their daemons). Any other key is
 * allowed, as real snaps carry many (grade, confinement, plugs, slots, hooks, assumes, links …):
 * top-level ones are checked by nobody and left out of {@link SnapYaml}; an app keeps all its keys.
 */
import { isAlias, isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { SnapYamlError } from '../errors.js';

export interface SnapApp {
  command?: string;
  daemon?: string;
  [key: string]: unknown;
}

export interface SnapYaml {
  name: string;
  version: string;
  type: 'app' | 'base' | 'kernel' | 'gadget' | 'snapd' | 'os' | 'core';
  architectures: string[];
  base?: string;
  summary?: string;
  description?: string;
  apps: Record<string, SnapApp>;
}

/** snapd's snap types. `os` is the type of the legacy `core` snap, which is a real snap too. */
export const SNAP_TYPES = ['app', 'base', 'kernel', 'gadget', 'snapd', 'os'] as const;

/** Debian architecture names snapd knows, and `all` for architecture-independent bundles. */
export const ARCHITECTURES = ['amd64', 'arm64', 'armhf', 'i386', 'riscv64', 'ppc64el', 's390x', 'all'] as const;

/** snapd's `daemon` values (`dbus` needs a bus-name; snapd accepts it, so do we). */
export const DAEMON_TYPES = ['simple', 'forking', 'oneshot', 'notify', 'dbus'] as const;

/** snapd's `restart-condition` values (systemd's Restart=). */
export const RESTART_CONDITIONS = ['always', 'on-success', 'on-failure', 'on-abnormal', 'on-abort', 'on-watchdog', 'never'] as const;

/** snapd's version rule: at most 32 characters, ASCII letters, digits and `:.+~-`, no punctuation first or `:.-` last. */
export const VERSION_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9:.+~-]{0,30}[a-zA-Z0-9+~])?$/;

/** snapd's app name rule. */
export const APP_NAME_RE = /^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$/;

const MAX_NAME = 40;

/**
 * snapd's snap name rule, `^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$`, at most 40 characters. That
 * regular expression is linear in Go (RE2) but backtracks exponentially in JavaScript on names
 * such as `0000000000000000000000000000-`, so the same language is checked in two linear steps:
 * lower-case letters and digits in groups joined by single dashes, and at least one letter.
 *
 * @example
 * isSnapName('hello-kiosk'); // true
 * isSnapName('0ad');         // true
 * isSnapName('Hello');       // false
 */
export function isSnapName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME && /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(name) && /[a-z]/.test(name);
}

const ARCH_HINTS: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', arm: 'armhf', armv7l: 'armhf', x86: 'i386', ppc64le: 'ppc64el' };

function show(v: unknown): string {
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return JSON.stringify(v);
}

/** Zod's error option for a string field: "required" when absent, else the kind of value found. */
function stringField(required: boolean) {
  return z.string({
    error: (iss) => {
      if (iss.input === undefined) return required ? 'required field is missing' : 'must be a string';
      if (iss.input === null) return required ? 'is empty' : 'must be a string';
      return `must be a string, found ${show(iss.input)}`;
    },
  });
}

const snapName = (what: string) =>
  stringField(true).superRefine((name, ctx) => {
    if (name.length > MAX_NAME) {
      ctx.addIssue({ code: 'custom', input: name, message: `invalid ${what} name ${JSON.stringify(name)}: ${name.length} characters, at most ${MAX_NAME}` });
    } else if (!isSnapName(name)) {
      ctx.addIssue({
        code: 'custom',
        input: name,
        message: `invalid ${what} name ${JSON.stringify(name)}: use lower-case letters, digits and single dashes, with at least one letter and no dash first or last`,
      });
    }
  });

const App = z.looseObject(
  {
    command: stringField(true).min(1, { error: 'must not be empty' }),
    daemon: z.enum(DAEMON_TYPES, { error: (iss) => `invalid daemon ${show(iss.input)}; expected one of ${DAEMON_TYPES.join(', ')}` }).optional(),
    'restart-condition': z
      .enum(RESTART_CONDITIONS, { error: (iss) => `invalid restart-condition ${show(iss.input)}; expected one of ${RESTART_CONDITIONS.join(', ')}` })
      .optional(),
  },
  { error: (iss) => `must be a map with at least a command, found ${show(iss.input)}` },
);

const SnapYamlSchema = z.looseObject({
  name: snapName('snap'),
  version: stringField(true).superRefine((v, ctx) => {
    if (v.length > 32) ctx.addIssue({ code: 'custom', input: v, message: `invalid version ${JSON.stringify(v)}: ${v.length} characters, at most 32` });
    else if (!VERSION_RE.test(v)) {
      ctx.addIssue({
        code: 'custom',
        input: v,
        message: `invalid version ${JSON.stringify(v)}: use ASCII letters, digits and ":.+~-", starting with a letter or digit and not ending with ":", "." or "-"`,
      });
    }
  }),
  type: z.enum(SNAP_TYPES, { error: (iss) => `invalid snap type ${show(iss.input)}; expected one of ${SNAP_TYPES.join(', ')}` }).default('app'),
  architectures: z
    .array(
      z.string({ error: (iss) => `must be a string, found ${show(iss.input)}` }).superRefine((a, ctx) => {
        if ((ARCHITECTURES as readonly string[]).includes(a)) return;
        const hint = ARCH_HINTS[a] ? ` (Debian calls ${a} "${ARCH_HINTS[a]}")` : '';
        ctx.addIssue({ code: 'custom', input: a, message: `unknown architecture ${JSON.stringify(a)}${hint}; expected one of ${ARCHITECTURES.join(', ')}` });
      }),
      { error: (iss) => `must be a list of architectures such as [amd64, arm64], found ${show(iss.input)}` },
    )
    .min(1, { error: 'must name at least one architecture (or [all])' })
    .default(['all'])
    .superRefine((archs, ctx) => {
      archs.forEach((a, i) => {
        if (archs.indexOf(a) !== i) ctx.addIssue({ code: 'custom', input: a, path: [i], message: `architecture ${JSON.stringify(a)} is listed twice` });
      });
      if (archs.length > 1 && archs.includes('all')) {
        ctx.addIssue({ code: 'custom', input: archs, path: [archs.indexOf('all')], message: '"all" cannot be combined with other architectures' });
      }
    }),
  base: snapName('base').optional(),
  summary: stringField(false).optional(),
  description: stringField(false).optional(),
  apps: z
    .record(
      z.string().regex(APP_NAME_RE, {
        error: (iss) => `invalid app name ${show(iss.input)}: use letters, digits and single dashes, starting and ending with a letter or digit`,
      }),
      App,
      { error: (iss) => `must be a map of app names to apps, found ${show(iss.input)}` },
    )
    .default({}),
});

/** Fields read as strings even when YAML would make them numbers or booleans (`version: 1.10`). */
function stringPaths(data: Record<string, unknown>): (string | number)[][] {
  const paths: (string | number)[][] = [['name'], ['version'], ['type'], ['base'], ['summary'], ['description']];
  const apps = data['apps'];
  if (apps && typeof apps === 'object' && !Array.isArray(apps)) {
    for (const app of Object.keys(apps)) paths.push(['apps', app, 'command'], ['apps', app, 'daemon'], ['apps', app, 'restart-condition']);
  }
  return paths;
}

/**
 * The source text of a plain scalar that YAML resolved to a number or boolean: go-yaml decodes
 * `version: 1.10` into a Go string as "1.10", and so must we (JavaScript would say 1.1).
 */
function asWritten(doc: Document, path: (string | number)[]): string | undefined {
  const found = doc.getIn(path, true);
  const node = isAlias(found) ? found.resolve(doc) : found;
  if (!isScalar(node)) return undefined;
  if (typeof node.value !== 'number' && typeof node.value !== 'boolean' && typeof node.value !== 'bigint') return undefined;
  return node.source ?? String(node.value);
}

function setIn(obj: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let o: unknown = obj;
  for (const k of path.slice(0, -1)) {
    if (!o || typeof o !== 'object') return;
    o = (o as Record<string | number, unknown>)[k];
  }
  const last = path[path.length - 1];
  if (o && typeof o === 'object' && last !== undefined) (o as Record<string | number, unknown>)[last] = value;
}

interface Where {
  offset: number;
  line?: number;
  col?: number;
}

/** Where a zod issue points in the source: the value's node, the key's node, or (missing) its parent's key. */
function locate(doc: Document, lc: LineCounter, path: (string | number)[], at: 'value' | 'key' | 'missing'): Where {
  const pos = (offset: number): Where => ({ offset, ...lc.linePos(offset) });
  const keyNode = (p: (string | number)[]) => {
    const parent = p.length === 1 ? doc.contents : doc.getIn(p.slice(0, -1), true);
    if (!isMap(parent)) return undefined;
    const pair = parent.items.find((it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === String(p[p.length - 1]));
    return isScalar(pair?.key) ? pair.key : undefined;
  };
  if (at === 'key') {
    const k = keyNode(path);
    if (k?.range) return pos(k.range[0]);
  }
  if (at === 'value') {
    const n = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    if (n?.range) return pos(n.range[0]);
  }
  // Missing, or no node found: the nearest ancestor that exists, by its key (`web:` for apps.web.command).
  for (let p = path.slice(0, -1); p.length > 0; p = p.slice(0, -1)) {
    const k = keyNode(p);
    if (k?.range) return pos(k.range[0]);
  }
  const root = doc.contents as { range?: [number, number, number] } | null;
  return root?.range ? pos(root.range[0]) : { offset: 0, line: 1, col: 1 };
}

const YAML_MESSAGES: Record<string, string> = {
  MULTIPLE_DOCS: 'snap.yaml must hold a single YAML document',
  DUPLICATE_KEY: 'a key appears twice in the same map',
};

/**
 * Parses and checks a snap.yaml. Errors are {@link SnapYamlError}s (`ERR_SNAP_YAML`) naming
 * `file:line:col` and the field; the first problem in the file is reported.
 *
 * @example
 * const y = parseSnapYaml('name: hello\nversion: 1.10\napps:\n  hello:\n    command: bin/hello\n', 'meta/snap.yaml');
 * y.version;        // '1.10'
 * y.type;           // 'app'
 * y.architectures;  // ['all']
 */
export function parseSnapYaml(text: string, file: string): SnapYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = lc.linePos(syntax.pos[0]);
    throw new SnapYamlError(`YAML syntax: ${YAML_MESSAGES[syntax.code] ?? syntax.message}`, file, line, col);
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new SnapYamlError('empty: a snap.yaml needs at least a name and a version', file);
  }
  if (!isMap(doc.contents)) {
    const at = locate(doc, lc, [], 'value');
    throw new SnapYamlError('must be a map of fields (name: …, version: …)', file, at.line, at.col);
  }
  let data: Record<string, unknown>;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  } catch (e) {
    // yaml refuses alias expansions that grow without bound ("billion laughs").
    throw new SnapYamlError(`YAML: ${(e as Error).message}`, file);
  }
  for (const p of stringPaths(data)) {
    const s = asWritten(doc, p);
    if (s !== undefined) setIn(data, p, s);
  }
  // An empty optional field (`apps:`) means what its absence means, as with go-yaml's zero values.
  for (const k of ['type', 'architectures', 'apps', 'base', 'summary', 'description']) if (data[k] === null) delete data[k];

  const r = SnapYamlSchema.safeParse(data);
  if (r.success) {
    const { name, version, type, architectures, base, summary, description, apps } = r.data;
    const y: SnapYaml = { name, version, type, architectures, apps: apps as Record<string, SnapApp> };
    if (base !== undefined) y.base = base;
    if (summary !== undefined) y.summary = summary;
    if (description !== undefined) y.description = description;
    return y;
  }
  const problems = r.error.issues.map((iss) => {
    const path = iss.path.filter((k): k is string | number => typeof k !== 'symbol');
    const input = path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), data);
    const at = iss.code === 'invalid_key' ? 'key' : input === undefined ? 'missing' : 'value';
    const message = iss.code === 'invalid_key' ? (iss.issues[0]?.message ?? iss.message) : iss.message;
    return { path, message, where: locate(doc, lc, path, at) };
  });
  problems.sort((a, b) => a.where.offset - b.where.offset);
  const first = problems[0]!;
  const field = first.path.join('.');
  throw new SnapYamlError(`${field}: ${first.message}`, file, first.where.line, first.where.col, field);
}
