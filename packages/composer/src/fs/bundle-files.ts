/**
 * Files copied out of a bundle (the kernel's kernel.img and initrd.img, the gadget's boot assets)
 * are regular files inside the bundle, of a bounded size. A bundle is a squashfs that anyone can
 * make: an `initrd.img` that is a symbolic link to `/root/.ssh/id_rsa`, a device node, or a 100 GB
 * sparse file would otherwise be followed, opened or written out by the build. Bundles are checked
 * from their listing before anything is unpacked, and what was unpacked is checked again (lstat)
 * before it is copied anywhere.
 */
import { existsSync, lstatSync, readdirSync, rmSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import { ComposeError } from '../errors.js';
import { runTool } from './tool.js';

/** The largest file copied out of a bundle (a kernel, an initrd, a boot asset). */
export const MAX_BUNDLE_FILE_BYTES = 1024 * 1024 * 1024;
/** The most a bundle unpacks to (the gadget is unpacked whole). */
export const MAX_BUNDLE_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024;

export interface BundleRef {
  name: string;
  revision: number;
  path: string;
  /** `kernel`, `gadget`: how messages name the bundle. */
  type: string;
}

export type EntryKind = 'file' | 'directory' | 'symlink' | 'char-device' | 'block-device' | 'fifo' | 'socket';

export interface BundleEntry {
  /** Relative to the bundle's root, no leading `/` (`meta/snap.yaml`). */
  path: string;
  kind: EntryKind;
  /** Bytes, for a file; 0 for a device node. */
  size: number;
  /** Where a symbolic link points. */
  target?: string;
}

export interface ExtractOptions {
  /** Unpack only these paths (each must be a regular file); default: the whole bundle. */
  files?: readonly string[];
  /** Default {@link MAX_BUNDLE_FILE_BYTES}. */
  maxFileBytes?: number;
  /** Default {@link MAX_BUNDLE_UNPACKED_BYTES}. */
  maxTotalBytes?: number;
  /**
   * A whole-bundle unpack may hold symbolic links (the gadget's content checks follow them and
   * refuse those that leave it, and nothing copies one); with `files` they are always refused.
   */
  allowSymlinks?: boolean;
}

const KINDS: Readonly<Record<string, EntryKind>> = { '-': 'file', d: 'directory', l: 'symlink', c: 'char-device', b: 'block-device', p: 'fifo', s: 'socket' };
const KIND_WORDS: Readonly<Record<EntryKind, string>> = {
  file: 'a regular file',
  directory: 'a directory',
  symlink: 'a symbolic link',
  'char-device': 'a character device node',
  'block-device': 'a block device node',
  fifo: 'a named pipe',
  socket: 'a socket',
};

/** One line of `unsquashfs -lls -d ''`: mode, owner, size (or `major, minor`), date, time, path. */
const LISTING_LINE = /^([-dlcbps])\S{9} \S+ +(\d+|\d+, +\d+) \d{4}-\d\d-\d\d \d\d:\d\d (.*)$/;

const describe = (b: BundleRef) => `${b.type} bundle ${b.name} revision ${b.revision}`;

/**
 * Every entry of a bundle (or of `paths` in it), from its squashfs listing. A line that does not
 * read as one entry (a name with a newline in it) is refused rather than guessed at.
 *
 * @example
 * const entries = await listBundle({ name: 'pc-kernel', revision: 3, path: 'k.snap', type: 'kernel' });
 */
export async function listBundle(b: BundleRef, paths: readonly string[] = []): Promise<BundleEntry[]> {
  const out = (await runTool('unsquashfs', ['-lls', '-d', '', b.path, ...paths])).stdout.toString('utf8');
  const entries: BundleEntry[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const m = LISTING_LINE.exec(line);
    if (!m) {
      throw new ComposeError('ERR_BUNDLE_FILE', `${describe(b)}: cannot read its file listing at ${JSON.stringify(line.slice(0, 200))} (a file name with a line break?); refused`, { bundle: b.name, line: line.slice(0, 200) });
    }
    const kind = KINDS[m[1]!]!;
    let path = m[3]!.replace(/^\/+/, '');
    let target: string | undefined;
    if (kind === 'symlink') {
      const arrow = path.indexOf(' -> ');
      if (arrow >= 0) {
        target = path.slice(arrow + 4);
        path = path.slice(0, arrow);
      }
    }
    if (path === '') continue; // the root
    entries.push({ path, kind, size: kind === 'file' ? Number(m[2]) : 0, ...(target !== undefined ? { target } : {}) });
  }
  return entries;
}

/**
 * Unpacks a bundle (or only `opts.files` of it) into `dir` after checking its listing, and checks
 * what landed on disk again: ERR_BUNDLE_FILE for an entry that is not a regular file (a whole
 * unpack may also hold folders and, when allowed, symbolic links; with `files`, each is a regular
 * file and nothing else is unpacked but the folders leading to one), ERR_BUNDLE_FILE_SIZE for a
 * file over the cap or more than the total cap in all. Both name the bundle and the path. Nothing
 * is unpacked when the listing is refused; a `dir` this call created is removed when what landed
 * is refused.
 *
 * @example
 * await extractBundle(kernel, 'work/kernel', { files: ['kernel.img', 'initrd.img'] });
 */
export async function extractBundle(b: BundleRef, dir: string, opts: ExtractOptions = {}): Promise<BundleEntry[]> {
  const maxFile = opts.maxFileBytes ?? MAX_BUNDLE_FILE_BYTES;
  const maxTotal = opts.maxTotalBytes ?? MAX_BUNDLE_UNPACKED_BYTES;
  const only = opts.files ? new Set(opts.files) : undefined;
  const allowSymlinks = !only && Boolean(opts.allowSymlinks);
  // The listing of the requested paths is everything unsquashfs would unpack for them (a
  // requested name that is a folder brings all it holds): all of it is checked and counted.
  const listed = await listBundle(b, opts.files ?? []);
  checkEntries(b, listed, only, maxFile, maxTotal, allowSymlinks);
  const existed = existsSync(dir);
  await runTool('unsquashfs', ['-q', '-n', '-no-xattrs', '-d', dir, b.path, ...(opts.files ?? [])]);
  // What is on disk is what gets copied: check it too, not only what the listing said.
  try {
    checkEntries(b, unpackedEntries(dir), only, maxFile, maxTotal, allowSymlinks);
  } catch (e) {
    if (!existed) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return only ? listed.filter((e) => only.has(e.path)) : listed;
}

/**
 * With `only`: each requested name is a regular file, and nothing else is there but the folders
 * that lead to one. Without: every entry passes {@link checkEntry}. Either way the files add up
 * to at most `maxTotal` bytes.
 */
function checkEntries(b: BundleRef, entries: readonly BundleEntry[], only: ReadonlySet<string> | undefined, maxFile: number, maxTotal: number, allowSymlinks: boolean): void {
  if (only) {
    const leading = new Set<string>();
    for (const f of only) {
      const parts = f.split('/');
      for (let i = 1; i < parts.length; i++) leading.add(parts.slice(0, i).join('/'));
    }
    // The requested names first, so that a folder named kernel.img is refused as that.
    for (const e of entries) if (only.has(e.path)) checkEntry(b, e.path, e.kind, e.size, maxFile, false, e.target, false);
    for (const e of entries) {
      if (only.has(e.path) || (e.kind === 'directory' && leading.has(e.path))) continue;
      const owner = [...only].find((f) => e.path.startsWith(`${f}/`));
      const to = e.kind === 'symlink' && e.target !== undefined ? ` (to ${JSON.stringify(e.target)})` : '';
      const why = owner !== undefined ? `is inside ${owner}, which must be a regular file` : `is not one of the files asked for (${[...only].join(', ')})`;
      throw new ComposeError('ERR_BUNDLE_FILE', `${describe(b)}: ${e.path} (${KIND_WORDS[e.kind]}${to}) ${why}; files copied out of a bundle must be regular files inside it; refused`, {
        bundle: b.name,
        revision: b.revision,
        path: e.path,
        kind: e.kind,
        ...(e.target !== undefined ? { target: e.target } : {}),
      });
    }
  } else {
    for (const e of entries) checkEntry(b, e.path, e.kind, e.size, maxFile, allowSymlinks, e.target);
  }
  let total = 0;
  for (const e of entries) total += e.kind === 'file' ? e.size : 0;
  if (total > maxTotal) {
    throw new ComposeError('ERR_BUNDLE_FILE_SIZE', `${describe(b)} unpacks to ${total} bytes, more than the ${maxTotal} bytes a bundle may; refused`, { bundle: b.name, size: total, max: maxTotal });
  }
}

/** Every entry under `root` (not `root` itself), as {@link listBundle} reads them from a listing. */
function unpackedEntries(root: string): BundleEntry[] {
  const entries: BundleEntry[] = [];
  if (!lstatOrUndefined(root)) return entries;
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const name of readdirSync(p)) {
      const full = join(p, name);
      const st = lstatSync(full);
      const kind = kindOf(st);
      entries.push({ path: relative(root, full), kind, size: kind === 'file' ? st.size : 0 });
      if (kind === 'directory') stack.push(full);
    }
  }
  return entries;
}

