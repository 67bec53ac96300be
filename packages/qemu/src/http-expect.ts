import { createServer } from 'node:net';
import { BootTestError } from './errors.js';

/**
 * `--forward HOST_PORT:GUEST_PORT`: a TCP port of the guest reachable on 127.0.0.1:HOST_PORT of
 * the host (QEMU user networking, `hostfwd`). Nothing else of the guest's network leaves QEMU.
 */
export interface PortForward {
  host: number;
  guest: number;
}

/** `--expect-http URL[=REGEX]`: a 2xx answer of the guest through a forward, its body matching `pattern` (default: any body). */
export interface HttpExpect {
  url: string;
  pattern?: RegExp;
}

/** What a successful HTTP expectation saw. */
export interface HttpAnswer {
  url: string;
  status: number;
  /** The body as read (at most {@link HttpPollOptions.maxBodyBytes} bytes, as UTF-8). */
  body: string;
  /** Requests made, the last one the answer. */
  attempts: number;
}

/** How the polling is bounded. */
export interface HttpPollOptions {
  /** `performance.now()` by which an answer must have come: the boot's own deadline. */
  deadline: number;
  /** Between two requests (default 1000 ms). */
  intervalMs?: number;
  /** One request, headers and body (default 5000 ms, never past the deadline). */
  requestTimeoutMs?: number;
  /** The body is read up to this many bytes, the rest is not read (default 64 KiB). */
  maxBodyBytes?: number;
  /** Stops the polling (QEMU exited, Ctrl-C): rejects with the signal's reason when it is a BootTestError, else ERR_ABORTED. */
  signal?: AbortSignal;
}

export const HTTP_INTERVAL_MS = 1000;
export const HTTP_REQUEST_TIMEOUT_MS = 5000;
export const HTTP_MAX_BODY_BYTES = 64 * 1024;
/** The most of a body a failure message quotes. */
export const HTTP_BODY_QUOTE = 300;
/** A pattern from the command line is at most this long (a regex is run on every answer). */
export const HTTP_MAX_PATTERN = 1000;

const HOSTS = new Set(['127.0.0.1', 'localhost']);

function port(what: string, s: string, spec: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new BootTestError('ERR_USAGE', `forward ${JSON.stringify(spec)}: the ${what} port must be a whole number from 1 to 65535, found ${JSON.stringify(s)}`, { spec });
  return Number(s);
}

/** `HOST_PORT:GUEST_PORT` as a forward; anything else is ERR_USAGE naming the text. */
export function parseForward(spec: string): PortForward {
  const m = /^([^:]*):([^:]*)$/.exec(spec);
  if (!m) throw new BootTestError('ERR_USAGE', `forward ${JSON.stringify(spec.slice(0, 100))}: expected HOST_PORT:GUEST_PORT, e.g. 18080:8080`, { spec });
  return { host: port('host', m[1]!, spec), guest: port('guest', m[2]!, spec) };
}

/** Forwards as a boot takes them: ports 1-65535, each host port once (QEMU binds it). */
export function checkForwards(forwards: readonly PortForward[]): void {
  const seen = new Set<number>();
  for (const f of forwards) {
    for (const [what, p] of [['host', f.host], ['guest', f.guest]] as const) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BootTestError('ERR_USAGE', `forward ${f.host}:${f.guest}: the ${what} port must be a whole number from 1 to 65535`, { forward: f });
    }
    if (seen.has(f.host)) throw new BootTestError('ERR_USAGE', `forward: host port ${f.host} is forwarded twice (each host port goes to one guest port)`, { port: f.host });
    seen.add(f.host);
  }
}

/**
 * The URL of an HTTP expectation, checked: `http:` to 127.0.0.1 or localhost with a port, no
 * credentials. The check is of the guest through a forward, so nothing else is ever fetched.
 */
export function checkHttpUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BootTestError('ERR_USAGE', `expect-http: ${JSON.stringify(url.slice(0, 200))} is not a URL (expected http://127.0.0.1:PORT/PATH)`, { url });
  }
  if (u.protocol !== 'http:' || !HOSTS.has(u.hostname)) throw new BootTestError('ERR_USAGE', `expect-http: ${JSON.stringify(url.slice(0, 200))}: only http://127.0.0.1:PORT/… or http://localhost:PORT/… is fetched (the guest through a --forward), found ${u.protocol}//${u.hostname}`, { url });
  if (u.port === '') throw new BootTestError('ERR_USAGE', `expect-http: ${url}: the URL needs the forwarded host port (http://127.0.0.1:PORT/…)`, { url });
  if (u.username || u.password) throw new BootTestError('ERR_USAGE', `expect-http: ${url}: no credentials in the URL`, { url });
  return u;
}

/**
 * `URL[=REGEX]`: the first `=` ends the URL (write an `=` of a query as `%3D`); the rest is a
 * regular expression the body must match. Checked with {@link checkHttpUrl}.
 */
