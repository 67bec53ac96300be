import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { StoreError } from '../errors.js';
import type { StoreBackend } from './backend.js';
import { checkStorePath } from './dir.js';
import { headersTimeoutMs, idleTimeoutMs, MAX_STORE_FILE_BYTES } from './transfer.js';

export interface HttpBackendOptions {
  /** Give up when the server has not answered with headers within this time (default 30 s, or $EDGEIMAGE_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs?: number;
  /** Give up on a body when no bytes arrive for this long (default 60 s, or $EDGEIMAGE_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** The largest file `read` accepts (store files other than bundles; default 16 MiB). */
  maxFileBytes?: number;
}

/** Why a request failed at the transport level, in a few words (`connect ECONNREFUSED 127.0.0.1:9`). */
function transportReason(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string; code?: string } };
  return err?.cause?.message ?? err?.message ?? String(e);
}

/** What the backend reads of an answer. */
interface Response {
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  body: Readable | null;
}

/** As many redirects as fetch follows. */
const MAX_REDIRECTS = 20;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

/**
 * GET with node:http rather than fetch: a bundle body streams as Buffers straight from the socket,
 * where fetch's web stream cost a core's worth of work per 200 MB (the resolve bench). `signal`
 * aborts the request and its body, as with fetch.
 */
async function get(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  for (let hops = 0; ; hops++) {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.startsWith('https:') ? httpsRequest : httpRequest;
      const req = send(url, { method: 'GET', headers, signal }, resolve);
      req.on('error', reject);
      req.end();
    });
    const location = res.headers.location;
    if (!REDIRECT.has(res.statusCode ?? 0) || !location) {
      return {
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        headers: { get: (name) => { const v = res.headers[name.toLowerCase()]; return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v; } },
        body: res,
      };
    }
    res.resume();
    if (hops >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`redirected to ${next.protocol} URL`);
    url = next.href;
  }
}

/**
 * A directory store served read-only by any static web server (nginx, S3, a CDN). Files are fetched
 * with GET; bundle downloads use `Range: bytes=OFFSET-` to resume, and work with servers that
 * ignore Range too. Nothing is retried here: the resolver owns the retry policy.
 *
 * Failures are StoreErrors: ERR_STORE_UNREACHABLE (connection refused or dropped, timeout),
 * ERR_STORE_HTTP (any status other than 200/206/404, with `status` and `url` in the context),
 * ERR_STORE_NOT_FOUND (404 on `open`; `read` returns undefined instead), ERR_STORE_READ_ONLY
 * (any write).
 *
 * ```ts
 * const b = new HttpBackend('https://cdn.example.com/store/');
 * const meta = await b.read('store.json');
 * const { stream, size } = await b.open('snaps/hello/1.snap', resumeFrom);
 * ```
 */
export class HttpBackend implements StoreBackend {
  readonly writable = false;
  private readonly base: URL;
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxFileBytes: number;

  constructor(
    readonly url: string,
    opts: HttpBackendOptions = {},
  ) {
    let base: URL;
    try {
      base = new URL(url.endsWith('/') ? url : `${url}/`);
    } catch {
      throw new StoreError('ERR_STORE_URL', `invalid store URL ${JSON.stringify(url)}`, { url });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new StoreError('ERR_STORE_URL', `an HTTP store URL starts with http:// or https://, found ${JSON.stringify(url)}`, { url });
    }
    base.hash = '';
    this.base = base;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? headersTimeoutMs();
    this.idleTimeoutMs = opts.idleTimeoutMs ?? idleTimeoutMs();
    this.maxFileBytes = opts.maxFileBytes ?? MAX_STORE_FILE_BYTES;
  }

  locate(path: string): string {
    checkStorePath(path);
    return new URL(path, this.base).href;
  }

  async read(path: string): Promise<Buffer | undefined> {
    const { response, url, controller } = await this.request(path);
    try {
      if (response.status === 404) return undefined;
      if (response.status !== 200) throw this.statusError(response, url);
      // Metadata and assertions are read into memory: bounded, and with the idle timeout of body().
      const tooBig = (found: string) =>
        new StoreError('ERR_STORE_TOO_BIG', `GET ${url}: ${path} is ${found}, more than the ${this.maxFileBytes} bytes a store file other than a bundle may be; refused`, { url, path, max: this.maxFileBytes });
      const length = contentLength(response);
      if (length !== undefined && length > this.maxFileBytes) throw tooBig(`${length} bytes (Content-Length)`);
      const chunks: Buffer[] = [];
      let received = 0;
      for await (const b of this.body(response, controller, url, 0)) {
        received += b.length;
        if (received > this.maxFileBytes) throw tooBig(`at least ${received} bytes (no Content-Length)`);
        chunks.push(b);
      }
      return Buffer.concat(chunks);
    } finally {
      controller.abort();
    }
  }

  async write(path: string): Promise<void> {
    throw this.readOnly(path);
  }

  async writeFile(path: string): Promise<void> {
    throw this.readOnly(path);
  }