/**
 * Checks a folder about to be copied out of an unpacked bundle: regular files and folders only
 * (no symbolic link, even one that stays inside: the copy would carry it as a link), each file
 * under the cap.
 *
 * @example
 * checkUnpackedTree(gadget, 'work/gadget/boot-assets', 'work/gadget');
 */
export function checkUnpackedTree(b: BundleRef, path: string, bundleRoot: string, maxFile = MAX_BUNDLE_FILE_BYTES, allowSymlinks = false): void {
  const stack = [path];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const st = lstatSync(p);
    const kind = kindOf(st);
    checkEntry(b, relative(bundleRoot, p) || '.', kind, st.size, maxFile, allowSymlinks);
    if (kind === 'directory') for (const name of readdirSync(p)) stack.push(join(p, name));
  }
}

function checkEntry(b: BundleRef, path: string, kind: EntryKind, size: number, maxFile: number, allowSymlinks: boolean, target?: string, allowDirectory = true): void {
  const ok = kind === 'file' || (kind === 'directory' && allowDirectory) || (kind === 'symlink' && allowSymlinks);
  if (!ok) {
    const to = kind === 'symlink' && target !== undefined ? ` (to ${JSON.stringify(target)})` : '';
    throw new ComposeError('ERR_BUNDLE_FILE', `${describe(b)}: ${path} is ${KIND_WORDS[kind]}${to}, not a regular file; files copied out of a bundle must be regular files inside it; refused`, {
      bundle: b.name,
      revision: b.revision,
      path,
      kind,
      ...(target !== undefined ? { target } : {}),
    });
  }
  if (kind === 'file' && size > maxFile) {
    throw new ComposeError('ERR_BUNDLE_FILE_SIZE', `${describe(b)}: ${path} is ${size} bytes, more than the ${maxFile} bytes a file copied out of a bundle may be; refused`, {
      bundle: b.name,
      revision: b.revision,
      path,
      size,
      max: maxFile,
    });
  }
}

function kindOf(st: Stats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}
