import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buffer } from 'node:stream/consumers';
import { TrustDatabase, decodeStream, signAssertion, snapIdFor, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { makeChain, newKey, type TestChain } from '@edgeimage/testkit/signing-chain';
import type { StoreBackend } from './backends/backend.js';
import { DirBackend } from './backends/dir.js';
import { fileDigest } from './bundle/digest.js';
import { EdgeimageError } from '@edgeimage/assertions';
import { bundlePath, snapIndexPath, storeIndexPath, storeMetaPath } from './layout.js';
import { Store, assertionPathOf, checkChannel } from './store.js';
import { serveDirectory, type StaticServer } from '@edgeimage/testkit/http-server';
import { describeWithRegistry, useRegistry } from '@edgeimage/testkit/oci-registry';
import { OciBackend } from './backends/oci.js';

const AUTHORITY = 'acme-store';
const made: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-store-test-'));
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A real bundle: a squashfs with meta/snap.yaml, as `mksquashfs` makes it. */
function makeBundle(opts: { name: string; version?: string; type?: string; architectures?: string[]; payload?: string }): string {
  const dir = tempDir();
  const src = join(dir, 'src');
  mkdirSync(join(src, 'meta'), { recursive: true });
  const arch = opts.architectures ?? ['amd64'];
  writeFileSync(
    join(src, 'meta', 'snap.yaml'),
    [`name: ${opts.name}`, `version: '${opts.version ?? '1.0'}'`, `type: ${opts.type ?? 'app'}`, 'architectures:', ...arch.map((a) => `  - ${a}`), ''].join('\n'),
  );
  writeFileSync(join(src, 'payload.txt'), opts.payload ?? `${opts.name} ${opts.version ?? '1.0'}\n`);
  const file = join(dir, `${opts.name}_${opts.version ?? '1.0'}_${arch.join('-')}.snap`);
  execFileSync('mksquashfs', [src, file, '-noappend', '-all-root', '-quiet', '-no-progress'], { stdio: 'ignore' });
  return file;
}

/** Runs `fn`, which must fail with an EdgeimageError of `code`; returns it for more checks. */
async function refusal(code: string, fn: () => Promise<unknown>): Promise<EdgeimageError> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof EdgeimageError)) throw e;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

let chain: TestChain;
let storeKey: PrivateKey;
let otherKey: PrivateKey;
let storeAccount: Assertion;
let storeAccountKey: Assertion;
let hello1: string;
let hello2: string;

beforeAll(async () => {
  chain = await makeChain('acme-root');
  storeKey = await newKey();
  otherKey = await newKey();
  storeAccount = chain.account(AUTHORITY);
  storeAccountKey = chain.accountKey(storeKey, AUTHORITY, { name: 'store' });
  hello1 = makeBundle({ name: 'hello-kiosk', version: '1.0' });
  hello2 = makeBundle({ name: 'hello-kiosk', version: '1.1' });
});

const init = (url: string) => Store.init(url, { authorityId: AUTHORITY, key: storeKey, keyName: 'store' });

/** A trust database that trusts the test root and, directly, the store's account and key. */
function storeTrust(): TrustDatabase {
  return new TrustDatabase({ trusted: [...chain.anchors, storeAccount, storeAccountKey] });
}

describe('checkChannel', () => {
  it.each([
    ['stable', 'latest/stable'],
    ['edge', 'latest/edge'],
    ['latest/candidate', 'latest/candidate'],
    ['22', '22/stable'],
    ['22/beta', '22/beta'],
    ['edge/fix-1', 'latest/edge/fix-1'],
    ['1.x/stable/hotfix', '1.x/stable/hotfix'],
  ])('reads %s as %s', (given, full) => {
    expect(checkChannel(given)).toBe(full);
  });

  it.each(['', 'latest/foo', 'latest/stable/a/b', 'latest//stable', '-x/stable', 'latest/stable/-b', 'stable/'])('refuses %j with ERR_STORE_CHANNEL', (bad) => {
    expect(() => checkChannel(bad)).toThrow(expect.objectContaining({ code: 'ERR_STORE_CHANNEL', message: expect.stringContaining('expected track/risk[/branch]') }));
  });
});

