import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { type Assertion, PrivateKey, sha3_384Digest } from '@edgeimage/assertions';
import { serveDirectory, type StaticServer } from '@edgeimage/testkit/http-server';
import { missingRoot, requires } from '@edgeimage/testkit/skips';
import { describeWithRegistry, useRegistry } from '@edgeimage/testkit/oci-registry';
import { Store } from '../store.js';
import { bundlePath } from '../layout.js';
import { BundleCache } from './cache.js';
import { resolveModel, type ResolveEvent, type ResolveOptions } from './resolve.js';
import { AT, SNAPS, makeWorld, type World } from '@edgeimage/testkit/store-world';
import { StoreError } from '../errors.js';

const FAST_RETRY = { retries: 2, baseDelayMs: 5 };

let world: World;
let server: StaticServer;
let n = 0;
const newCache = () => new BundleCache(join(world.dir, `cache-${++n}`));

beforeAll(async () => {
  world = await makeWorld();
  server = await serveDirectory(world.storeDir);
}, 60_000);

afterAll(async () => {
  await server?.close();
  world?.cleanup();
});

beforeEach(() => server.reset());

async function resolveWith(input: Assertion[], opts: Partial<ResolveOptions> & { url?: string } = {}) {
  const store = opts.store ?? (await Store.open(opts.url ?? server.url));
  return resolveModel(input, { store, trusted: world.trusted, at: AT, cache: opts.cache ?? newCache(), retry: FAST_RETRY, ...opts });
}

const modelInput = (model = world.model()) => [...world.brandAssertions, model];

async function failure(p: Promise<unknown>): Promise<StoreError & { code: string }> {
  try {
    await p;
  } catch (e) {
    return e as StoreError;
  }
  throw new Error('expected the resolve to fail');
}

/** The cache holds nothing but verified bundles: no temp files, no entries for `names`' digests. */
function expectNothingCached(cache: BundleCache, also: string[] = []) {
  expect(existsSync(cache.tmpDir) ? readdirSync(cache.tmpDir) : []).toEqual([]);
  for (const sha of also) expect(existsSync(cache.pathOf(sha))).toBe(false);
}

async function shaOf(name: string, revision = 1): Promise<string> {
  const idx = await world.store.snapIndex(name);
  return idx!.revisions.find((r) => r.revision === revision)!['sha3-384'];
}

describe('resolve from an HTTP store', () => {
  test('fetches exactly what the signed model pins, each file verified, into the cache', async () => {
    const cache = newCache();
    const events: ResolveEvent[] = [];
    const r = await resolveWith(modelInput(), { cache, onEvent: (e) => events.push(e) });
    expect(r.bundles.map((b) => [b.name, b.type, b.revision])).toEqual(
      expect.arrayContaining(SNAPS.map((s) => [s.name, s.type, 1])),
    );
    expect(r.downloaded).toBe(SNAPS.length);
    for (const b of r.bundles) {
      expect(b['snap-id']).toBe(world.snapId(b.name));
      expect(b.path).toBe(cache.pathOf(b['sha3-384']));
      expect(sha3_384Digest(readFileSync(b.path))).toBe(b['sha3-384']);
      expect(readFileSync(b.path).length).toBe(b.size);
      expect(b.url).toBe(`${server.url}/${bundlePath(b.name, b.revision)}`);
    }
    // The validation-set came from the store; the model travelled with its brand's chain.
    expect(r.assertions.map((a) => a.type)).toEqual(expect.arrayContaining(['model', 'validation-set', 'snap-declaration', 'snap-revision', 'account-key']));
    expect(events.filter((e) => e.kind === 'download-done')).toHaveLength(SNAPS.length);
    expectNothingCached(cache);
  });

  test('a second resolve with a warm cache downloads no bundle file', async () => {
    const cache = newCache();
    await resolveWith(modelInput(), { cache });
    server.reset();
    const again = await resolveWith(modelInput(), { cache });
    expect(again.downloaded).toBe(0);
    const bundleRequests = server.log.filter((r) => r.path.endsWith('.snap'));
    expect(bundleRequests).toEqual([]);
  });

  test('two resolves into the same cache at once both succeed and leave a sound cache', async () => {
    const cache = newCache();
    const [a, b] = await Promise.all([resolveWith(modelInput(), { cache }), resolveWith(modelInput(), { cache: new BundleCache(cache.dir) })]);
    expect(a.bundles.map((x) => x.path)).toEqual(b.bundles.map((x) => x.path));
    const files = readdirSync(cache.bundlesDir).sort();
    expect(files).toEqual(a.bundles.map((x) => `${x['sha3-384']}.snap`).sort());
    for (const f of files) expect(`${sha3_384Digest(readFileSync(join(cache.bundlesDir, f)))}.snap`).toBe(f);
    expectNothingCached(cache);
  });

  test('resumes a download cut mid-file with a Range request', async () => {
    const path = bundlePath('pc-kernel', 1);
    const cut = await serveDirectory(world.storeDir, { fault: (req) => (req.path === path && req.count === 1 ? 'drop-mid-body' : undefined), dropAfter: 100_000 });
    try {
      const cache = newCache();
      const events: ResolveEvent[] = [];
      const r = await resolveWith(modelInput(), { url: cut.url, cache, onEvent: (e) => events.push(e) });
      const kernel = r.bundles.find((b) => b.name === 'pc-kernel')!;
      expect(sha3_384Digest(readFileSync(kernel.path))).toBe(kernel['sha3-384']);
      const gets = cut.log.filter((x) => x.path === path);
      expect(gets).toHaveLength(2);
      expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
      expect(Number(/bytes=(\d+)-/.exec(gets[1]!.range!)![1])).toBeGreaterThan(0);
      expect(events.some((e) => e.kind === 'retry')).toBe(true);
    } finally {
      await cut.close();
    }
  });
});

