import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StoreError } from '../errors.js';
import { describeWithRegistry, freePort, startRegistry, useRegistry } from '@edgeimage/testkit/oci-registry';
import { layerMediaType, OCI_MANIFEST, OciBackend, ociReference, ociTag, ociTagName, parseOciUrl } from './oci.js';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The StoreError a promise rejects with (fails the test if it resolves or throws anything else). */
async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error('expected a StoreError, but the call succeeded');
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-oci-test-'));
  tempDirs.push(d);
  return d;
}

describe('tag mapping', () => {
  test("keeps the store layout's names as they are", () => {
    for (const n of ['3.snap', 'index.json', 'store.json', 'acme.kiosk.assert', '16.aBcD1234aBcD1234aBcD1234aBcD1234.assert', 'x']) {
      expect(ociTag(n)).toBe(n);
      expect(ociTagName(n)).toBe(n);
    }
  });

  test("prefixes '_' to names that start with '-', '.' or '_', reversibly", () => {
    const digestKey = '-Qm1oTZ3vXyq8ZJv0RCsKXJ2SEm8ImVyOxPJN0gqBfWDo7k2rS8vbCwuYbsKgOk1.assert';
    expect(ociTag(digestKey)).toBe(`_${digestKey}`);
    expect(ociTag('.hidden')).toBe('_.hidden');
    expect(ociTag('_x')).toBe('__x');
    for (const n of [digestKey, '.hidden', '_x', '-', '--.-', `-${'a'.repeat(126)}`]) {
      expect(ociTag(n)).toMatch(TAG);
      expect(ociTagName(ociTag(n))).toBe(n);
    }
  });

  test('hashes names that are too long or have other characters, and says they are not reversible', () => {
    const long = `${'a'.repeat(200)}.assert`;
    for (const n of [long, `-${'a'.repeat(127)}`, 'a b', 'ü.json', 'a:b']) {
      const t = ociTag(n);
      expect(t).toBe(`_sha256_${createHash('sha256').update(n).digest('hex')}`);
      expect(t).toMatch(TAG);
      expect(ociTagName(t)).toBeUndefined();
    }
    expect(ociTag('a'.repeat(128))).toBe('a'.repeat(128)); // exactly the limit: as is
    expect(ociTag('a'.repeat(129))).toMatch(/^_sha256_/);
  });

  test('no two names get the same tag', () => {
    const names = ['a', '_a', '__a', '-a', '_-a', '.a', '_.a', 'sha256_x', '_sha256_x', 'a'.repeat(129), `_${'a'.repeat(129)}`, 'a b', 'a_b'];
    const tags = names.map(ociTag);
    expect(new Set(tags).size).toBe(names.length);
  });

  test('rejects an empty name or one with a slash', () => {
    expect(() => ociTag('')).toThrow(expect.objectContaining({ code: 'ERR_STORE_PATH' }));
    expect(() => ociTag('a/b')).toThrow(expect.objectContaining({ code: 'ERR_STORE_PATH' }));
  });
});

describe('repository mapping', () => {
  test('DIR/NAME goes to NAMESPACE/DIR, top-level files to NAMESPACE/meta', () => {
    expect(ociReference('acme/store', 'snaps/hello/3.snap')).toEqual({ repository: 'acme/store/snaps/hello', tag: '3.snap', name: '3.snap' });
    expect(ociReference('acme/store', 'assertions/snap-revision/-abc.assert')).toEqual({ repository: 'acme/store/assertions/snap-revision', tag: '_-abc.assert', name: '-abc.assert' });
    expect(ociReference('acme/store', 'store.json')).toEqual({ repository: 'acme/store/meta', tag: 'store.json', name: 'store.json' });
    expect(ociReference('', 'index.json').repository).toBe('meta');
    expect(ociReference('', 'snaps/a--b/1.snap').repository).toBe('snaps/a--b');
  });

  test('a hostile 100 kB path component is refused at once (the component check is linear)', () => {
    // distribution's `[-]*` separator backtracked exponentially on this: 30 characters took seconds.
    expect(() => ociReference('acme', `snaps/${'a'.repeat(100_000)}A/1.snap`)).toThrow(expect.objectContaining({ code: 'ERR_STORE_PATH' }));
    expect(() => ociReference('acme', `snaps/${'a-'.repeat(50_000)}/1.snap`)).toThrow(expect.objectContaining({ code: 'ERR_STORE_PATH' }));
    expect(ociReference('', `snaps/${'a-b.c__d'.repeat(4)}/1.snap`).repository).toBe(`snaps/${'a-b.c__d'.repeat(4)}`);
  });

  test.each([
    ['snaps/Hello/1.snap', 'not a repository name component'],
    ['snaps//1.snap', 'not a repository name component'],
    ['/index.json', 'not a repository name component'],
    ['snaps/-x/1.snap', 'not a repository name component'],
    ['snaps/../1.snap', 'not a repository name component'],
    ['snaps/hello/', 'names no file'],
    ['meta/x.json', 'reserved'],
    [`snaps/${'a'.repeat(250)}/1.snap`, 'longer than 255'],
  ])('rejects %s (ERR_STORE_PATH)', (path, why) => {
    expect(() => ociReference('ns', path)).toThrow(expect.objectContaining({ code: 'ERR_STORE_PATH', message: expect.stringContaining(why) }));
  });

  test('layer media type by extension', () => {
    expect(layerMediaType('3.snap')).toBe('application/vnd.edgeimage.snap.v1+squashfs');
    expect(layerMediaType('k.assert')).toBe('application/vnd.edgeimage.assertion.v1');
    expect(layerMediaType('index.json')).toBe('application/json');
    expect(layerMediaType('README')).toBe('application/octet-stream');
  });
});

