/**
 * A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8.2) started on
 * 127.0.0.1 with its storage in a temp dir, and stopped again.
 *
 * @example
 *   // at the top level of a test file (or inside a describe):
 *   describeWithRegistry('my store over OCI', () => {
 *     const registry = useRegistry({ proxy: true });
 *     test('…', async () => {
 *       const store = registry().storeUrl('acme/store'); // oci+http://127.0.0.1:PORT/acme/store
 *       …
 *       expect(registry().requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))).toHaveLength(0);
 *       registry().faults.push({ method: 'GET', path: /\/blobs\//, cutAfter: 1000 }); // the next blob GET is cut
 *     });
 *   });
 *
 * `startRegistry()` can also be called directly (remember `stop()`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { requires } from './skips.js';

/** One request as the proxy saw it (only with `proxy: true`). */
export interface RecordedRequest {
  method: string;
  /** The path and query, e.g. `/v2/acme/store/snaps/hello/blobs/sha256:…`. */
  path: string;
  /** The Range header, if any. */
  range?: string;
  status: number;
  /** Response body bytes sent to the client. */
  bytes: number;
  /** The fault applied to it, if any: 'status 500', 'cut after 1000 bytes'. */
  fault?: string;
}

/**
 * A fault the proxy applies to the next request(s) that match (`times`, default 1): answer with
 * `status` (a registry-style JSON error) instead of forwarding, or forward and cut the connection
 * after `cutAfter` bytes of the response body.
 */
export interface Fault {
  method?: string;
  path: RegExp;
  status?: number;
  cutAfter?: number;
  times?: number;
}

export interface Registry {
  /** The registry's base URL, `http://127.0.0.1:PORT` (the proxy's, with `proxy: true`). */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  /** An OCI store URL in this registry: `oci+http://127.0.0.1:PORT/NAMESPACE`. */
  storeUrl(namespace: string): string;
  /** Requests seen, in order of completion (empty unless started with `proxy: true`); clear with `.length = 0`. */
  requests: RecordedRequest[];
  /** Faults to apply to coming requests (only with `proxy: true`); each is used up after `times` matches. */
  faults: Fault[];
  /** The registry's storage directory (removed by stop()). */
  root: string;
  /** What the registry printed on stderr so far. */
  stderr(): string;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s), remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Put an HTTP proxy in front that records requests and applies `faults` (a cut connection, a 500). */
  proxy?: boolean;
  /** How long to wait for `GET /v2/` to answer (default 10 s). */
  timeoutMs?: number;
  /** The registry binary (default: $EDGEIMAGE_REGISTRY_BIN, /usr/bin/docker-registry, or docker-registry on PATH). */
  bin?: string;
  /**
   * 'silly': distribution's test access controller — every request without an Authorization header
   * gets 401 with a Bearer challenge (realm and service "edgeimage-test"). For auth-error tests.
   */
  auth?: 'silly';
}

/** The docker-registry binary, or undefined when it is not installed. */
export function registryBinary(): string | undefined {
  const fromEnv = process.env.EDGEIMAGE_REGISTRY_BIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  if (existsSync('/usr/bin/docker-registry')) return '/usr/bin/docker-registry';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'docker-registry'))) return join(dir, 'docker-registry');
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts docker-registry on 127.0.0.1:<free port> with filesystem storage in a new temp dir. */
export async function startRegistry(opts: StartOptions = {}): Promise<Registry> {
  const bin = opts.bin ?? registryBinary();
  if (!bin) throw new Error('docker-registry is not installed (apt-get install docker-registry); set EDGEIMAGE_REGISTRY_BIN to use another binary');
  // A port taken between freePort() and the registry's bind is retried with another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bin, opts);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof Error) || !/address already in use/i.test(e.message)) throw e;
    }
  }
}