describe('bad input: a clear error, and nothing enters the cache', () => {
  test('a tampered bundle: digest mismatch naming the snap, expected and actual digests', async () => {
    const cache = newCache();
    const sha = await shaOf('hello');
    const bad = await serveDirectory(world.storeDir, { fault: (req) => (req.path === bundlePath('hello', 1) ? 'corrupt' : undefined) });
    try {
      const e = await failure(resolveWith(modelInput(), { url: bad.url, cache }));
      expect(e.code).toBe('ERR_DIGEST_MISMATCH');
      expect(e.message).toContain('bundle hello');
      expect(e.message).toContain(sha);
      expect(e.context).toMatchObject({ snap: 'hello', expected: sha });
      expect((e.context as { actual: string }).actual).not.toBe(sha);
      expectNothingCached(cache, [sha]);
    } finally {
      await bad.close();
    }
  });

  test('a truncated bundle: size mismatch', async () => {
    const cache = newCache();
    const sha = await shaOf('pc-kernel');
    const bad = await serveDirectory(world.storeDir, { fault: (req) => (req.path === bundlePath('pc-kernel', 1) ? 'truncate' : undefined) });
    try {
      const e = await failure(resolveWith(modelInput(), { url: bad.url, cache }));
      expect(e.code).toBe('ERR_SIZE_MISMATCH');
      expect(e.message).toContain('pc-kernel');
      expectNothingCached(cache, [sha]);
    } finally {
      await bad.close();
    }
  });

  test('a snap-revision signed by a key the resolver does not trust', async () => {
    const strangerStore = join(world.dir, 'stranger-store');
    const key = await PrivateKey.generate(2048);
    const store = await Store.init(strangerStore, { authorityId: 'acme-store', key, keyName: 'store' });
    await store.publishAssertion(await world.store.assertion('validation-set', ['16', 'acme', 'world', '1']) as Assertion);
    for (const s of SNAPS) {
      const src = join(world.storeDir, bundlePath(s.name, 1));
      await store.publish(src, { channel: 'stable', key });
    }
    const e = await failure(resolveWith(modelInput(), { store }));
    expect(['ERR_UNKNOWN_KEY', 'ERR_KEY_AUTHORITY_MISMATCH']).toContain(e.code);
    expect(e.message).toMatch(/snap-(declaration|revision)/);
  });

  test('a model whose snap-id is not the one the store declares', async () => {
    const snaps = SNAPS.map((s) => ({ name: s.name, id: s.name === 'hello' ? 'A'.repeat(32) : world.snapId(s.name), type: s.type }));
    const vs = world.validationSet(Object.fromEntries(SNAPS.map((s) => [s.name, 1])));
    const model = world.model({ grade: 'signed' }, snaps);
    const e = await failure(resolveWith([...modelInput(model), vs]));
    expect(e.code).toBe('ERR_SNAP_ID_MISMATCH');
    expect(e.message).toContain('hello');
  });

  test('a bundle of the wrong architecture', async () => {
    const model = world.model({ architecture: 'arm64' });
    const cache = newCache();
    const e = await failure(resolveWith(modelInput(model), { cache }));
    expect(e.code).toBe('ERR_WRONG_ARCH');
    expect(e.message).toMatch(/built for amd64, but the model is for arm64/);
    expectNothingCached(cache, [await shaOf('pc')]);
  });

  test('a bundle of the wrong type', async () => {
    // The model wants "hello" as its gadget; the store's hello is an app.
    const snaps = SNAPS.filter((s) => s.name !== 'pc').map((s) => ({ name: s.name, id: world.snapId(s.name), type: s.name === 'hello' ? 'gadget' : s.type }));
    const e = await failure(resolveWith(modelInput(world.model({}, snaps))));
    expect(e.code).toBe('ERR_WRONG_TYPE');
    expect(e.message).toMatch(/hello revision 1 is of type app, but the model needs type gadget/);
  });

  test('a pinned revision the store does not have', async () => {
    const vs = world.validationSet({ ...Object.fromEntries(SNAPS.map((s) => [s.name, 1])), hello: 9 });
    const e = await failure(resolveWith([...modelInput(), vs]));
    expect(e.code).toBe('ERR_STORE_NO_REVISION');
    expect(e.message).toMatch(/hello revision 9 \(pinned by acme\/world\/1\) is not in the store .* \(revisions: 1\)/);
  });

  test('a channel the store does not have', async () => {
    const snaps = SNAPS.map((s) => ({ name: s.name, id: world.snapId(s.name), type: s.type, 'default-channel': s.name === 'hello' ? 'latest/edge' : 'latest/stable' }));
    const model = world.model({ 'validation-sets': [] as never, grade: 'signed' }, snaps);
    const e = await failure(resolveWith(modelInput(model), { allowUnpinned: true }));
    expect(e.code).toBe('ERR_STORE_NO_CHANNEL');
    expect(e.message).toMatch(/hello has no revision for amd64 in channel latest\/edge/);
  });

  test('a grade signed model with unpinned snaps is refused unless --allow-unpinned', async () => {
    const vs = world.validationSet({ pc: 1, 'pc-kernel': 1, 'tiny-base': 1, hello: undefined });
    const e = await failure(resolveWith([...modelInput(), vs]));
    expect(e.code).toBe('ERR_UNPINNED');
    expect(e.message).toMatch(/hello is not pinned/);
    const ok = await resolveWith([...modelInput(), vs], { allowUnpinned: true });
    expect(ok.bundles.find((b) => b.name === 'hello')!.revision).toBe(1);
  });

  test('a validation-set neither given nor in the store', async () => {
    const model = world.model({ 'validation-sets': [{ 'account-id': 'acme', name: 'nowhere', mode: 'enforce' }] as never });
    const e = await failure(resolveWith(modelInput(model)));
    expect(e.code).toBe('ERR_MISSING_VALIDATION_SET');
    expect(e.message).toMatch(/validation-set acme\/nowhere/);
  });

  test('a store that cannot be reached, after retries', async () => {
    const dead = await serveDirectory(world.storeDir);
    const url = dead.url;
    const store = await Store.open(url);
    await dead.close();
    const events: ResolveEvent[] = [];
    const e = await failure(resolveWith(modelInput(), { store, onEvent: (x) => events.push(x) }));
    expect(e.code).toBe('ERR_STORE_UNREACHABLE');
    expect(e.message).toMatch(/gave up after 3 attempts/);
    expect(events.filter((x) => x.kind === 'retry')).toHaveLength(2);
  });

  test('HTTP 404 for a bundle file', async () => {
    const cache = newCache();
    const missing = await serveDirectory(world.storeDir, { fault: (req) => (req.path === bundlePath('hello', 1) ? 'status:404' : undefined) });
    try {
      const e = await failure(resolveWith(modelInput(), { url: missing.url, cache }));
      expect(e.code).toBe('ERR_STORE_NOT_FOUND');
      expect(e.message).toContain(bundlePath('hello', 1));
      expect(missing.count(bundlePath('hello', 1))).toBe(1); // a 404 is not retried
      expectNothingCached(cache);
    } finally {
      await missing.close();
    }
  });

  test('HTTP 500, retried and then reported', async () => {
    const broken = await serveDirectory(world.storeDir, { fault: (req) => (req.path === bundlePath('hello', 1) ? 'status:500' : undefined) });
    try {
      const e = await failure(resolveWith(modelInput(), { url: broken.url }));
      expect(e.code).toBe('ERR_STORE_HTTP');
      expect(e.message).toMatch(/gave up after 3 attempts/);
      expect(broken.count(bundlePath('hello', 1))).toBe(3);
    } finally {
      await broken.close();
    }
  });

  requires(missingRoot('mounting a tmpfs')).test('a full disk in the cache (a real tmpfs, filled): named, and nothing cached', async () => {
    const mnt = mkdtempSync(join(world.dir, 'full-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const cache = new BundleCache(mnt);
      cache.prepare();
      spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4096', 'count=1024']);
      const e = await failure(resolveWith(modelInput(), { cache, concurrency: 1 }));
      expect(e.code).toBe('ERR_CACHE_WRITE');
      expect(e.message).toMatch(/no space left on device/);
      expectNothingCached(cache);
      expect(readdirSync(cache.bundlesDir)).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('a model that does not verify is refused before anything is fetched', async () => {
    const text = world.model().encode().toString().replace('model: kiosk', 'model: kiosq');
    const { decodeStream } = await import('@edgeimage/assertions');
    const e = await failure(resolveWith([...world.brandAssertions, ...decodeStream(Buffer.from(text))]));
    expect(e.code).toBe('ERR_SIGNATURE_INVALID');
    expect(server.log.filter((r) => r.path.endsWith('.snap'))).toEqual([]);
  });

  test('temp files of a process that died are removed', async () => {
    const cache = newCache();
    cache.prepare();
    const stale = join(cache.tmpDir, `999999-dead-${'x'.repeat(64)}.part`);
    writeFileSync(stale, 'half a bundle');
    await resolveWith(modelInput(), { cache });
    expect(existsSync(stale)).toBe(false);
  });
});

describe('more bad input', () => {
  test('an input with no model, or with two, is refused', async () => {
    const none = await failure(resolveWith([...world.brandAssertions]));
    expect(none.code).toBe('ERR_MODEL');
    expect(none.message).toMatch(/expected exactly one model assertion, found 0/);
    const two = await failure(resolveWith([...modelInput(), world.model({ model: 'other' })]));
    expect(two.code).toBe('ERR_MODEL');
    expect(two.message).toMatch(/found 2/);
  });

  test('a snap the model requires but its validation-set marks invalid', async () => {
    const vs = world.validationSet(Object.fromEntries(SNAPS.map((s) => [s.name, 1])), { sequence: '2' });
    const text = vs.content.toString().replace(/(name: hello\n\s+presence: )required\n\s+revision: 1/, '$1invalid');
    expect(text).not.toBe(vs.content.toString());
    const { encodeSigned, decodeStream } = await import('@edgeimage/assertions');
    const invalid = decodeStream(encodeSigned(Buffer.from(text), world.brandKey.sign(Buffer.from(text))))[0]!;
    const model = world.model({ 'validation-sets': [{ 'account-id': 'acme', name: 'world', sequence: '2', mode: 'enforce' }] as never });
    const e = await failure(resolveWith([...modelInput(model), invalid]));
    expect(e.code).toBe('ERR_VALIDATION');
    expect(e.message).toMatch(/hello is required by the model but invalid in validation-set acme\/world\/2/);
  });

  test('a store without the snap-revision assertion of a revision it lists', async () => {
    const copy = join(world.dir, 'store-no-rev');
    rmSync(copy, { recursive: true, force: true });
    (await import('node:fs')).cpSync(world.storeDir, copy, { recursive: true });
    const sha = await shaOf('hello');
    rmSync(join(copy, 'assertions', 'snap-revision', `${sha}.global-upload.assert`));
    const e = await failure(resolveWith(modelInput(), { store: await Store.open(copy) }));
    expect(e.code).toBe('ERR_STORE_NO_ASSERTION');
    expect(e.message).toContain(`no snap-revision assertion for hello revision 1 (sha3-384 ${sha})`);
  });

  test('a local bundle for a snap the model does not have', async () => {
    const file = join(world.storeDir, bundlePath('hello', 1));
    const model = world.model({ grade: 'dangerous' }, SNAPS.filter((s) => s.name !== 'hello').map((s) => ({ name: s.name, type: s.type })));
    const e = await failure(resolveWith(modelInput(model), { localBundles: [file] }));
    expect(e.code).toBe('ERR_SNAP_NOT_IN_MODEL');
    expect(e.message).toMatch(/the model has no snap named "hello"/);
  });
});

describe('local bundles (--snap)', () => {
  test('are refused for a model that is not of grade dangerous', async () => {
    const file = join(world.storeDir, bundlePath('hello', 1));
    const e = await failure(resolveWith(modelInput(), { localBundles: [file] }));
    expect(e.code).toBe('ERR_SNAP_NOT_DANGEROUS');
    expect(e.message).toMatch(/allowed only for models of grade dangerous.*grade signed/);
  });

  test('replace the store\'s bundle in a dangerous model', async () => {
    const file = join(world.storeDir, bundlePath('hello', 1));
    const r = await resolveWith(modelInput(world.model({ grade: 'dangerous' })), { localBundles: [file] });
    const hello = r.bundles.find((b) => b.name === 'hello')!;
    expect(hello).toMatchObject({ revision: 0, path: file, url: `file://${file}` });
    expect(r.bundles.map((b) => b.name)).toEqual(r.model.snaps.map((s) => s.name));
    expect(server.log.some((x) => x.path === bundlePath('hello', 1))).toBe(false);
  });
});

describe('a tampered store file on disk', () => {
  test('a bundle replaced in the store directory is refused', async () => {
    const copy = join(world.dir, 'store-copy');
    rmSync(copy, { recursive: true, force: true });
    (await import('node:fs')).cpSync(world.storeDir, copy, { recursive: true });
    const f = join(copy, bundlePath('tiny-base', 1));
    const bytes = readFileSync(f);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(f, bytes);
    const e = await failure(resolveWith(modelInput(), { store: await Store.open(copy) }));
    expect(e.code).toBe('ERR_DIGEST_MISMATCH');
    truncateSync(f, 10);
    const e2 = await failure(resolveWith(modelInput(), { store: await Store.open(copy) }));
    expect(e2.code).toBe('ERR_SIZE_MISMATCH');
  });
});

describeWithRegistry('resolve from an OCI registry store', () => {
  const registry = useRegistry();

  test('publishes to the registry and resolves from it', async () => {
    const url = registry().storeUrl('acme/store');
    const store = await Store.init(url, { authorityId: 'acme-store', key: world.storeKey, keyName: 'store' });
    await store.publishAssertion((await world.store.assertion('account', ['acme-store']))!);
    await store.publishAssertion((await world.store.assertion('validation-set', ['16', 'acme', 'world', '1']))!);
    for (const s of SNAPS) await store.publish(join(world.storeDir, bundlePath(s.name, 1)), { channel: 'stable', key: world.storeKey });
    const cache = newCache();
    const r = await resolveWith(modelInput(), { store: await Store.open(url), cache });
    expect(r.downloaded).toBe(SNAPS.length);
    for (const b of r.bundles) expect(sha3_384Digest(readFileSync(b.path))).toBe(b['sha3-384']);
    expect(r.bundles[0]!.url).toMatch(/^oci/);
  });
});