describe('a directory store', () => {
  let dir: string;
  let store: Store;

  beforeAll(async () => {
    dir = join(tempDir(), 'store');
    store = await init(dir);
  });

  it('init writes store.json (format, authority, key id and name) and an empty index', async () => {
    expect(JSON.parse(readFileSync(join(dir, storeMetaPath), 'utf8'))).toEqual({ format: 1, 'authority-id': AUTHORITY, 'key-id': storeKey.publicKey.id, 'key-name': 'store' });
    expect(JSON.parse(readFileSync(join(dir, storeIndexPath), 'utf8'))).toEqual({ snaps: [] });
    const opened = await Store.open(dir);
    expect(opened.meta['authority-id']).toBe(AUTHORITY);
    expect(await opened.list()).toEqual([]);
  });

  it('publishes a bundle as revision 1 with a signed declaration and revision that verify through the store chain', async () => {
    const r = await store.publish(hello1, { channel: 'stable', key: storeKey });
    const { sha3_384, size } = await fileDigest(hello1);
    const snapId = snapIdFor(AUTHORITY, 'hello-kiosk');
    expect(r).toMatchObject({ name: 'hello-kiosk', snapId, revision: 1, sha3_384, size, architectures: ['amd64'], type: 'app' });
    expect(r.assertions.map((a) => a.type)).toEqual(['snap-declaration', 'snap-revision']);
    const [decl, rev] = r.assertions as [Assertion, Assertion];
    expect(decl.headers).toMatchObject({ 'authority-id': AUTHORITY, series: '16', 'snap-id': snapId, 'snap-name': 'hello-kiosk', 'publisher-id': AUTHORITY });
    expect(rev.headers).toMatchObject({ 'authority-id': AUTHORITY, 'snap-sha3-384': sha3_384, 'snap-id': snapId, 'snap-size': String(size), 'snap-revision': '1', 'developer-id': AUTHORITY });

    // What is in the store is what publish returned, and it verifies.
    const storedDecl = await store.assertion('snap-declaration', ['16', snapId]);
    const storedRev = await store.assertion('snap-revision', [sha3_384]);
    expect(storedDecl!.encode().equals(decl.encode())).toBe(true);
    expect(storedRev!.encode().equals(rev.encode())).toBe(true);
    const results = storeTrust().addAll([storedDecl!, storedRev!]);
    expect(results.map((x) => x.error?.message)).toEqual([undefined, undefined]);

    // The bundle is stored byte for byte.
    expect(readFileSync(join(dir, bundlePath('hello-kiosk', 1))).equals(readFileSync(hello1))).toBe(true);
  });

  it('lists the snap with its revision and the channel map; `stable` is `latest/stable`', async () => {
    const { sha3_384, size } = await fileDigest(hello1);
    expect(await store.list()).toEqual([
      {
        name: 'hello-kiosk',
        'snap-id': snapIdFor(AUTHORITY, 'hello-kiosk'),
        type: 'app',
        publisher: AUTHORITY,
        revisions: [{ revision: 1, 'sha3-384': sha3_384, size, architectures: ['amd64'], version: '1.0' }],
        channels: { 'latest/stable': { amd64: 1 } },
      },
    ]);
    expect(JSON.parse(readFileSync(join(dir, storeIndexPath), 'utf8'))).toEqual({ snaps: ['hello-kiosk'] });
  });

  it('gives a second publish revision 2 under the same snap-id, without a new declaration', async () => {
    const r = await store.publish(hello2, { channel: 'latest/edge', key: storeKey });
    expect(r.revision).toBe(2);
    expect(r.snapId).toBe(snapIdFor(AUTHORITY, 'hello-kiosk'));
    expect(r.assertions.map((a) => a.type)).toEqual(['snap-revision']);
    const index = await store.snapIndex('hello-kiosk');
    expect(index!.revisions.map((x) => [x.revision, x.version])).toEqual([
      [1, '1.0'],
      [2, '1.1'],
    ]);
    expect(index!.channels).toEqual({ 'latest/stable': { amd64: 1 }, 'latest/edge': { amd64: 2 } });
    expect(storeTrust().addAll([(await store.assertion('snap-declaration', ['16', r.snapId]))!, r.assertions[0]!]).map((x) => x.error?.message)).toEqual([undefined, undefined]);
  });

  it('releases an existing revision to another channel', async () => {
    const index = await store.release('hello-kiosk', 2, 'candidate');
    expect(index.channels['latest/candidate']).toEqual({ amd64: 2 });
    await store.release('hello-kiosk', 2, 'stable');
    expect((await store.snapIndex('hello-kiosk'))!.channels).toEqual({ 'latest/stable': { amd64: 2 }, 'latest/edge': { amd64: 2 }, 'latest/candidate': { amd64: 2 } });
    await store.release('hello-kiosk', 1, 'latest/stable');
    expect((await store.snapIndex('hello-kiosk'))!.channels['latest/stable']).toEqual({ amd64: 1 });
  });

  it('refuses to release a revision that does not exist, listing those that do', async () => {
    const e = await refusal('ERR_STORE_NO_REVISION', () => store.release('hello-kiosk', 7, 'stable'));
    expect(e.message).toContain('snap hello-kiosk has no revision 7');
    expect(e.message).toContain('(revisions: 1, 2)');
    const missing = await refusal('ERR_STORE_NO_SNAP', () => store.release('no-such-snap', 1, 'stable'));
    expect(missing.message).toContain('snaps there: hello-kiosk');
  });

  it('refuses a bad channel on publish and release, before writing anything', async () => {
    const before = await store.snapIndex('hello-kiosk');
    const e = await refusal('ERR_STORE_CHANNEL', () => store.publish(makeBundle({ name: 'hello-kiosk', version: '9' }), { channel: 'latest/gamma', key: storeKey }));
    expect(e.message).toContain('invalid channel "latest/gamma": risk "gamma" is not a risk');
    await refusal('ERR_STORE_CHANNEL', () => store.release('hello-kiosk', 1, 'a/b/c/d'));
    expect(await store.snapIndex('hello-kiosk')).toEqual(before);
  });

  it('refuses to publish with a key that is not the store key', async () => {
    const e = await refusal('ERR_STORE_KEY', () => store.publish(makeBundle({ name: 'intruder' }), { channel: 'stable', key: otherKey }));
    expect(e.message).toContain(`key ${otherKey.publicKey.id} is not the key of the store at ${dir}`);
    expect(e.message).toContain(`signs as ${AUTHORITY} with key ${storeKey.publicKey.id} (key-name "store")`);
    expect(existsSync(join(dir, 'snaps', 'intruder'))).toBe(false);
  });

  it('refuses the same file twice, naming its revision', async () => {
    const e = await refusal('ERR_STORE_DUPLICATE', () => store.publish(hello1, { channel: 'stable', key: storeKey }));
    expect(e.message).toContain('is already revision 1 of hello-kiosk');
  });

  it('refuses a --snap-id that differs from the declared one', async () => {
    const e = await refusal('ERR_STORE_SNAP_ID', () => store.publish(makeBundle({ name: 'hello-kiosk', version: '3' }), { channel: 'stable', key: storeKey, snapId: 'A'.repeat(32) }));
    expect(e.message).toContain('differs from the snap-id it was declared with');
  });

  it('refuses init where a store already is, and in a non-empty directory', async () => {
    const e = await refusal('ERR_STORE_EXISTS', () => init(dir));
    expect(e.message).toContain(`a store already exists at ${dir}`);
    const other = tempDir();
    writeFileSync(join(other, 'notes.txt'), 'hi');
    const f = await refusal('ERR_STORE_EXISTS', () => init(other));
    expect(f.message).toContain(`${other} is not empty (notes.txt)`);
  });

  it('refuses to open a directory that is not a store', async () => {
    const plain = tempDir();
    const e = await refusal('ERR_STORE_NOT_FOUND', () => Store.open(plain));
    expect(e.message).toContain(`not an edgeimage store: no store.json at ${join(plain, 'store.json')}`);
    await refusal('ERR_STORE_NOT_FOUND', () => Store.open(join(plain, 'missing')));
  });
});

