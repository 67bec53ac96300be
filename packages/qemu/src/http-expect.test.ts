/**
 * The HTTP expectation of boot-test against real node:http servers on 127.0.0.1: a slow answer,
 * 500 then 200, a body that does not match, a refused connection, an endless body (read bounded),
 * a redirect (not followed); and the refusals of forwards and URLs, each naming what was wrong.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BootTestError } from './errors.js';
import { checkForwards, checkHttpUrl, httpLabel, parseForward, parseHttpExpect, pollHttp, portsInUse } from './http-expect.js';
import { thrownBy } from '@edgeimage/testkit/refusals';

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<string> {
  let n = 0;
  const s = createServer((req, res) => handler(req, res, ++n));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const soon = (ms: number) => performance.now() + ms;

async function failure(p: Promise<unknown>): Promise<BootTestError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BootTestError) return e;
    throw e;
  }
  throw new Error('did not fail');
}

const refusal = (f: () => unknown): BootTestError => thrownBy(f, BootTestError);

describe('pollHttp against a real server', () => {
  test('500 then 200: polls until the 2xx answer whose body matches', async () => {
    const base = await serve((_q, res, n) => {
      if (n === 1) res.writeHead(500).end('starting');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"status": "ok", "n": 2}');
    });
    const a = await pollHttp({ url: `${base}/health`, pattern: /"status": *"ok"/ }, { deadline: soon(5000), intervalMs: 50 });
    expect(a).toMatchObject({ url: `${base}/health`, status: 200, attempts: 2 });
    expect(a.body).toContain('"n": 2');
  });

  test('any 2xx without a pattern; a 204 with no body too', async () => {
    const base = await serve((_q, res) => res.writeHead(204).end());
    expect(await pollHttp({ url: `${base}/` }, { deadline: soon(3000) })).toMatchObject({ status: 204, body: '', attempts: 1 });
  });

  test('a slow answer: each request is cut at its timeout; the failure says no answer in time', async () => {
    const base = await serve((_q, res) => setTimeout(() => res.writeHead(200).end('late'), 2000).unref());
    const t0 = performance.now();
    const e = await failure(pollHttp({ url: `${base}/slow` }, { deadline: soon(900), requestTimeoutMs: 200, intervalMs: 50 }));
    expect(performance.now() - t0).toBeLessThan(1800);
    expect(e.code).toBe('ERR_HTTP_EXPECT');
    expect(e.message).toMatch(new RegExp(`^no 2xx answer from ${base}/slow in time \\(\\d+ requests; last: no answer in time\\)$`));
    expect(e.context['attempts']).toBeGreaterThanOrEqual(2);
  });

  test('a body that never matches: the failure names the URL, the pattern, the status and quotes the body (truncated)', async () => {
    const base = await serve((_q, res) => res.writeHead(200).end(`{"status": "degraded", "detail": "${'x'.repeat(1000)}"}`));
    const e = await failure(pollHttp({ url: `${base}/health`, pattern: /"status": *"ok"/ }, { deadline: soon(400), intervalMs: 100 }));
    expect(e.code).toBe('ERR_HTTP_EXPECT');
    expect(e.message).toContain(`no 2xx answer matching /"status": *"ok"/ from ${base}/health in time`);
    expect(e.message).toContain('last: HTTP 200, the body does not match /"status": *"ok"/; last body "{\\"status\\": \\"degraded\\", \\"detail\\": \\"xxx');
    expect(e.message).toMatch(/x…"\)$/);
    expect(e.message.length).toBeLessThan(700);
  });

  test('an error status stays the last word: HTTP 503 and its body', async () => {
    const base = await serve((_q, res) => res.writeHead(503).end('sensor down'));
    const e = await failure(pollHttp({ url: `${base}/` }, { deadline: soon(300), intervalMs: 100 }));
    expect(e.message).toMatch(/last: HTTP 503 Service Unavailable; last body "sensor down"\)$/);
  });

  test('connection refused: the error code is the last word', async () => {
    const base = await serve((_q, res) => res.end());
    const s = servers.pop()!;
    await new Promise((r) => s.close(r));
    const e = await failure(pollHttp({ url: `${base}/` }, { deadline: soon(500), intervalMs: 100 }));
    expect(e.code).toBe('ERR_HTTP_EXPECT');
    expect(e.message).toMatch(/last: ECONNREFUSED\)$/);
    expect(e.context).toMatchObject({ url: `${base}/`, last: 'ECONNREFUSED' });
  });

  test('an endless body: read up to the bound only, then the connection is dropped', async () => {
    let written = 0;
    const base = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const more = () => {
        // stop on a closed socket (the client dropped it) or at 64 MiB (the test failed)
        while (!res.destroyed && written < 64 * 2 ** 20) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const a = await pollHttp({ url: `${base}/huge` }, { deadline: soon(5000), maxBodyBytes: 4096 });
    expect(a.body.length).toBe(4096);
    const e = await failure(pollHttp({ url: `${base}/huge`, pattern: /b/ }, { deadline: soon(300), intervalMs: 100, maxBodyBytes: 4096 }));
    expect(e.message).toMatch(/a…"\)$/);
    expect(e.context['body']).toMatch(/^a{4096}… \(first 4096 bytes\)$/);
    expect(written).toBeLessThan(64 * 2 ** 20);
  });

  test('a redirect is not followed (it could point anywhere): a 302 is no answer', async () => {
    const base = await serve((_q, res) => res.writeHead(302, { location: 'http://example.com/' }).end());
    const e = await failure(pollHttp({ url: `${base}/` }, { deadline: soon(300), intervalMs: 100 }));
    expect(e.message).toMatch(/last: HTTP 302 Found/);
  });

  test('a signal stops the polling with its reason', async () => {
    const base = await serve((_q, res) => res.writeHead(500).end());
    const c = new AbortController();
    setTimeout(() => c.abort(new BootTestError('ERR_QEMU_EXITED', 'QEMU exited')), 200);
    const t0 = performance.now();
    const e = await failure(pollHttp({ url: `${base}/` }, { deadline: soon(10_000), intervalMs: 5000, signal: c.signal }));
    expect(e.code).toBe('ERR_QEMU_EXITED');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('refusals', () => {
  test('forwards: HOST_PORT:GUEST_PORT, ports 1-65535, each host port once', () => {
    expect(parseForward('18080:8080')).toEqual({ host: 18080, guest: 8080 });
    expect(refusal(() => parseForward('8080')).message).toBe('forward "8080": expected HOST_PORT:GUEST_PORT, e.g. 18080:8080');
    expect(refusal(() => parseForward('0:80')).message).toBe('forward "0:80": the host port must be a whole number from 1 to 65535, found "0"');
    expect(refusal(() => parseForward('80:65536')).message).toMatch(/the guest port must be .* found "65536"/);
    expect(refusal(() => parseForward('http:80')).message).toMatch(/the host port .* found "http"/);
    const dup = refusal(() => checkForwards([{ host: 18080, guest: 80 }, { host: 18081, guest: 80 }, { host: 18080, guest: 8080 }]));
    expect(dup.code).toBe('ERR_USAGE');
    expect(dup.message).toBe('forward: host port 18080 is forwarded twice (each host port goes to one guest port)');
    expect(refusal(() => checkForwards([{ host: 1.5, guest: 80 }])).message).toMatch(/host port must be a whole number/);
  });

  test('URLs: only http to 127.0.0.1 or localhost with a port', () => {
    expect(checkHttpUrl('http://localhost:18080/health').port).toBe('18080');
    expect(refusal(() => checkHttpUrl('https://127.0.0.1:18080/')).message).toMatch(/only http:\/\/127\.0\.0\.1:PORT\/… or http:\/\/localhost:PORT\/… is fetched .*found https:\/\/127\.0\.0\.1/);
    expect(refusal(() => checkHttpUrl('http://10.0.2.15:8080/')).message).toMatch(/found http:\/\/10\.0\.2\.15$/);
    expect(refusal(() => checkHttpUrl('http://example.com:80/')).message).toMatch(/found http:\/\/example\.com$/);
    expect(refusal(() => checkHttpUrl('http://127.0.0.1/')).message).toMatch(/needs the forwarded host port/);
    expect(refusal(() => checkHttpUrl('http://u:p@127.0.0.1:1/')).message).toMatch(/no credentials/);
    expect(refusal(() => checkHttpUrl('not a url')).message).toMatch(/"not a url" is not a URL/);
  });

  test('URL[=REGEX]: the first "=" ends the URL; an empty or bad pattern is refused', () => {
    const e = parseHttpExpect('http://127.0.0.1:18080/health="status": *"ok"');
    expect(e.url).toBe('http://127.0.0.1:18080/health');
    expect(e.pattern!.source).toBe('"status": *"ok"');
    expect(httpLabel(e)).toBe('GET http://127.0.0.1:18080/health =~ /"status": *"ok"/');
    expect(httpLabel(parseHttpExpect('http://127.0.0.1:18080/'))).toBe('GET http://127.0.0.1:18080/ (2xx)');
    expect(parseHttpExpect('http://127.0.0.1:1/a%3Db=x=y').pattern!.source).toBe('x=y');
    expect(refusal(() => parseHttpExpect('http://127.0.0.1:1/=')).message).toMatch(/nothing after "="/);
    expect(refusal(() => parseHttpExpect('http://127.0.0.1:1/=(')).message).toMatch(/^expect-http http:\/\/127\.0\.0\.1:1\/: "\(" is not a regular expression/);
    expect(refusal(() => parseHttpExpect(`http://127.0.0.1:1/=${'a'.repeat(1001)}`)).message).toMatch(/1001 characters, more than 1000/);
    expect(refusal(() => parseHttpExpect('http://example.com:80/=ok')).code).toBe('ERR_USAGE');
  });

  test('portsInUse names a port something listens on, not a free one', async () => {
    const base = await serve((_q, res) => res.end());
    const used = Number(new URL(base).port);
    const free = await serve((_q, res) => res.end());
    const s = servers.pop()!;
    await new Promise((r) => s.close(r));
    const busy = await portsInUse([Number(new URL(free).port), used]);
    expect(busy).toEqual([{ port: used, error: 'EADDRINUSE' }]);
  });
});
