import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, lstatSync, openSync, readSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MiB = 2 ** 20;
/** The unprivileged user and group of the reproducibility tests (nobody/nogroup on Debian). */
export const NOBODY = 65534;
export const TIMESTAMP = new Date('2024-03-01T12:34:56Z');

const made: string[] = [];

/** A fresh temporary directory that any user can enter, removed by {@link cleanUp}. */
export function tempDir(prefix = 'edgeimage-fs-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  made.push(d);
  return d;
}

export function cleanUp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** A sparse file of `size` bytes. */
export function sparseFile(path: string, size: number): string {
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a host tool synchronously (for checks in tests), in a fixed locale. */
export function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a host tool and returns its raw stdout. */
export function runBytes(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' }, maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Content of a test tree: path → file content, `dir` or `{ symlink }`. */
export type TreeSpec = Record<string, string | Buffer | { dir: true } | { symlink: string } | { exec: string }>;

export const SAMPLE_TREE: TreeSpec = {
  'README.txt': 'edge image\n',
  'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(70_000, 0xa5),
  'EFI/edgeimage/grub.cfg': 'set timeout=0\n',
  'boot/vmlinuz': Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)),
  'boot/empty': '',
  'bin/tool': { exec: '#!/bin/sh\necho hi\n' },
  'models/long name with spaces.assert': 'type: model\n',
  'models/ünïcödé.txt': 'utf-8 name\n',
  'data/empty-dir': { dir: true },
};

/**
 * Creates `spec` under `root`, in the order given or reversed (the host's directory order must
 * not matter), with file modes from `umask`-like `fileMode`/`dirMode`, and every time set to
 * `mtime`.
 */
export function makeTree(root: string, spec: TreeSpec, opts: { reverse?: boolean; fileMode?: number; dirMode?: number; mtime?: Date } = {}): string {
  const fileMode = opts.fileMode ?? 0o644;
  const dirMode = opts.dirMode ?? 0o755;
  mkdirSync(root, { recursive: true });
  chmodSync(root, dirMode);
  const entries = Object.entries(spec);
  if (opts.reverse) entries.reverse();
  const mkdirs = (d: string) => {
    if (d === root || lstatSafe(d)) return;
    mkdirs(dirname(d));
    mkdirSync(d);
    chmodSync(d, dirMode);
  };
  for (const [rel, v] of entries) {
    const p = join(root, rel);
    mkdirs(dirname(p));
    if (typeof v === 'string' || Buffer.isBuffer(v)) {
      writeFileSync(p, v);
      chmodSync(p, fileMode);
    } else if ('dir' in v) mkdirs(p);
    else if ('symlink' in v) symlinkSync(v.symlink, p);
    else {
      writeFileSync(p, v.exec);
      chmodSync(p, fileMode | 0o111);
    }
  }
  if (opts.mtime) setTimes(root, opts.mtime);
  return root;
}

function lstatSafe(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function setTimes(p: string, t: Date): void {
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const n of readdirSync(p)) setTimes(join(p, n), t);
  utimesSync(p, t, t);
}

/** chown -R (symlinks themselves, not their targets). */
export function chownTree(p: string, uid: number, gid: number): void {
  const st = lstatSync(p);
  if (st.isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n), uid, gid);
  if (st.isSymbolicLink()) spawnSync('chown', ['-h', `${uid}:${gid}`, p]);
  else chownSync(p, uid, gid);
}

export const isRoot = process.getuid?.() === 0;
export const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Calls `fn(...args)` of the TypeScript module `modulePath` in a separate `node` process running
 * as `uid:gid` with no supplementary groups (`setpriv`): a build by an unprivileged user.
 */
export function callAsUser(uid: number, gid: number, modulePath: string, fn: string, args: unknown[]): Promise<unknown> {
  const argv = [
    `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--',
    process.execPath, '--import', pathToFileURL(join(here, 'register.mjs')).href, join(here, 'run-as.mjs'),
    pathToFileURL(modulePath).href, fn, JSON.stringify(args),
  ];
  return new Promise((resolve, reject) => {
    const child = execFile('setpriv', argv, { cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      if (err) {
        let parsed: { code?: string; message?: string } = {};
        try {
          parsed = JSON.parse(stderr) as typeof parsed;
        } catch {
          parsed = { message: stderr || err.message };
        }
        return reject(Object.assign(new Error(parsed.message), { code: parsed.code }));
      }
      resolve(JSON.parse(stdout || 'null'));
    });
    child.stdin?.end();
  });
}

/** Absolute path of a module of the composer's fs builders (`ext4.ts` …), for {@link callAsUser}. */
export const fsModule = (name: string): string => join(here, '../../composer/src/fs', name);