  /**
   * `size` is the number of bytes the stream delivers (from `offset` to the end), when the server
   * says. A 200 answer to a Range request (a server that ignores Range) is handled by skipping the
   * first `offset` bytes.
   */
  async open(path: string, offset = 0): Promise<{ stream: Readable; size?: number }> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const { response, url, controller } = await this.request(path, headers);
    let ok = false;
    try {
      const length = contentLength(response);
      let skip = 0;
      let size: number | undefined;
      if (response.status === 404) {
        throw new StoreError('ERR_STORE_NOT_FOUND', `${path} is not in the store: GET ${url} answered 404 Not Found`, { url, path, status: 404 });
      } else if (response.status === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
        if (!range || Number(range[1]) !== offset) {
          throw new StoreError('ERR_STORE_HTTP', `GET ${url} from byte ${offset}: the server answered 206 with Content-Range ${JSON.stringify(response.headers.get('content-range'))}`, { url, status: 206 });
        }
        size = Number(range[2]) - offset + 1;
      } else if (response.status === 200) {
        skip = offset;
        if (length !== undefined) {
          if (length < offset) {
            throw new StoreError('ERR_STORE_RANGE', `cannot read ${url} from byte ${offset}: the file has ${length} bytes`, { url, offset, size: length });
          }
          size = length - offset;
        }
      } else if (response.status === 416) {
        throw new StoreError('ERR_STORE_RANGE', `cannot read ${url} from byte ${offset}: the server answered 416 Range Not Satisfiable (${response.headers.get('content-range') ?? 'no Content-Range'})`, { url, offset, status: 416 });
      } else {
        throw this.statusError(response, url);
      }
      const stream = Readable.from(this.body(response, controller, url, skip), { objectMode: false });
      // A stream destroyed before it was read never runs the body's cleanup: end the transfer here.
      stream.once('close', () => controller.abort());
      ok = true;
      return size === undefined ? { stream } : { stream, size };
    } finally {
      if (!ok) controller.abort();
    }
  }

  /** The body's bytes after `skip`, with transport failures turned into ERR_STORE_UNREACHABLE. */
  private async *body(response: Response, controller: AbortController, url: string, skip: number): AsyncGenerator<Buffer> {
    let received = 0;
    let idle: NodeJS.Timeout | undefined;
    let timedOut = false;
    // One timer, pushed back per chunk with refresh(): a new timer per 64 KiB chunk was a visible
    // share of the main thread's time in the resolve bench.
    const arm = () => {
      if (idle) idle.refresh();
      else
        idle = setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, this.idleTimeoutMs);
    };
    try {
      if (!response.body) return;
      arm();
      // A socket's error makes a Readable's async iterator drop what it had buffered: the bytes
      // received before a cut must still reach the file, so a resume starts after them. They
      // flow into a PassThrough first; the error is thrown once those are read.
      let failure: unknown;
      const buffered = new PassThrough();
      response.body.once('error', (e) => {
        failure = e;
        buffered.end();
      });
      response.body.pipe(buffered);
      for await (const chunk of buffered as AsyncIterable<Buffer>) {
        arm();
        let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        received += buf.length;
        if (skip > 0) {
          const drop = Math.min(skip, buf.length);
          skip -= drop;
          buf = buf.subarray(drop);
          if (buf.length === 0) continue;
        }
        yield buf;
      }
      if (failure !== undefined) throw failure;
    } catch (e) {
      const why = timedOut ? `no data for ${this.idleTimeoutMs / 1000} s` : transportReason(e);
      throw new StoreError('ERR_STORE_UNREACHABLE', `GET ${url}: the connection failed after ${received} bytes of the body: ${why}`, { url, received });
    } finally {
      clearTimeout(idle);
      // Ends the transfer when the reader stops early (destroy) or fails.
      controller.abort();
    }
  }

  private async request(path: string, headers: Record<string, string> = {}): Promise<{ response: Response; url: string; controller: AbortController }> {
    const url = this.locate(path);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.headersTimeoutMs);
    try {
      // identity: byte ranges and sizes must be those of the file, not of a compressed form.
      const response = await get(url, { 'accept-encoding': 'identity', ...headers }, controller.signal);
      return { response, url, controller };
    } catch (e) {
      const why = controller.signal.aborted ? `no answer within ${this.headersTimeoutMs / 1000} s` : transportReason(e);
      throw new StoreError('ERR_STORE_UNREACHABLE', `cannot reach the store: GET ${url}: ${why}`, { url, path });
    } finally {
      clearTimeout(timer);
    }
  }

  private statusError(response: Response, url: string): StoreError {
    return new StoreError('ERR_STORE_HTTP', `GET ${url}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`, { url, status: response.status });
  }

  private readOnly(path: string): StoreError {
    return new StoreError(
      'ERR_STORE_READ_ONLY',
      `cannot write ${path} to ${this.url}: HTTP stores are read-only; publish to the directory or OCI store that this URL serves, and the web server will serve the change`,
      { url: this.url, path },
    );
  }
}

function contentLength(response: Response): number | undefined {
  const v = response.headers.get('content-length');
  return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
}
