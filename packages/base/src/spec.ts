/**
 * BASE.yaml, the declarative description of a Debian base (contract C1 of session 21).
 *
 * ```yaml
 * name: robot-base
 * version: '1.0'
 * suite: bookworm
 * architecture: amd64            # --arch overrides it, so one file serves amd64 and arm64 boards
 * packages: [systemd, systemd-sysv, python3]
 * files: [{ src: files/eth.network, dest: /etc/systemd/network/20-eth.network, mode: '0644' }]
 * users: [{ name: robot, uid: 1500, group: robot, system: true }]
 * groups: [{ name: robot, gid: 1500 }]
 * services: { enable: [systemd-networkd.service] }
 * hostname: robot
 * writable-paths: [{ path: /etc/robot, mode: synced }]
 * ```
 *
 * Every error names the file, the line, the field, what was expected and what was found. Every
 * value ends up in a shell hook run as root (mmdebstrap's customize hooks) or in a sources.list
 * line, so each is held to a character set with no quoting or spaces in it, not escaped.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isSnapName } from '@edgeimage/store';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { BaseError } from './errors.js';

export const BASE_ARCHITECTURES = ['amd64', 'arm64'] as const;
export type BaseArch = (typeof BASE_ARCHITECTURES)[number];

export type WritableMode = 'persistent' | 'synced';

export interface WritablePath {
  path: string;
  mode: WritableMode;
}

export interface BaseFile {
  /** As written in BASE.yaml (relative to its folder). */
  src: string;
  /** The real path of the source, checked to lie in BASE.yaml's folder. */
  source: string;
  dest: string;
  /** Octal, e.g. '0644'. */
  mode: string;
  line: number;
}

export interface BaseUser {
  name: string;
  uid?: number;
  group?: string;
  home: string;
  shell: string;
  system: boolean;
}

export interface BaseGroup {
  name: string;
  gid?: number;
  system: boolean;
}

export interface BaseSpec {
  /** BASE.yaml's path, as given. */
  file: string;
  name: string;
  version: string;
  summary: string;
  suite: string;
  architecture: BaseArch;
  mirror: string;
  components: string[];
  /** Sorted, without duplicates. */
  packages: string[];
  files: BaseFile[];
  users: BaseUser[];
  groups: BaseGroup[];
  services: { enable: string[]; disable: string[]; mask: string[] };
  hostname: string;
  /** The YAML's own entries (the defaults are added at build time: {@link writablePaths}). */
  writablePaths: WritablePath[];
}

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_HOSTNAME = 'edgeimage';

/**
 * Writable paths of every systemd base (C1), with `/etc/ssh synced`; each is written to the base's
 * /etc/edgeimage/writable-paths only when the tree has it (a base without tzdata has no
 * /etc/localtime), BASE.yaml's own entries always. The initramfs binds a data copy of each over
 * the read-only base (C4).
 */
export const DEFAULT_WRITABLE_PATHS: readonly WritablePath[] = [
  { path: '/var', mode: 'synced' },
  { path: '/etc/machine-id', mode: 'persistent' },
  { path: '/etc/hostname', mode: 'synced' },
  { path: '/etc/systemd/network', mode: 'synced' },
  { path: '/etc/localtime', mode: 'synced' },
  { path: '/etc/timezone', mode: 'synced' },
];

/** The list written to /etc/edgeimage/writable-paths: the defaults and the YAML's, sorted by path, the YAML's mode winning. */
export function writablePaths(spec: Pick<BaseSpec, 'writablePaths'>): WritablePath[] {
  const byPath = new Map<string, WritablePath>();
  for (const w of [...DEFAULT_WRITABLE_PATHS, ...spec.writablePaths]) byPath.set(w.path, w);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const MAX_YAML = 256 * 1024;
/** A `files:` source is copied into the tree: bounded so a device file or a huge log cannot be taken in. */
export const MAX_FILE = 64 * 1024 * 1024;

const VERSION_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9:.+~-]{0,30}[a-zA-Z0-9+~])?$/;
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]{1,99}$/;
const ABS_PATH_RE = /^(?:\/[A-Za-z0-9._+@-]+)+$/;
const UNIT_RE = /^[A-Za-z0-9@._:-]{1,200}\.(?:service|socket|timer|target|path|mount|automount|slice)$/;
const ACCOUNT_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Places the device makes itself (kernel filesystems, the data partition): never a writable path. */
const RESERVED = ['/writable', '/run', '/proc', '/sys', '/dev', '/tmp', '/meta'];
/** Where the initramfs binds the verified kernel bundle's modules (merged /usr: /lib is /usr/lib). */
const MODULES = ['/usr/lib/modules', '/lib/modules'];

