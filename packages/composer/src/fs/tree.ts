import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';

/** One entry of a source tree, as the filesystem builders see it. */
export interface TreeEntry {
  /** Path relative to the tree's root, `/`-separated; `''` is the root itself. */
  path: string;
  /** Last path component (`''` for the root). */
  name: string;
  /** Absolute path on the build host. */
  abs: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Bytes of a file, length of a symlink's target, 0 for a directory. */
  size: number;
  /** Permission bits as found on the build host (the builders normalise them). */
  perm: number;
  /** `dev:ino`, to count hard-linked files once. */
  inode: string;
  /** A symlink's target. */
  target?: string;
}

/**
 * Walks `root` depth-first, parents before children, siblings in byte order of their UTF-8
 * names — the order `mke2fs -d` (scandir + alphasort under `LC_ALL=C.UTF-8`) uses, and an order
 * that does not depend on the build host's directory layout. Refuses entries no builder can hold
 * (devices, sockets, FIFOs) and names that are not valid UTF-8 or contain a newline.
 */
export async function scanTree(root: string, what: string): Promise<TreeEntry[]> {
  let st;
  try {
    st = await lstat(root);
  } catch (err) {
    throw new ComposeError('ERR_FS_SOURCE', `${what}: cannot read the source directory ${root}: ${(err as Error).message}`, { sourceDir: root });
  }
  if (!st.isDirectory()) throw new ComposeError('ERR_FS_SOURCE', `${what}: the source ${root} is not a directory`, { sourceDir: root });
  const out: TreeEntry[] = [{ path: '', name: '', abs: root, kind: 'dir', size: 0, perm: st.mode & 0o7777, inode: `${st.dev}:${st.ino}` }];
  await walk(root, '', out, what);
  return out;
}

async function walk(abs: string, rel: string, out: TreeEntry[], what: string): Promise<void> {
  let raw: Buffer[];
  try {
    raw = await readdir(abs, { encoding: 'buffer' });
  } catch (err) {
    throw new ComposeError('ERR_FS_SOURCE', `${what}: cannot read ${abs}: ${(err as Error).message}`, { path: abs });
  }
  raw.sort(Buffer.compare);
  for (const nameBuf of raw) {
    const name = nameBuf.toString('utf8');
    const path = rel ? `${rel}/${name}` : name;
    if (!Buffer.from(name, 'utf8').equals(nameBuf)) {
      throw new ComposeError('ERR_FS_UNSUPPORTED_NAME', `${what}: ${JSON.stringify(path)} is not valid UTF-8`, { path });
    }
    if (/[\n\r]/.test(name)) throw new ComposeError('ERR_FS_UNSUPPORTED_NAME', `${what}: ${JSON.stringify(path)} contains a line break`, { path });
    const childAbs = join(abs, name);
    const st = await lstat(childAbs);
    const base = { path, name, abs: childAbs, perm: st.mode & 0o7777, inode: `${st.dev}:${st.ino}` };
    if (st.isDirectory()) {
      out.push({ ...base, kind: 'dir', size: 0 });
      await walk(childAbs, path, out, what);
    } else if (st.isFile()) {
      out.push({ ...base, kind: 'file', size: st.size });
    } else if (st.isSymbolicLink()) {
      const target = await readlink(childAbs);
      out.push({ ...base, kind: 'symlink', size: Buffer.byteLength(target), target });
    } else {
      throw new ComposeError('ERR_FS_UNSUPPORTED_FILE', `${what}: ${path} is a device, socket or FIFO; only files, directories and symlinks can go into an image`, { path });
    }
  }
}

/** Whole seconds since the epoch of `timestamp`, refused outside what the filesystem can store. */
export function epochSeconds(timestamp: Date, what: string, fs: 'ext4' | 'vfat'): number {
  const ms = timestamp instanceof Date ? timestamp.getTime() : NaN;
  // ext4: 32-bit signed seconds without extra epoch bits (e2fsprogs 1.47.0 sets no `_extra` epoch
  // for these times); FAT: 1980-01-01 … 2107-12-31, local time (the tools run with TZ=UTC).
  const [min, max] = fs === 'ext4' ? [0, 2 ** 31 - 1] : [315532800, 4354819199];
  if (!Number.isFinite(ms)) throw new ComposeError('ERR_FS_OPTIONS', `${what}: the timestamp is not a valid date`, {});
  const s = Math.floor(ms / 1000);
  if (s < min || s > max) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: timestamp ${timestamp.toISOString()} is outside what ${fs} can store (${new Date(min * 1000).toISOString()} … ${new Date(max * 1000).toISOString()})`, { timestamp: timestamp.toISOString() });
  }
  return s;
}

/** How a builder names its structure in messages: `ext4 filesystem "system-a" (/work/fs/2.img)`. */
export function describeFs(fs: string, name: string | undefined, label: string | undefined, output: string): string {
  const id = name ?? label;
  return `${fs} filesystem${id ? ` ${JSON.stringify(id)}` : ''} (${output})`;
}

export const MiB = 1024 * 1024;
export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
