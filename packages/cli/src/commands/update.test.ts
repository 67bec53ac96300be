/**
 * `edgeimage update create` and `update info`, in-process (main): a real directory store, signed
 * models resolved into real bundles, a keyring holding the brand's key, images composed for
 * `--from`, and the update files read back with busybox tar and openssl.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeStream, Keyring, type Assertion } from '@edgeimage/assertions';
import { APP, appTree, INITRD_IMG, snapYaml } from '@edgeimage/testkit/image-bundles';
import { AT } from '@edgeimage/testkit/store-world';
import { leftAfter } from '@edgeimage/testkit/refusals';
import { listFiles, MiB, sh } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { interruptWhen, run, transcript, withEnv } from '@edgeimage/testkit/cli-run';

let world: ImageWorld;
let keyring: string;
let model1: Assertion;
let files1: { model: string; trustArgs: string[] };
let files2: { model: string; trustArgs: string[] };
let otherModel: string;
let image1: string;
let appRev2: number;
/** The brand's account-key (what --trusted of `update info` takes). */
let brandAccountKey: string;
let brandPem: string;
let storePem: string;

beforeAll(async () => {
  world = await makeImageWorld();
  keyring = world.tempDir('keys-');
  const ring = new Keyring(keyring);
  ring.import('brand', world.brandKey);
  ring.import('brand-enc', world.brandKey, 'sesame');
  ring.import('store', world.storeKey);
  model1 = await world.model({ revision: 1 });
  files1 = world.files(model1, 'edge-pc-1.model');
  image1 = (await world.compose(await world.resolve(model1))).images[0]!.path;
  appRev2 = (await world.publish(APP, appTree(APP, 30_000))).revision;
  files2 = world.files(await world.model({ revision: 2 }), 'edge-pc-2.model');
  otherModel = world.files(await world.model({ model: 'other-pc', revision: 1 }), 'other-pc.model').model;
  const dir = world.tempDir('pub-');
  brandAccountKey = join(dir, 'brand.account-key');
  writeFileSync(brandAccountKey, encodeStream(world.brandAssertions.filter((a) => a.type === 'account-key').map((a) => a.encode())));
  brandPem = join(dir, 'brand.pem');
  writeFileSync(brandPem, world.brandKey.publicKey.toPem());
  storePem = join(dir, 'store.pem');
  writeFileSync(storePem, world.storeKey.publicKey.toPem());
}, SLOW);

afterAll(() => world?.cleanup());

const createArgs = (modelFile: string, out: string, ...more: string[]) => ['update', 'create', modelFile, '--store', world.storeDir, ...files2.trustArgs, '--at', AT.toISOString(), '--cache', join(world.dir, 'cli-cache'), '--keyring', keyring, '--key', 'brand', '-o', out, ...more];

interface Summary {
  output: string;
  model: { 'brand-id': string; model: string; revision: number };
  files: { path: string; sha256: string; size: number; included: boolean }[];
  bytes: number;
  fullBytes: number;
}

