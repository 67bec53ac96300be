import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { type Readable, Transform, type Writable } from 'node:stream';
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
  /** Opens the temp file for writing; only tests replace it, to inject a full disk. */
  openTemp?: (path: string, append: boolean) => Writable;
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
 * Downloads one bundle into the cache: streamed through sha3-384 (on a worker thread, so parallel
 * downloads hash on several cores) and a byte counter into a temp file in one pass (never
 * re-read), resumed with a Range request after a dropped connection, checked against the signed
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
          // Resume from what is really on disk (a failed pipeline may have counted bytes it never
          // wrote), re-hashing it so the digest covers exactly the file's bytes.
          await hash.close();
          ({ hash, received } = await hashPartial(tmp, req.size));
        }
        let opened;
        try {
          opened = await backend.open(req.path, received);
        } catch (e) {
          // Asked to resume past the end: the file is shorter than what was already received.
          if (e instanceof StoreError && e.code === 'ERR_STORE_RANGE') throw new SizeMismatchError(req.snap, req.size, received, url);
          throw e;
        }
        const { stream } = opened;
        if (opened.size !== undefined && received + opened.size !== req.size) {
          // The store says how big the file is: refuse it before transferring a byte.
          stream.destroy();
          throw new SizeMismatchError(req.snap, req.size, received + opened.size, url);
        }
        const counter = countingTransform(hash, (n) => {
          received += n;
          if (received > req.size) throw new SizeMismatchError(req.snap, req.size, received, url);
          hooks.onProgress?.(n);
        });
        const out = (hooks.openTemp ?? defaultOpenTemp)(tmp, received > 0);
        try {
          await keepUntilCut(stream, counter, out);
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

/**
 * Pipes `source` through `counter` into `out`, like stream.pipeline, except when the source fails
 * (a dropped connection): what it delivered before is still written and `out` closed, then the
 * source's error is thrown, so a resume starts after those bytes instead of from a temp file that
 * a destroyed write stream left short (or empty, when its open had not completed yet).
 */
function keepUntilCut(source: Readable, counter: Transform, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let cut: unknown;
    let failed = false;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      source.destroy();
      counter.destroy();
      out.destroy();
      reject(e);
    };
    source.once('error', (e) => {
      cut = e;
      source.unpipe(counter);
      counter.end();
    });
    counter.once('error', fail);
    out.once('error', fail);
    out.once('close', () => {
      if (failed) return;
      if (cut !== undefined) reject(cut);
      else if (!out.writableFinished) reject(new Error('the temp file was closed before all was written'));
      else resolve();
    });
    source.pipe(counter).pipe(out);
  });
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

function defaultOpenTemp(path: string, append: boolean): Writable {
  return createWriteStream(path, { flags: append ? 'a' : 'w', mode: 0o644 });
}

/**
 * Bytes gathered before one message to the hash worker: a socket delivers 64 KiB at a time, and
 * each message costs the main thread a fixed amount. Chunks still go to the file as they come, so
 * a dropped connection resumes from every byte received.
 */
const HASH_BATCH_BYTES = 1024 * 1024;

function countingTransform(hash: Hasher, count: (n: number) => void): Transform {
  let batch: Buffer[] = [];
  let batched = 0;
  const post = (): Promise<void> | undefined => {
    // Always a new buffer (the chunks themselves are still being written), so it can be moved to
    // the hash worker instead of copied again: a third copy of every byte kept the GC busy.
    const b = Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    return hash.update(b, true);
  };
  const settle = (wait: Promise<void> | undefined, cb: (e?: Error | null) => void, done: () => void) => {
    if (wait) wait.then(done, cb);
    else done();
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let wait: Promise<void> | undefined;
      try {
        count(chunk.length);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= HASH_BATCH_BYTES) wait = post();
      } catch (e) {
        cb(e as Error);
        return;
      }
      settle(wait, cb, () => cb(null, chunk));
    },
    flush(cb) {
      let wait: Promise<void> | undefined;
      try {
        if (batched > 0) wait = post();
      } catch (e) {
        cb(e as Error);
        return;
      }
      settle(wait, cb, () => cb());
    },
  });
}

/** Disk errors are final and named as such; network errors stay transient so the download resumes. */
function classifyStreamError(e: unknown, tmp: string, req: DownloadRequest, url: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES') {
    const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'no space left on device' : 'cannot write';
    return new StoreError('ERR_CACHE_WRITE', `cannot cache ${req.snap}: ${why} writing ${tmp} (${code}); nothing was cached`, { snap: req.snap, code, file: tmp });
  }
  if (e instanceof StoreError) return e;
  return new StoreError('ERR_DOWNLOAD_INTERRUPTED', `${url}: download of ${req.snap} interrupted: ${(e as Error).message}`, { url });
}
