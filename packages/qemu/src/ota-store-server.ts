/**
 * The store a device polls over the air, served for real (the over-the-air scenario's, and a
 * test's): a `node:http` server on 127.0.0.1 over a
 * directory laid out as `edgeimage update release` writes it (channels/…pointer, ….pointer.sig,
 * updates/…, assertions/…), read-only, that a test makes misbehave per path while the device runs.
 *
 * ```ts
 * const store = await serveOtaStore(storeDir);
 * // the device's URL (QEMU user networking: http://10.0.2.2:PORT)
 * store.fault('/updates/acme.pc.2.from-1.update', { kind: 'drop-after', bytes: 100_000, times: 1 });
 * ... boot, wait for "edge-fetch: applying revision 2" ...
 * expect(store.bytes('/updates/acme.pc.2.from-1.update')).toBeLessThanOrEqual(deltaSize * 1.1);
 * await store.close();
 * ```
 *
 * Paths (of `fault`, `bytes`, `log`) are URL paths, percent-decoded, with their leading '/'.
 * Faults apply to GET only: a HEAD is always answered as the file is.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { open, realpath, stat } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { join, sep } from 'node:path';

/**
 * What to do wrong with the GET requests of one path. `times`: for that many requests, then the
 * path is served normally again (default: until `clearFaults()`).
 *
 * - `drop-after`: the headers (the whole length announced), `bytes` bytes of the body, then the
 *   socket destroyed — a connection lost mid-download.
 * - `endless`: the file's bytes (from the range asked), then zero bytes for ever, with no length
 *   announced, until the client goes away or the server is closed.
 * - `trickle`: the body at `bytesPerSecond` (sent every 100 ms in tenths).
 * - `corrupt`: the byte at `offset` of the body sent (not of the file: a resumed download counts
 *   from its range's start) flipped.
 * - `ignore-range`: a Range request answered 200 with the whole file, as some servers do.
 */
export type OtaFault = (
  | { kind: 'drop-after'; bytes: number }
  | { kind: 'endless' }
  | { kind: 'trickle'; bytesPerSecond: number }
  | { kind: 'corrupt'; offset: number }
  | { kind: 'ignore-range' }
) & { times?: number };

/** One request, in arrival order. */
export interface OtaRequest {
  method: string;
  /** The decoded URL path (with its leading '/'); for a refused one, the raw path. */
  path: string;
  /** The Range header, when sent. */
  range?: string;
  /** The status sent (absent while the headers are not written, or never: a drop before them). */
  status?: number;
  /** The fault applied to this request, if any. */
  fault?: OtaFault['kind'];
}

export interface OtaStoreServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request, in arrival order. */
  readonly log: readonly OtaRequest[];
  /** Sets (replaces) the fault of `path`'s GET requests. */
  fault(path: string, f: OtaFault): void;
  /** Removes every fault. */
  clearFaults(): void;
  /** Body bytes written to sockets for `path`, over all its requests (0 when never asked). */
  bytes(path: string): number;
  /** Forgets the log and the byte counters (faults stay). */
  reset(): void;
  /** Open connections now. */
  connections(): number;
  /** Stops listening and destroys every open socket (endless and trickling answers included). */
  close(): Promise<void>;
}

const CHUNK = 64 * 1024;

/**
 * The decoded path of a request target, or undefined when it could name something outside the
 * root: a `..` or `.` segment (also percent-encoded), an encoded '/' or '\' or NUL (a segment that
 * decodes into several, or into an absolute path), an empty segment (`//etc/passwd`), or a target
 * that is not origin-form (`http://host/…`, `*`). Node passes the target through as sent.
 */
export function storePath(target: string): string[] | undefined {
  const raw = target.split('?')[0]!;
  if (!raw.startsWith('/')) return undefined;
  if (raw === '/') return [];
  const segs: string[] = [];
  for (const s of raw.slice(1).split('/')) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return undefined;
    }
    if (d === '' || d === '.' || d === '..' || /[/\\\0]/.test(d)) return undefined;
    segs.push(d);
  }
  return segs;
}

const key = (path: string) => (path.startsWith('/') ? path : `/${path}`);