describe('snap ids and architectures', () => {
  it('gives a name the same snap-id in every fresh store of the same authority', async () => {
    const a = await init(join(tempDir(), 's'));
    const b = await init(pathToFileURL(join(tempDir(), 's')).href);
    const ra = await a.publish(hello1, { channel: 'stable', key: storeKey });
    const rb = await b.publish(hello2, { channel: 'stable', key: storeKey });
    expect(ra.snapId).toBe(rb.snapId);
    expect(ra.snapId).toMatch(/^[A-Za-z0-9]{32}$/);
    // The file:// store is a directory store like any other.
    expect(b.backend).toBeInstanceOf(DirBackend);
    expect(existsSync(join((b.backend as DirBackend).root, bundlePath('hello-kiosk', 1)))).toBe(true);
  });

  it('uses --snap-id and --publisher on first publish; the revision names the publisher as developer', async () => {
    const store = await init(join(tempDir(), 's'));
    const r = await store.publish(hello1, { channel: 'stable', key: storeKey, snapId: 'QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T', publisher: 'acme' });
    expect(r.snapId).toBe('QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T');
    expect(r.assertions[0]!.header('publisher-id')).toBe('acme');
    expect(r.assertions[1]!.header('developer-id')).toBe('acme');
    // The chain needs the publisher's account: without it the declaration is refused, with it accepted.
    const db = storeTrust();
    expect(db.addAll([r.assertions[0]!]).map((x) => x.error?.code)).toEqual(['ERR_MISSING_ACCOUNT']);
    expect(db.addAll([chain.account('acme'), ...r.assertions]).map((x) => x.error?.code)).toEqual([undefined, undefined, undefined]);
  });

  it('counts revisions per snap across architectures and releases each architecture of a revision', async () => {
    const store = await init(join(tempDir(), 's'));
    await store.publish(makeBundle({ name: 'tool', architectures: ['amd64'] }), { channel: 'stable', key: storeKey });
    const r2 = await store.publish(makeBundle({ name: 'tool', architectures: ['arm64'] }), { channel: 'stable', key: storeKey });
    const r3 = await store.publish(makeBundle({ name: 'tool', architectures: ['arm64', 'amd64'], version: '2' }), { channel: 'beta', key: storeKey });
    expect([r2.revision, r3.revision]).toEqual([2, 3]);
    expect(r3.architectures).toEqual(['amd64', 'arm64']);
    const index = await store.release('tool', 3, 'stable');
    expect(index.channels).toEqual({ 'latest/stable': { amd64: 3, arm64: 3 }, 'latest/beta': { amd64: 3, arm64: 3 } });
  });
});

