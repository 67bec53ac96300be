import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveOtaStore, storePath, type OtaStoreServer } from './ota-store-server.js';

const UPDATE = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 251));
const U = '/updates/acme.pc.2.from-1.update';
const SECRET = 'not-for-the-device\n';
let dir: string;
let server: OtaStoreServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-ota-store-test-'));
  const store = join(dir, 'store');
  mkdirSync(join(store, 'channels'), { recursive: true });
  mkdirSync(join(store, 'updates'));
  writeFileSync(join(store, 'channels/acme.pc.latest+stable.pointer'), 'edgeimage-pointer: 1\n');
  writeFileSync(join(store, U), UPDATE);
  writeFileSync(join(dir, 'secret'), SECRET);
  symlinkSync('../../secret', join(store, 'updates/out.update'));
  symlinkSync('/etc/hostname', join(store, 'updates/abs.update'));
  symlinkSync(dir, join(store, 'parent'));
  symlinkSync('acme.pc.2.from-1.update', join(store, 'updates/in.update'));
  server = await serveOtaStore(store);
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.clearFaults();
  server.reset();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body arrived whole (the response ended, not the connection). */
  complete: boolean;
}

/** A raw request: the target goes out as written (no URL normalisation), the answer as it came. */
function get(target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: target, method, headers, agent: false }, (res) => {
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

/** Reads `target` until `enough` body bytes came, then goes away; the bytes and the time taken. */
function readSome(target: string, enough: number): Promise<{ body: Buffer; ms: number; status: number; headers: Answer['headers'] }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: target, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= enough) {
          req.destroy();
          resolve({ body: Buffer.concat(chunks), ms: Date.now() - t0, status: res.statusCode!, headers: res.headers });
        }
      });
      res.on('end', () => reject(new Error(`the body ended at ${n} bytes`)));
    });
    req.on('error', () => undefined);
    req.end();
  });
}