describe('store URL', () => {
  test('oci:// is https except on loopback hosts; oci+http and oci+https force the transport', () => {
    expect(parseOciUrl('oci://registry.example.com/acme/store')).toEqual({ scheme: 'oci', protocol: 'https', host: 'registry.example.com', namespace: 'acme/store' });
    expect(parseOciUrl('oci://10.0.0.5:5000/ns').protocol).toBe('https');
    expect(parseOciUrl('oci://127.0.0.1:5000/ns').protocol).toBe('http');
    expect(parseOciUrl('oci://localhost:5000/ns').protocol).toBe('http');
    expect(parseOciUrl('oci://[::1]:5000/ns').protocol).toBe('http');
    expect(parseOciUrl('oci+https://127.0.0.1:5000/ns').protocol).toBe('https');
    expect(parseOciUrl('oci+http://registry.example.com/ns/')).toEqual({ scheme: 'oci+http', protocol: 'http', host: 'registry.example.com', namespace: 'ns' });
    expect(parseOciUrl('oci://registry.example.com').namespace).toBe('');
  });

  test.each(['http://h/ns', 'oci:///ns', 'oci://u:p@h/ns', 'oci://h/ns?x=1', 'oci://h/NS', 'oci://h/a//b'])('rejects %s (ERR_STORE_URL)', (url) => {
    expect(() => new OciBackend(url)).toThrow(expect.objectContaining({ code: 'ERR_STORE_URL' }));
  });

  test('locate names the repository and tag, with the store’s scheme', () => {
    expect(new OciBackend('oci://127.0.0.1:5000/ns').locate('snaps/hello/3.snap')).toBe('oci://127.0.0.1:5000/ns/snaps/hello:3.snap');
    expect(new OciBackend('oci+http://h:1/a/b').locate('index.json')).toBe('oci+http://h:1/a/b/meta:index.json');
  });
});

/** A raw distribution API call against the test registry. */
async function raw(base: string, method: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, { ...init, method });
}

