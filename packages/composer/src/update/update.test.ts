/**
 * Update bundles end to end, in-process: real bundles published into a directory store, signed
 * models resolved, the update tar written and then read by tools that know nothing of edgeimage —
 * busybox tar (what the device runs) and openssl (how the device checks the signature) — and
 * compared with the slot composeImage writes for the same model.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, type Assertion } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { APP, appTree, BASE, GADGET_GPT, KERNEL } from '@edgeimage/testkit/image-bundles';
import { ext4Tree, sh, sha256 } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { refusal } from '@edgeimage/testkit/refusals';
import type { ComposeResult } from '../compose/compose.js';
import { createUpdate, readImageSystem, sniffUpdateFrom, type UpdateResult } from './create.js';
import { readUpdate, verifierFromPem, verifiersFromAssertions } from './info.js';
import { checkSlotPath, encodeUpdateManifest, MANIFEST_ENTRY, parseUpdateManifest, SIGNATURE_ENTRY, SLOT_PREFIX, type UpdateManifest } from './manifest.js';
import { readTar, readTarEntry, writeTar } from './tar.js';
import { newKey } from '@edgeimage/testkit/signing-chain';

let world: ImageWorld;
/** Revision 1: the app as first published; revision 2: a new revision of the app, nothing else. */
let model1: Assertion;
let model2: Assertion;
let res1: Resolution;
let res2: Resolution;
let image1: ComposeResult;
let image2: ComposeResult;
let appRev1: number;
let appRev2: number;
/** The full update to revision 2 (no --from). */
let full: UpdateResult;

const update = (opts: Partial<Parameters<typeof createUpdate>[0]> = {}) => createUpdate({ resolution: res2, trusted: world.trusted, key: world.brandKey, output: join(world.tempDir('upd-'), 'edge-pc.update'), ...opts });

beforeAll(async () => {
  world = await makeImageWorld();
  appRev1 = world.bundles.get(APP)!.revision;
  model1 = await world.model({ revision: 1 });
  res1 = await world.resolve(model1);
  image1 = await world.compose(res1);
  appRev2 = (await world.publish(APP, appTree(APP, 30_000))).revision;
  model2 = await world.model({ revision: 2 });
  res2 = await world.resolve(model2);
  image2 = await world.compose(res2);
  full = await update();
}, SLOW);

afterAll(() => world?.cleanup());

const tarList = (file: string) => readTar(file).map((e) => e.name);
const manifestOf = (file: string) => parseUpdateManifest(readTarEntry(file, readTar(file)[0]!));
const slotA = (r: ComposeResult) => r.manifest.partitions.find((p) => p.role === 'system-a')!.offset;
/** path → sha256 of the files (not folders) of slot a of a composed image. */
function slotFilesOf(r: ComposeResult): Record<string, string> {
  const tree = ext4Tree(r.images[0]!.path, slotA(r), join(world.tempDir('dump-'), 'slot'));
  return Object.fromEntries(Object.entries(tree).filter(([p, v]) => v !== 'dir' && !p.startsWith('lost+found')));
}

