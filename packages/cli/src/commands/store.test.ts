import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PublicKey, snapIdFor } from '@edgeimage/assertions';
import { serveDirectory } from '@edgeimage/testkit/http-server';
import { buildChain, run, runOk, useTempDirs, withEnv, type Chain } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-store-cli-test-');
let chain: Chain;
let brandKeyId: string;
let hello1: string;
let hello2: string;

/** A real bundle: a squashfs with meta/snap.yaml. */
function makeBundle(name: string, version: string, architectures = ['amd64']): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'src', 'meta'), { recursive: true });
  writeFileSync(join(dir, 'src', 'meta', 'snap.yaml'), `name: ${name}\nversion: '${version}'\ntype: app\narchitectures: [${architectures.join(', ')}]\n`);
  writeFileSync(join(dir, 'src', 'data.txt'), `${name} ${version}\n`);
  const file = join(dir, `${name}_${version}_${architectures.join('-')}.snap`);
  execFileSync('mksquashfs', [join(dir, 'src'), file, '-noappend', '-all-root', '-quiet', '-no-progress'], { stdio: 'ignore' });
  return file;
}

/** A store signed by the chain's brand key as acme (so the chain's root vouches for its key). */
async function newStore(): Promise<string> {
  const store = join(tempDir(), 'store');
  await runOk(['store', 'init', store, '--key', 'brand', '--authority-id', 'acme', ...chain.ring]);
  return store;
}

function validationSetYaml(revision: number, pinned: number): string {
  return [
    'type: validation-set',
    'authority-id: acme',
    ...(revision ? [`revision: ${revision}`] : []),
    'series: 16',
    'account-id: acme',
    'name: kiosk',
    'sequence: 1',
    'snaps:',
    '  - name: hello-kiosk',
    `    id: ${snapIdFor('acme', 'hello-kiosk')}`,
    `    revision: ${pinned}`,
    'timestamp: 2026-02-01T00:00:00Z',
    '',
  ].join('\n');
}

beforeAll(async () => {
  delete process.env['EDGEIMAGE_KEY_PASSPHRASE'];
  delete process.env['EDGEIMAGE_KEYRING'];
  chain = await buildChain(tempDir());
  brandKeyId = PublicKey.fromPem(readFileSync(join(chain.keyring, 'brand.pub'), 'utf8')).id;
  hello1 = makeBundle('hello-kiosk', '1.0');
  hello2 = makeBundle('hello-kiosk', '1.1');
});

