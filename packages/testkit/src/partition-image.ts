import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 2 ** 20;

const made: string[] = [];

/** A fresh temporary directory, removed by {@link cleanUp}. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-partition-test-'));
  made.push(d);
  return d;
}

export function cleanUp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A sparse file of `size` bytes (all zeros, no blocks allocated). */
export function sparseImage(size: number, name = 'disk.img'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, '');
  truncateSync(file, size);
  return file;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a host tool with a fixed C locale, so its output can be parsed. */
export function run(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Byte ranges `[from, to)` where `a` and `b` differ. */
export function diffRanges(a: Buffer, b: Buffer): [number, number][] {
  const out: [number, number][] = [];
  const n = Math.max(a.length, b.length);
  let start = -1;
  for (let i = 0; i <= n; i++) {
    const differs = i < n && a[i] !== b[i];
    if (differs && start < 0) start = i;
    if (!differs && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/** Deterministic filler bytes (not zeros), to see what a writer touched. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
