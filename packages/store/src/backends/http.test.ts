import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { serveDirectory, type Fault, type StaticServer } from '@edgeimage/testkit/http-server';
import { HttpBackend } from './http.js';

const BUNDLE = 'snaps/hello/1.snap';
const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
let dir: string;
let server: StaticServer;
/** What the next requests get wrong, by path. */
const faults = new Map<string, Fault>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-http-backend-test-'));
  mkdirSync(join(dir, 'snaps/hello'), { recursive: true });
  writeFileSync(join(dir, 'store.json'), '{"format":1}');
  writeFileSync(join(dir, BUNDLE), bytes);
  server = await serveDirectory(dir, { fault: (req) => faults.get(req.path) });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  faults.clear();
  server.reset();
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('HttpBackend', () => {
  it('a connection cut before the body is first read is still reported on the read, with what came before (no unhandled error)', async () => {
    faults.set(BUNDLE, 'drop-mid-body');
    const b = new HttpBackend(server.url);
    const { stream } = await b.open(BUNDLE);
    // The cut happens while nobody reads yet: the error must wait for the reader.
    await new Promise((r) => setTimeout(r, 300));
    const got: Buffer[] = [];
    let error: unknown;
    try {
      for await (const chunk of stream) got.push(chunk as Buffer);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_STORE_UNREACHABLE' });
    expect((error as Error).message).toMatch(/the connection failed after \d+ bytes of the body/);
    expect(Buffer.concat(got).equals(bytes.subarray(0, Buffer.concat(got).length))).toBe(true);
  });

  it('reads files, with or without a trailing slash on the store URL; 404 reads as undefined', async () => {
    for (const url of [server.url, `${server.url}/`]) {
      const b = new HttpBackend(url);
      expect((await b.read('store.json'))!.toString()).toBe('{"format":1}');
      expect(await b.read('index.json')).toBeUndefined();
    }
    expect(server.count('store.json')).toBe(2);
  });

  it('serves a store below a path of the server', async () => {
    const b = new HttpBackend(`${server.url}/snaps`);
    expect((await b.read('hello/1.snap'))!.equals(bytes)).toBe(true);
    expect(b.locate('hello/1.snap')).toBe(`${server.url}/snaps/hello/1.snap`);
  });

  it('reports other statuses as ERR_STORE_HTTP with the status and URL', async () => {
    faults.set('store.json', 'status:500');
    const b = new HttpBackend(server.url);
    await expect(b.read('store.json')).rejects.toMatchObject({
      code: 'ERR_STORE_HTTP',
      message: `GET ${server.url}/store.json: HTTP 500 Internal Server Error`,
      context: { status: 500, url: `${server.url}/store.json` },
    });
    faults.set(BUNDLE, 'status:503');
    await expect(b.open(BUNDLE)).rejects.toMatchObject({ code: 'ERR_STORE_HTTP', context: { status: 503 } });
  });

  it('reports a server that cannot be reached as ERR_STORE_UNREACHABLE', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const b = new HttpBackend(url);
    await expect(b.read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringMatching(new RegExp(`^cannot reach the store: GET ${url}/store.json: .*ECONNREFUSED`)) });
    await expect(b.open(BUNDLE)).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE' });
  });

  it('gives up on a server that never answers', async () => {
    faults.set('store.json', 'hang');
    const b = new HttpBackend(server.url, { headersTimeoutMs: 200 });
    await expect(b.read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining('no answer within 0.2 s') });
  });

  it('opens a missing file with ERR_STORE_NOT_FOUND', async () => {
    await expect(new HttpBackend(server.url).open('snaps/hello/9.snap')).rejects.toMatchObject({ code: 'ERR_STORE_NOT_FOUND', context: { status: 404 } });
  });

  it('downloads a whole file and resumes from an offset with a Range request (206)', async () => {
    const b = new HttpBackend(server.url);
    const whole = await b.open(BUNDLE);
    expect(whole.size).toBe(bytes.length);
    expect((await buffer(whole.stream)).equals(bytes)).toBe(true);
    const tail = await b.open(BUNDLE, 123_456);
    expect(tail.size).toBe(bytes.length - 123_456);
    expect((await buffer(tail.stream)).equals(bytes.subarray(123_456))).toBe(true);
    expect(server.log.map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      ['bytes=123456-', 206],
    ]);
  });

  it('skips to the offset itself when the server ignores Range and answers 200', async () => {
    faults.set(BUNDLE, 'ignore-range');
    const tail = await new HttpBackend(server.url).open(BUNDLE, 200_001);
    expect(tail.size).toBe(bytes.length - 200_001);
    expect((await buffer(tail.stream)).equals(bytes.subarray(200_001))).toBe(true);
    expect(server.log[0]!.status).toBe(200);
  });

  it('refuses an offset past the end', async () => {
    await expect(new HttpBackend(server.url).open(BUNDLE, bytes.length + 1)).rejects.toMatchObject({ code: 'ERR_STORE_RANGE' });
  });

  it('turns a connection dropped mid-body into a stream error ERR_STORE_UNREACHABLE', async () => {
    faults.set(BUNDLE, 'drop-mid-body');
    const { stream } = await new HttpBackend(server.url).open(BUNDLE);
    await expect(buffer(stream)).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining(`GET ${server.url}/${BUNDLE}: the connection failed after`) });
  });

  it('gives up on a body that stops arriving', async () => {
    faults.set(BUNDLE, 'stall-mid-body');
    const { stream } = await new HttpBackend(server.url, { idleTimeoutMs: 200 }).open(BUNDLE);
    await expect(buffer(stream)).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining(`after ${bytes.length / 2} bytes of the body: no data for 0.2 s`) });
  });

  it('stops the transfer when the reader destroys the stream', async () => {
    const { stream } = await new HttpBackend(server.url).open(BUNDLE);
    stream.destroy();
    await new Promise((r) => stream.once('close', r));
    // The server sees the request; the client is free again for the next one.
    expect((await new HttpBackend(server.url).read('store.json'))!.length).toBeGreaterThan(0);
  });

  it('is read-only: writes say to publish to the store it serves', async () => {
    const b = new HttpBackend(server.url);
    expect(b.writable).toBe(false);
    for (const write of [() => b.write('index.json'), () => b.writeFile('snaps/x/1.snap')]) {
      await expect(write()).rejects.toMatchObject({
        code: 'ERR_STORE_READ_ONLY',
        message: expect.stringContaining('HTTP stores are read-only; publish to the directory or OCI store that this URL serves'),
      });
    }
    expect(server.log).toEqual([]);
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => new HttpBackend('ftp://example.com/store')).toThrow(expect.objectContaining({ code: 'ERR_STORE_URL' }));
  });
});

