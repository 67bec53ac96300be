/**
 * Bounds of the OCI backend against a hostile or broken registry: every request and body has a
 * timeout, and nothing but a bundle is read into memory without a size cap. The misbehaving
 * registry is a small HTTP server on 127.0.0.1 (a real registry cannot be made to stall or to
 * send an endless manifest on demand); the size cap of a store file uses the real registry.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OciBackend, OCI_MANIFEST, layerMediaType } from './oci.js';
import { describeWithRegistry, useRegistry } from '@edgeimage/testkit/oci-registry';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A registry-shaped server: `handle` answers every request; requests are recorded. */
async function fakeRegistry(handle: Handler) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `oci+http://127.0.0.1:${port}/acme`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Writes `chunk` until `limit` bytes went out or the client left (the server stops by itself). */
function endless(res: ServerResponse, limit: number, chunk = Buffer.alloc(64 * 1024, 0x20)): { sent: () => number } {
  let sent = 0;
  const more = () => {
    while (sent < limit && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
  return { sent: () => sent };
}

const manifestFor = (name: string, size: number) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${createHash('sha256').update('{}').digest('hex')}`, size: 2 },
    layers: [{ mediaType: layerMediaType(name), digest: `sha256:${'0'.repeat(64)}`, size, annotations: { 'org.opencontainers.image.title': name } }],
  });

describe('OCI backend timeouts', () => {
  test('a registry that never answers: ERR_STORE_UNREACHABLE after the headers timeout', async () => {
    const reg = await fakeRegistry(() => undefined);
    try {
      const b = new OciBackend(reg.url, { headersTimeoutMs: 200 });
      await expect(b.read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining('/v2/acme/meta/manifests/store.json: no answer within 0.2 s') });
    } finally {
      await reg.close();
    }
  });

  test('a manifest whose body stalls after the headers: ERR_STORE_UNREACHABLE after the idle timeout', async () => {
    const reg = await fakeRegistry((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': '5000' });
      res.write('{"schemaVersion":'); // … and nothing more
    });
    try {
      const b = new OciBackend(reg.url, { idleTimeoutMs: 200 });
      await expect(b.read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining('no data for 0.2 s') });
    } finally {
      await reg.close();
    }
  });

  test('a blob whose body stalls mid-download: the stream fails with ERR_STORE_UNREACHABLE', async () => {
    const reg = await fakeRegistry((req, res) => {
      if (req.url!.includes('/manifests/')) {
        const body = manifestFor('1.snap', 100_000);
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
      } else {
        res.writeHead(200, { 'content-length': '100000' });
        res.write(Buffer.alloc(1000));
      }
    });
    try {
      const b = new OciBackend(reg.url, { idleTimeoutMs: 200 });
      const { stream } = await b.open('snaps/hello/1.snap');
      const read = (async () => {
        for await (const _ of stream) void _;
      })();
      await expect(read).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining('no data for 0.2 s') });
    } finally {
      await reg.close();
    }
  });
});

describe('OCI backend size caps', () => {
  test('an endless manifest is refused at 4 MiB (ERR_STORE_TOO_BIG), and the transfer ends', async () => {
    let sent = () => 0;
    const reg = await fakeRegistry((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      sent = endless(res, 64 * 1024 * 1024).sent;
    });
    try {
      await expect(new OciBackend(reg.url).read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_TOO_BIG', message: expect.stringMatching(/the manifest is at least \d+ bytes, more than the 4194304 bytes/) });
      expect(sent()).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await reg.close();
    }
  });

  test('a manifest with a too large Content-Length is refused before its body is read', async () => {
    const reg = await fakeRegistry((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(1 << 30) });
      res.write('{');
    });
    try {
      await expect(new OciBackend(reg.url, { idleTimeoutMs: 5_000 }).read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_TOO_BIG', message: expect.stringContaining('the manifest is 1073741824 bytes (Content-Length)') });
    } finally {
      await reg.close();
    }
  });

  test('an error answer with an endless body: ERR_STORE_HTTP, reading no more than 64 KiB of it', async () => {
    let sent = () => 0;
    const reg = await fakeRegistry((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      sent = endless(res, 64 * 1024 * 1024).sent;
    });
    try {
      await expect(new OciBackend(reg.url).read('store.json')).rejects.toMatchObject({ code: 'ERR_STORE_HTTP', message: expect.stringContaining('HTTP 500') });
      expect(sent()).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await reg.close();
    }
  });

  test("a store file whose manifest says it is over the cap is refused before its blob is asked for", async () => {
    const reg = await fakeRegistry((req, res) => {
      const body = manifestFor('index.json', 17 * 1024 * 1024);
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    try {
      await expect(new OciBackend(reg.url).read('index.json')).rejects.toMatchObject({ code: 'ERR_STORE_TOO_BIG', message: expect.stringContaining('index.json is 17825792 bytes (its manifest says), more than the 16777216 bytes') });
      expect(reg.seen.filter((r) => r.includes('/blobs/'))).toEqual([]);
    } finally {
      await reg.close();
    }
  });
});

describeWithRegistry('OCI backend size cap, real registry', () => {
  const registry = useRegistry();
  test('a store file over the cap is refused; one at the cap is read', async () => {
    const b = new OciBackend(registry().storeUrl('acme/store'), { maxFileBytes: 1000 });
    await b.write('index.json', Buffer.alloc(1001, 0x20));
    await b.write('store.json', Buffer.alloc(1000, 0x20));
    await expect(b.read('index.json')).rejects.toMatchObject({ code: 'ERR_STORE_TOO_BIG', message: expect.stringContaining('index.json is 1001 bytes') });
    expect((await b.read('store.json'))!.length).toBe(1000);
  });
});
