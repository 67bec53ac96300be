/**
 * A real static HTTP server on 127.0.0.1 for tests: serves a directory the way S3, nginx or a CDN
 * serve a store (GET and HEAD, byte ranges, 404 for anything else), counts what is asked of it,
 * and can misbehave on demand.
 *
 * ```ts
 * const server = await serveDirectory(storeDir, {
 *   // the first download of revision 1 drops the connection half-way; later ones succeed
 *   fault: (req) => (req.path === 'snaps/hello/1.snap' && req.count === 1 ? 'drop-mid-body' : undefined),
 * });
 * try {
 *   const store = await Store.open(server.url);
 *   ...
 *   expect(server.requests.get('snaps/hello/1.snap')).toBe(2);
 *   expect(server.log.filter((r) => r.range)).toHaveLength(1); // the resume
 * } finally {
 *   await server.close();
 * }
 * ```
 *
 * Paths in `requests`, `log` and `fault` are store paths: the URL path without its leading '/',
 * percent-decoded (`snaps/hello/1.snap`), so they compare equal to `bundlePath('hello', 1)`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { open, realpath, stat } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { resolve, sep } from 'node:path';

/**
 * What to do wrong with one request:
 *
 * - `drop-mid-body`: send the headers (the full Content-Length) and part of the body, then destroy
 *   the socket — a connection lost mid-download. How much is sent: `opts.dropAfter`.
 * - `stall-mid-body`: like `drop-mid-body`, but then send nothing more and keep the connection
 *   open (until the server is closed) — a transfer that stops without failing.
 * - `truncate`: serve only the first part of the file (`opts.dropAfter`) as if it were all of it,
 *   with a matching Content-Length — a short file, delivered cleanly.
 * - `corrupt`: serve the file with one byte flipped (at `opts.corruptAt`, default the middle).
 * - `ignore-range`: answer a Range request with 200 and the whole file, as some servers do.
 * - `hang`: accept the request and never answer (until the server is closed).
 * - `status:NNN`: answer with that status and a one-line text body (`status:500`, `status:503`).
 * - `{ delayMs }`: answer normally after a delay.
 * - undefined: answer normally.
 */
export type Fault = 'drop-mid-body' | 'stall-mid-body' | 'truncate' | 'corrupt' | 'ignore-range' | 'hang' | `status:${number}` | { delayMs: number } | undefined;

/** One request, as `fault` sees it and `log` records it. */
export interface ServedRequest {
  method: string;
  /** The store path: URL path without the leading '/', decoded. */
  path: string;
  /** The Range header, when sent. */
  range?: string;
  headers: IncomingMessage['headers'];
  /** 1 for the first request of this path, 2 for the second… (counted over all methods). */
  count: number;
  /** Filled when answered: the status sent (absent for `hang`, and for drops before headers). */
  status?: number;
  /** Filled when answered: body bytes written to the socket. */
  bytes?: number;
  /** The fault applied, if any. */
  fault?: Exclude<Fault, undefined>;
}