describe('edgeimage store', () => {
  it('has --help with examples for each command', async () => {
    const top = await runOk(['store', '--help']);
    for (const c of ['init', 'publish', 'publish-assertion', 'release', 'list']) expect(top.out).toContain(`edgeimage store ${c}`);
    for (const c of ['init', 'publish', 'publish-assertion', 'release', 'list']) {
      const h = await runOk(['store', c, '--help']);
      expect(h.out).toContain('Examples:');
    }
  });

  it('init, publish, release and list a directory store; list --json has the documented shape', async () => {
    const store = await newStore();
    expect(JSON.parse(readFileSync(join(store, 'store.json'), 'utf8'))).toEqual({ format: 1, 'authority-id': 'acme', 'key-id': brandKeyId, 'key-name': 'brand' });

    const p1 = await runOk(['store', 'publish', store, hello1, '--channel', 'stable', ...chain.ring]);
    const snapId = snapIdFor('acme', 'hello-kiosk');
    expect(p1.out).toContain(`published hello-kiosk revision 1 to ${store}`);
    expect(p1.out).toContain(`snap-id   ${snapId} (declared now)`);
    expect(p1.out).toContain('released  latest/stable for amd64');

    const p2 = JSON.parse((await runOk(['store', 'publish', store, hello2, '--channel', 'edge', '--json', ...chain.ring])).out);
    expect(p2).toMatchObject({ name: 'hello-kiosk', 'snap-id': snapId, revision: 2, type: 'app', architectures: ['amd64'] });

    const rel = await runOk(['store', 'release', store, 'hello-kiosk', '2', 'candidate']);
    expect(rel.out).toBe('released hello-kiosk revision 2 to latest/candidate for amd64\n');

    const list = JSON.parse((await runOk(['store', 'list', store, '--json'])).out);
    const size1 = readFileSync(hello1).length;
    expect(list).toEqual([
      {
        name: 'hello-kiosk',
        'snap-id': snapId,
        type: 'app',
        revisions: [
          { revision: 1, 'sha3-384': expect.stringMatching(/^[A-Za-z0-9_-]{64}$/), size: size1, architectures: ['amd64'] },
          { revision: 2, 'sha3-384': p2['sha3-384'], size: p2.size, architectures: ['amd64'] },
        ],
        channels: { 'latest/stable': { amd64: 1 }, 'latest/edge': { amd64: 2 }, 'latest/candidate': { amd64: 2 } },
      },
    ]);

    const text = await runOk(['store', 'list', store]);
    expect(text.out).toContain(`hello-kiosk  snap-id ${snapId}  type app  publisher acme`);
    expect(text.out).toMatch(/revision 2 +1\.1 +amd64/);
    expect(text.out).toMatch(/latest\/candidate +amd64=2/);
  });

  it('signs declarations and revisions that `verify` accepts through the brand chain', async () => {
    const store = await newStore();
    await runOk(['store', 'publish', store, hello1, '--channel', 'stable', ...chain.ring]);
    const decl = join(store, 'assertions', 'snap-declaration', `16.${snapIdFor('acme', 'hello-kiosk')}.assert`);
    const revs = join(store, 'assertions', 'snap-revision');
    const rev = join(revs, execFileSync('ls', [revs]).toString().trim());
    const v = await run(['verify', ...chain.trustArgs, chain.brandAccountKey, decl, rev]);
    expect(v.err).toBe('');
    expect(v.out).toContain('3 of 3 assertions verified');
  });

  it('publish-assertion stores each assertion of a stream; an older revision is refused', async () => {
    const store = await newStore();
    const vs2 = join(chain.dir, 'vs2.assert');
    const vs1 = join(chain.dir, 'vs1.assert');
    await runOk(['sign', chain.write('vs2.yaml', validationSetYaml(2, 2)), '--key', 'brand', '-o', vs2, ...chain.ring]);
    await runOk(['sign', chain.write('vs1.yaml', validationSetYaml(1, 1)), '--key', 'brand', '-o', vs1, ...chain.ring]);
    const stream = chain.write('both.assert', Buffer.concat([readFileSync(vs2), Buffer.from('\n'), readFileSync(chain.acmeAccount)]));
    const r = await runOk(['store', 'publish-assertion', store, stream]);
    expect(r.out).toContain(`stored validation-set series=16 account-id=acme name=kiosk sequence=1 revision 2 → ${join(store, 'assertions/validation-set/16.acme.kiosk.1.assert')}`);
    expect(r.out).toContain(`stored account account-id=acme → ${join(store, 'assertions/account/acme.assert')}`);
    expect(readFileSync(join(store, 'assertions/validation-set/16.acme.kiosk.1.assert')).equals(readFileSync(vs2))).toBe(true);

    const old = await run(['store', 'publish-assertion', store, vs1]);
    expect(old.status).toBe(1);
    expect(old.err).toBe(`edgeimage: error: validation-set series=16 account-id=acme name=kiosk sequence=1: revision 1 is older than revision 2 in the store at ${store} [ERR_REVISION_NOT_NEWER]\n`);
  });

  it('loads an encrypted store key with $EDGEIMAGE_KEY_PASSPHRASE', async () => {
    const ring = join(tempDir(), 'keys');
    const store = join(tempDir(), 'store');
    await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'correct horse' }, async () => {
      await runOk(['key', 'create', 'store', '--bits', '2048', '--keyring', ring]);
      await runOk(['store', 'init', store, '--key', 'store', '--authority-id', 'acme-store', '--keyring', ring]);
      await runOk(['store', 'publish', store, hello1, '--channel', 'stable', '--keyring', ring]);
    });
    const bad = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: undefined }, () => run(['store', 'publish', store, hello2, '--channel', 'stable', '--keyring', ring]));
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/^edgeimage: error: .*\[ERR_KEY_[A-Z_]+\]\n$/);
  });

  describe('refusals', () => {
    let store: string;
    beforeAll(async () => {
      store = await newStore();
      await runOk(['store', 'publish', store, hello1, '--channel', 'stable', ...chain.ring]);
    });

    it('publish with a keyring whose key of that name is not the store key: ERR_STORE_KEY', async () => {
      const ring = join(tempDir(), 'keys');
      await runOk(['key', 'create', 'brand', '--bits', '2048', '--keyring', ring]);
      const r = await run(['store', 'publish', store, hello2, '--channel', 'stable', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain(`is not the key of the store at ${store}: the store signs as acme with key ${brandKeyId} (key-name "brand") [ERR_STORE_KEY]`);
    });

    it('release of a missing revision: ERR_STORE_NO_REVISION, naming those there', async () => {
      const r = await run(['store', 'release', store, 'hello-kiosk', '5', 'stable']);
      expect(r.status).toBe(1);
      expect(r.err).toBe(`edgeimage: error: snap hello-kiosk has no revision 5 in the store at ${store} (revisions: 1) [ERR_STORE_NO_REVISION]\n`);
    });

    it('a bad channel: ERR_STORE_CHANNEL', async () => {
      const r = await run(['store', 'release', store, 'hello-kiosk', '1', 'latest/nightly']);
      expect(r.status).toBe(1);
      expect(r.err).toContain('invalid channel "latest/nightly": risk "nightly" is not a risk');
      expect(r.err).toContain('[ERR_STORE_CHANNEL]');
    });

    it('init where a store is: ERR_STORE_EXISTS', async () => {
      const r = await run(['store', 'init', store, '--key', 'brand', '--authority-id', 'acme', ...chain.ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain(`a store already exists at ${store}`);
      expect(r.err).toContain('[ERR_STORE_EXISTS]');
    });

    it('list of a folder that is not a store: ERR_STORE_NOT_FOUND', async () => {
      const plain = tempDir();
      const r = await run(['store', 'list', plain]);
      expect(r.status).toBe(1);
      expect(r.err).toBe(`edgeimage: error: not an edgeimage store: no store.json at ${join(plain, 'store.json')} (create one with "edgeimage store init") [ERR_STORE_NOT_FOUND]\n`);
    });

    it('reads an HTTP store, and refuses to publish to it: ERR_STORE_READ_ONLY', async () => {
      const server = await serveDirectory(store);
      try {
        const list = JSON.parse((await runOk(['store', 'list', server.url, '--json'])).out);
        expect(list.map((s: { name: string }) => s.name)).toEqual(['hello-kiosk']);
        const r = await run(['store', 'publish', server.url, hello2, '--channel', 'stable', ...chain.ring]);
        expect(r.status).toBe(1);
        expect(r.err).toBe(`edgeimage: error: cannot publish to ${server.url}: HTTP stores are read-only; publish to the directory or OCI store that this URL serves [ERR_STORE_READ_ONLY]\n`);
      } finally {
        await server.close();
      }
    });

    it('a revision that is not a number is a usage error (exit 2)', async () => {
      for (const bad of ['two', '0', '1.5']) {
        const r = await run(['store', 'release', store, 'hello-kiosk', bad, 'stable']);
        expect(r.status).toBe(2);
        expect(r.err).toContain(`edgeimage: revision: expected a revision number (1, 2, …), found "${bad}"`);
      }
    });
  });
});
