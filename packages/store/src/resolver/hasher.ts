/**
 * sha3-384 off the main thread. Node's hash runs on the thread that calls `update`: with every
 * download's hash on the main thread, a resolve used one core for the network, the disk and every
 * bundle's hash together. Large downloads hash on a small pool of worker threads (one per core
 * beyond the main thread's), started once per process and reused: a worker costs tens of
 * milliseconds of CPU to start, as much as hashing a few MB.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Below this size a download hashes on the main thread: the messages cost more than they save. */
export const WORKER_MIN_BYTES = 16 * 1024 * 1024;

/** Bytes of one stream posted to a worker and not yet hashed, at most: a network faster than the hash waits (backpressure) instead of queueing the bundle in memory. */
const MAX_IN_FLIGHT = 8 * 1024 * 1024;

/** Hash workers: the cores left beside the main thread, 1 to 4. */
const POOL_SIZE = Math.max(1, Math.min(4, availableParallelism() - 1));

export interface Hasher {
  /**
   * Hashes `chunk`; a promise means: wait for it before the next (backpressure). `owned`: the
   * caller hands the chunk over and never touches it again (it may be moved to another thread).
   */
  update(chunk: Uint8Array, owned?: boolean): Promise<void> | undefined;
  digest(): Promise<Buffer>;
  close(): Promise<void>;
}

/** A sha3-384 hasher for a file of `size` bytes: on a pool worker when it is large. */
export function sha3_384Hasher(size: number): Hasher {
  return size >= WORKER_MIN_BYTES ? new WorkerHasher() : new InlineHasher();
}

class InlineHasher implements Hasher {
  private readonly hash = createHash('sha3-384');
  update(chunk: Uint8Array): undefined {
    this.hash.update(chunk);
    return undefined;
  }
  async digest(): Promise<Buffer> {
    return this.hash.digest();
  }
  async close(): Promise<void> {}
}

// Plain JavaScript, evaluated by the worker: no module of ours has to be found from there.
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', ({ id, chunk, end }) => {
  let h = hashes.get(id);
  if (!h) hashes.set(id, (h = createHash('sha3-384')));
  if (chunk) {
    h.update(chunk);
    parentPort.postMessage({ id, hashed: chunk.byteLength });
  } else {
    hashes.delete(id);
    parentPort.postMessage({ id, digest: end === 'digest' ? h.digest() : undefined });
  }
});`;

interface Stream {
  hashed(n: number): void;
  ended(digest: Uint8Array | undefined): void;
  failed(e: Error): void;
}

/** One pool thread: serves several streams; holds the process open only while one is open. */
class PoolWorker {
  readonly streams = new Map<number, Stream>();
  private readonly worker = new Worker(WORKER_CODE, { eval: true });
  dead = false;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (m: { id: number; hashed?: number; digest?: Uint8Array }) => {
      const s = this.streams.get(m.id);
      if (!s) return;
      if (m.hashed !== undefined) s.hashed(m.hashed);
      else {
        this.streams.delete(m.id);
        if (this.streams.size === 0) this.worker.unref();
        s.ended(m.digest);
      }
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the hash worker stopped (exit ${code})`)));
  }

  open(id: number, s: Stream): void {
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(id, s);
  }

  post(id: number, chunk: Uint8Array): void {
    this.worker.postMessage({ id, chunk }, [chunk.buffer as ArrayBuffer]);
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
  private drained: (() => void) | undefined;
  private finished: ((d: Uint8Array | undefined) => void) | undefined;
  private failure: Error | undefined;
  private failedWait: ((e: Error) => void) | undefined;
  private open = true;

  constructor() {
    this.worker.open(this.id, {
      hashed: (n) => {
        this.inFlight -= n;
        if (this.drained && this.inFlight < MAX_IN_FLIGHT) {
          const go = this.drained;
          this.drained = undefined;
          go();
        }
      },
      ended: (d) => {
        this.open = false;
        this.finished?.(d);
      },
      failed: (e) => {
        this.open = false;
        this.failure = e;
        this.failedWait?.(e);
        this.drained?.();
      },
    });
  }

  /**
   * Hashes `chunk`: moved to the worker when `owned` and it is a whole buffer of its own, else a
   * copy (the caller keeps writing the original). Resolves at once while fewer than
   * {@link MAX_IN_FLIGHT} bytes wait, else once the worker has caught up.
   */
  update(chunk: Uint8Array, owned = false): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    // A chunk may be a slice of a larger pooled buffer: only a buffer that is all this chunk moves.
    const whole = owned && chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.byteLength && chunk.buffer instanceof ArrayBuffer;
    const copy = whole ? chunk : new Uint8Array(chunk);
    this.inFlight += copy.byteLength;
    this.worker.post(this.id, copy);
    if (this.inFlight < MAX_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.drained = resolve));
  }

  /** The digest of everything given to {@link update}. */
  async digest(): Promise<Buffer> {
    if (this.failure) throw this.failure;
    if (!this.open) throw new Error('hasher already closed');
    const d = await new Promise<Uint8Array | undefined>((resolve, reject) => {
      this.finished = resolve;
      this.failedWait = reject;
      this.worker.end(this.id, 'digest');
    });
    return Buffer.from(d!);
  }

  /** Ends this stream without a digest (a failed or abandoned download); the worker stays for others. */
  async close(): Promise<void> {
    if (!this.open) return;
    await new Promise<void>((resolve) => {
      this.finished = () => resolve();
      this.failedWait = () => resolve();
      this.worker.end(this.id, 'drop');
    });
  }
}