describe('a store read over HTTP', () => {
  let dir: string;
  let server: StaticServer;
  let store: Store;

  beforeAll(async () => {
    dir = join(tempDir(), 'store');
    store = await init(dir);
    await store.publish(hello1, { channel: 'stable', key: storeKey });
    await store.publish(hello2, { channel: 'edge', key: storeKey });
    server = await serveDirectory(dir);
  });
  afterAll(() => server.close());

  it('opens, lists and reads assertions exactly as the directory store', async () => {
    const remote = await Store.open(server.url);
    expect(remote.backend.writable).toBe(false);
    expect(remote.meta).toEqual(store.meta);
    expect(await remote.list()).toEqual(await store.list());
    const { sha3_384 } = await fileDigest(hello2);
    const rev = await remote.assertion('snap-revision', [sha3_384, 'global-upload']);
    expect(rev!.header('snap-revision')).toBe('2');
    expect(rev!.source.file).toBe(`${server.url}/${assertionPathOf(rev!)}`);
    expect(await remote.assertion('validation-set', ['16', 'acme', 'nothing', '1'])).toBeUndefined();
    expect(server.count(storeMetaPath)).toBe(1);
    expect(server.count(snapIndexPath('hello-kiosk'))).toBe(1);
  });

  it('downloads a bundle, whole and from an offset', async () => {
    const remote = await Store.open(`${server.url}/`);
    const path = bundlePath('hello-kiosk', 1);
    const whole = await remote.backend.open(path);
    expect((await buffer(whole.stream)).equals(readFileSync(hello1))).toBe(true);
    const part = await remote.backend.open(path, 100);
    expect(part.size).toBe(readFileSync(hello1).length - 100);
    expect((await buffer(part.stream)).equals(readFileSync(hello1).subarray(100))).toBe(true);
    expect(remote.backend.locate(path)).toBe(`${server.url}/${path}`);
  });

  it('refuses to publish, release or init with ERR_STORE_READ_ONLY', async () => {
    const remote = await Store.open(server.url);
    const e = await refusal('ERR_STORE_READ_ONLY', () => remote.publish(hello1, { channel: 'stable', key: storeKey }));
    expect(e.message).toContain('HTTP stores are read-only; publish to the directory or OCI store that this URL serves');
    await refusal('ERR_STORE_READ_ONLY', () => remote.release('hello-kiosk', 1, 'beta'));
    await refusal('ERR_STORE_READ_ONLY', () => remote.publishAssertion(storeAccount));
    await refusal('ERR_STORE_READ_ONLY', () => init(`${server.url}/new`));
  });

  it('says "not an edgeimage store" for a URL without store.json', async () => {
    const e = await refusal('ERR_STORE_NOT_FOUND', () => Store.open(`${server.url}/snaps`));
    expect(e.message).toContain(`not an edgeimage store: no store.json at ${server.url}/snaps/store.json`);
  });
});

