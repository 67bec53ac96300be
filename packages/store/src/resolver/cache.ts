import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The content-addressed bundle cache: `DIR/bundles/<sha3-384>.snap`. A file enters it only by an
 * atomic rename after its digest and size were checked, so a name is a proof of content. Partial
 * downloads live in `DIR/tmp/` under names carrying the writer's pid, and are removed when that
 * process is gone.
 */
export class BundleCache {
  readonly bundlesDir: string;
  readonly tmpDir: string;

  constructor(readonly dir: string = defaultCacheDir()) {
    this.bundlesDir = join(dir, 'bundles');
    this.tmpDir = join(dir, 'tmp');
  }

  /** Creates the folders and removes partial files left by processes that no longer run. */
  prepare(): void {
    mkdirSync(this.bundlesDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
    for (const f of readdirSync(this.tmpDir)) {
      const pid = Number(/^(\d+)-/.exec(f)?.[1]);
      if (!pid || !isAlive(pid)) rmSync(join(this.tmpDir, f), { force: true });
    }
  }

  pathOf(sha3_384: string): string {
    return join(this.bundlesDir, `${sha3_384}.snap`);
  }

  /** The cached file when present with the expected size (sizes are checked; digests were on entry). */
  lookup(sha3_384: string, size: number): string | undefined {
    const p = this.pathOf(sha3_384);
    try {
      return statSync(p).size === size ? p : undefined;
    } catch {
      return undefined;
    }
  }

  tempPath(sha3_384: string): string {
    return join(this.tmpDir, `${process.pid}-${randomBytes(4).toString('hex')}-${sha3_384}.part`);
  }
}

export function defaultCacheDir(): string {
  if (process.env['EDGEIMAGE_CACHE']) return process.env['EDGEIMAGE_CACHE'];
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'edgeimage');
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