async function startOnce(bin: string, opts: StartOptions): Promise<Registry> {
  const root = mkdtempSync(join(tmpdir(), 'edgeimage-registry-'));
  const port = await freePort();
  const config = join(root, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(root, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(opts.auth === 'silly' ? ['auth:', '  silly:', '    realm: edgeimage-test', '    service: edgeimage-test'] : []),
      '',
    ].join('\n'),
  );
  let stderr = '';
  const child: ChildProcess = spawn(bin, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (t: string) => {
    stderr += t;
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (e) => {
      stderr += `\n${e.message}`;
      exited = { code: null, signal: null };
      resolve();
    });
  });

  let proxy: Server | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (proxy) {
        proxy.closeAllConnections();
        await new Promise<void>((resolve) => proxy!.close(() => resolve()));
      }
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      rmSync(root, { recursive: true, force: true });
    })());

  // Wait until GET /v2/ answers.
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`docker-registry exited (code ${exited.code}, signal ${exited.signal}) before answering on 127.0.0.1:${port}; its stderr:\n${stderr}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || (opts.auth && res.status === 401)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer GET http://127.0.0.1:${port}/v2/ within ${opts.timeoutMs ?? 10_000} ms; its stderr:\n${stderr}`);
    }
    await sleep(50);
  }

  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let publicPort = port;
  if (opts.proxy) {
    proxy = recordingProxy(port, requests, faults);
    await new Promise<void>((resolve, reject) => {
      proxy!.once('error', reject);
      proxy!.listen(0, '127.0.0.1', resolve);
    });
    publicPort = (proxy.address() as AddressInfo).port;
  }
  const host = `127.0.0.1:${publicPort}`;
  return {
    url: `http://${host}`,
    host,
    port: publicPort,
    storeUrl: (namespace: string) => `oci+http://${host}/${namespace.replace(/^\/+/, '')}`,
    requests,
    faults,
    root,
    stderr: () => stderr,
    stop,
  };
}

/** The first fault that matches, used up by one. */
function takeFault(faults: Fault[], method: string, path: string): Fault | undefined {
  const i = faults.findIndex((f) => (!f.method || f.method === method) && f.path.test(path));
  if (i < 0) return undefined;
  const f = faults[i]!;
  const left = (f.times ?? 1) - 1;
  if (left <= 0) faults.splice(i, 1);
  else faults[i] = { ...f, times: left };
  return f;
}

/**
 * A pass-through HTTP proxy that records each request and applies faults. The Host header is passed
 * on unchanged, so the Location URLs the registry makes (uploads) point back at the proxy.
 */
function recordingProxy(port: number, requests: RecordedRequest[], faults: Fault[]): Server {
  return createHttpServer((req, res) => {
    const method = req.method ?? '';
    const path = req.url ?? '';
    const record = (status: number, bytes: number, fault?: string) => {
      const r: RecordedRequest = { method, path, status, bytes };
      if (req.headers.range) r.range = req.headers.range;
      if (fault) r.fault = fault;
      requests.push(r);
    };
    const fault = takeFault(faults, method, path);
    if (fault?.status !== undefined) {
      req.resume();
      const body = JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'fault injected by the test proxy' }] });
      res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      record(fault.status, body.length, `status ${fault.status}`);
      return;
    }
    const cutAfter = fault?.cutAfter;
    const upstream = httpRequest({ host: '127.0.0.1', port, method, path, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let bytes = 0;
      let cut = false;
      up.on('data', (b: Buffer) => {
        if (cut) return;
        if (cutAfter !== undefined && bytes + b.length >= cutAfter) {
          cut = true;
          const part = b.subarray(0, cutAfter - bytes);
          bytes += part.length;
          up.destroy();
          res.write(part, () => res.destroy());
          return;
        }
        bytes += b.length;
        if (!res.write(b)) {
          up.pause();
          res.once('drain', () => up.resume());
        }
      });
      up.on('end', () => {
        if (!cut) res.end();
      });
      res.once('close', () => {
        record(up.statusCode ?? 0, bytes, cut ? `cut after ${bytes} bytes` : undefined);
        if (!up.complete) up.destroy();
      });
    });
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy: ${e.message}`);
      else res.destroy(e);
    });
    req.pipe(upstream);
  });
}

/**
 * Starts a registry in `beforeAll` and stops it in `afterAll` of the enclosing describe (or file);
 * returns a getter for it.
 */
export function useRegistry(opts: StartOptions = {}): () => Registry {
  let registry: Registry | undefined;
  beforeAll(async () => {
    registry = await startRegistry(opts);
  }, (opts.timeoutMs ?? 10_000) + 5_000);
  afterAll(async () => {
    await registry?.stop();
  });
  return () => {
    if (!registry) throw new Error('the registry is not running (useRegistry() must be called where beforeAll runs before the tests)');
    return registry;
  };
}

/** `describe` whose tests are skipped, saying why, when docker-registry is not installed. */
export function describeWithRegistry(name: string, fn: () => void): void {
  requires(registryBinary() ? undefined : 'docker-registry is not installed (apt-get install docker-registry, or set EDGEIMAGE_REGISTRY_BIN)').describe(name, fn);
}
