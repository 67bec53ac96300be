import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { encodeDigest } from '@edgeimage/assertions';
import { sha3_384Hasher } from './hasher.js';

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

  /**
   * The cached file of `sha3_384` when its bytes still are what its name says, else undefined.
   * A name proves content only while nothing changes the file (a disk error, a truncating copy, a
   * hand edit), so every hit is re-hashed (size, then sha3-384) before it is used. An entry that
   * fails is left alone and reported through `onCorrupt`: the caller downloads the bundle again
   * through the full verification path, whose atomic rename replaces it (deleting it here could
   * race with another build renaming a good copy into place).
   */
  async verifiedLookup(sha3_384: string, size: number, onCorrupt?: (why: string) => void): Promise<string | undefined> {
    const p = this.pathOf(sha3_384);
    let actualSize: number;
    try {
      actualSize = statSync(p).size;
    } catch {
      return undefined;
    }
    if (actualSize !== size) {
      onCorrupt?.(`${p} has ${actualSize} bytes, the signed size is ${size}`);
      return undefined;
    }
    // On the hash pool for a large file: the lookups of a resolve's bundles run at once, on several cores.
    const hash = sha3_384Hasher(size);
    try {
      for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) await hash.update(chunk as Buffer, true);
    } catch (e) {
      await hash.close();
      onCorrupt?.(`${p} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
    const actual = encodeDigest(await hash.digest());
    if (actual !== sha3_384) {
      onCorrupt?.(`${p} has sha3-384 ${actual}, the signed digest is ${sha3_384}`);
      return undefined;
    }
    return p;
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
