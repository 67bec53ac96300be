/**
 * BASE.lock (contract C2): every package of a base with its exact version and sha256, the inputs
 * of BASE.yaml that chose them, and the SOURCE_DATE_EPOCH of every build from it.
 *
 * Naming: `BASE.yaml` → `BASE.lock` for the YAML's own architecture, `BASE.<arch>.lock` for another
 * (`--arch arm64` of an amd64 BASE.yaml reads and writes BASE.arm64.lock), so one BASE.yaml serves
 * both boards, each with its lock.
 *
 * The file is JSON with sorted keys, packages sorted by name then architecture, and a trailing
 * newline: the same lock is the same bytes, and a refresh diffs line by line in review.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { BaseError } from './errors.js';
import { BASE_ARCHITECTURES, type BaseArch, type BaseSpec } from './spec.js';

export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  sha256: string;
  size: number;
  filename: string;
}

export interface BaseLock {
  format: 1;
  suite: string;
  architecture: BaseArch;
  'source-date-epoch': number;
  /** {@link lockInputs} of the BASE.yaml the lock was made from. */
  inputs: string;
  packages: LockedPackage[];
}

const MAX_LOCK = 4 * 1024 * 1024;
/** apt would never install more for a device base; a bound keeps a hostile lock from making us fetch forever. */
export const MAX_LOCKED_PACKAGES = 5000;

/** Debian's version syntax (epoch:upstream-revision), as characters. */
export const DEB_VERSION_RE = /^(?:[0-9]{1,9}:)?[A-Za-z0-9][A-Za-z0-9.+~-]{0,126}$/;
export const DEB_NAME_RE = /^[a-z0-9][a-z0-9+.-]{1,99}$/;
/** A .deb file name in the pool, as apt writes it (the epoch's colon as %3a); never a path. */
const DEB_FILENAME_RE = /^[a-z0-9][a-z0-9+.-]{1,99}_[A-Za-z0-9.+~%-]{1,140}_[a-z0-9]{2,16}\.deb$/;

const packageSchema = z.strictObject({
  name: z.string().regex(DEB_NAME_RE, { message: 'a Debian package name' }),
  version: z.string().regex(DEB_VERSION_RE, { message: 'a Debian version' }),
  architecture: z.string().regex(/^(?:all|amd64|arm64)$/, { message: 'all, amd64 or arm64' }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: '64 lower-case hex digits' }),
  size: z.number().int().min(1).max(2 ** 31),
  filename: z.string().regex(DEB_FILENAME_RE, { message: 'a .deb file name (name_version_arch.deb, no folders)' }),
});

const lockSchema = z.strictObject({
  format: z.literal(1),
  suite: z.string().regex(/^[a-z][a-z0-9-]{1,30}$/, { message: 'a Debian suite' }),
  architecture: z.enum(BASE_ARCHITECTURES),
  'source-date-epoch': z.number().int().min(0).max(2 ** 32),
  inputs: z.string().regex(/^[0-9a-f]{64}$/, { message: '64 lower-case hex digits' }),
  packages: z.array(packageSchema).min(1).max(MAX_LOCKED_PACKAGES),
});

/** The lock of `yamlFile` for `arch` (see the module comment). */
export function lockPath(yamlFile: string, yamlArch: BaseArch, arch: BaseArch): string {
  const stem = basename(yamlFile).replace(/\.ya?ml$/, '');
  return join(dirname(yamlFile), arch === yamlArch ? `${stem}.lock` : `${stem}.${arch}.lock`);
}

/**
 * The digest of what chooses the packages: suite, architecture, mirror, components and the package
 * list. A lock whose `inputs` differ was made for another package set: building from it would
 * silently ignore the edit, so it is stale.
 */
export function lockInputs(spec: Pick<BaseSpec, 'suite' | 'mirror' | 'components' | 'packages'>, arch: BaseArch): string {
  const normal = { architecture: arch, components: [...spec.components], mirror: spec.mirror, packages: [...new Set(spec.packages)].sort(), suite: spec.suite };
  return createHash('sha256').update(JSON.stringify(normal)).digest('hex');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

function byNameArch(a: LockedPackage, b: LockedPackage): number {
  const ka = `${a.name}\0${a.architecture}`;
  const kb = `${b.name}\0${b.architecture}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The bytes of a lock file. */
export function serializeLock(lock: BaseLock): string {
  return `${JSON.stringify(sortKeys({ ...lock, packages: [...lock.packages].sort(byNameArch) }), null, 2)}\n`;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Checks the text of a lock file; errors name the file, the field, what was expected and found. */
export function parseLock(text: string, file: string): BaseLock {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BaseError('ERR_BASE_LOCK', `${file}: expected JSON, found a syntax error: ${(e as Error).message}`, { file });
  }
  const r = lockSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let field = '';
    for (const k of issue.path) field += typeof k === 'number' ? `[${k}]` : field ? `.${String(k)}` : String(k);
    let found: unknown = raw;
    for (const k of issue.path) found = found && typeof found === 'object' ? (found as Record<PropertyKey, unknown>)[k] : undefined;
    if (issue.code === 'unrecognized_keys') {
      throw new BaseError('ERR_BASE_LOCK', `${file}: ${field || '(top level)'}: expected only the lock's keys, found the unknown key ${JSON.stringify(issue.keys[0])}`, { file, field });
    }
    const what =
      issue.code === 'invalid_value' ? `one of ${issue.values.map(String).join(', ')}` : issue.code === 'invalid_type' ? `a ${issue.expected}` : issue.code === 'too_big' ? `at most ${String(issue.maximum)}` : issue.code === 'too_small' ? `at least ${String(issue.minimum)}` : issue.message;
    // A package entry is named by its name too, which is what a reader of a 100-entry lock looks for.
    const pkgName = issue.path[0] === 'packages' && typeof issue.path[1] === 'number' ? (raw as { packages: { name?: unknown }[] }).packages[issue.path[1]]?.name : undefined;
    throw new BaseError('ERR_BASE_LOCK', `${file}: ${field || '(top level)'}${typeof pkgName === 'string' ? ` (${pkgName.slice(0, 100)})` : ''}: expected ${what}, found ${show(found)}`, { file, field });
  }
  const lock = r.data as BaseLock;
  const seen = new Set<string>();
  for (const p of lock.packages) {
    const key = `${p.name}:${p.architecture}`;
    if (seen.has(key)) throw new BaseError('ERR_BASE_LOCK', `${file}: packages: expected each package once, found ${key} twice`, { file, field: 'packages', package: p.name });
    seen.add(key);
    if (p.architecture !== 'all' && p.architecture !== lock.architecture) {
      throw new BaseError('ERR_BASE_LOCK', `${file}: packages (${p.name}): expected architecture ${lock.architecture} or all, found ${p.architecture}`, { file, field: 'packages', package: p.name });
    }
  }
  return lock;
}