describe('publish-assertion', () => {
  let store: Store;
  let brandKey: PrivateKey;

  function validationSet(revision: number, pinned: string): Assertion {
    return signAssertion(
      {
        type: 'validation-set',
        'authority-id': 'acme',
        ...(revision ? { revision: String(revision) } : {}),
        series: '16',
        'account-id': 'acme',
        name: 'kiosk',
        sequence: '1',
        snaps: [{ name: 'hello-kiosk', id: snapIdFor(AUTHORITY, 'hello-kiosk'), presence: 'required', revision: pinned }],
        timestamp: '2026-02-01T00:00:00Z',
      },
      undefined,
      brandKey,
    );
  }

  beforeAll(async () => {
    brandKey = await newKey();
    store = await init(join(tempDir(), 's'));
  });

  it('stores a validation-set at its primary key and reads it back', async () => {
    const vs = validationSet(0, '1');
    const path = await store.publishAssertion(vs);
    expect(path).toBe('assertions/validation-set/16.acme.kiosk.1.assert');
    const back = await store.assertion('validation-set', ['16', 'acme', 'kiosk', '1']);
    expect(back!.encode().equals(vs.encode())).toBe(true);
    // The same assertion again changes nothing.
    expect(await store.publishAssertion(vs)).toBe(path);
  });

  it('stores accounts and account-keys, several from one stream', async () => {
    const paths = await store.publishAssertions([storeAccount, storeAccountKey]);
    expect(paths).toEqual([`assertions/account/${AUTHORITY}.assert`, `assertions/account-key/${storeKey.publicKey.id}.assert`]);
    expect((await store.assertion('account', [AUTHORITY]))!.header('display-name')).toBe(AUTHORITY);
  });

  it('takes a higher revision and refuses an older one', async () => {
    await store.publishAssertion(validationSet(2, '2'));
    const e = await refusal('ERR_REVISION_NOT_NEWER', () => store.publishAssertion(validationSet(1, '1')));
    expect(e.message).toContain('validation-set series=16 account-id=acme name=kiosk sequence=1: revision 1 is older than revision 2 in the store');
    expect((await store.assertion('validation-set', ['16', 'acme', 'kiosk', '1']))!.revision).toBe(2);
  });

  it('refuses the same revision with other content', async () => {
    const e = await refusal('ERR_REVISION_NOT_NEWER', () => store.publishAssertion(validationSet(2, '3')));
    expect(e.message).toContain('revision 2 is already in the store');
    expect(e.message).toContain('with other content');
  });

  it('checks a whole stream before writing any of it', async () => {
    const fresh = validationSet(0, '1');
    const renamed = decodeStream(Buffer.from(fresh.encode().toString('utf8').replace('name: kiosk', 'name: other')))[0]!;
    await refusal('ERR_REVISION_NOT_NEWER', () => store.publishAssertions([renamed, validationSet(1, '1')]));
    expect(await store.assertion('validation-set', ['16', 'acme', 'other', '1'])).toBeUndefined();
  });
});