function hasDotSegment(p: string): boolean {
  return p.split('/').some((s) => s === '..' || s === '.');
}

const absPath = (what: string) =>
  z
    .string()
    .max(4096)
    .regex(ABS_PATH_RE, { message: `an absolute path of letters, digits and ._+@- (${what})` })
    .refine((p) => !hasDotSegment(p), { message: `a path without '..' or '.' segments (${what})` });

const fileSchema = z.strictObject({
  src: z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => !isAbsolute(p), { message: "a path relative to BASE.yaml's folder" })
    .refine((p) => !p.split(/[\\/]/).includes('..'), { message: "a path without '..' (files come from BASE.yaml's folder)" }),
  dest: absPath('where the file goes in the base'),
  mode: z
    .string()
    .regex(/^0?[0-7]{3}$/, { message: "an octal mode as a quoted string, such as '0644' (no setuid/setgid/sticky bits)" })
    .optional(),
});

const schema = z.strictObject({
  name: z.string().refine(isSnapName, { message: 'a snap name: lower-case letters, digits and single dashes, at most 40 characters' }),
  version: z.string().regex(VERSION_RE, { message: "a snap version (at most 32 of letters, digits and :.+~-), quoted: '1.0'" }),
  summary: z.string().max(128).regex(/^[^\n\r]*$/, { message: 'one line' }).optional(),
  suite: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/, { message: 'a Debian suite such as bookworm' }),
  architecture: z.enum(BASE_ARCHITECTURES),
  mirror: z
    .string()
    .regex(/^https?:\/\/[A-Za-z0-9.:/_~+-]{1,400}$/, { message: 'an http(s) URL of a Debian mirror such as http://deb.debian.org/debian' })
    .optional(),
  components: z
    .array(z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'an archive component such as main' }))
    .min(1)
    .max(8)
    .optional(),
  packages: z.array(z.string().regex(PACKAGE_RE, { message: 'a Debian package name (lower-case letters, digits and +.-)' })).max(1000),
  files: z.array(fileSchema).max(256).optional(),
  users: z
    .array(
      z.strictObject({
        name: z.string().regex(ACCOUNT_RE, { message: 'a user name ([a-z_][a-z0-9_-]*, at most 32 characters)' }),
        uid: z.number().int().min(1).max(65533).optional(),
        group: z.string().regex(ACCOUNT_RE, { message: 'a group name' }).optional(),
        home: absPath('the home folder').optional(),
        shell: absPath('the login shell').optional(),
        system: z.boolean().optional(),
      }),
    )
    .max(64)
    .optional(),
  groups: z
    .array(
      z.strictObject({
        name: z.string().regex(ACCOUNT_RE, { message: 'a group name ([a-z_][a-z0-9_-]*, at most 32 characters)' }),
        gid: z.number().int().min(1).max(65533).optional(),
        system: z.boolean().optional(),
      }),
    )
    .max(64)
    .optional(),
  services: z
    .strictObject({
      enable: z.array(z.string().regex(UNIT_RE, { message: 'a systemd unit name such as systemd-networkd.service' })).max(128).optional(),
      disable: z.array(z.string().regex(UNIT_RE, { message: 'a systemd unit name such as systemd-networkd.service' })).max(128).optional(),
      mask: z.array(z.string().regex(UNIT_RE, { message: 'a systemd unit name such as systemd-networkd.service' })).max(128).optional(),
    })
    .optional(),
  hostname: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, { message: 'a host name (lower-case letters, digits and dashes, at most 63)' })
    .optional(),
  'writable-paths': z
    .array(
      z.strictObject({
        path: absPath('a path of the base that the device writes')
          .refine((p) => !RESERVED.some((r) => p === r || p.startsWith(`${r}/`)), {
            message: `a path outside ${RESERVED.join(' ')} (the device mounts those itself)`,
          })
          // the initramfs refuses these too: the modules come from the verified kernel bundle only
          .refine((p) => !MODULES.some((m) => p === m || p.startsWith(`${m}/`) || m.startsWith(`${p}/`)), {
            message: 'a path that neither is nor holds /usr/lib/modules (the kernel bundle\'s modules are never writable)',
          })
          // the initramfs reads the list with this alphabet and length: a path it refuses never boots
          .refine((p) => /^[A-Za-z0-9._/-]{1,1024}$/.test(p), { message: 'a path of A-Z a-z 0-9 . _ / - only, at most 1024 characters (as the initramfs reads it)' }),
        mode: z.enum(['persistent', 'synced']),
      }),
    )
    .max(200)
    .optional(),
});

