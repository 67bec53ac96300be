/**
 * Helpers for the bundle tests: temporary folders removed after the test file, bundle trees
 * written from a map, environment overrides, stand-in host tools, and an sha3-384 computed by
 * openssl (a check independent of node:crypto).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Temporary folders for one test file, all removed in `afterAll`. Call at the top level. */
export function useTempDirs(prefix = 'edgeimage-bundle-test-'): () => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) {
      // Folders a test made read-only must become writable again to be removed.
      try {
        execFileSync('chmod', ['-R', 'u+rwX', d]);
      } catch {
        // already gone
      }
      rmSync(d, { recursive: true, force: true });
    }
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

export type Entry = string | Buffer | { data: string | Buffer; mode: number } | { symlink: string } | { dir: true; mode?: number };

/** Writes a tree: keys are relative paths, in the order given (to test creation-order independence). */
export function writeTree(root: string, entries: Record<string, Entry>): string {
  mkdirSync(root, { recursive: true });
  for (const [rel, e] of Object.entries(entries)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof e === 'string' || Buffer.isBuffer(e)) writeFileSync(p, e, { mode: 0o644 });
    else if ('symlink' in e) symlinkSync(e.symlink, p);
    else if ('dir' in e) mkdirSync(p, { recursive: true, mode: e.mode ?? 0o755 });
    else {
      writeFileSync(p, e.data);
      chmodSync(p, e.mode);
    }
  }
  return root;
}

/** A small app bundle tree like bundles/hello-kiosk: a daemon, a helper, a nested data file. */
export function helloTree(): Record<string, Entry> {
  return {
    'meta/snap.yaml': [
      'name: hello-kiosk',
      "version: '1.0'",
      'type: app',
      'architectures: [all]',
      'summary: Prints that the kiosk is up',
      'apps:',
      '  hello-kiosk:',
      '    command: bin/hello-kiosk',
      '    daemon: simple',
      '    restart-condition: always',
      '  hello:',
      '    command: bin/hello',
      '',
    ].join('\n'),
    'bin/hello-kiosk': { data: '#!/bin/sh\nwhile :; do echo kiosk up; sleep 60; done\n', mode: 0o755 },
    'bin/hello': { data: '#!/bin/sh\necho hello\n', mode: 0o755 },
    'share/hello/greeting.txt': 'hello, kiosk\n',
    'share/hello/empty': { dir: true },
    'share/hello/latest': { symlink: 'greeting.txt' },
  };
}

/** Runs `fn` with environment variables set (undefined: unset), restoring them afterwards. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Runs `fn` in another current directory, restoring it afterwards. */
export async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(saved);
  }
}

/** Writes an executable `sh` script named `name` into `binDir` (a stand-in for a host tool). */
export function fakeTool(binDir: string, name: string, script: string): string {
  mkdirSync(binDir, { recursive: true });
  const p = join(binDir, name);
  writeFileSync(p, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return p;
}

/**
 * The sha3-384 of a file as openssl computes it, in snapd's text form, converted by openssl and
 * tr only: `openssl dgst -sha3-384 -binary | openssl base64 -A`, then the URL alphabet, no padding.
 */
export function opensslSha3_384(file: string): string {
  return execFileSync('sh', ['-c', 'openssl dgst -sha3-384 -binary "$1" | openssl base64 -A | tr "+/" "-_" | tr -d "="', 'sh', file], { encoding: 'utf8' }).trim();
}

/** `unsquashfs -lln FILE`: the listing with numeric owners and times, one line per entry. */
export function listing(file: string): string[] {
  return execFileSync('unsquashfs', ['-lln', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
}

/** Whether this process runs as root (permission checks do not apply to root). */
export const isRoot = process.getuid?.() === 0;