/** Pushes a blob by hand (POST + PUT ?digest=). */
async function pushBlob(base: string, repo: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const post = await raw(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(post.status).toBe(202);
  const url = new URL(post.headers.get('location')!, base);
  url.searchParams.set('digest', sha256(data));
  const put = await fetch(url, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status).toBe(201);
  return { digest: sha256(data), size: data.length };
}

describeWithRegistry('OciBackend against a real registry (docker-registry)', () => {
  const registry = useRegistry({ proxy: true });
  let n = 0;
  /** A fresh store namespace per test. */
  const store = () => new OciBackend(registry().storeUrl(`t${++n}/store`));

  test('round-trips small files, top level and in directories, whatever their tag form', async () => {
    const b = store();
    const files: Record<string, Buffer> = {
      'store.json': Buffer.from('{"format":1}'),
      'index.json': Buffer.from('{"snaps":["hello"]}'),
      'snaps/hello/index.json': Buffer.from('{"name":"hello"}'),
      'assertions/snap-revision/-Qm1oTZ3vXyq8ZJv0RCsKXJ2SEm8ImVyOxPJN0gqBfWDo7k2rS8vbCwuYbsKgOk1.assert': Buffer.from('type: snap-revision\n'),
      [`assertions/validation-set/${'v'.repeat(140)}.assert`]: Buffer.from('type: validation-set\n'),
      'snaps/hello/empty.json': Buffer.alloc(0),
    };
    for (const [p, data] of Object.entries(files)) await b.write(p, data);
    for (const [p, data] of Object.entries(files)) expect((await b.read(p))?.equals(data)).toBe(true);
    // Replacing a file moves its tag.
    await b.write('index.json', Buffer.from('{"snaps":[]}'));
    expect((await b.read('index.json'))?.toString()).toBe('{"snaps":[]}');
  });

  test('stores each file as an OCI artifact: one layer, our media types, the empty config, the title', async () => {
    const b = store();
    await b.write('assertions/account/acme.assert', Buffer.from('type: account\n'));
    const { repository, tag } = b.reference('assertions/account/acme.assert');
    expect(repository).toBe(`t${n}/store/assertions/account`);
    const res = await raw(registry().url, 'GET', `/v2/${repository}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    const m = (await res.json()) as Record<string, unknown>;
    expect(m).toEqual({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.edgeimage.file.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(Buffer.from('{}')), size: 2, data: 'e30=' },
      layers: [{ mediaType: 'application/vnd.edgeimage.assertion.v1', digest: sha256(Buffer.from('type: account\n')), size: 14, annotations: { 'org.opencontainers.image.title': 'acme.assert' } }],
      annotations: { 'vnd.edgeimage.store.path': 'assertions/account/acme.assert' },
    });
  });

  test('streams a 20 MB bundle up and down; a second upload of the same bytes sends no blob', async () => {
    const b = store();
    const file = join(tempDir(), 'big.snap');
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(file, data);
    await b.writeFile('snaps/big/1.snap', file);
    const { stream, size } = await b.open('snaps/big/1.snap');
    expect(size).toBe(data.length);
    const hash = createHash('sha256');
    let got = 0;
    for await (const c of stream) {
      hash.update(c as Buffer);
      got += (c as Buffer).length;
    }
    expect(got).toBe(data.length);
    expect(`sha256:${hash.digest('hex')}`).toBe(sha256(data));

    registry().requests.length = 0;
    await b.writeFile('snaps/big/2.snap', file); // same bytes under another name
    const blobPuts = registry().requests.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'));
    expect(blobPuts).toEqual([]);
    // A bundle is streamed (open): read() holds store files other than bundles, at most 16 MiB.
    expect((await collect((await b.open('snaps/big/2.snap')).stream)).equals(data)).toBe(true);
  }, 30_000);

  test('open from an offset asks for a Range and gives the tail', async () => {
    const b = store();
    const file = join(tempDir(), 'hello.snap');
    const data = randomBytes(300_000);
    writeFileSync(file, data);
    await b.writeFile('snaps/hello/1.snap', file);
    registry().requests.length = 0;
    const { stream, size } = await b.open('snaps/hello/1.snap', 123_456);
    expect(size).toBe(data.length - 123_456);
    expect((await collect(stream)).equals(data.subarray(123_456))).toBe(true);
    const blobGet = registry().requests.find((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    expect(blobGet).toMatchObject({ range: 'bytes=123456-', status: 206, bytes: data.length - 123_456 });

    // From the very end: an empty stream (distribution's 416 there is malformed, so none is asked for).
    const atEnd = await b.open('snaps/hello/1.snap', data.length);
    expect(atEnd.size).toBe(0);
    expect((await collect(atEnd.stream)).length).toBe(0);
    const past = await storeError(b.open('snaps/hello/1.snap', data.length + 1));
    expect(past.code).toBe('ERR_STORE_RANGE');
  });

  test('a missing file: read gives undefined, open throws ERR_STORE_NOT_FOUND', async () => {
    const b = store();
    expect(await b.read('snaps/nothing/index.json')).toBeUndefined(); // no such repository
    await b.write('snaps/hello/index.json', Buffer.from('{}'));
    expect(await b.read('snaps/hello/7.snap')).toBeUndefined(); // no such tag
    const e = await storeError(b.open('snaps/hello/7.snap'));
    expect(e.code).toBe('ERR_STORE_NOT_FOUND');
    expect(e.message).toContain(`/t${n}/store/snaps/hello:7.snap`);
  });

  test('tagChannel puts the bundle under the channel tag, for plain distribution clients', async () => {
    const b = store();
    const file = join(tempDir(), 'hello.snap');
    const data = randomBytes(4096);
    writeFileSync(file, data);
    await b.writeFile('snaps/hello/3.snap', file);
    await b.tagChannel('hello', 'latest_stable_amd64', 'snaps/hello/3.snap');

    const repo = `t${n}/store/snaps/hello`;
    const byTag = await raw(registry().url, 'GET', `/v2/${repo}/manifests/latest_stable_amd64`, { headers: { accept: OCI_MANIFEST } });
    const byRevision = await raw(registry().url, 'GET', `/v2/${repo}/manifests/3.snap`, { headers: { accept: OCI_MANIFEST } });
    expect(byTag.status).toBe(200);
    expect(byTag.headers.get('docker-content-digest')).toBe(byRevision.headers.get('docker-content-digest'));
    const manifest = (await byTag.json()) as { layers: { digest: string; annotations: Record<string, string> }[] };
    expect(manifest.layers[0]!.annotations['org.opencontainers.image.title']).toBe('3.snap');
    const blob = await raw(registry().url, 'GET', `/v2/${repo}/blobs/${manifest.layers[0]!.digest}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(data)).toBe(true);
    await byRevision.body?.cancel();

    // Moving the channel moves the tag.
    await b.write('snaps/hello/4.snap', Buffer.from('four'));
    await b.tagChannel('hello', 'latest_stable_amd64', 'snaps/hello/4.snap');
    const moved = (await (await raw(registry().url, 'GET', `/v2/${repo}/manifests/latest_stable_amd64`, { headers: { accept: OCI_MANIFEST } })).json()) as { layers: { digest: string }[] };
    expect(moved.layers[0]!.digest).toBe(sha256(Buffer.from('four')));

    for (const bad of ['index.json', '_x', '-x', 'a/b']) {
      expect((await storeError(b.tagChannel('hello', bad, 'snaps/hello/3.snap'))).code).toBe('ERR_STORE_PATH');
    }
    expect((await storeError(b.tagChannel('hello', 'latest_edge_amd64', 'snaps/hello/9.snap'))).code).toBe('ERR_STORE_NOT_FOUND');
  });

  describe('a manifest that is not one of ours (pushed by hand) is ERR_REGISTRY_MANIFEST, naming repo:tag', () => {
    async function pushManifest(repo: string, tag: string, layers: { mediaType: string; data: Buffer }[]): Promise<void> {
      const base = registry().url;
      const config = await pushBlob(base, repo, Buffer.from('{}'));
      const descs = [];
      for (const l of layers) descs.push({ mediaType: l.mediaType, ...(await pushBlob(base, repo, l.data)) });
      const m = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.empty.v1+json', ...config }, layers: descs };
      const res = await raw(base, 'PUT', `/v2/${repo}/manifests/${tag}`, { body: JSON.stringify(m), headers: { 'content-type': OCI_MANIFEST } });
      expect(res.status).toBe(201);
    }

    test('two layers', async () => {
      const b = store();
      const repo = `t${n}/store/snaps/hello`;
      await pushManifest(repo, '1.snap', [
        { mediaType: 'application/vnd.edgeimage.snap.v1+squashfs', data: Buffer.from('a') },
        { mediaType: 'application/vnd.edgeimage.snap.v1+squashfs', data: Buffer.from('b') },
      ]);
      for (const e of [await storeError(b.read('snaps/hello/1.snap')), await storeError(b.open('snaps/hello/1.snap'))]) {
        expect(e.code).toBe('ERR_REGISTRY_MANIFEST');
        expect(e.message).toContain(`${repo}:1.snap`);
        expect(e.message).toContain('found 2 layers, expected exactly 1');
      }
    });

    test('a wrong layer media type', async () => {
      const b = store();
      const repo = `t${n}/store/meta`;
      await pushManifest(repo, 'index.json', [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', data: Buffer.from('{}') }]);
      const e = await storeError(b.read('index.json'));
      expect(e.code).toBe('ERR_REGISTRY_MANIFEST');
      expect(e.message).toContain(`${repo}:index.json`);
      expect(e.message).toContain('found layer media type application/vnd.oci.image.layer.v1.tar, expected application/json');
      expect(e.context).toMatchObject({ repository: repo, tag: 'index.json' });
    });
  });

  test('a connection cut mid-blob fails the stream with ERR_STORE_UNREACHABLE; open from the offset resumes', async () => {
    const b = store();
    const file = join(tempDir(), 'hello.snap');
    const data = randomBytes(1_000_000);
    writeFileSync(file, data);
    await b.writeFile('snaps/hello/1.snap', file);
    registry().faults.push({ method: 'GET', path: /\/blobs\/sha256:/, cutAfter: 300_000 });
    const { stream } = await b.open('snaps/hello/1.snap');
    const got: Buffer[] = [];
    const e = await storeError(
      (async () => {
        for await (const c of stream) got.push(c as Buffer);
      })(),
    );
    expect(e.code).toBe('ERR_STORE_UNREACHABLE');
    expect(registry().requests.at(-1)).toMatchObject({ method: 'GET', fault: 'cut after 300000 bytes' });
    const head = Buffer.concat(got);
    expect(head.length).toBeLessThanOrEqual(300_000);
    const rest = await b.open('snaps/hello/1.snap', head.length);
    expect(Buffer.concat([head, await collect(rest.stream)]).equals(data)).toBe(true);
  });

  test('an HTTP 500 is ERR_STORE_HTTP with the status, the URL and the registry’s error', async () => {
    const b = store();
    registry().faults.push({ method: 'GET', path: /\/manifests\//, status: 500 });
    const e = await storeError(b.open('snaps/hello/1.snap'));
    expect(e.code).toBe('ERR_STORE_HTTP');
    expect(e.context).toMatchObject({ status: 500, method: 'GET', url: `${registry().url}/v2/t${n}/store/snaps/hello/manifests/1.snap` });
    expect(e.message).toContain('HTTP 500');
    expect(e.message).toContain('UNKNOWN: fault injected by the test proxy');
  });

  test('an unmappable path is ERR_STORE_PATH before anything is sent', async () => {
    const b = store();
    registry().requests.length = 0;
    expect((await storeError(b.read('snaps/Hello/index.json'))).code).toBe('ERR_STORE_PATH');
    expect((await storeError(b.write('meta/x.json', Buffer.from('{}')))).code).toBe('ERR_STORE_PATH');
    expect(registry().requests).toEqual([]);
  });

  test('oci+https:// against a plain-HTTP registry is ERR_STORE_UNREACHABLE with a hint', async () => {
    const b = new OciBackend(`oci+https://${registry().host}/ns`);
    const e = await storeError(b.read('index.json'));
    expect(e.code).toBe('ERR_STORE_UNREACHABLE');
    expect(e.message).toContain('oci+http://');
  });
});

describeWithRegistry('OciBackend against a registry that wants credentials', () => {
  const registry = useRegistry({ auth: 'silly' });

  test('a 401 is ERR_REGISTRY_AUTH, naming the challenge', async () => {
    const b = new OciBackend(registry().storeUrl('ns'));
    for (const call of [() => b.read('index.json'), () => b.open('snaps/a/1.snap'), () => b.write('index.json', Buffer.from('{}'))]) {
      const e = await storeError(call());
      expect(e.code).toBe('ERR_REGISTRY_AUTH');
      expect(e.message).toContain('HTTP 401');
      expect(e.message).toContain('realm="edgeimage-test"');
      expect(e.context.status).toBe(401);
    }
  });
});

/**
 * A tiny server that impersonates a registry, for faults a real registry cannot produce (a blob
 * that does not match its digest, ignored Range, a redirected upload).
 */
async function fakeRegistry(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `oci+http://127.0.0.1:${port}/ns`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves `snaps/hello/1.snap` as a manifest naming `claimed`, and `served` as its blob. */
function serveBundle(claimed: Buffer, served: Buffer, opts: { ignoreRange?: boolean } = {}) {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(Buffer.from('{}')), size: 2 },
      layers: [{ mediaType: 'application/vnd.edgeimage.snap.v1+squashfs', digest: sha256(claimed), size: claimed.length }],
    }),
  );
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/v2/ns/snaps/hello/manifests/1.snap') {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(manifest) }).end(manifest);
    } else if (req.url === `/v2/ns/snaps/hello/blobs/${sha256(claimed)}`) {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && !opts.ignoreRange) {
        const from = Number(m[1]);
        res.writeHead(206, { 'content-range': `bytes ${from}-${served.length - 1}/${served.length}`, 'content-length': served.length - from }).end(served.subarray(from));
      } else {
        res.writeHead(200, { 'content-length': served.length }).end(served);
      }
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    }
  };
}