/** The keys of each map of BASE.yaml, by the top-level field it is under ('' for the top level). */
const KNOWN_KEYS: Record<string, string[]> = {
  '': Object.keys(schema.shape),
  files: ['src', 'dest', 'mode'],
  users: ['name', 'uid', 'group', 'home', 'shell', 'system'],
  groups: ['name', 'gid', 'system'],
  services: ['enable', 'disable', 'mask'],
  'writable-paths': ['path', 'mode'],
};

/** What zod expected, as the message says it. */
function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'string' ? 'a string' : issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'a map' : `a ${issue.expected}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'too_big':
      return issue.origin === 'array' ? `at most ${String(issue.maximum)} entries` : issue.origin === 'string' ? `at most ${String(issue.maximum)} characters` : `at most ${String(issue.maximum)}`;
    case 'too_small':
      return issue.origin === 'array' ? `at least ${String(issue.minimum)} entries` : issue.origin === 'string' ? 'a non-empty string' : `at least ${String(issue.minimum)}`;
    default:
      return issue.message;
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(top level)';
}

function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as (string | number)[], true)) as Node | null | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
  }
  return 1;
}

function keyLine(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key: string): number {
  const map = (path.length === 0 ? doc.contents : doc.getIn(path as (string | number)[], true)) as Node | null | undefined;
  if (isMap(map)) {
    for (const pair of map.items) {
      if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) return lines.linePos(pair.key.range[0]).line;
    }
  }
  return lineOf(doc, lines, path);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function yamlError(file: string, line: number, field: string, what: string, found: string): BaseError {
  return new BaseError('ERR_BASE_YAML', `${file}:${line}: ${field}: expected ${what}, found ${found}`, { file, line, field });
}

/**
 * The real path of a `files:` source, which must be a regular file inside BASE.yaml's folder once
 * every symbolic link is followed (a link to /etc/shadow of the build host is refused).
 */
export function resolveBaseFile(yamlFile: string, src: string, line: number): string {
  const folder = realpathSync(dirname(resolve(yamlFile)));
  let real: string;
  try {
    real = realpathSync(join(folder, src));
  } catch {
    throw new BaseError('ERR_BASE_FILE', `${yamlFile}:${line}: files: ${src}: expected a file in ${folder}, found nothing there`, { file: yamlFile, line, src });
  }
  const rel = relative(folder, real);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw new BaseError('ERR_BASE_FILE', `${yamlFile}:${line}: files: ${src}: expected a file inside ${folder}, found a link to ${real} outside it`, { file: yamlFile, line, src, real });
  }
  const st = lstatSync(real);
  if (!st.isFile()) throw new BaseError('ERR_BASE_FILE', `${yamlFile}:${line}: files: ${src}: expected a regular file, found ${st.isDirectory() ? 'a folder' : 'a special file'}`, { file: yamlFile, line, src });
  if (st.size > MAX_FILE) throw new BaseError('ERR_BASE_FILE', `${yamlFile}:${line}: files: ${src}: expected at most ${MAX_FILE} bytes, found ${st.size}`, { file: yamlFile, line, src });
  return real;
}

/** Parses BASE.yaml text; `file` names it in errors and anchors `files:` sources. */
export function parseBaseYamlText(text: string, file: string): BaseSpec {
  if (text.length > MAX_YAML) throw yamlError(file, 1, '(file)', `at most ${MAX_YAML} bytes`, `${text.length}`);
  const lines = new LineCounter();
  // The core schema: `version: 1.0` is a number (refused: quote it) and `system: yes` a string (refused): no YAML 1.1 surprises.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const line = lines.linePos(err.pos[0]).line;
    throw new BaseError('ERR_BASE_YAML', `${file}:${line}: invalid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`, { file, line });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new BaseError('ERR_BASE_YAML', `${file}:1: invalid YAML: ${(e as Error).message}`, { file, line: 1 });
  }
  if (!isMap(doc.contents)) throw yamlError(file, 1, '(top level)', 'a map of BASE.yaml fields', isSeq(doc.contents) ? 'a list' : show(raw ?? null));
  const r = schema.safeParse(raw);
  if (!r.success) {
    // A misspelt key also leaves its field missing: the unknown key is the cause, so it is told first.
    const issue = r.error.issues.find((i) => i.code === 'unrecognized_keys') ?? r.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const known = KNOWN_KEYS[typeof issue.path[0] === 'string' ? issue.path[0] : ''] ?? [];
      throw yamlError(file, keyLine(doc, lines, issue.path, key), fieldName([...issue.path, key]), `one of the keys ${known.join(', ')}`, `the unknown key ${JSON.stringify(key)}`);
    }
    const found = valueAt(raw, issue.path);
    throw yamlError(file, lineOf(doc, lines, issue.path), fieldName(issue.path), expected(issue), show(found));
  }
  const y = r.data;
  const files: BaseFile[] = (y.files ?? []).map((f, i) => {
    const line = lineOf(doc, lines, ['files', i]);
    return { src: f.src, source: resolveBaseFile(file, f.src, line), dest: f.dest, mode: (f.mode ?? '0644').padStart(4, '0'), line };
  });
  const dests = new Set<string>();
  (y.files ?? []).forEach((f, i) => {
    if (dests.has(f.dest)) throw yamlError(file, lineOf(doc, lines, ['files', i, 'dest']), `files[${i}].dest`, 'each destination once', `${f.dest} a second time`);
    dests.add(f.dest);
  });
  const groupNames = new Set((y.groups ?? []).map((g) => g.name));
  (y.users ?? []).forEach((u, i) => {
    if (u.group !== undefined && !groupNames.has(u.group) && u.group !== u.name) {
      throw yamlError(file, lineOf(doc, lines, ['users', i, 'group']), `users[${i}].group`, `a group listed under groups: (${[...groupNames].join(', ') || 'none'})`, JSON.stringify(u.group));
    }
  });
  return {
    file,
    name: y.name,
    version: y.version,
    summary: y.summary ?? `${y.name}: a Debian ${y.suite} base built by edgeimage`,
    suite: y.suite,
    architecture: y.architecture,
    mirror: (y.mirror ?? DEFAULT_MIRROR).replace(/\/+$/, ''),
    components: y.components ?? ['main'],
    packages: [...new Set(y.packages)].sort(),
    files,
    users: (y.users ?? []).map((u) => ({ name: u.name, ...(u.uid === undefined ? {} : { uid: u.uid }), ...(u.group === undefined ? {} : { group: u.group }), home: u.home ?? '/nonexistent', shell: u.shell ?? '/usr/sbin/nologin', system: u.system ?? false })),
    groups: (y.groups ?? []).map((g) => ({ name: g.name, ...(g.gid === undefined ? {} : { gid: g.gid }), system: g.system ?? false })),
    services: { enable: y.services?.enable ?? [], disable: y.services?.disable ?? [], mask: y.services?.mask ?? [] },
    hostname: y.hostname ?? DEFAULT_HOSTNAME,
    writablePaths: (y['writable-paths'] ?? []).map((w) => ({ path: w.path, mode: w.mode })),
  };
}

/** Reads and parses BASE.yaml. */
export function parseBaseYaml(file: string): BaseSpec {
  let text: string;
  try {
    const st = lstatSync(file);
    if (!st.isFile()) throw new BaseError('ERR_BASE_YAML', `${file}: expected a BASE.yaml file, found ${st.isDirectory() ? 'a folder' : 'a special file or link'}`, { file });
    if (st.size > MAX_YAML) throw yamlError(file, 1, '(file)', `at most ${MAX_YAML} bytes`, `${st.size}`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof BaseError) throw e;
    throw new BaseError('ERR_BASE_YAML', `${file}: cannot read it: ${(e as Error).message}`, { file });
  }
  return parseBaseYamlText(text, file);
}
