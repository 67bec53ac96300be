import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory, type Fault, type StaticServer } from './http-server.js';

const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 256));
let dir: string;
let server: StaticServer;
let next: Fault;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-http-server-test-'));
  mkdirSync(join(dir, 'store/snaps'), { recursive: true });
  writeFileSync(join(dir, 'store/blob'), body);
  symlinkSync('/etc/hostname', join(dir, 'store/outside'));
  server = await serveDirectory(join(dir, 'store'), { fault: () => next });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  next = undefined;
  server.reset();
});

/** A raw request, so the test sees exactly what the server sent (and whether it finished). */
function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveDirectory', () => {
  it('serves GET and HEAD, and 404 for missing files, folders and paths out of the folder', async () => {
    const r = await get('/blob');
    expect([r.status, r.headers['content-length'], r.headers['accept-ranges']]).toEqual([200, String(body.length), 'bytes']);
    expect(r.body.equals(body)).toBe(true);
    const h = await get('/blob', {}, 'HEAD');
    expect([h.status, h.headers['content-length'], h.body.length]).toEqual([200, String(body.length), 0]);
    for (const p of ['/missing', '/snaps', '/../store/blob', '/%2e%2e/etc/hostname', '/outside']) expect((await get(p)).status).toBe(404);
  });

  it('answers Range requests with 206 and Content-Range, and 416 past the end', async () => {
    const r = await get('/blob', { range: 'bytes=1000-' });
    expect([r.status, r.headers['content-range']]).toEqual([206, `bytes 1000-${body.length - 1}/${body.length}`]);
    expect(r.body.equals(body.subarray(1000))).toBe(true);
    const mid = await get('/blob', { range: 'bytes=10-19' });
    expect(mid.body.equals(body.subarray(10, 20))).toBe(true);
    const suffix = await get('/blob', { range: 'bytes=-5' });
    expect(suffix.body.equals(body.subarray(body.length - 5))).toBe(true);
    const past = await get('/blob', { range: `bytes=${body.length}-` });
    expect([past.status, past.headers['content-range']]).toEqual([416, `bytes */${body.length}`]);
  });

  it('counts requests per store path and logs each one', async () => {
    await get('/blob');
    await get('/blob', { range: 'bytes=5-' });
    await get('/missing');
    expect(server.count('blob')).toBe(2);
    expect(server.requests.get('missing')).toBe(1);
    expect(server.log.map((r) => [r.method, r.path, r.count, r.range, r.status, r.bytes])).toEqual([
      ['GET', 'blob', 1, undefined, 200, body.length],
      ['GET', 'blob', 2, 'bytes=5-', 206, body.length - 5],
      ['GET', 'missing', 1, undefined, 404, 10],
    ]);
  });

  it('injects faults: status, drop mid-body, truncate, corrupt, ignore-range', async () => {
    next = 'status:503';
    expect((await get('/blob')).status).toBe(503);

    next = 'drop-mid-body';
    const dropped = await get('/blob');
    expect(dropped.headers['content-length']).toBe(String(body.length));
    expect(dropped.complete).toBe(false);
    expect(dropped.body.length).toBe(body.length / 2);

    next = 'stall-mid-body';
    const stalled = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/blob`, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n === body.length / 2) setTimeout(() => (req.destroy(), resolve(n)), 100);
        });
      });
      req.on('error', () => undefined).on('close', () => undefined);
      setTimeout(() => reject(new Error('no data')), 5000).unref();
      req.end();
    });
    expect(stalled).toBe(body.length / 2);

    next = 'truncate';
    const short = await get('/blob');
    expect([short.status, short.complete, short.body.length]).toEqual([200, true, body.length / 2]);
    expect(short.body.equals(body.subarray(0, body.length / 2))).toBe(true);

    next = 'corrupt';
    const bad = await get('/blob');
    expect(bad.body.length).toBe(body.length);
    expect(bad.body.equals(body)).toBe(false);
    expect(bad.body[body.length / 2]).toBe(body[body.length / 2]! ^ 0xff);

    next = 'ignore-range';
    const whole = await get('/blob', { range: 'bytes=100-' });
    expect([whole.status, whole.body.length]).toEqual([200, body.length]);
    expect(server.log.map((r) => r.fault)).toEqual(['status:503', 'drop-mid-body', 'stall-mid-body', 'truncate', 'corrupt', 'ignore-range']);
  });

  it('closes even with a request hanging', async () => {
    const other = await serveDirectory(join(dir, 'store'), { fault: () => 'hang' });
    const pending = new Promise<string>((resolve) => {
      request(`${other.url}/blob`, () => resolve('answered'))
        .on('error', () => resolve('cut'))
        .end();
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(other.count('blob')).toBe(1);
    await other.close();
    expect(await pending).toBe('cut');
  });
});
