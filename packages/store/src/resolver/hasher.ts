/**
 * sha3-384 off the main thread, and the bundle's file written beside it. Node's hash runs on the
 * thread that calls `update`: with every download's hash on the main thread, a resolve used one
 * core for the network, the disk and every bundle's hash together. Large downloads hash, and write
 * their temp file, on a small pool of worker threads started once per process and reused (a worker
 * costs tens of milliseconds of CPU to start, as much as hashing a few MB). Writing there too
 * means one hand-over per MiB instead of a write stream's per-chunk round trips through libuv's
 * pool, which cost the main thread a third of the bench's time.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
/** Below this size a download hashes on the main thread: the messages cost more than they save. */
export const WORKER_MIN_BYTES = 16 * 1024 * 1024;

/** Bytes of one stream posted to a worker and not yet hashed, at most: a network faster than the hash waits (backpressure) instead of queueing the bundle in memory. */
const MAX_IN_FLIGHT = 8 * 1024 * 1024;

/**
 * Hash workers: one per core, 2 to 4. The main thread mostly waits on the socket, so a worker per
 * core keeps every core hashing while several bundles download (one worker on 2 cores hashed a
 * resolve's bundles one after another while the second core idled).
 */
const POOL_SIZE = Math.max(2, Math.min(4, availableParallelism()));

/** Where the bytes given to a hasher are also written: a new file, or the end of one (a resumed download). */
export interface HashedFile {
  path: string;
  append: boolean;
}

export interface Hasher {
  /**
   * Hashes `chunk` (and appends it to the file, when there is one); a promise means: wait for it
   * before the next (backpressure). `owned`: the caller hands the chunk over and never touches it
   * again (it may be moved to another thread). A failed write (a full disk) is thrown by a later
   * `update`, by `settled` or by `digest`, with the system's error code.
   */
  update(chunk: Uint8Array, owned?: boolean): Promise<void> | undefined;
  /** {@link update} of each chunk in order, in one hand-over. */
  updateAll(chunks: Uint8Array[], owned?: boolean): Promise<void> | undefined;
  /** From now on, every chunk given is also written to `file` (a resumed download re-hashes what is on disk first, then appends). */
  writeTo(file: HashedFile): void;
  /** Waits until every chunk given so far is hashed and written; throws a write's failure. */
  settled(): Promise<void>;
  /** The digest of everything given; the file is closed first. */
  digest(): Promise<Buffer>;
  /** Ends without a digest (a failed or abandoned download); the file is closed; never throws. */
  close(): Promise<void>;
}

/** A sha3-384 hasher for a file of `size` bytes: on a pool worker when it is large. */
export function sha3_384Hasher(size: number): Hasher {
  return size >= WORKER_MIN_BYTES ? new WorkerHasher() : new InlineHasher();
}

/** A write error as the system gave it (`code` kept), rebuilt on this side of a thread. */
function writeError(e: { code?: string; message: string }): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

class InlineHasher implements Hasher {
  private readonly hash = createHash('sha3-384');
  private fd: number | undefined;
  private failure: Error | undefined;

  writeTo(file: HashedFile): void {
    if (this.fd !== undefined) throw new Error('hasher already writes a file');
    this.fd = openSync(file.path, file.append ? 'a' : 'w', 0o644);
  }

