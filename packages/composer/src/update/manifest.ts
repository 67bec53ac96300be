import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UpdateError } from './errors.js';

/** One file of a slot: its path relative to the slot root, sha256 (hex) and size. */
export interface SlotFile {
  path: string;
  sha256: string;
  size: number;
}

/** What an update's manifest says: the system it installs and every file of its slot. */
export interface UpdateManifest {
  'brand-id': string;
  model: string;
  revision: number;
  'sign-key-sha3-384': string;
  files: SlotFile[];
}

export const UPDATE_FORMAT = 1;
/** The tar entries, in this order: the manifest, its signature, then `slot/<path>` for the included files. */
export const UPDATE_DIR = 'edgeimage-update';
export const MANIFEST_ENTRY = `${UPDATE_DIR}/manifest`;
export const SIGNATURE_ENTRY = `${UPDATE_DIR}/manifest.sig`;
export const SLOT_PREFIX = `${UPDATE_DIR}/slot/`;

// The device reads the manifest with POSIX shell: paths that never need quoting, no way out of
// the slot.
const PATH_CHARS = /^[A-Za-z0-9._+/-]+$/;

/**
 * Why `path` is not in the one canonical spelling the device accepts (relative, only
 * [A-Za-z0-9._+/-], no empty or `.` component, no trailing `/`, no `..` at all), or undefined.
 * Two spellings of one name would let a tar entry stand for another (the manifest).
 */
export function slotPathProblem(path: string): string | undefined {
  // Any `..` at all, as the device's `case *..*` refuses it.
  return !PATH_CHARS.test(path) ? 'has characters outside [A-Za-z0-9._+/-]' : path.startsWith('/') ? 'is absolute' : path.includes('..') ? 'contains ..' : path.split('/').some((s) => s === '' || s === '.') ? 'has an empty or . component (or a trailing /)' : undefined;
}

/** Refuses a slot path the device's shell could misread or that leaves the slot. */
export function checkSlotPath(path: string, where = 'the slot'): void {
  const bad = slotPathProblem(path);
  if (bad) throw new UpdateError('ERR_UPDATE_PATH', `${where}: file path ${JSON.stringify(path)} ${bad}: update paths are relative, plain and never leave the slot`, { path });
}

/** Byte order, as `sort` in the C locale: the device and the host agree whatever the locale. */
export const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Every regular file under `root` with its digest, sorted by path; folders only by their files. */
export async function listSlotFiles(root: string, opts: { skip?: string[] } = {}): Promise<SlotFile[]> {
  const out: SlotFile[] = [];
  const walk = async (dir: string, rel: string) => {
    for (const name of readdirSync(dir)) {
      const path = rel ? `${rel}/${name}` : name;
      if (opts.skip?.includes(path)) continue;
      const full = join(dir, name);
      const st = lstatSync(full);
      if (st.isDirectory()) await walk(full, path);
      else if (st.isFile()) {
        checkSlotPath(path, root);
        out.push({ path, sha256: await sha256Of(full), size: st.size });
      } else throw new UpdateError('ERR_UPDATE_FILE_TYPE', `${full}: a slot holds regular files and folders only, this is ${st.isSymbolicLink() ? 'a symbolic link' : 'a special file'}`, { path });
    }
  };
  await walk(root, '');
  return out.sort(byPath);
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The manifest's bytes: the text the signature covers. */
export function encodeUpdateManifest(m: UpdateManifest): Buffer {
  for (const [k, v] of [['brand-id', m['brand-id']], ['model', m.model], ['sign-key-sha3-384', m['sign-key-sha3-384']]] as const) {
    if (!/^[A-Za-z0-9._+-]+$/.test(v)) throw new UpdateError('ERR_UPDATE_MANIFEST', `update manifest: ${k} ${JSON.stringify(v)} has characters outside [A-Za-z0-9._+-]`, { field: k });
  }
  const files = [...m.files].sort(byPath);
  for (const [i, f] of files.entries()) {
    checkSlotPath(f.path);
    if (i > 0 && files[i - 1]!.path === f.path) throw new UpdateError('ERR_UPDATE_MANIFEST', `update manifest: file ${f.path} is listed twice`, { path: f.path });
  }
  const lines = [`edgeimage-update: ${UPDATE_FORMAT}`, `brand-id: ${m['brand-id']}`, `model: ${m.model}`, `revision: ${m.revision}`, `sign-key-sha3-384: ${m['sign-key-sha3-384']}`, ...files.map((f) => `file: ${f.sha256} ${f.size} ${f.path}`)];
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

/** Parses a manifest strictly: what the device's shell would read differently is refused. */
export function parseUpdateManifest(bytes: Buffer, source = 'update manifest'): UpdateManifest {
  const fail = (line: number, why: string): never => {
    throw new UpdateError('ERR_UPDATE_MANIFEST', `${source}: line ${line}: ${why}`, { source, line });
  };
  const text = bytes.toString('utf8');
  if (!text.endsWith('\n')) fail(text.split('\n').length, 'the manifest must end with a newline');
  if (text.includes('\r')) fail(text.slice(0, text.indexOf('\r')).split('\n').length, 'carriage return: lines end with LF only');
  const lines = text.slice(0, -1).split('\n');
  const header = (i: number, key: string, re: RegExp): string => {
    const l = lines[i];
    const m = l === undefined ? null : new RegExp(`^${key}: (.*)$`).exec(l);
    if (!m) return fail(i + 1, `expected "${key}: …", found ${JSON.stringify(l ?? '')}`);
    if (!re.test(m[1]!)) return fail(i + 1, `${key}: invalid value ${JSON.stringify(m[1])}`);
    return m[1]!;
  };
  const format = header(0, 'edgeimage-update', /^\d+$/);
  if (Number(format) !== UPDATE_FORMAT) fail(1, `edgeimage-update: format ${format} is not supported (this edgeimage reads format ${UPDATE_FORMAT})`);
  const m: UpdateManifest = {
    'brand-id': header(1, 'brand-id', /^[A-Za-z0-9._+-]+$/),
    model: header(2, 'model', /^[A-Za-z0-9._+-]+$/),
    revision: Number(header(3, 'revision', /^(0|[1-9]\d{0,15})$/)),
    // a key id (sha3-384, base64url: 64 characters), as the device checks it before it names a file
    'sign-key-sha3-384': header(4, 'sign-key-sha3-384', /^[A-Za-z0-9_-]{64}$/),
    files: [],
  };
  for (let i = 5; i < lines.length; i++) {
    const f = /^file: ([0-9a-f]{64}) (0|[1-9]\d{0,15}) (\S+)$/.exec(lines[i]!);
    if (!f) fail(i + 1, `expected "file: <sha256> <size> <path>", found ${JSON.stringify(lines[i])}`);
    const path = f![3]!;
    try {
      checkSlotPath(path, source);
    } catch (e) {
      fail(i + 1, (e as Error).message);
    }
    const prev = m.files.at(-1);
    if (prev && prev.path >= path) fail(i + 1, `file ${path} is not after ${prev.path}: file lines are sorted by path, each once`);
    m.files.push({ path, sha256: f![1]!, size: Number(f![2]) });
  }
  return m;
}
