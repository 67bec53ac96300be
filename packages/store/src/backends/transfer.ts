/**
 * Bounds on what a remote store can make a build wait for or hold in memory. A store (or anything
 * between it and us) is untrusted: without these, a server that sends headers and then nothing
 * hangs the build for ever, and one that answers a 1 KB metadata request with gigabytes fills the
 * memory. Bundles are bounded elsewhere (by their signed size, streamed to disk).
 */

/** No response headers within this long after a request (or the end of its upload): give up. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
/** No byte of a body (down or up) for this long: give up. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** The headers timeout of new backends: $EDGEIMAGE_HEADERS_TIMEOUT_MS, else the default. */
export function headersTimeoutMs(): number {
  return envMs('EDGEIMAGE_HEADERS_TIMEOUT_MS', DEFAULT_HEADERS_TIMEOUT_MS);
}

/** The idle timeout of new backends: $EDGEIMAGE_IDLE_TIMEOUT_MS, else the default. */
export function idleTimeoutMs(): number {
  return envMs('EDGEIMAGE_IDLE_TIMEOUT_MS', DEFAULT_IDLE_TIMEOUT_MS);
}

function envMs(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
/** The largest store file that is not a bundle (metadata, assertions), read into memory. */
export const MAX_STORE_FILE_BYTES = 16 * 1024 * 1024;
/** The largest OCI manifest read (the distribution spec lets registries refuse more than 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** What is read of an error answer's body, for its message. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * Aborts a transfer when it is not kicked in time. `kick(ms)` re-arms it, `stop()` disarms it;
 * `fired` tells afterwards whether an abort was its doing. The timer does not keep the process
 * alive.
 *
 * @example
 * const dog = new Watchdog(controller);
 * dog.kick(30_000); // headers
 * for await (const chunk of body) dog.kick(60_000);
 * dog.stop();
 */
export class Watchdog {
  fired = false;
  /** The timeout armed last, for messages. */
  ms = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly controller: AbortController) {}

  kick(ms: number): void {
    clearTimeout(this.timer);
    this.ms = ms;
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort();
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The bytes of a web body, at most `max` of them: `tooBig(n)` is thrown (and the transfer
 * cancelled) as soon as more arrive. `dog`, when given, is kicked with `idleMs` before each chunk.
 *
 * @example
 * const bytes = await readBounded(res.body, MAX_MANIFEST_BYTES, (n) => new StoreError(...), dog, 60_000);
 */
export async function readBounded(body: ReadableStream<Uint8Array> | null, max: number, tooBig: (received: number) => Error, dog?: Watchdog, idleMs = DEFAULT_IDLE_TIMEOUT_MS): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    for (;;) {
      dog?.kick(idleMs);
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      if (received > max) {
        await reader.cancel().catch(() => undefined);
        throw tooBig(received);
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  } finally {
    dog?.stop();
    reader.releaseLock();
  }
  return Buffer.concat(chunks);
}