/** Reads a lock file, or undefined when there is none. */
export function readLock(file: string): BaseLock | undefined {
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (!st.isFile()) throw new BaseError('ERR_BASE_LOCK', `${file}: expected a lock file, found ${st.isDirectory() ? 'a folder' : 'a link or special file'}`, { file });
  if (st.size > MAX_LOCK) throw new BaseError('ERR_BASE_LOCK', `${file}: expected at most ${MAX_LOCK} bytes, found ${st.size}`, { file });
  return parseLock(readFileSync(file, 'utf8'), file);
}

export interface LockChange {
  kind: 'added' | 'removed' | 'upgraded' | 'downgraded' | 'rebuilt';
  name: string;
  architecture: string;
  from?: string;
  to?: string;
}

/**
 * Debian's version order (dpkg --compare-versions), for labelling a change as an upgrade or a
 * downgrade; the lock itself never relies on it.
 */
export function compareDebVersions(a: string, b: string): number {
  const split = (v: string) => {
    const colon = v.indexOf(':');
    const epoch = colon >= 0 ? Number(v.slice(0, colon)) : 0;
    const rest = colon >= 0 ? v.slice(colon + 1) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '0' };
  };
  const order = (c: string | undefined) => (c === undefined ? 0 : c === '~' ? -1 : /[0-9]/.test(c) ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  const part = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      while ((i < x.length && !/[0-9]/.test(x[i]!)) || (j < y.length && !/[0-9]/.test(y[j]!))) {
        const ox = order(i < x.length && !/[0-9]/.test(x[i]!) ? x[i] : undefined);
        const oy = order(j < y.length && !/[0-9]/.test(y[j]!) ? y[j] : undefined);
        if (ox !== oy) return ox - oy;
        if (i < x.length && !/[0-9]/.test(x[i]!)) i++;
        if (j < y.length && !/[0-9]/.test(y[j]!)) j++;
      }
      let nx = '';
      let ny = '';
      while (i < x.length && /[0-9]/.test(x[i]!)) nx += x[i++];
      while (j < y.length && /[0-9]/.test(y[j]!)) ny += y[j++];
      const dx = BigInt(nx || '0');
      const dy = BigInt(ny || '0');
      if (dx !== dy) return dx < dy ? -1 : 1;
    }
    return 0;
  };
  const x = split(a);
  const y = split(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return part(x.upstream, y.upstream) || part(x.revision, y.revision);
}

/** What changed from `before` (undefined: no lock yet) to `after`, sorted by package. */
export function diffLocks(before: BaseLock | undefined, after: BaseLock): LockChange[] {
  const old = new Map((before?.packages ?? []).map((p) => [`${p.name}:${p.architecture}`, p]));
  const now = new Map(after.packages.map((p) => [`${p.name}:${p.architecture}`, p]));
  const out: LockChange[] = [];
  for (const [key, p] of now) {
    const o = old.get(key);
    if (!o) out.push({ kind: 'added', name: p.name, architecture: p.architecture, to: p.version });
    else if (o.version !== p.version) out.push({ kind: compareDebVersions(o.version, p.version) < 0 ? 'upgraded' : 'downgraded', name: p.name, architecture: p.architecture, from: o.version, to: p.version });
    else if (o.sha256 !== p.sha256) out.push({ kind: 'rebuilt', name: p.name, architecture: p.architecture, from: o.sha256.slice(0, 12), to: p.sha256.slice(0, 12) });
  }
  for (const [key, o] of old) if (!now.has(key)) out.push({ kind: 'removed', name: o.name, architecture: o.architecture, from: o.version });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0));
}

/** One line per change: `+ name version (added)`, `- name version (removed)`, `~ name old -> new (upgraded)`. */
export function formatLockChanges(changes: readonly LockChange[]): string[] {
  return changes.map((c) => {
    const id = c.architecture === 'all' ? c.name : `${c.name}:${c.architecture}`;
    switch (c.kind) {
      case 'added':
        return `+ ${id} ${c.to} (added)`;
      case 'removed':
        return `- ${id} ${c.from} (removed)`;
      case 'rebuilt':
        return `~ ${id} sha256 ${c.from}… -> ${c.to}… (same version, other bytes)`;
      default:
        return `~ ${id} ${c.from} -> ${c.to} (${c.kind})`;
    }
  });
}
