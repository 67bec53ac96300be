/**
 * A build refuses a kernel or gadget bundle whose copied files are not regular files inside it —
 * before it writes anything — and no byte of the host file a link points at reaches any output.
 * Real bundles, real store, real composer.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { abStructures, gadgetTree, gadgetYaml, kernelTree } from '@edgeimage/testkit/image-bundles';
import { leftAfter, refusal } from '@edgeimage/testkit/refusals';
import { listFiles } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { createUpdate } from '../update/create.js';

let world: ImageWorld;
let tmp: string;
const savedTmp = process.env.TMPDIR;

beforeAll(async () => {
  world = await makeImageWorld();
  tmp = world.tempDir('tmpdir-');
  process.env.TMPDIR = tmp;
}, SLOW);

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  world?.cleanup();
});

/** Every file under `root` whose bytes contain `marker`. */
function filesContaining(root: string, marker: Buffer): string[] {
  return listFiles(root).filter((f) => {
    try {
      return readFileSync(join(root, f)).includes(marker);
    } catch {
      return false; // a folder
    }
  });
}

describe('kernel bundle', () => {
  test('an initrd.img that is a symbolic link to a host file (a private key) is ERR_BUNDLE_FILE; its bytes appear in no output', async () => {
    const marker = Buffer.from(`-----BEGIN PRIVATE KEY----- ${randomBytes(16).toString('hex')}`);
    const secret = join(world.tempDir('host-'), 'id_rsa');
    writeFileSync(secret, marker, { mode: 0o600 });
    chmodSync(secret, 0o600);
    await world.publish('evil-kernel', { ...kernelTree('evil-kernel'), 'initrd.img': { symlink: secret } });
    const res = await world.resolve(await world.model({ kernel: 'evil-kernel' }));
    const out = world.tempDir('out-');
    const r = await refusal(world.compose(res, { outputDir: out }));
    expect(r.code).toBe('ERR_BUNDLE_FILE');
    expect(r.message).toContain('kernel bundle evil-kernel revision 1: initrd.img is a symbolic link');
    expect(r.message).toContain(secret); // where it points, never what it holds
    expect(r.message).not.toContain(marker.toString());
    expect(listFiles(out)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
    expect(filesContaining(out, marker)).toEqual([]);
  }, SLOW);

  test('an update of a model with that kernel is refused the same way (the slot is staged once for both), writing no update', async () => {
    const secret = join(world.tempDir('host-'), 'id_ed25519');
    writeFileSync(secret, 'PRIVATE', { mode: 0o600 });
    await world.publish('evil-kernel2', { ...kernelTree('evil-kernel2'), 'initrd.img': { symlink: secret } });
    const res = await world.resolve(await world.model({ kernel: 'evil-kernel2' }));
    const dir = world.tempDir('upd-');
    const r = await refusal(createUpdate({ resolution: res, trusted: world.trusted, key: world.brandKey, output: join(dir, 'edge-pc.update') }));
    expect(r.code).toBe('ERR_BUNDLE_FILE');
    expect(r.message).toContain('kernel bundle evil-kernel2 revision 1: initrd.img is a symbolic link');
    expect(listFiles(dir)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);

  test('a kernel.img that is a symbolic link inside the bundle is refused too', async () => {
    const tree = kernelTree('linked-kernel', { kernelImg: false });
    await world.publish('linked-kernel', { ...tree, 'kernel.img': { symlink: 'vmlinuz-6.1.0' } });
    const out = world.tempDir('out-');
    const r = await refusal(world.compose(await world.resolve(await world.model({ kernel: 'linked-kernel' })), { outputDir: out }));
    expect(r.code).toBe('ERR_BUNDLE_FILE');
    expect(r.message).toContain('kernel bundle linked-kernel revision 1: kernel.img is a symbolic link (to "vmlinuz-6.1.0")');
    expect(listFiles(out)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);
});

describe('gadget bundle', () => {
  test("a meta/gadget.yaml that is a symbolic link to a host file is ERR_BUNDLE_FILE; the file is never read or quoted", async () => {
    const marker = `root:$6$${randomBytes(12).toString('hex')}:19000:0:99999:7:::`;
    const secret = join(world.tempDir('host-'), 'shadow');
    writeFileSync(secret, `${marker}\n`, { mode: 0o600 });
    const tree = { ...gadgetTree('yamllink-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'))), 'meta/gadget.yaml': { symlink: secret } };
    await world.publish('yamllink-pc', tree);
    const out = world.tempDir('out-');
    const r = await refusal(world.compose(await world.resolve(await world.model({ gadget: 'yamllink-pc' })), { outputDir: out }));
    expect(r.code).toBe('ERR_BUNDLE_FILE');
    expect(r.message).toContain('gadget bundle yamllink-pc revision 1: meta/gadget.yaml is a symbolic link');
    expect(r.message).not.toContain(marker);
    expect(listFiles(out)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);

  test('a meta/gadget.yaml over 1 MiB is ERR_BUNDLE_FILE_SIZE, before it is parsed', async () => {
    const yaml = gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'));
    const big = `${yaml}${'#'.repeat(1024 * 1024 - yaml.length)}\n`;
    await world.publish('bigyaml-pc', { ...gadgetTree('bigyaml-pc', yaml), 'meta/gadget.yaml': big });
    const out = world.tempDir('out-');
    const r = await refusal(world.compose(await world.resolve(await world.model({ gadget: 'bigyaml-pc' })), { outputDir: out }));
    expect(r.code).toBe('ERR_BUNDLE_FILE_SIZE');
    expect(r.message).toContain(`gadget bundle bigyaml-pc revision 1: meta/gadget.yaml is ${big.length} bytes, more than the 1048576 bytes`);
    expect(listFiles(out)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);

  test('a boot asset that is a symbolic link (even inside the gadget) is ERR_BUNDLE_FILE naming the gadget and the path', async () => {
    const tree = gadgetTree('linked-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: { 'boot-assets/EFI/BOOT/grub.cfg': { symlink: '../edgeimage/grub.cfg' } } });
    await world.publish('linked-pc', tree);
    const out = world.tempDir('out-');
    const r = await refusal(world.compose(await world.resolve(await world.model({ gadget: 'linked-pc' })), { outputDir: out }));
    expect(r.code).toBe('ERR_BUNDLE_FILE');
    expect(r.message).toContain('gadget bundle linked-pc revision 1: boot-assets/EFI/BOOT/grub.cfg is a symbolic link');
    expect(listFiles(out)).toEqual([]);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);
});