  update(chunk: Uint8Array): undefined {
    if (this.failure) throw this.failure;
    this.hash.update(chunk);
    if (this.fd !== undefined) {
      try {
        writeAll(this.fd, chunk);
      } catch (e) {
        this.failure = e as Error;
        throw e;
      }
    }
    return undefined;
  }
  updateAll(chunks: Uint8Array[]): undefined {
    for (const c of chunks) this.update(c);
    return undefined;
  }
  async settled(): Promise<void> {
    if (this.failure) throw this.failure;
  }
  async digest(): Promise<Buffer> {
    this.shut();
    if (this.failure) throw this.failure;
    return this.hash.digest();
  }
  async close(): Promise<void> {
    this.shut();
  }
  private shut(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}

/** A short write is not an error (a signal, a nearly full disk): the rest follows until all is written or the system refuses. */
function writeAll(fd: number, chunk: Uint8Array): void {
  for (let off = 0; off < chunk.byteLength; ) off += writeSync(fd, chunk, off, chunk.byteLength - off);
}

// Plain JavaScript, evaluated by the worker: no module of ours has to be found from there.
// Replies: { id, hashed } per chunk (with `error` once a write failed: later chunks are only
// counted), { id, ended, digest? } at the end, { id, error } when the file cannot be opened.
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const streams = new Map();
const failed = (e) => ({ code: e.code, message: e.message });
parentPort.on('message', ({ id, open, chunks, end }) => {
  let s = streams.get(id);
  if (!s) streams.set(id, (s = { h: createHash('sha3-384'), fd: undefined, error: undefined }));
  if (open) {
    try { s.fd = fs.openSync(open.path, open.append ? 'a' : 'w', 0o644); } catch (e) { s.error = failed(e); parentPort.postMessage({ id, error: s.error }); }
  } else if (chunks) {
    let error;
    let n = 0;
    for (const chunk of chunks) n += chunk.byteLength;
    if (!s.error) {
      for (const chunk of chunks) s.h.update(chunk);
      // One writev per batch; a short one (a signal, a nearly full disk) goes on chunk by chunk.
      if (s.fd !== undefined) try {
        let done = fs.writevSync(s.fd, chunks);
        for (const chunk of chunks) {
          const skip = Math.min(done, chunk.byteLength);
          done -= skip;
          for (let off = skip; off < chunk.byteLength; ) off += fs.writeSync(s.fd, chunk, off, chunk.byteLength - off);
        }
      } catch (e) { error = s.error = failed(e); }
    }
    parentPort.postMessage({ id, hashed: n, error });
  } else {
    streams.delete(id);
    let error = s.error;
    if (s.fd !== undefined) try { fs.closeSync(s.fd); } catch (e) { error = error || failed(e); }
    parentPort.postMessage({ id, ended: true, error, digest: end === 'digest' && !error ? s.h.digest() : undefined });
  }
});`;

interface Stream {
  hashed(n: number, error?: Error): void;
  ended(digest: Uint8Array | undefined, error?: Error): void;
  failed(e: Error): void;
}

interface Reply {
  id: number;
  hashed?: number;
  ended?: boolean;
  digest?: Uint8Array;
  error?: { code?: string; message: string };
}

/** One pool thread: serves several streams; holds the process open only while one is open. */
class PoolWorker {
  readonly streams = new Map<number, Stream>();
  private readonly worker = new Worker(WORKER_CODE, { eval: true });
  dead = false;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      const s = this.streams.get(m.id);
      if (!s) return;
      const error = m.error ? writeError(m.error) : undefined;
      if (m.hashed !== undefined) s.hashed(m.hashed, error);
      else if (m.ended) {
        this.streams.delete(m.id);
        if (this.streams.size === 0) this.worker.unref();
        s.ended(m.digest, error);
      } else if (error) s.hashed(0, error);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the hash worker stopped (exit ${code})`)));
  }

  open(id: number, s: Stream): void {
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(id, s);
  }

  writeTo(id: number, file: HashedFile): void {
    this.worker.postMessage({ id, open: { path: file.path, append: file.append } });
  }

  /** Every chunk's buffer is moved, not copied: each must be a whole buffer of its own. */
  post(id: number, chunks: Uint8Array[]): void {
    this.worker.postMessage({ id, chunks }, chunks.map((c) => c.buffer as ArrayBuffer));
  }

  end(id: number, how: 'digest' | 'drop'): void {
    this.worker.postMessage({ id, end: how });
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = true;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.failed(e);
  }
}

const pool: PoolWorker[] = [];
let nextId = 1;

