/**
 * The content-addressed .deb cache: `$EDGEIMAGE_CACHE/debs/pool/<sha256>.deb` (default root
 * ~/.cache/edgeimage, as every edgeimage cache). An entry is written under a temporary name and
 * renamed, so a reader sees a whole file or none; its sha256 is checked on every read, and an
 * entry whose bytes do not match its name is removed and fetched again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The root of edgeimage's caches: $EDGEIMAGE_CACHE, else $XDG_CACHE_HOME/edgeimage, else ~/.cache/edgeimage. */
export function cacheRoot(): string {
  return process.env['EDGEIMAGE_CACHE'] || join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'edgeimage');
}

export function debPool(root = cacheRoot()): string {
  return join(root, 'debs', 'pool');
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The path of the cached .deb with this sha256, checked; undefined when absent (or removed as corrupt). */
export async function cachedDeb(sha256: string, root = cacheRoot()): Promise<string | undefined> {
  if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  const file = join(debPool(root), `${sha256}.deb`);
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) return undefined;
  if ((await sha256File(file)) === sha256) return file;
  // A disk error or a hand edit: never use it, fetch it again.
  rmSync(file, { force: true });
  return undefined;
}

/** Puts a .deb in the cache (temp + rename); returns its sha256 and cache path. */
export async function putDeb(src: string, root = cacheRoot()): Promise<{ sha256: string; path: string }> {
  const pool = debPool(root);
  mkdirSync(pool, { recursive: true });
  const tmp = join(pool, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}.deb`);
  try {
    await copyFile(src, tmp);
    const sha256 = await sha256File(tmp);
    const path = join(pool, `${sha256}.deb`);
    renameSync(tmp, path);
    return { sha256, path };
  } finally {
    rmSync(tmp, { force: true });
  }
}