/** Serves `dir` read-only on 127.0.0.1 at a free port. */
export async function serveOtaStore(dir: string): Promise<OtaStoreServer> {
  // the root as the kernel resolves it: a file is served only if its real path is under this
  const root = await realpath(dir);
  const faults = new Map<string, OtaFault>();
  const counters = new Map<string, number>();
  const log: OtaRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  /** Writes `b`, resolving once it reached the socket (true) or the response is gone (false). */
  function write(res: ServerResponse, path: string, b: Buffer): Promise<boolean> {
    return new Promise((ok) => {
      if (res.destroyed) return ok(false);
      const gone = () => ok(false);
      res.once('close', gone);
      res.write(b, (e) => {
        res.off('close', gone);
        if (!e) counters.set(path, (counters.get(path) ?? 0) + b.length);
        ok(!e);
      });
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const target = req.url ?? '';
    const segs = storePath(target);
    const path = segs ? `/${segs.join('/')}` : target.split('?')[0]!;
    const entry: OtaRequest = { method, path, ...(req.headers.range !== undefined ? { range: req.headers.range } : {}) };
    log.push(entry);
    const answer = (status: number, headers: Record<string, string> = {}) => {
      entry.status = status;
      res.writeHead(status, { 'content-length': '0', ...headers }).end();
    };
    if (method !== 'GET' && method !== 'HEAD') return answer(405, { allow: 'GET, HEAD' });
    if (!segs) return answer(403);
    const file = join(root, ...segs);
    const real = await realpath(file).catch(() => undefined);
    if (real === undefined) return answer(404);
    // a link (or a linked folder on the way) that leads out of the store
    if (real !== root && !real.startsWith(root + sep)) return answer(403);
    const st = await stat(real);
    // folders are not listed
    if (!st.isFile()) return answer(404);

    let fault: OtaFault | undefined;
    if (method === 'GET') {
      fault = faults.get(path);
      if (fault) {
        entry.fault = fault.kind;
        if (fault.times !== undefined) {
          if (fault.times <= 1) faults.delete(path);
          else faults.set(path, { ...fault, times: fault.times - 1 });
        }
      }
    }

    const size = st.size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    const range = req.headers.range;
    if (range !== undefined && fault?.kind !== 'ignore-range') {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
      // another form (several ranges, a suffix, another unit) is ignored, as RFC 9110 allows: 200
      if (m) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), size - 1);
        if (start >= size || start > end) return answer(416, { 'content-range': `bytes */${size}` });
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${size}`;
      }
    }
    const length = end - start + 1;
    if (fault?.kind === 'endless') {
      // no length, no chunking: the body ends only when the connection does
      res.useChunkedEncodingByDefault = false;
      headers.connection = 'close';
    } else {
      headers['content-length'] = String(length);
    }
    entry.status = status;
    res.writeHead(status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }

    const limit = fault?.kind === 'drop-after' ? fault.bytes : Infinity;
    const step = fault?.kind === 'trickle' ? Math.max(1, Math.floor(fault.bytesPerSecond / 10)) : CHUNK;
    const fh = await open(real, 'r');
    try {
      let sent = 0;
      while (!res.destroyed) {
        let want = Math.min(step, limit - sent);
        if (want <= 0) break;
        let piece: Buffer;
        if (sent < length) {
          want = Math.min(want, length - sent);
          piece = Buffer.alloc(want);
          const { bytesRead } = await fh.read(piece, 0, want, start + sent);
          // the file shrank under us: what is left is sent as it is
          if (bytesRead === 0) break;
          piece = piece.subarray(0, bytesRead);
        } else if (fault?.kind === 'endless') {
          piece = Buffer.alloc(want);
        } else {
          break;
        }
        if (fault?.kind === 'corrupt' && fault.offset >= sent && fault.offset < sent + piece.length) {
          piece[fault.offset - sent] = piece[fault.offset - sent]! ^ 0xff;
        }
        if (!(await write(res, path, piece))) return;
        sent += piece.length;
        if (fault?.kind === 'trickle') await new Promise((r) => setTimeout(r, 100));
      }
      if (res.destroyed) return;
      if (sent < length && fault?.kind === 'drop-after') {
        res.socket?.destroy();
        return;
      }
      res.end();
    } finally {
      await fh.close();
    }
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    fault: (path, f) => void faults.set(key(path), f),
    clearFaults: () => faults.clear(),
    bytes: (path) => counters.get(key(path)) ?? 0,
    reset: () => {
      log.length = 0;
      counters.clear();
    },
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        // busy ones too (an endless answer): close() alone waits for them
        server.closeAllConnections();
      }),
  };
}
