/**
 * sha3-384 on a worker thread. Node's hash runs on the thread that calls `update`: with every
 * download's hash on the main thread, a resolve used one core for the network, the disk and every
 * bundle's hash together. A worker per download puts the hashes of parallel downloads on the
 * other cores while the main thread keeps receiving and writing.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Below this size a download hashes on the main thread: starting a worker costs more than it saves. */
export const WORKER_MIN_BYTES = 16 * 1024 * 1024;

export interface Hasher {
  /**
   * Hashes `chunk`; a promise means: wait for it before the next (backpressure). `owned`: the
   * caller hands the chunk over and never touches it again (it may be moved to another thread).
   */
  update(chunk: Uint8Array, owned?: boolean): Promise<void> | undefined;
  digest(): Promise<Buffer>;
  close(): Promise<void>;
}

/** A sha3-384 hasher for a file of `size` bytes: on a worker thread when it is large. */
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

/** Bytes posted to the worker and not yet hashed, at most: a network faster than the hash waits (backpressure) instead of queueing the bundle in memory. */
const MAX_IN_FLIGHT = 8 * 1024 * 1024;

// Plain JavaScript, evaluated by the worker: no module of ours has to be found from there.
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha3-384');
parentPort.on('message', (m) => {
  if (m === 'digest') parentPort.postMessage(hash.digest());
  else {
    hash.update(m);
    parentPort.postMessage(m.byteLength);
  }
});`;

export class WorkerHasher implements Hasher {
  private readonly worker: Worker;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private digested: ((d: Buffer) => void) | undefined;
  private failure: Error | undefined;
  private failed: ((e: Error) => void) | undefined;

  constructor() {
    this.worker = new Worker(WORKER_CODE, { eval: true });
    this.worker.on('message', (m: number | Uint8Array) => {
      if (typeof m === 'number') {
        this.inFlight -= m;
        if (this.drained && this.inFlight < MAX_IN_FLIGHT) {
          const go = this.drained;
          this.drained = undefined;
          go();
        }
      } else this.digested?.(Buffer.from(m));
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.failed?.(e);
      this.drained?.();
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
    this.worker.postMessage(copy, [copy.buffer as ArrayBuffer]);
    if (this.inFlight < MAX_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.drained = resolve));
  }

  /** The digest of everything given to {@link update}; the worker ends. */
  async digest(): Promise<Buffer> {
    try {
      if (this.failure) throw this.failure;
      return await new Promise<Buffer>((resolve, reject) => {
        this.digested = resolve;
        this.failed = reject;
        this.worker.postMessage('digest');
      });
    } finally {
      await this.close();
    }
  }

  /** Ends the worker without a digest (a failed or abandoned download). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