describe('a full update (no --from)', () => {
  test('holds the manifest, its signature, then every slot file in path order, and nothing else', () => {
    const names = tarList(full.output);
    expect(names.slice(0, 2)).toEqual([MANIFEST_ENTRY, SIGNATURE_ENTRY]);
    const paths = full.files.map((f) => f.path);
    expect(names.slice(2)).toEqual(paths.map((p) => `${SLOT_PREFIX}${p}`));
    expect([...paths].sort()).toEqual(paths);
    expect(full.files.every((f) => f.included)).toBe(true);
    expect(full.bytes).toBe(full.fullBytes);
    expect(full.model).toEqual({ 'brand-id': 'acme', model: 'edge-pc', revision: 2 });
  });

  test('is a plain ustar: mode 0644, uid/gid 0, mtime 0, no folder entries; busybox tar lists it so', () => {
    for (const e of readTar(full.output)) expect({ name: e.name, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime }).toEqual({ name: e.name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    const head = readFileSync(full.output).subarray(257, 265).toString('latin1');
    expect(head).toBe('ustar\u000000');
    const r = sh('busybox', ['tar', '-tvf', full.output]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[5])).toEqual(tarList(full.output));
    // What the device's check reads: six fields, a plain file, owner 0/0.
    for (const l of lines) expect(l).toMatch(/^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00:00 edgeimage-update\/[A-Za-z0-9._+/-]+$/);
  });

  test('busybox tar -xf extracts files whose digests and sizes are the manifest\'s', () => {
    const dir = world.tempDir('x-');
    const r = sh('busybox', ['tar', '-xf', full.output, '-C', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = manifestOf(full.output);
    for (const f of m.files) {
      const bytes = readFileSync(join(dir, SLOT_PREFIX, f.path));
      expect({ path: f.path, sha256: sha256(bytes), size: bytes.length }).toEqual(f);
    }
    expect(readFileSync(join(dir, MANIFEST_ENTRY))).toEqual(readTarEntry(full.output, readTar(full.output)[0]!));
  });

  test('the manifest is the documented text: header lines, then one file line per file of slot a of the same model as composeImage writes it', () => {
    const text = readTarEntry(full.output, readTar(full.output)[0]!).toString('utf8');
    const lines = text.split('\n');
    expect(lines.slice(0, 5)).toEqual(['edgeimage-update: 1', 'brand-id: acme', 'model: edge-pc', 'revision: 2', `sign-key-sha3-384: ${world.brandKey.publicKey.id}`]);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('\r');
    const fileLines = lines.slice(5, -1);
    for (const l of fileLines) expect(l).toMatch(/^file: [0-9a-f]{64} \d+ [A-Za-z0-9._+/-]+$/);
    const fromManifest = Object.fromEntries(fileLines.map((l) => l.split(' ')).map(([, sum, , path]) => [path!, sum!]));
    const composed = slotFilesOf(image2);
    expect(fromManifest).toEqual(composed);
    expect(Object.keys(composed)).toEqual(expect.arrayContaining(['model.assert', 'assertions.assert', 'manifest.json', 'boot/kernel.img', 'boot/initrd.img', 'boot/slot.env', `bundles/${APP}_${appRev2}.snap`]));
    expect(manifestOf(full.output).files.map((f) => f.size)).toEqual(full.files.map((f) => f.size));
  });

  test('two runs give the same bytes', async () => {
    const again = await update();
    expect(readFileSync(again.output).equals(readFileSync(full.output))).toBe(true);
  });

  test("openssl verifies manifest.sig with the brand's public key (from the keyring and from the slot's trust store) and refuses a changed manifest", () => {
    const dir = world.tempDir('sig-');
    expect(sh('busybox', ['tar', '-xf', full.output, '-C', dir]).status).toBe(0);
    const man = join(dir, MANIFEST_ENTRY);
    const sig = join(dir, SIGNATURE_ENTRY);
    const pem = join(dir, 'brand.pem');
    writeFileSync(pem, world.brandKey.publicKey.toPem());
    const trustPem = join(dir, SLOT_PREFIX, 'trust', `acme-${world.brandKey.publicKey.id.slice(0, 12)}.pem`);
    expect(existsSync(trustPem)).toBe(true);
    for (const key of [pem, trustPem]) {
      const ok = sh('openssl', ['dgst', '-sha256', '-verify', key, '-signature', sig, man]);
      expect({ key, status: ok.status, out: ok.stdout.trim() }).toEqual({ key, status: 0, out: 'Verified OK' });
    }
    const bytes = readFileSync(man);
    bytes[bytes.indexOf('revision: 2') + 10] = '9'.charCodeAt(0);
    const tampered = join(dir, 'tampered');
    writeFileSync(tampered, bytes);
    const bad = sh('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, tampered]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/Verification failure/i);
    // The store's key is in the trust store too, but did not sign.
    const storePem = join(dir, 'store.pem');
    writeFileSync(storePem, world.storeKey.publicKey.toPem());
    expect(sh('openssl', ['dgst', '-sha256', '-verify', storePem, '-signature', sig, man]).status).toBe(1);
  });
});

describe('a delta update', () => {
  let fromModel: UpdateResult;
  let fromImage: UpdateResult;
  beforeAll(async () => {
    fromModel = await update({ from: { resolution: res1, trusted: world.trusted, source: 'model-1' } });
    fromImage = await update({ from: { image: image1.images[0]!.path } });
  }, SLOW);

  test('--from the old model carries only the changed app bundle among the bundles, and no kernel', () => {
    const included = fromModel.files.filter((f) => f.included).map((f) => f.path);
    // (with its dm-verity tree)
    expect(included.filter((p) => p.startsWith('bundles/'))).toEqual([`bundles/${APP}_${appRev2}.snap`, `bundles/${APP}_${appRev2}.snap.verity`]);
    // What names the new revision changes too; the kernel, the trust store and the other bundles do not.
    expect(included.sort()).toEqual(['assertions.assert', 'boot/slot.env', `bundles/${APP}_${appRev2}.snap`, `bundles/${APP}_${appRev2}.snap.verity`, 'manifest.json', 'model.assert'].sort());
    const excluded = fromModel.files.filter((f) => !f.included).map((f) => f.path);
    expect(excluded).toEqual(expect.arrayContaining(['boot/kernel.img', 'boot/initrd.img', ...[GADGET_GPT, KERNEL, BASE].map((n) => `bundles/${n}_${world.bundles.get(n)!.revision}.snap`)]));
    expect(excluded.some((p) => p.startsWith('trust/'))).toBe(true);
    expect(appRev2).not.toBe(appRev1);
    // The manifest still lists every file; only the included ones are in the tar.
    expect(manifestOf(fromModel.output).files).toEqual(manifestOf(full.output).files);
    expect(tarList(fromModel.output).slice(2)).toEqual(included.sort().map((p) => `${SLOT_PREFIX}${p}`));
    expect(fromModel.bytes).toBe(fromModel.files.filter((f) => f.included).reduce((n, f) => n + f.size, 0));
    expect(fromModel.bytes).toBeLessThan(fromModel.fullBytes / 2);
    expect(fromModel.fullBytes).toBe(full.fullBytes);
  });

  test('--from an image built from the old model gives the same delta, byte for byte', () => {
    expect(fromImage.files).toEqual(fromModel.files);
    expect(readFileSync(fromImage.output).equals(readFileSync(fromModel.output))).toBe(true);
  });

  test("reading the image's active slot gives the old model and the files composeImage wrote", async () => {
    const sys = await readImageSystem(image1.images[0]!.path);
    expect({ brand: sys['brand-id'], model: sys.model, revision: sys.revision }).toEqual({ brand: 'acme', model: 'edge-pc', revision: 1 });
    expect(Object.fromEntries(sys.files.map((f) => [f.path, f.sha256]))).toEqual(slotFilesOf(image1));
  });

  test('readUpdate lists included and running-slot files and checks the signature against account-keys or a PEM', async () => {
    const unchecked = await readUpdate(fromModel.output);
    expect(unchecked.signature).toEqual({ checked: false });
    expect(unchecked.files).toEqual(fromModel.files);
    expect(unchecked.manifest.revision).toBe(2);
    expect({ bytes: unchecked.bytes, fullBytes: unchecked.fullBytes }).toEqual({ bytes: fromModel.bytes, fullBytes: fromModel.fullBytes });
    const byAccountKey = await readUpdate(fromModel.output, verifiersFromAssertions([...world.brandAssertions, ...world.trusted], 'keys'));
    expect(byAccountKey.signature).toEqual({ checked: true, valid: true, by: 'keys: account-key of acme' });
    const byPem = await readUpdate(fromModel.output, [verifierFromPem(world.brandKey.publicKey.toPem(), 'brand.pem')]);
    expect(byPem.signature).toEqual({ checked: true, valid: true, by: 'brand.pem' });
    const wrong = await readUpdate(fromModel.output, [verifierFromPem(world.storeKey.publicKey.toPem(), 'store.pem')]);
    expect(wrong.signature).toEqual({ checked: true, valid: false });
  });

  test('readUpdate refuses an included file whose bytes are not the manifest\'s', async () => {
    const bytes = readFileSync(fromModel.output);
    const e = readTar(fromModel.output).find((x) => x.name.endsWith('.snap'))!;
    bytes[e.offset + 100]! ^= 0xff;
    const bad = join(world.tempDir('bad-'), 'bad.update');
    writeFileSync(bad, bytes);
    const r = await refusal(readUpdate(bad));
    expect(r.code).toBe('ERR_UPDATE_FORMAT');
    expect(r.message).toContain(e.name);
    expect(r.message).toMatch(/does not match the manifest/);
  });
});

describe('refusals', () => {
  test('a signing key that is not a key of the brand: ERR_UPDATE_KEY_NOT_BRAND naming key, brand and its keys; nothing written', async () => {
    const dir = world.tempDir('refuse-');
    const r = await refusal(update({ key: world.storeKey, keyName: 'store', output: join(dir, 'u.update') }));
    expect(r.code).toBe('ERR_UPDATE_KEY_NOT_BRAND');
    expect(r.message).toContain(`key "store" (${world.storeKey.publicKey.id})`);
    expect(r.message).toContain('brand acme');
    expect(r.message).toContain(world.brandKey.publicKey.id);
    expect(r.context).toMatchObject({ brand: 'acme', keyId: world.storeKey.publicKey.id, brandKeys: [world.brandKey.publicKey.id] });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a brand key the device trust store leaves out (its constraints do not admit this model, or it expired): ERR_UPDATE_KEY_NOT_BRAND; nothing written", async () => {
    const [kiosks, expired] = await Promise.all([newKey(), newKey()]);
    const { headers, body } = accountKeyHeaders(kiosks.publicKey, { accountId: 'acme', authorityId: world.chain.anchors[0]!.header('account-id')!, since: new Date('2026-01-01T00:00:00Z'), name: 'kiosks' });
    const kioskKey = world.chain.sign({ ...headers, format: '1', constraints: [{ headers: { type: 'model', model: 'kiosk-.*' } }] }, world.chain.rootKey, body);
    const old = world.chain.accountKey(expired, 'acme', { name: 'old', since: new Date('2026-01-01T00:00:00Z'), until: new Date('2026-05-01T00:00:00Z') });
    const resolution: Resolution = { ...res2, assertions: [...res2.assertions, kioskKey, old] };
    for (const key of [kiosks, expired]) {
      const dir = world.tempDir('refuse-');
      const r = await refusal(update({ resolution, key, output: join(dir, 'u.update') }));
      expect(r.code).toBe('ERR_UPDATE_KEY_NOT_BRAND');
      expect(r.context).toMatchObject({ keyId: key.publicKey.id, brandKeys: [world.brandKey.publicKey.id] });
      expect(readdirSync(dir)).toEqual([]);
    }
  }, SLOW);

  test('--from another model: ERR_UPDATE_FROM_MISMATCH', async () => {
    const other = await world.model({ model: 'other-pc', revision: 1 });
    const resOther = await world.resolve(other);
    const dir = world.tempDir('refuse-');
    const r = await refusal(update({ from: { resolution: resOther, trusted: world.trusted, source: 'other.model' }, output: join(dir, 'u.update') }));
    expect(r.code).toBe('ERR_UPDATE_FROM_MISMATCH');
    expect(r.message).toBe('--from other.model is a system of acme/other-pc, the update is for acme/edge-pc: an update must carry the same brand-id and model as the system it replaces');
    expect(readdirSync(dir)).toEqual([]);
  });

  test('--from a revision not lower: ERR_UPDATE_NOT_NEWER (the device would refuse it anyway), from a model or an image', async () => {
    const dir = world.tempDir('refuse-');
    const same = await refusal(update({ from: { resolution: res2, trusted: world.trusted, source: 'model-2' }, output: join(dir, 'u.update') }));
    expect(same.code).toBe('ERR_UPDATE_NOT_NEWER');
    expect(same.message).toMatch(/revision 2 of acme\/edge-pc, the update is revision 2: an update must have a higher revision .*the device would refuse it anyway/);
    const older = await refusal(update({ resolution: res1, from: { image: image2.images[0]!.path }, output: join(dir, 'u.update') }));
    expect(older.code).toBe('ERR_UPDATE_NOT_NEWER');
    expect(older.message).toContain(`--from ${image2.images[0]!.path} is revision 2`);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a failed run leaves an existing output as it was and no temporary file', async () => {
    const dir = world.tempDir('refuse-');
    const out = join(dir, 'u.update');
    writeFileSync(out, 'previous');
    const r = await refusal(update({ from: { image: join(dir, 'missing.img') }, output: out }));
    expect(r.code).toBe('ERR_IMAGE_OPEN');
    expect(readdirSync(dir)).toEqual(['u.update']);
    expect(readFileSync(out, 'utf8')).toBe('previous');
  });

  test('a failure after the tar is written (the output is a folder) leaves no temporary file', async () => {
    const dir = world.tempDir('refuse-');
    const out = join(dir, 'u.update');
    mkdirSync(out);
    const r = await refusal(update({ output: out }));
    expect(['EISDIR', 'ENOTEMPTY', 'EEXIST']).toContain(r.code);
    expect(readdirSync(dir)).toEqual(['u.update']);
    expect(readdirSync(out)).toEqual([]);
  });

  test('writeTar fails on a file it cannot read, and names it', async () => {
    const dir = world.tempDir('tar-');
    await expect(writeTar(join(dir, 'a.tar'), [{ name: 'x', file: join(dir, 'missing') }])).rejects.toThrow(/missing/);
    expect(readdirSync(dir)).toEqual([]);
    await expect(writeTar(join(dir, 'b.tar'), [{ name: 'x', file: dir }])).rejects.toThrow(/EISDIR|directory/);
  });

  test('paths the device shell could misread or that leave the slot', () => {
    for (const p of ['bundles/a b.snap', '/etc/passwd', '../x', 'a/../b', 'a..b', 'a//b', './x', 'x/', 'é', 'a;b', 'a$b', '']) {
      expect(() => checkSlotPath(p)).toThrow(expect.objectContaining({ code: 'ERR_UPDATE_PATH' }));
    }
    for (const p of ['model.assert', 'bundles/hello_12.snap', 'trust/acme-Ab_-c.pem', 'a+b/c-d.e']) expect(() => checkSlotPath(p)).not.toThrow();
    const m: UpdateManifest = { 'brand-id': 'acme', model: 'm', revision: 1, 'sign-key-sha3-384': 'k', files: [{ path: 'bad path', sha256: '0'.repeat(64), size: 0 }] };
    expect(() => encodeUpdateManifest(m)).toThrow(expect.objectContaining({ code: 'ERR_UPDATE_PATH', message: expect.stringContaining('"bad path"') }));
  });

  test('the manifest parser refuses what the device would read differently', () => {
    const key = 'k-1'.padEnd(64, '_');
    const good = encodeUpdateManifest({ 'brand-id': 'acme', model: 'm', revision: 3, 'sign-key-sha3-384': key, files: [{ path: 'b', sha256: 'a'.repeat(64), size: 2 }, { path: 'a', sha256: 'b'.repeat(64), size: 1 }] });
    expect(good.toString()).toBe(`edgeimage-update: 1\nbrand-id: acme\nmodel: m\nrevision: 3\nsign-key-sha3-384: ${key}\nfile: ${'b'.repeat(64)} 1 a\nfile: ${'a'.repeat(64)} 2 b\n`);
    expect(parseUpdateManifest(good).files.map((f) => f.path)).toEqual(['a', 'b']);
    const text = good.toString();
    for (const [why, bad] of [
      ['crlf', text.replace(/\n/g, '\r\n')],
      ['no final newline', text.slice(0, -1)],
      ['unsorted', text.replace('1 a\n', '1 c\n')],
      ['format 2', text.replace('edgeimage-update: 1', 'edgeimage-update: 2')],
      ['bad revision', text.replace('revision: 3', 'revision: -3')],
      ['bad digest', text.replace('b'.repeat(64), 'B'.repeat(64))],
      ['bad path', text.replace('1 a\n', '1 ../a\n')],
      ['a key id of 63 characters', text.replace(key, key.slice(1))],
      ['a key id that is a path', text.replace(key, '../../x')],
    ] as const) {
      expect({ why, r: (() => { try { parseUpdateManifest(Buffer.from(bad), 'm.txt'); return 'accepted'; } catch (e) { return (e as { code: string }).code; } })() }).toEqual({ why, r: expect.stringMatching(/^ERR_UPDATE_(MANIFEST|PATH)$/) });
    }
  });

  test('--from is told apart by sniffing: an image, an assertion, or neither', () => {
    expect(sniffUpdateFrom(image1.images[0]!.path)).toBe('image');
    const dir = world.tempDir('sniff-');
    const modelFile = join(dir, 'm.assert');
    writeFileSync(modelFile, world.modelStream(model1));
    expect(sniffUpdateFrom(modelFile)).toBe('assertion');
    writeFileSync(join(dir, 'x'), 'hello');
    expect(() => sniffUpdateFrom(join(dir, 'x'))).toThrow(expect.objectContaining({ code: 'ERR_UPDATE_FROM_UNKNOWN' }));
  });
});