describe('update create', () => {
  test('writes the update and prints model, revision, files, bytes and the output path', async () => {
    const out = join(world.tempDir('u-'), 'edge-pc-2.update');
    const r = await run(createArgs(files2.model, out));
    expect(r.err).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(r.out).toMatch(/^acme\/edge-pc revision 2$/m);
    const [, total, inUpdate] = /^files: (\d+) in the slot, (\d+) in the update/m.exec(r.out)!;
    expect(inUpdate).toBe(total);
    const [, bytes, full] = /^bytes: (\d+) in the update .*, (\d+) for a full update/m.exec(r.out)!;
    expect(bytes).toBe(full);
    expect(r.out).toContain(`signed with key "brand" (${world.brandKey.publicKey.id})`);
    expect(r.out).toMatch(new RegExp(`^output: ${out.replace(/[.]/g, '\\.')}$`, 'm'));
    expect(r.out).toMatch(new RegExp(`^  \\+ bundles/${APP}_${appRev2}\\.snap `, 'm'));
    // What the device runs: busybox tar lists it, openssl verifies the manifest.
    const x = world.tempDir('x-');
    expect(sh('busybox', ['tar', '-xf', out, '-C', x]).status).toBe(0);
    const v = sh('openssl', ['dgst', '-sha256', '-verify', brandPem, '-signature', join(x, 'edgeimage-update/manifest.sig'), join(x, 'edgeimage-update/manifest')]);
    expect(v.stdout.trim()).toBe('Verified OK');
  }, SLOW);

  test('--json --from the old model: only the changed app bundle among the bundles; --from an image of it gives the same', async () => {
    const dir = world.tempDir('u-');
    const a = await run(createArgs(files2.model, join(dir, 'a.update'), '--from', files1.model, '--json'));
    expect(a.status).toBe(0);
    const s = JSON.parse(a.out) as Summary;
    expect(Object.keys(s)).toEqual(['output', 'model', 'files', 'bytes', 'fullBytes']);
    expect(s.output).toBe(join(dir, 'a.update'));
    expect(s.model).toEqual({ 'brand-id': 'acme', model: 'edge-pc', revision: 2 });
    expect(s.files.filter((f) => f.path.startsWith('bundles/') && f.included).map((f) => f.path)).toEqual([`bundles/${APP}_${appRev2}.snap`, `bundles/${APP}_${appRev2}.snap.verity`]);
    expect(s.files.filter((f) => f.path.startsWith('boot/') && f.path.endsWith('.img')).every((f) => !f.included)).toBe(true);
    expect(s.bytes).toBe(s.files.filter((f) => f.included).reduce((n, f) => n + f.size, 0));
    expect(s.fullBytes).toBe(s.files.reduce((n, f) => n + f.size, 0));
    expect(s.bytes).toBeLessThan(s.fullBytes);
    const b = await run(createArgs(files2.model, join(dir, 'b.update'), '--from', image1, '--json'));
    expect(b.status).toBe(0);
    expect((JSON.parse(b.out) as Summary).files).toEqual(s.files);
    expect(readFileSync(join(dir, 'b.update')).equals(readFileSync(join(dir, 'a.update')))).toBe(true);
  }, SLOW);

  test('an encrypted key takes its passphrase from $EDGEIMAGE_KEY_PASSPHRASE', async () => {
    const out = join(world.tempDir('u-'), 'e.update');
    const args = createArgs(files2.model, out).map((x) => (x === 'brand' ? 'brand-enc' : x));
    const without = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: undefined }, () => run(args));
    expect(without.status).toBe(1);
    expect(without.err).toMatch(/\[ERR_KEY_PASSPHRASE\]\n$/);
    const r = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'sesame' }, () => run(args));
    expect(r.status).toBe(0);
    expect(existsSync(out)).toBe(true);
  }, SLOW);

  describe('refusals (exit 1, the code at the end, no file written)', () => {
    const refused = async (args: string[], dir: string) => {
      const r = await run(args);
      expect(r.status).toBe(1);
      expect(readdirSync(dir)).toEqual([]);
      // Resolution progress comes first; the error is the last line.
      return r.err.trim().split('\n').at(-1)!;
    };

    test('a key that is not one of the brand: ERR_UPDATE_KEY_NOT_BRAND, naming the key, the brand and its keys', async () => {
      const dir = world.tempDir('u-');
      const err = await refused(createArgs(files2.model, join(dir, 'u.update')).map((x) => (x === 'brand' ? 'store' : x)), dir);
      expect(err).toBe(
        `edgeimage: error: key "store" (${world.storeKey.publicKey.id}) is not a key of brand acme: devices of acme/edge-pc trust updates signed by acme's account-keys only (${world.brandKey.publicKey.id}) [ERR_UPDATE_KEY_NOT_BRAND]`,
      );
    }, SLOW);

    test('a refused update records no validation-set sequence in the cache; an update written does', async () => {
      const cache = join(world.dir, 'seq-cache');
      const record = join(cache, 'validation-sets.json');
      const withCache = (args: string[]) => args.map((x) => (x === join(world.dir, 'cli-cache') ? cache : x));
      const dir = world.tempDir('u-');
      const err = await refused(withCache(createArgs(files2.model, join(dir, 'u.update'))).map((x) => (x === 'brand' ? 'store' : x)), dir);
      expect(err).toMatch(/\[ERR_UPDATE_KEY_NOT_BRAND\]$/);
      expect(existsSync(record)).toBe(false);
      const ok = await run(withCache(createArgs(files2.model, join(dir, 'u.update'))));
      expect(ok.status).toBe(0);
      expect(Object.values(JSON.parse(readFileSync(record, 'utf8')))).toEqual([1]);
    }, SLOW);

    test('--from another model: ERR_UPDATE_FROM_MISMATCH', async () => {
      const dir = world.tempDir('u-');
      const err = await refused(createArgs(files2.model, join(dir, 'u.update'), '--from', otherModel), dir);
      expect(err).toMatch(/^edgeimage: error: --from .*other-pc\.model is a system of acme\/other-pc, the update is for acme\/edge-pc: .* \[ERR_UPDATE_FROM_MISMATCH\]$/);
    }, SLOW);

    test('--from a revision not lower: ERR_UPDATE_NOT_NEWER, from a model or an image', async () => {
      const dir = world.tempDir('u-');
      const same = await refused(createArgs(files1.model, join(dir, 'u.update'), '--from', files1.model), dir);
      expect(same).toMatch(/is revision 1 of acme\/edge-pc, the update is revision 1: an update must have a higher revision than the system it replaces \(the device would refuse it anyway\) \[ERR_UPDATE_NOT_NEWER\]$/);
      const img = await refused(createArgs(files1.model, join(dir, 'u.update'), '--from', image1), dir);
      expect(img).toContain(`--from ${image1} is revision 1`);
      expect(img).toMatch(/\[ERR_UPDATE_NOT_NEWER\]$/);
    }, SLOW);

    test('--from a file that is neither an image nor an assertion: ERR_UPDATE_FROM_UNKNOWN', async () => {
      const dir = world.tempDir('u-');
      const junk = join(world.tempDir('j-'), 'junk');
      writeFileSync(junk, 'not a model');
      const err = await refused(createArgs(files2.model, join(dir, 'u.update'), '--from', junk), dir);
      expect(err).toMatch(/neither a disk image .* nor a model assertion .*\[ERR_UPDATE_FROM_UNKNOWN\]$/);
    }, SLOW);
  });

  test('Ctrl-C while the update is being written: exit 130, no update, temporary file or work folder left', async () => {
    // a kernel of 96 MiB, so that writing the tar takes long enough to be interrupted
    const kernel = Buffer.alloc(96 * MiB);
    for (let i = 0; i < kernel.length; i++) kernel[i] = (i * 7 + (i >> 12)) % 251;
    await world.publish('big-kernel', { 'meta/snap.yaml': snapYaml('big-kernel', 'kernel', 'amd64'), 'kernel.img': kernel, 'initrd.img': INITRD_IMG });
    const big = world.files(await world.model({ model: 'big', kernel: 'big-kernel', revision: 2 }), 'big.model');
    const out = world.tempDir('ctrl-c-');
    const tmp = world.tempDir('tmpdir-');
    const r = await interruptWhen(createArgs(big.model, join(out, 'big.update')), out, /^\.big\.update\.tmp-/, tmp);
    expect([r.seen, r.status, r.stderr.split('\n').filter((l) => /error/i.test(l))]).toEqual([expect.stringMatching(/^\.big\.update\.tmp-\d+-[0-9a-f]{8}$/), 130, []]);
    expect(listFiles(out)).toEqual([]);
    // the staged slot (edgeimage-update-* in TMPDIR) is gone too
    expect(await leftAfter(tmp, 3000)).toEqual([]);
  }, SLOW);

  test('--help shows examples and explains the format', async () => {
    const r = await run(['update', 'create', '--help']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('Examples:');
    expect(r.out).toContain('--from images/pc-amd64.img');
    expect(r.out).toMatch(/edgeimage-update\/manifest.sig/);
    expect(r.out).toMatch(/openssl dgst -sha256 -verify/);
    const top = await run(['update', '--help']);
    expect(top.out).toMatch(/update create <model>/);
    expect(top.out).toMatch(/update info <file>/);
  });
});