describe('OciBackend against an impersonated registry (faults a real one cannot produce)', () => {
  const bundle = randomBytes(100_000);

  test('a blob that does not match its digest: ERR_DIGEST_MISMATCH from read and from open', async () => {
    const tampered = Buffer.from(bundle);
    tampered[500] = tampered[500]! ^ 1;
    const fake = await fakeRegistry(serveBundle(bundle, tampered));
    try {
      const b = new OciBackend(fake.url);
      const e = await storeError(b.read('snaps/hello/1.snap'));
      expect(e.code).toBe('ERR_DIGEST_MISMATCH');
      expect(e.context).toMatchObject({ repository: 'ns/snaps/hello', tag: '1.snap', expected: sha256(bundle), actual: sha256(tampered) });
      const { stream } = await b.open('snaps/hello/1.snap');
      expect((await storeError(collect(stream))).code).toBe('ERR_DIGEST_MISMATCH');
    } finally {
      await fake.close();
    }
  });

  test('a registry that ignores Range: open skips the offset itself', async () => {
    const fake = await fakeRegistry(serveBundle(bundle, bundle, { ignoreRange: true }));
    try {
      const { stream, size } = await new OciBackend(fake.url).open('snaps/hello/1.snap', 70_000);
      expect(size).toBe(30_000);
      expect((await collect(stream)).equals(bundle.subarray(70_000))).toBe(true);
    } finally {
      await fake.close();
    }
  });

  test('a shorter blob than its descriptor says is ERR_SIZE_MISMATCH', async () => {
    const short = bundle.subarray(0, 99_000);
    const fake = await fakeRegistry(serveBundle(bundle, short));
    try {
      expect((await storeError(new OciBackend(fake.url).read('snaps/hello/1.snap'))).code).toBe('ERR_SIZE_MISMATCH');
    } finally {
      await fake.close();
    }
  });

  test('a registry that redirects the blob upload PUT is ERR_STORE_HTTP (a stream cannot be sent twice)', async () => {
    let base = '';
    const fake = await fakeRegistry((req, res) => {
      req.resume();
      if (req.method === 'HEAD') res.writeHead(404).end();
      else if (req.method === 'POST') res.writeHead(202, { location: `${base}/v2/ns/snaps/hello/blobs/uploads/u1` }).end();
      else res.writeHead(307, { location: `${base}/elsewhere` }).end();
    });
    base = fake.url.replace('oci+http', 'http').replace(/\/ns$/, '');
    try {
      const file = join(tempDir(), 'x.snap');
      writeFileSync(file, bundle);
      const e = await storeError(new OciBackend(fake.url).writeFile('snaps/hello/1.snap', file));
      expect(e.code).toBe('ERR_STORE_HTTP');
      expect(e.message).toContain('redirect');
    } finally {
      await fake.close();
    }
  });
});

