import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { ComposeError } from '../errors.js';

/** One member of a cpio archive. Paths are relative to the archive root (a leading `/` is dropped). */
export type CpioEntry =
  | { path: string; type: 'file'; mode?: number; data: Uint8Array | string }
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'symlink'; target: string };

export interface CpioOptions {
  /** Modification time of every member (default 0, the epoch). */
  mtime?: Date | number;
  /** gzip the archive (level 9; node's gzip header has mtime 0 and no name, so it stays deterministic). */
  gzip?: boolean;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function normalise(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '' || p.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new ComposeError('ERR_FS_OPTIONS', `invalid cpio path: ${JSON.stringify(path)}`, { path });
  }
  return p;
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ComposeError('ERR_FS_OPTIONS', `cpio field out of range: ${n}`, { value: n });
  return n.toString(16).padStart(8, '0');
}

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function header(f: { ino: number; mode: number; nlink: number; mtime: number; size: number; name: string }): Buffer[] {
  const name = Buffer.from(`${f.name}\0`, 'utf8');
  const fields = [f.ino, f.mode, 0, 0, f.nlink, f.mtime, f.size, 0, 0, 0, 0, name.length, 0];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return [head, name, pad4(head.length + name.length)];
}

/**
 * The bytes of a deterministic "newc" cpio archive (the initramfs format): members sorted by
 * path, parents before children (missing parent directories are added with mode 0755), owner
 * 0:0, one fixed mtime, inode numbers 1, 2, … in order, ending with `TRAILER!!!`. Duplicate
 * paths are refused.
 */
export function cpioBytes(entries: readonly CpioEntry[], opts: CpioOptions = {}): Buffer {
  const mtime = opts.mtime === undefined ? 0 : Math.floor((typeof opts.mtime === 'number' ? opts.mtime : opts.mtime.getTime() / 1000));
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const p = normalise(e.path);
    if (byPath.has(p)) throw new ComposeError('ERR_FS_OPTIONS', `duplicate cpio path: ${p}`, { path: p });
    byPath.set(p, { ...e, path: p });
  }
  for (const p of [...byPath.keys()]) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = byPath.get(parent);
      if (!existing) byPath.set(parent, { path: parent, type: 'dir' });
      else if (existing.type !== 'dir') throw new ComposeError('ERR_FS_OPTIONS', `cpio path ${p} is under ${parent}, which is not a directory`, { path: p });
    }
  }
  // Sort component-wise so that a directory's members directly follow it.
  const paths = [...byPath.keys()].sort((a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = Buffer.compare(Buffer.from(x[i] ?? ''), Buffer.from(y[i] ?? ''));
      if (c !== 0) return c;
    }
    return x.length - y.length;
  });
  const out: Buffer[] = [];
  let ino = 0;
  for (const p of paths) {
    const e = byPath.get(p) as CpioEntry;
    ino++;
    if (e.type === 'dir') {
      out.push(...header({ ino, mode: S_IFDIR | ((e.mode ?? 0o755) & 0o7777), nlink: 2, mtime, size: 0, name: p }));
    } else if (e.type === 'symlink') {
      const data = Buffer.from(e.target, 'utf8');
      out.push(...header({ ino, mode: S_IFLNK | 0o777, nlink: 1, mtime, size: data.length, name: p }), data, pad4(data.length));
    } else {
      const data = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      out.push(...header({ ino, mode: S_IFREG | ((e.mode ?? 0o644) & 0o7777), nlink: 1, mtime, size: data.length, name: p }), data, pad4(data.length));
    }
  }
  out.push(...header({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, name: 'TRAILER!!!' }));
  const raw = Buffer.concat(out);
  return opts.gzip ? gzipSync(raw, { level: 9 }) : raw;
}

/** Writes {@link cpioBytes} to `out` (replacing it). */
export function writeCpio(entries: readonly CpioEntry[], out: string, opts: CpioOptions = {}): void {
  writeFileSync(out, cpioBytes(entries, opts));
}
