import { createReadStream, renameSync, rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { encodeDigest } from '@edgeimage/assertions';
import type { StoreBackend } from '../backends/backend.js';
import { DigestMismatchError, SizeMismatchError, StoreError } from '../errors.js';
import type { BundleCache } from './cache.js';
import { sha3_384Hasher, type Hasher } from './hasher.js';
import { withRetry, type RetryPolicy } from './retry.js';

export interface DownloadRequest {
  snap: string;
  /** The store file of the bundle. */
  path: string;
  sha3_384: string;
  size: number;
}

export interface DownloadHooks {
  onProgress?: (bytes: number) => void;
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
  /** Checks the verified temp file before it enters the cache (snap.yaml type, architecture). */
  validate?: (tempFile: string) => Promise<void>;
}

/** Temp files being written, removed if the process is interrupted. */
const active = new Set<string>();
let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => {
    for (const f of active) rmSync(f, { force: true });
  });
}

/**
 * Downloads one bundle into the cache: counted, then hashed with sha3-384 and written to a temp
 * file by one thread (a worker for a large bundle, so parallel downloads hash on several cores) in
 * one pass (never re-read), resumed with a Range request after a dropped connection, checked against the signed
 * digest and size, validated, then renamed into place. On any failure the temp file is removed
 * and nothing enters the cache.
 */
export async function downloadToCache(backend: StoreBackend, req: DownloadRequest, cache: BundleCache, policy: RetryPolicy, hooks: DownloadHooks = {}): Promise<string> {
  installCleanup();
  const tmp = cache.tempPath(req.sha3_384);
  active.add(tmp);
  const url = backend.locate(req.path);
  let hash = sha3_384Hasher(req.size);
  let received = 0;
  try {
    await withRetry(
      `downloading ${req.snap} from ${url}`,
      policy,
      async (attempt) => {
        if (attempt > 0) {
          // Resume from what is really on disk (a failed attempt may have counted bytes it never
          // wrote), re-hashing it so the digest covers exactly the file's bytes.
          await hash.close();
          ({ hash, received } = await hashPartial(tmp, req.size));
        }
        try {
          hash.writeTo({ path: tmp, append: received > 0 });
        } catch (e) {
          throw classifyStreamError(e, tmp, req, url);
        }
        let source;
        try {
          source = await backend.open(req.path, received);
        } catch (e) {
          // Asked to resume past the end: the file is shorter than what was already received.
          if (e instanceof StoreError && e.code === 'ERR_STORE_RANGE') throw new SizeMismatchError(req.snap, req.size, received, url);
          throw e;
        }
        const { stream } = source;
        if (source.size !== undefined && received + source.size !== req.size) {
          // The store says how big the file is: refuse it before transferring a byte.
          stream.destroy();
          throw new SizeMismatchError(req.snap, req.size, received + source.size, url);
        }
        try {
          await pump(stream, hash, (n) => {
            received += n;
            if (received > req.size) throw new SizeMismatchError(req.snap, req.size, received, url);
            hooks.onProgress?.(n);
          });
        } catch (e) {
          throw classifyStreamError(e, tmp, req, url);
        }
        if (received < req.size) {
          // The server closed the body early without an error: resume where it stopped.
          throw new StoreError('ERR_DOWNLOAD_INTERRUPTED', `${url}: connection closed after ${received} of ${req.size} bytes`, { url, received });
        }
      },
      hooks.onRetry,
    );
    const actual = encodeDigest(await hash.digest());
    if (received !== req.size) throw new SizeMismatchError(req.snap, req.size, received, url);
    if (actual !== req.sha3_384) throw new DigestMismatchError(req.snap, req.sha3_384, actual, url);
    await hooks.validate?.(tmp);
    const final = cache.pathOf(req.sha3_384);
    renameSync(tmp, final);
    return final;
  } finally {
    await hash.close();
    rmSync(tmp, { force: true });
    active.delete(tmp);
  }
}

async function hashPartial(file: string, size: number): Promise<{ hash: Hasher; received: number }> {
  const hash = sha3_384Hasher(size);
  let received = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      await hash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      await hash.close();
      throw e;
    }
  }
  return { hash, received };
}

/**
 * Bytes gathered before one hand-over to the hasher: a socket delivers 64 KiB at a time, and each
 * message to a hash worker, and each write, costs a fixed amount.
 */
const HASH_BATCH_BYTES = 1024 * 1024;

/**
 * Feeds `source` to `hash` (which hashes and writes) in batches of {@link HASH_BATCH_BYTES}.
 * `count` sees every chunk first and may refuse it by throwing. However the source ends (a dropped
 * connection included), what it delivered before is handed over and written before this returns
 * or throws, so a resume starts after those bytes; a write's failure is thrown here.
 */
async function pump(source: Readable, hash: Hasher, count: (n: number) => void): Promise<void> {
  let batch: Buffer[] = [];
  let batched = 0;
  // The socket's chunks are handed over as they are (moved to the hash worker, not copied).
  const post = (): Promise<void> | undefined => {
    const b = batch;
    batch = [];
    batched = 0;
    return hash.updateAll(b, true);
  };
  let failure: unknown;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      count(chunk.length);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= HASH_BATCH_BYTES) await post();
    }
  } catch (e) {
    failure = e;
    source.destroy();
  }
  if (batched > 0) await post();
  // A failed write (final) is thrown before the source's error (a cut, retried).
  await hash.settled();
  if (failure !== undefined) throw failure;
}

/** Disk errors are final and named as such; network errors stay transient so the download resumes. */
function classifyStreamError(e: unknown, tmp: string, req: DownloadRequest, url: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  // The temp file's own errors (its folder gone, a read-only or failing disk): final, not a cut to resume.
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'ENOTDIR' || code === 'EIO') {
    const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'no space left on device writing' : 'cannot write';
    return new StoreError('ERR_CACHE_WRITE', `cannot cache ${req.snap}: ${why} ${tmp} (${code}); nothing was cached`, { snap: req.snap, code, file: tmp });
  }
  if (e instanceof StoreError) return e;
  return new StoreError('ERR_DOWNLOAD_INTERRUPTED', `${url}: download of ${req.snap} interrupted: ${(e as Error).message}`, { url });
}