test('a registry nobody listens on is ERR_STORE_UNREACHABLE (read, open, write)', async () => {
  const port = await freePort();
  const b = new OciBackend(`oci+http://127.0.0.1:${port}/ns`);
  for (const call of [() => b.read('index.json'), () => b.open('snaps/a/1.snap'), () => b.write('index.json', Buffer.from('{}'))]) {
    const e = await storeError(call());
    expect(e.code).toBe('ERR_STORE_UNREACHABLE');
    expect(e.context.cause).toBe('ECONNREFUSED');
  }
});

describeWithRegistry('the registry test harness', () => {
  test('starts a registry that answers /v2/, and stop() removes its storage', async () => {
    const r = await startRegistry();
    const res = await fetch(`${r.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    await r.stop();
    await r.stop(); // idempotent
    const { existsSync } = await import('node:fs');
    expect(existsSync(r.root)).toBe(false);
    await expect(fetch(`${r.url}/v2/`)).rejects.toThrow();
  });

  test('a registry that cannot start fails with its stderr', async () => {
    const dir = tempDir();
    const bin = join(dir, 'fake-registry');
    writeFileSync(bin, '#!/bin/sh\necho "configuration error: nope" >&2\nexit 1\n', { mode: 0o755 });
    await expect(startRegistry({ bin })).rejects.toThrow(/exited \(code 1.*\n.*configuration error: nope/s);
  });
});