describe('update info', () => {
  let file: string;
  beforeAll(async () => {
    file = join(world.tempDir('i-'), 'delta.update');
    const r = await run(createArgs(files2.model, file, '--from', files1.model));
    if (r.status !== 0) throw new Error(r.err);
  }, SLOW);

  test('without keys: the manifest fields and files, and "signature not checked"', async () => {
    const r = await run(['update', 'info', file]);
    expect(r.status).toBe(0);
    expect(r.out).toContain('brand-id: acme\nmodel: edge-pc\nrevision: 2\n');
    expect(r.out).toContain(`sign-key-sha3-384: ${world.brandKey.publicKey.id}`);
    expect(r.out).toMatch(new RegExp(`^  \\+ bundles/${APP}_${appRev2}\\.snap `, 'm'));
    expect(r.out).toMatch(/^  = boot\/kernel\.img /m);
    expect(r.out).toMatch(/signature: not checked/);
  });

  test('--trusted the brand account-key, or --pubkey its PEM: verified', async () => {
    const a = await run(['update', 'info', file, '--trusted', brandAccountKey]);
    expect(a.status).toBe(0);
    expect(a.out).toMatch(/^signature: verified \(.*brand\.account-key: account-key of acme\)$/m);
    const b = await run(['update', 'info', file, '--pubkey', brandPem, '--json']);
    expect(b.status).toBe(0);
    const j = JSON.parse(b.out) as { model: unknown; files: { included: boolean }[]; signature: unknown };
    expect(j.model).toEqual({ 'brand-id': 'acme', model: 'edge-pc', revision: 2 });
    expect(j.signature).toEqual({ checked: true, valid: true, by: brandPem });
    expect(j.files.some((f) => f.included) && j.files.some((f) => !f.included)).toBe(true);
  });

  test('a key that did not sign: exit 1, ERR_UPDATE_SIGNATURE', async () => {
    const r = await run(['update', 'info', file, '--pubkey', storePem]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/signature: DOES NOT VERIFY/);
    expect(r.err).toMatch(/does not verify with .*store\.pem \[ERR_UPDATE_SIGNATURE\]\n$/);
  });

  test('a file that is not an update: ERR_UPDATE_FORMAT', async () => {
    const r = await run(['update', 'info', image1]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/\[ERR_UPDATE_FORMAT\]\n$/);
  });
});

test('no private key was ever printed', () => {
  const all = transcript.join('\n');
  expect(all).not.toMatch(/PRIVATE KEY/);
  const body = world.brandKey.toPem().split('\n').filter((l) => l && !l.startsWith('-----'));
  for (const l of body) expect(all).not.toContain(l);
});