/** The live worker with the fewest open streams; a new one while the pool is not full. */
function pickWorker(): PoolWorker {
  for (let i = pool.length - 1; i >= 0; i--) if (pool[i]!.dead) pool.splice(i, 1);
  const idle = pool.find((w) => w.streams.size === 0);
  if (idle) return idle;
  if (pool.length < POOL_SIZE) {
    const w = new PoolWorker();
    pool.push(w);
    return w;
  }
  return pool.reduce((a, b) => (b.streams.size < a.streams.size ? b : a));
}

export class WorkerHasher implements Hasher {
  private readonly id = nextId++;
  private readonly worker = pickWorker();
  private inFlight = 0;
  /** Called when fewer than MAX_IN_FLIGHT bytes wait, or all have been handled, or on a failure. */
  private waiters: { below: number; go: () => void }[] = [];
  private finished: ((d: Uint8Array | undefined, error?: Error) => void) | undefined;
  private failure: Error | undefined;
  private open = true;
  private writing = false;

  constructor() {
    this.worker.open(
      this.id,
      {
        hashed: (n, error) => {
          this.inFlight -= n;
          if (error && !this.failure) this.failure = error;
          this.wake();
        },
        ended: (d, error) => {
          this.open = false;
          this.finished?.(d, error);
        },
        failed: (e) => {
          this.open = false;
          this.failure ??= e;
          this.finished?.(undefined, e);
          this.wake(true);
        },
      },
    );
  }

  writeTo(file: HashedFile): void {
    if (this.writing) throw new Error('hasher already writes a file');
    this.writing = true;
    this.worker.writeTo(this.id, file);
  }

  private wake(all = false): void {
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) (all || this.failure || this.inFlight < w.below ? w.go() : keep.push(w));
    this.waiters = keep;
  }

  private until(below: number): Promise<void> {
    if (this.failure || this.inFlight < below || !this.open) return Promise.resolve();
    return new Promise((go) => this.waiters.push({ below, go }));
  }

  /**
   * Hashes (and writes) `chunk`: moved to the worker when `owned` and it is a whole buffer of its
   * own, else a copy (the caller may still use the original). Resolves at once while fewer than
   * {@link MAX_IN_FLIGHT} bytes wait, else once the worker has caught up.
   */
  update(chunk: Uint8Array, owned = false): Promise<void> | undefined {
    return this.updateAll([chunk], owned);
  }

  /**
   * {@link update} of each chunk, in one message: a socket's 64 KiB reads are each a buffer of
   * their own, so a batch of them moves to the worker without a copy.
   */
  updateAll(chunks: Uint8Array[], owned = false): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    // A chunk may be a slice of a larger pooled buffer: only a buffer that is all this chunk moves.
    const moved = chunks.map((c) => (owned && c.byteOffset === 0 && c.buffer.byteLength === c.byteLength && c.buffer instanceof ArrayBuffer ? c : new Uint8Array(c)));
    // The same buffer twice in one transfer list is refused: a repeat is copied.
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < moved.length; i++) {
      if (seen.has(moved[i]!.buffer)) moved[i] = new Uint8Array(moved[i]!);
      seen.add(moved[i]!.buffer);
    }
    for (const c of moved) this.inFlight += c.byteLength;
    this.worker.post(this.id, moved);
    if (this.inFlight < MAX_IN_FLIGHT) return undefined;
    return this.until(MAX_IN_FLIGHT);
  }

  async settled(): Promise<void> {
    await this.until(1);
    if (this.failure) throw this.failure;
  }

  /** The digest of everything given to {@link update}. */
  async digest(): Promise<Buffer> {
    if (this.failure) {
      await this.close();
      throw this.failure;
    }
    if (!this.open) throw new Error('hasher already closed');
    const d = await this.ending('digest');
    if (this.failure) throw this.failure;
    return Buffer.from(d!);
  }

  /** Ends this stream without a digest; the worker stays for others. */
  async close(): Promise<void> {
    if (!this.open) return;
    await this.ending('drop');
  }

  private ending(how: 'digest' | 'drop'): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      this.finished = (d, error) => {
        if (error && !this.failure) this.failure = error;
        resolve(d);
      };
      this.worker.end(this.id, how);
    });
  }
}
