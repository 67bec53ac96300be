/**
 * downloadToCache on its own, with bundles on both sides of WORKER_MIN_BYTES: a large bundle is
 * hashed and written by a pool worker, a small one on the main thread, and both must keep the
 * same promises (exact bytes, resume after a cut, nothing cached on a failure, a full disk named).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeDigest } from '@edgeimage/assertions';
import { serveDirectory, type ServeOptions } from '@edgeimage/testkit/http-server';
import { missingRoot, requires } from '@edgeimage/testkit/skips';
import { HttpBackend } from '../backends/http.js';
import { BundleCache } from './cache.js';
import { downloadToCache } from './download.js';
import { WORKER_MIN_BYTES } from './hasher.js';

const FAST_RETRY = { retries: 2, baseDelayMs: 5 };
const MiB = 1024 * 1024;

let dir: string;
const files: Record<string, { bytes: Buffer; sha: string }> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-download-'));
  mkdirSync(join(dir, 'store'));
  // Sizes that are not a whole number of batches or socket reads.
  for (const [name, size] of [['large', WORKER_MIN_BYTES + 3 * MiB + 12_345], ['small', 300_001]] as const) {
    const bytes = randomBytes(size);
    writeFileSync(join(dir, 'store', `${name}.snap`), bytes);
    files[name] = { bytes, sha: encodeDigest(createHash('sha3-384').update(bytes).digest()) };
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function download(name: 'large' | 'small', serve: ServeOptions = {}, cacheDir = join(dir, `cache-${++n}`)) {
  const server = await serveDirectory(join(dir, 'store'), serve);
  const cache = new BundleCache(cacheDir);
  cache.prepare();
  const f = files[name]!;
  try {
    const retries: unknown[] = [];
    const path = await downloadToCache(new HttpBackend(server.url), { snap: name, path: `${name}.snap`, sha3_384: f.sha, size: f.bytes.length }, cache, FAST_RETRY, {
      onRetry: (e) => retries.push(e),
    });
    return { path, cache, retries, gets: server.log.filter((r) => r.path === `${name}.snap`) };
  } catch (e) {
    (e as { cache?: BundleCache }).cache = cache;
    throw e;
  } finally {
    await server.close();
  }
}

async function failure(p: Promise<unknown>): Promise<Error & { code: string; cache: BundleCache }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code: string; cache: BundleCache };
  }
  throw new Error('expected the download to fail');
}

const nothingCached = (cache: BundleCache) => {
  expect(readdirSync(cache.tmpDir)).toEqual([]);
  expect(readdirSync(cache.bundlesDir)).toEqual([]);
};

describe.each(['large', 'small'] as const)('a %s bundle', (name) => {
  test('is cached with exactly the served bytes, under its digest', async () => {
    const r = await download(name);
    expect(r.path).toBe(r.cache.pathOf(files[name]!.sha));
    expect(readFileSync(r.path).equals(files[name]!.bytes)).toBe(true);
    expect(readdirSync(r.cache.tmpDir)).toEqual([]);
  });

  test('a connection cut mid-body is resumed from the bytes on disk, and the file is whole', async () => {
    const dropAfter = Math.floor(files[name]!.bytes.length / 2) + 777;
    const r = await download(name, { fault: (req) => (req.count === 1 ? 'drop-mid-body' : undefined), dropAfter });
    expect(readFileSync(r.path).equals(files[name]!.bytes)).toBe(true);
    expect(r.retries).toHaveLength(1);
    expect(r.gets).toHaveLength(2);
    // The resume asked for what was on disk: every byte delivered before the cut was written.
    expect(r.gets[1]!.headers['range']).toBe(`bytes=${dropAfter}-`);
  });

  test('one flipped byte: refused by digest, nothing cached', async () => {
    const e = await failure(download(name, { fault: () => 'corrupt' }));
    expect(e.code).toBe('ERR_DIGEST_MISMATCH');
    expect(e.message).toContain(files[name]!.sha);
    nothingCached(e.cache);
  });

  test('the cache\'s temp folder gone: ERR_CACHE_WRITE names the file, asked once (not retried as a cut), nothing cached', async () => {
    const dir2 = join(dir, `gone-${name}`);
    const server = await serveDirectory(join(dir, 'store'));
    const cache = new BundleCache(dir2);
    cache.prepare();
    rmSync(cache.tmpDir, { recursive: true });
    const f = files[name]!;
    try {
      const e = await failure(downloadToCache(new HttpBackend(server.url), { snap: name, path: `${name}.snap`, sha3_384: f.sha, size: f.bytes.length }, cache, FAST_RETRY));
      expect(e.code).toBe('ERR_CACHE_WRITE');
      expect(e.message).toMatch(new RegExp(`^cannot cache ${name}: cannot write ${dir2}/tmp/.*\\.part \\(ENOENT\\); nothing was cached$`));
      expect(server.log.filter((r) => r.path === `${name}.snap`).length).toBeLessThanOrEqual(1);
      expect(readdirSync(cache.bundlesDir)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  requires(missingRoot('mounting a tmpfs')).test('a full disk (a real tmpfs, filled): ERR_CACHE_WRITE names it, and nothing is cached', async () => {
    const mnt = mkdtempSync(join(dir, 'full-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const cache = new BundleCache(mnt);
      cache.prepare();
      // Room for part of the bundle only (all of it for neither size): the write fails midway.
      spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4096', `count=${Math.floor((4 * MiB - 200_000) / 4096)}`]);
      const e = await failure(download(name, {}, mnt));
      expect(e.code).toBe('ERR_CACHE_WRITE');
      expect(e.message).toMatch(new RegExp(`^cannot cache ${name}: no space left on device writing ${mnt}/tmp/.*\\.part \\(ENOSPC\\); nothing was cached$`));
      nothingCached(cache);
      expect(existsSync(join(mnt, 'filler'))).toBe(true);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});
