/** Reading images back with real host tools (sfdisk, debugfs, mtools): what tests check an image with. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';

export const MiB = 1 << 20;

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const sha3 = (b: Uint8Array) => createHash('sha3-384').update(b).digest('hex');

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

const TOOL_ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` };

/** Runs a host tool synchronously, in a fixed locale. */
export function sh(cmd: string, args: string[]): Ran {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: TOOL_ENV, maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a host tool that must succeed; returns its raw stdout. */
export function shBytes(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: TOOL_ENV, maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  bootable?: boolean;
}

export interface SfdiskTable {
  label: string;
  id: string;
  unit: string;
  sectorsize?: number;
  partitions: SfdiskPartition[];
}

export function sfdiskJson(image: string): SfdiskTable {
  const r = sh('sfdisk', ['--json', image]);
  if (r.status !== 0) throw new Error(`sfdisk --json ${image}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { partitiontable: SfdiskTable }).partitiontable;
}

/** A file of the ext4 filesystem at `offset` (debugfs; no mounting), or undefined when absent. */
export function ext4Cat(image: string, offset: number, path: string): Buffer | undefined {
  const r = spawnSync('debugfs', ['-R', `cat "${path}"`, `${image}?offset=${offset}`], { env: TOOL_ENV, maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  const err = r.stderr.toString();
  if (/File not found|not found by ext2_lookup/.test(err)) return undefined;
  if (r.status !== 0) throw new Error(`debugfs cat ${path}: ${err}`);
  return r.stdout;
}

/** Names in a directory of the ext4 filesystem at `offset` (without . and ..). */
export function ext4Ls(image: string, offset: number, path: string): string[] {
  const r = sh('debugfs', ['-R', `ls -p "${path}"`, `${image}?offset=${offset}`]);
  if (r.status !== 0) throw new Error(`debugfs ls ${path}: ${r.stderr}`);
  // -p: /INODE/MODE/UID/GID/NAME/SIZE/
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('/'))
    .map((l) => l.split('/')[5] ?? '')
    .filter((n) => n && n !== '.' && n !== '..')
    .sort();
}

/** Dumps the whole ext4 filesystem at `offset` into `dest` (debugfs rdump) and returns path → sha256. */
export function ext4Tree(image: string, offset: number, dest: string): Record<string, string> {
  mkdirSync(dest, { recursive: true });
  const r = sh('debugfs', ['-R', `rdump / "${dest}"`, `${image}?offset=${offset}`]);
  if (r.status !== 0) throw new Error(`debugfs rdump: ${r.stderr}`);
  return treeDigest(dest);
}

/** path → sha256 (files), `dir` (folders), `-> target` (symlinks), relative to `root`. */
export function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        walk(p, r);
      } else out[r] = sha256(readFileSync(p));
    }
  };
  walk(root, '');
  return out;
}

/** A file of the FAT filesystem at `offset` (mtools' mtype/mcopy), or undefined when absent. */
export function fatCat(image: string, offset: number, path: string): Buffer | undefined {
  const r = spawnSync('mtype', ['-i', `${image}@@${offset}`, `::${path}`], { env: { ...TOOL_ENV, MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    if (/not found/i.test(r.stderr.toString())) return undefined;
    throw new Error(`mtype ${path}: ${r.stderr.toString()}`);
  }
  return r.stdout;
}

/** The variables of a GRUB environment block (`# GRUB Environment Block`, key=value lines, # padding). */
export function grubVars(block: Buffer): Record<string, string> {
  const text = block.toString('latin1');
  const vars: Record<string, string> = {};
  for (const l of text.split('\n')) {
    if (!l || l.startsWith('#')) continue;
    const i = l.indexOf('=');
    vars[l.slice(0, i)] = l.slice(i + 1);
  }
  return vars;
}

/** The bytes of `[offset, offset + length)` of a file. */
export function slice(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Files of a folder (recursively), relative; `[]` when it does not exist. */
export function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      out.push(r);
      if (lstatSync(p).isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}