const waitFor = async (cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('serving', () => {
  test('GET: the file, its length; HEAD: the headers only; the log and the byte counter', async () => {
    const r = await get(U);
    expect([r.status, r.headers['content-length'], r.body.equals(UPDATE), r.complete]).toEqual([200, String(UPDATE.length), true, true]);
    const h = await get(U, {}, 'HEAD');
    expect([h.status, h.headers['content-length'], h.body.length]).toEqual([200, String(UPDATE.length), 0]);
    expect(server.log).toEqual([
      { method: 'GET', path: U, status: 200 },
      { method: 'HEAD', path: U, status: 200 },
    ]);
    expect(server.bytes(U)).toBe(UPDATE.length);
    expect(server.bytes(U.slice(1))).toBe(UPDATE.length);
  });

  test('missing files, folders and other methods are not served', async () => {
    expect((await get('/channels/nope.pointer')).status).toBe(404);
    expect((await get('/channels')).status).toBe(404);
    expect((await get('/')).status).toBe(404);
    expect((await get(U, {}, 'PUT')).status).toBe(405);
    expect((await get(U, {}, 'DELETE')).status).toBe(405);
  });

  test('a link inside the store is followed', async () => {
    const r = await get('/updates/in.update');
    expect([r.status, r.body.equals(UPDATE)]).toEqual([200, true]);
  });

  test('Range bytes=N- and bytes=N-M: 206 with Content-Range; past the end: 416; counters count what was sent', async () => {
    let r = await get(U, { range: 'bytes=150000-' });
    expect([r.status, r.headers['content-range'], r.headers['content-length']]).toEqual([206, `bytes 150000-199999/${UPDATE.length}`, '50000']);
    expect(r.body.equals(UPDATE.subarray(150_000))).toBe(true);
    r = await get(U, { range: 'bytes=10-19' });
    expect([r.status, r.headers['content-range']]).toEqual([206, `bytes 10-19/${UPDATE.length}`]);
    expect(r.body.equals(UPDATE.subarray(10, 20))).toBe(true);
    // an end past the file is cut to it
    r = await get(U, { range: 'bytes=199990-999999' });
    expect([r.status, r.headers['content-range'], r.body.length]).toEqual([206, `bytes 199990-199999/${UPDATE.length}`, 10]);
    r = await get(U, { range: `bytes=${UPDATE.length}-` });
    expect([r.status, r.headers['content-range'], r.body.length]).toEqual([416, `bytes */${UPDATE.length}`, 0]);
    r = await get(U, { range: 'bytes=20-10' });
    expect(r.status).toBe(416);
    expect(server.bytes(U)).toBe(50_000 + 10 + 10);
    expect(server.log.map((e) => [e.range, e.status])).toEqual([
      ['bytes=150000-', 206],
      ['bytes=10-19', 206],
      ['bytes=199990-999999', 206],
      [`bytes=${UPDATE.length}-`, 416],
      ['bytes=20-10', 416],
    ]);
  });
});

describe('nothing outside the store', () => {
  test.each([
    ['..', '/../secret'],
    ['.. further down', '/updates/../../secret'],
    ['encoded ..', '/%2e%2e/secret'],
    ['encoded .. in capitals', '/updates/%2E%2E/%2E%2E/secret'],
    ['an encoded / (one segment that decodes into ../..)', '/updates/..%2f..%2fsecret'],
    ['an absolute path (an empty segment)', '//etc/hostname'],
    ['an absolute path (an encoded /)', '/%2fetc%2fhostname'],
    ['an encoded backslash', '/updates/..%5c..%5csecret'],
    ['an encoded NUL', '/updates/x%00.update'],
    ['an absolute-form target', `http://127.0.0.1/../secret`],
  ])('refused: %s', async (_name, target) => {
    const r = await get(target);
    expect(r.status).toBe(403);
    expect(r.body.toString()).not.toContain(SECRET.trim());
  });

  // the request parsing alone (the link check would also refuse most of these as leading out)
  test.each([['/../secret'], ['/%2e%2e/secret'], ['/a/%2E%2e/b'], ['/a/.'], ['/a/..%2fb'], ['//etc'], ['/%2fetc'], ['/a%5cb'], ['/a%00'], ['/a/'], ['http://h/a'], ['*'], ['/%zz']])('storePath refuses %s', (target) => {
    expect(storePath(target)).toBeUndefined();
  });
  test('storePath decodes the rest', () => {
    expect(storePath('/channels/acme.pc.latest%2Bstable.pointer?x=1')).toEqual(['channels', 'acme.pc.latest+stable.pointer']);
    expect(storePath('/')).toEqual([]);
  });

  test.each([
    ['a link to a file outside (relative)', '/updates/out.update'],
    ['a link to a file outside (absolute)', '/updates/abs.update'],
    ['a linked folder outside', '/parent/secret'],
  ])('refused: %s', async (_name, target) => {
    const r = await get(target);
    expect(r.status).toBe(403);
    expect(r.body.toString()).not.toContain(SECRET.trim());
  });
});

describe('faults', () => {
  test('drop-after: N bytes of the body, then the connection cut, for `times` requests; then served', async () => {
    server.fault(U, { kind: 'drop-after', bytes: 70_000, times: 1 });
    let r = await get(U);
    expect([r.status, r.headers['content-length'], r.body.length, r.complete]).toEqual([200, String(UPDATE.length), 70_000, false]);
    expect(r.body.equals(UPDATE.subarray(0, 70_000))).toBe(true);
    // the resume: served whole (times: 1 is spent)
    r = await get(U, { range: 'bytes=70000-' });
    expect([r.status, r.complete, r.body.equals(UPDATE.subarray(70_000))]).toEqual([206, true, true]);
    expect(server.bytes(U)).toBe(UPDATE.length);
    expect(server.log.map((e) => e.fault)).toEqual(['drop-after', undefined]);
  });

  test('drop-after of a range counts from the range', async () => {
    server.fault(U, { kind: 'drop-after', bytes: 1000 });
    const r = await get(U, { range: 'bytes=5000-' });
    expect([r.status, r.body.length, r.complete]).toEqual([206, 1000, false]);
    expect(r.body.equals(UPDATE.subarray(5000, 6000))).toBe(true);
    // no times: until cleared
    expect((await get(U)).complete).toBe(false);
    server.clearFaults();
    expect((await get(U)).complete).toBe(true);
  });

  test('endless: the file, then zero bytes for as long as the client reads; the counter counts them', async () => {
    server.fault(U, { kind: 'endless' });
    const r = await readSome(U, UPDATE.length + 500_000);
    expect([r.status, r.headers['content-length'], r.headers['transfer-encoding']]).toEqual([200, undefined, undefined]);
    expect(r.body.subarray(0, UPDATE.length).equals(UPDATE)).toBe(true);
    expect(r.body.subarray(UPDATE.length).every((b) => b === 0)).toBe(true);
    expect(server.bytes(U)).toBeGreaterThan(UPDATE.length + 400_000);
    // the client went away: the server stops sending
    await waitFor(() => server.connections() === 0);
    const n = server.bytes(U);
    await new Promise((res) => setTimeout(res, 100));
    expect(server.bytes(U)).toBe(n);
  });

  test('endless honours a range, then goes on past the end', async () => {
    server.fault(U, { kind: 'endless' });
    const r = await readSome(U, 150_000);
    expect(r.body.subarray(0, 150_000).equals(UPDATE.subarray(0, 150_000))).toBe(true);
    const s = await new Promise<{ status: number; body: Buffer }>((resolve) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: U, headers: { range: 'bytes=199000-' }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if ((n += c.length) >= 100_000) {
            req.destroy();
            resolve({ status: res.statusCode!, body: Buffer.concat(chunks) });
          }
        });
      });
      req.on('error', () => undefined);
      req.end();
    });
    expect(s.status).toBe(206);
    expect(s.body.subarray(0, 1000).equals(UPDATE.subarray(199_000))).toBe(true);
    expect(s.body.subarray(1000).every((b) => b === 0)).toBe(true);
  });

  test('trickle: B bytes a second', async () => {
    server.fault(U, { kind: 'trickle', bytesPerSecond: 2000 });
    const r = await readSome(U, 2000);
    expect(r.body.equals(UPDATE.subarray(0, r.body.length))).toBe(true);
    // 2000 bytes at 2000 B/s: about a second (the first tenth goes out at once)
    expect(r.ms).toBeGreaterThanOrEqual(800);
    expect(r.ms).toBeLessThan(3000);
  });

  test('corrupt: one byte flipped at offset K of what is sent', async () => {
    server.fault(U, { kind: 'corrupt', offset: 100_000 });
    let r = await get(U);
    expect([r.status, r.body.length, r.complete]).toEqual([200, UPDATE.length, true]);
    const diff = [...r.body].flatMap((b, i) => (b === UPDATE[i] ? [] : [i]));
    expect(diff).toEqual([100_000]);
    expect(r.body[100_000]).toBe(UPDATE[100_000]! ^ 0xff);
    // of what is sent: a range starting at 1000 has it at file offset 101000
    r = await get(U, { range: 'bytes=1000-' });
    expect([...r.body].flatMap((b, i) => (b === UPDATE[1000 + i] ? [] : [1000 + i]))).toEqual([101_000]);
  });

  test('ignore-range: 200 and the whole file to a Range request', async () => {
    server.fault(U, { kind: 'ignore-range', times: 1 });
    let r = await get(U, { range: 'bytes=100000-' });
    expect([r.status, r.headers['content-range'], r.body.equals(UPDATE)]).toEqual([200, undefined, true]);
    r = await get(U, { range: 'bytes=100000-' });
    expect(r.status).toBe(206);
  });

  test('a fault is the path\'s only, and HEAD is never faulted', async () => {
    server.fault(U, { kind: 'drop-after', bytes: 10 });
    expect((await get('/updates/in.update')).complete).toBe(true);
    const h = await get(U, {}, 'HEAD');
    expect([h.status, h.complete]).toEqual([200, true]);
  });
});

test('close() destroys the open sockets: a live endless stream ends, the server is down', async () => {
  const own = await serveOtaStore(join(dir, 'store'));
  own.fault(U, { kind: 'endless' });
  let got = 0;
  const ended = new Promise<string>((resolve) => {
    // the client reads slowly on purpose: the server's writes are left pending in the socket
    const req = request({ host: '127.0.0.1', port: own.port, path: U, agent: false }, (res) => {
      res.on('data', (c: Buffer) => (got += c.length));
      res.on('aborted', () => resolve('aborted'));
      res.on('error', () => resolve('error'));
      res.on('end', () => resolve('end'));
    });
    req.on('error', () => resolve('error'));
    req.end();
  });
  await waitFor(() => got > UPDATE.length);
  const t0 = Date.now();
  await own.close();
  expect(Date.now() - t0).toBeLessThan(2000);
  // the body has no length: the client sees its connection end, whichever way it names it
  await expect(ended).resolves.toMatch(/^(end|aborted|error)$/);
  expect(own.connections()).toBe(0);
  expect((await get(U)).status).toBe(200); // another server is untouched
  await expect(
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: own.port, path: U, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    }),
  ).rejects.toThrow(/ECONNREFUSED/);
});