describe('HttpBackend bounds (a hostile or broken store)', () => {
  it('gives up on a metadata file whose body stalls after the headers (idle timeout), instead of hanging', async () => {
    faults.set('store.json', 'stall-mid-body');
    const b = new HttpBackend(server.url, { idleTimeoutMs: 200 });
    await expect(b.read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining(`GET ${server.url}/store.json: the connection failed after 6 bytes of the body: no data for 0.2 s`) });
  });

  it('refuses a store file over the cap from its Content-Length, before reading the body', async () => {
    const b = new HttpBackend(server.url, { maxFileBytes: 1000 });
    await expect(b.read(BUNDLE)).rejects.toMatchObject({
      code: 'ERR_STORE_TOO_BIG',
      message: expect.stringContaining(`${BUNDLE} is ${bytes.length} bytes (Content-Length), more than the 1000 bytes a store file other than a bundle may be`),
    });
  });

  it('refuses an endless body without Content-Length at the default cap (16 MiB)', async () => {
    // Chunked, 64 KiB at a time, until the client goes away (at most 48 MiB: the server stops by itself).
    let sent = 0;
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const more = () => {
        while (sent < 48 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
      await expect(new HttpBackend(url).read('index.json')).rejects.toMatchObject({
        code: 'ERR_STORE_TOO_BIG',
        message: expect.stringMatching(/index\.json is at least \d+ bytes \(no Content-Length\), more than the 16777216 bytes/),
      });
      expect(sent).toBeLessThan(48 * 1024 * 1024);
    } finally {
      endless.closeAllConnections();
      await new Promise((r) => endless.close(r));
    }
  });
});