export interface ServeOptions {
  /** Called for every request; its answer decides how the request is served. */
  fault?: (req: ServedRequest) => Fault | Promise<Fault>;
  /** Bytes sent before `drop-mid-body` drops or `stall-mid-body` stalls, and the length `truncate` serves (default: half the body). */
  dropAfter?: number;
  /** Offset of the byte `corrupt` flips (default: the middle of the file). */
  corruptAt?: number;
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Requests per store path, every method and outcome counted. */
  readonly requests: Map<string, number>;
  /** Every request, in arrival order. */
  readonly log: ServedRequest[];
  /** Requests of `path` (0 when never asked). */
  count(path: string): number;
  /** Forgets the counts and the log (between phases of a test). */
  reset(): void;
  /** Stops the server and cuts every open connection (hung ones included). */
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 at a free port. */
export async function serveDirectory(dir: string, opts: ServeOptions = {}): Promise<StaticServer> {
  const root = await realpath(resolve(dir)).catch(() => resolve(dir));
  const requests = new Map<string, number>();
  const log: ServedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(e as Error).message}\n`);
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    } catch {
      path = url.pathname.replace(/^\/+/, '');
    }
    const count = (requests.get(path) ?? 0) + 1;
    requests.set(path, count);
    const entry: ServedRequest = { method: req.method ?? 'GET', path, headers: req.headers, count, ...(req.headers.range ? { range: req.headers.range } : {}) };
    log.push(entry);
    const fault = await opts.fault?.(entry);
    if (fault !== undefined) entry.fault = fault;

    const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
      entry.status = status;
      entry.bytes = req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };

    if (fault === 'hang') return;
    if (typeof fault === 'object') await new Promise((r) => setTimeout(r, fault.delayMs));
    if (typeof fault === 'string' && fault.startsWith('status:')) {
      const status = Number(fault.slice('status:'.length));
      return answer(status, `injected failure: HTTP ${status}\n`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'method not allowed\n', { allow: 'GET, HEAD' });

    const file = resolve(root, ...path.split('/'));
    if (file !== root && !file.startsWith(root + sep)) return answer(404, 'not found\n');
    const st = await stat(file).catch(() => undefined);
    if (!st || !st.isFile()) return answer(404, 'not found\n');
    // Symlinks pointing out of the served folder are not followed.
    const real = await realpath(file);
    if (real !== root && !real.startsWith(root + sep)) return answer(404, 'not found\n');

    let size = st.size;
    if (fault === 'truncate') size = opts.dropAfter ?? Math.floor(size / 2);
    let start = 0;
    let end = size - 1;
    let status = 200;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'last-modified': st.mtime.toUTCString() };
    const range = req.headers.range;
    if (range && fault !== 'ignore-range') {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] || m[2])) {
        if (m[1]) {
          start = Number(m[1]);
          if (m[2]) end = Math.min(Number(m[2]), size - 1);
        } else {
          start = Math.max(0, size - Number(m[2]));
        }
        if (start >= size || start > end) {
          return answer(416, 'range not satisfiable\n', { 'content-range': `bytes */${size}` });
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${size}`;
      }
      // Anything else (several ranges, another unit) is ignored, as RFC 9110 allows: 200.
    }
    const length = Math.max(0, end - start + 1);
    headers['content-length'] = String(length);
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      entry.bytes = 0;
      res.end();
      return;
    }

    const cut = fault === 'drop-mid-body' || fault === 'stall-mid-body';
    const dropAt = cut ? (opts.dropAfter ?? Math.floor(length / 2)) : Infinity;
    const corruptAt = fault === 'corrupt' ? (opts.corruptAt ?? Math.floor(st.size / 2)) : -1;
    const fh = await open(file, 'r');
    try {
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024);
      while (sent < length) {
        const want = Math.min(chunk.length, length - sent, dropAt - sent);
        if (want <= 0) break;
        const { bytesRead } = await fh.read(chunk, 0, want, start + sent);
        if (bytesRead === 0) break;
        const piece = Buffer.from(chunk.subarray(0, bytesRead));
        const at = corruptAt - (start + sent);
        if (at >= 0 && at < bytesRead) piece[at] = piece[at]! ^ 0xff;
        sent += bytesRead;
        entry.bytes = sent;
        if (cut) {
          // Each piece reaches the socket before the next, so the drop comes after exactly `sent` bytes.
          await new Promise<void>((r, j) => res.write(piece, (e) => (e ? j(e) : r())));
        } else if (!res.write(piece)) {
          await new Promise<void>((r) => res.once('drain', () => r()));
        }
        if (res.destroyed) return;
      }
      if (sent < length && fault === 'drop-mid-body') {
        // Cut the connection without finishing the body.
        res.socket?.destroy();
        return;
      }
      // Leave the response open: `close()` cuts it.
      if (sent < length && fault === 'stall-mid-body') return;
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
    requests,
    log,
    count: (path) => requests.get(path) ?? 0,
    reset: () => {
      requests.clear();
      log.length = 0;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