describe('crash safety and backend hooks', () => {
  /** A directory backend that records channel tags and can fail a chosen write. */
  class Recording extends DirBackend implements StoreBackend {
    tags: string[] = [];
    failOn?: string;
    override async write(path: string, data: Uint8Array): Promise<void> {
      if (path === this.failOn) throw new Error(`injected failure writing ${path}`);
      return super.write(path, data);
    }
    async tagChannel(snapName: string, tag: string, bundle: string): Promise<void> {
      this.tags.push(`${snapName} ${tag} → ${bundle}`);
    }
  }

  it('tags each channel and architecture on backends that have tags', async () => {
    const backend = new Recording(join(tempDir(), 's'));
    const store = await Store.init(backend, { authorityId: AUTHORITY, key: storeKey, keyName: 'store' });
    await store.publish(makeBundle({ name: 'tool', architectures: ['amd64', 'arm64'] }), { channel: 'stable', key: storeKey });
    await store.release('tool', 1, '22/edge');
    expect(backend.tags).toEqual([
      'tool latest_stable_amd64 → snaps/tool/1.snap',
      'tool latest_stable_arm64 → snaps/tool/1.snap',
      'tool 22_edge_amd64 → snaps/tool/1.snap',
      'tool 22_edge_arm64 → snaps/tool/1.snap',
    ]);
  });

  it('leaves the indexes untouched when publishing stops before them, and the next publish succeeds', async () => {
    const backend = new Recording(join(tempDir(), 's'));
    const store = await Store.init(backend, { authorityId: AUTHORITY, key: storeKey, keyName: 'store' });
    await store.publish(hello1, { channel: 'stable', key: storeKey });
    const before = await store.list();
    backend.failOn = snapIndexPath('hello-kiosk');
    await expect(store.publish(hello2, { channel: 'stable', key: storeKey })).rejects.toThrow('injected failure');
    // The new files came first; nothing in the indexes names them.
    expect(existsSync(join(backend.root, bundlePath('hello-kiosk', 2)))).toBe(true);
    expect(await store.list()).toEqual(before);
    backend.failOn = undefined;
    const again = await store.publish(hello2, { channel: 'stable', key: storeKey });
    expect(again.revision).toBe(2);
    expect(readdirSync(join(backend.root, 'snaps', 'hello-kiosk')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describeWithRegistry('a store in an OCI registry', () => {
  const registry = useRegistry();

  it('init, publish, release, publish-assertion and list work as on a directory, with channel tags', async () => {
    const url = registry().storeUrl('acme/store');
    const store = await init(url);
    expect(store.backend).toBeInstanceOf(OciBackend);
    await refusal('ERR_STORE_EXISTS', () => init(url));
    const r1 = await store.publish(hello1, { channel: 'stable', key: storeKey });
    const r2 = await store.publish(hello2, { channel: 'edge', key: storeKey });
    expect([r1.revision, r2.revision]).toEqual([1, 2]);
    await store.release('hello-kiosk', 2, 'stable');
    await store.publishAssertion(storeAccount);

    const again = await Store.open(url);
    const [snap] = await again.list();
    expect(snap!.channels).toEqual({ 'latest/stable': { amd64: 2 }, 'latest/edge': { amd64: 2 } });
    expect(snap!['snap-id']).toBe(snapIdFor(AUTHORITY, 'hello-kiosk'));
    const decl = await again.assertion('snap-declaration', ['16', r1.snapId]);
    const rev = await again.assertion('snap-revision', [r2.sha3_384]);
    expect(storeTrust().addAll([decl!, rev!]).map((x) => x.error?.message)).toEqual([undefined, undefined]);
    expect((await again.assertion('account', [AUTHORITY]))!.encode().equals(storeAccount.encode())).toBe(true);
    const { stream } = await again.backend.open(bundlePath('hello-kiosk', 2));
    expect((await buffer(stream)).equals(readFileSync(hello2))).toBe(true);
  });
});