export function parseHttpExpect(spec: string): HttpExpect {
  const at = spec.indexOf('=');
  const url = at < 0 ? spec : spec.slice(0, at);
  checkHttpUrl(url);
  if (at < 0) return { url };
  const source = spec.slice(at + 1);
  if (source === '') throw new BootTestError('ERR_USAGE', `expect-http ${JSON.stringify(spec.slice(0, 200))}: nothing after "=" (leave "=REGEX" out to accept any 2xx answer)`, { spec });
  if (source.length > HTTP_MAX_PATTERN) throw new BootTestError('ERR_USAGE', `expect-http ${url}: the pattern is ${source.length} characters, more than ${HTTP_MAX_PATTERN}`, { spec: spec.slice(0, 200) });
  try {
    return { url, pattern: new RegExp(source) };
  } catch (e) {
    throw new BootTestError('ERR_USAGE', `expect-http ${url}: ${JSON.stringify(source.slice(0, 200))} is not a regular expression: ${(e as Error).message}`, { spec: spec.slice(0, 200) });
  }
}

/** The label of an expectation in a boot's markers: `GET URL` and the pattern. */
export const httpLabel = (e: HttpExpect): string => `GET ${e.url}${e.pattern ? ` =~ /${e.pattern.source}/` : ' (2xx)'}`;

/**
 * The host ports that cannot be bound on 127.0.0.1 now (in use): QEMU would fail to start on
 * them with a less clear message. (A port taken between this check and QEMU's start still fails QEMU.)
 */
export async function portsInUse(ports: readonly number[]): Promise<{ port: number; error: string }[]> {
  const busy: { port: number; error: string }[] = [];
  for (const p of ports) {
    const err = await new Promise<string | undefined>((resolve) => {
      const s = createServer();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.listen({ port: p, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(undefined)));
    });
    if (err !== undefined) busy.push({ port: p, error: err });
  }
  return busy;
}

const quote = (body: string): string => JSON.stringify(body.length > HTTP_BODY_QUOTE ? `${body.slice(0, HTTP_BODY_QUOTE)}…` : body);

/** Reads at most `max` bytes of a body, then stops reading (the rest is never taken off the socket). */
async function readBounded(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, max - n);
      parts.push(value.subarray(0, take));
      n += take;
      if (n >= max) {
        truncated = true;
        break;
      }
    }
  } finally {
    // an unread rest (or a body still coming) is dropped with the connection
    await reader.cancel().catch(() => undefined);
  }
  return { text: Buffer.concat(parts).toString('utf8'), truncated };
}

const describeError = (e: unknown): string => {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'no answer in time';
  return err.cause?.code ?? err.cause?.message ?? err.message;
};

/**
 * Polls `e.url` (GET, no redirects followed: a 3xx is no answer) until a 2xx answer whose body
 * (its first `maxBodyBytes`) matches `e.pattern`, each request bounded by `requestTimeoutMs`,
 * all by `deadline`. Rejects with ERR_HTTP_EXPECT naming the URL, the last status or error and
 * the last body (truncated), or with the signal's reason.
 */
export async function pollHttp(e: HttpExpect, opts: HttpPollOptions): Promise<HttpAnswer> {
  checkHttpUrl(e.url);
  const interval = opts.intervalMs ?? HTTP_INTERVAL_MS;
  const requestMs = opts.requestTimeoutMs ?? HTTP_REQUEST_TIMEOUT_MS;
  const max = opts.maxBodyBytes ?? HTTP_MAX_BODY_BYTES;
  const pattern = e.pattern ? new RegExp(e.pattern.source, e.pattern.flags.replace(/[gy]/g, '')) : undefined;
  let last = 'no request made';
  let lastBody: string | undefined;
  let attempts = 0;
  const stopped = () => {
    const r: unknown = opts.signal?.reason;
    return r instanceof BootTestError ? r : new BootTestError('ERR_ABORTED', `the wait for ${e.url} was cancelled`, { url: e.url });
  };
  for (;;) {
    if (opts.signal?.aborted) throw stopped();
    const left = opts.deadline - performance.now();
    if (left <= 0) break;
    attempts++;
    // a request cut short by the deadline says less than the answer before it: that one stays the last word
    const cutByDeadline = left < requestMs;
    const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(Math.min(requestMs, left))));
    const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
    try {
      const res = await fetch(e.url, { redirect: 'manual', signal, headers: { 'user-agent': 'edgeimage-boot-test' } });
      const { text, truncated } = await readBounded(res, max);
      lastBody = truncated ? `${text}… (first ${max} bytes)` : text;
      if (res.status >= 200 && res.status < 300) {
        if (!pattern || pattern.test(text)) return { url: e.url, status: res.status, body: text, attempts };
        last = `HTTP ${res.status}, the body does not match /${pattern.source}/`;
      } else last = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    } catch (err) {
      if (opts.signal?.aborted) throw stopped();
      const timedOut = timeout.aborted;
      if (!(timedOut && cutByDeadline && attempts > 1)) {
        last = describeError(err);
        lastBody = undefined;
      }
    }
    const wait = Math.min(interval, opts.deadline - performance.now());
    if (wait <= 0) break;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, wait);
      function done() {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      }
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  }
  const body = lastBody !== undefined ? `; last body ${quote(lastBody)}` : '';
  throw new BootTestError('ERR_HTTP_EXPECT', `no 2xx answer${e.pattern ? ` matching /${e.pattern.source}/` : ''} from ${e.url} in time (${attempts} request${attempts === 1 ? '' : 's'}; last: ${last}${body})`, { url: e.url, last, body: lastBody, attempts });
}
