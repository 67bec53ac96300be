/**
 * Verified images end to end on the build host: a model resolved from a real store, composed with
 * the brand's boot keys, read back with tools that know nothing of edgeimage (sbverify for the
 * Authenticode signatures, debugfs and mtools for the partitions, dumpimage for the FIT).
 */
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { cpioBytes } from '../initramfs/cpio.js';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BootKeys, type BootSigner } from '@edgeimage/assertions';
import { abStructures, gadgetTree, gadgetYaml, kernelTree, noise } from '@edgeimage/testkit/image-bundles';
import { ext4Cat, ext4Ls, fatCat, sh } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { REPO } from '@edgeimage/testkit/repo';
import { BRAND } from '@edgeimage/testkit/store-world';
import type { Entry } from '@edgeimage/testkit/bundle-trees';
import type { ComposeResult } from '../compose/compose.js';

let world: ImageWorld;
let signers: { db: BootSigner; fit: BootSigner };
let dbCert: string;
let otherSigners: { db: BootSigner; fit: BootSigner };
let built: ComposeResult;

/** A gadget folder's files as a bundle tree, under `prefix`. */
function filesOf(dir: string, prefix: string): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else out[`${prefix}/${r}`] = readFileSync(join(dir, r));
    }
  };
  walk('');
  return out;
}

/** What bundles/bootloader makes for a gadget (build-assets + build-verified-inputs), as tree entries. */
function bootloaderFiles(gadget: 'pc' | 'arm64-uboot'): Record<string, Entry> {
  const dir = world.tempDir('gadget-');
  execFileSync(join(REPO, 'bundles/bootloader/build-assets'), [gadget, join(dir, 'boot-assets')], { stdio: 'ignore' });
  execFileSync(join(REPO, 'bundles/bootloader/build-verified-inputs'), [gadget, join(dir, 'verified-boot')], { stdio: 'ignore' });
  return { ...filesOf(join(dir, 'boot-assets'), 'boot-assets'), ...filesOf(join(dir, 'verified-boot'), 'verified-boot') };
}

async function signersIn(dir: string, brand: string): Promise<{ db: BootSigner; fit: BootSigner; cert: string }> {
  const boot = new BootKeys(dir);
  await boot.create(brand);
  return { db: boot.signer('db'), fit: boot.signer('FIT'), cert: join(boot.show().setDir, 'db.crt') };
}

const part = (r: ComposeResult, role: string) => r.manifest.partitions.find((p) => p.role === role)!;

/** An edgeimage initramfs as far as the composer checks it: gzip of a cpio whose features say verified-boot. */
const INITRD = gzipSync(cpioBytes([{ path: 'init', type: 'file', mode: 0o755, data: '#!/bin/sh\n' }, { path: 'etc/edgeimage/initramfs.features', type: 'file', mode: 0o644, data: 'verified-boot\n' }], { mtime: 0 }));

/** A bzImage-looking blob: the UKI carries it; nothing here runs it. */
const KERNEL = Buffer.concat([noise(0x202, 'k'), Buffer.from('HdrS'), noise(200_000, 'kernel')]);

beforeAll(async () => {
  world = await makeImageWorld();
  const s = await signersIn(join(world.tempDir('keys-'), 'ring'), BRAND);
  signers = { db: s.db, fit: s.fit };
  dbCert = s.cert;
  const o = await signersIn(join(world.tempDir('keys-'), 'ring'), BRAND);
  otherSigners = { db: o.db, fit: o.fit };
  await world.publish('vb-pc', gadgetTree('vb-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: bootloaderFiles('pc') }));
  await world.publish('vb-kernel', { ...kernelTree('vb-kernel'), 'kernel.img': KERNEL, 'initrd.img': INITRD });
  built = await world.compose(await world.resolve(await world.model({ gadget: 'vb-pc', kernel: 'vb-kernel' })), { bootSigners: signers });
}, SLOW);

afterAll(() => world?.cleanup());

describe('a verified UEFI image (build --boot-keys)', () => {
  test('each slot holds a signed unified kernel image and its GRUB signature instead of kernel.img and initrd.img', () => {
    const img = built.images[0]!.path;
    for (const role of ['system-a', 'system-b']) {
      const files = ext4Ls(img, part(built, role).offset, '/boot');
      expect(files).toEqual(expect.arrayContaining(['uki.efi', 'uki.efi.sig', 'slot.env']));
      expect(files).not.toContain('kernel.img');
      expect(files).not.toContain('initrd.img');
    }
    const uki = join(world.tempDir('uki-'), 'uki.efi');
    writeFileSync(uki, ext4Cat(img, part(built, 'system-a').offset, '/boot/uki.efi')!);
    expect(sh('sbverify', ['--cert', dbCert, uki]).status).toBe(0);
    // its .cmdline names no slot: the initramfs takes it from the partition the UKI came from
    const cmdline = sh('objdump', ['-s', '-j', '.cmdline', uki]).stdout;
    expect(cmdline).toContain('console=ttyS');
    expect(cmdline).not.toContain('edgeimage.slot');
  });

  test('the payload carries an RSA/SHA-256 signature by the db key that openssl checks with the slot\'s payload-key.pem, as the device\'s updater does', () => {
    const img = built.images[0]!.path;
    const d = world.tempDir('payload-');
    for (const f of ['uki.efi', 'payload.sig', 'payload-key.pem']) writeFileSync(join(d, f), ext4Cat(img, part(built, 'system-a').offset, `/boot/${f}`)!);
    const dbPub = execFileSync('openssl', ['x509', '-in', dbCert, '-noout', '-pubkey']).toString();
    expect(readFileSync(join(d, 'payload-key.pem'), 'utf8')).toBe(dbPub);
    expect(sh('openssl', ['dgst', '-sha256', '-verify', join(d, 'payload-key.pem'), '-signature', join(d, 'payload.sig'), join(d, 'uki.efi')]).status).toBe(0);
    const uki = readFileSync(join(d, 'uki.efi'));
    const mid = uki.length >> 1;
    uki.writeUInt8(uki.readUInt8(mid) ^ 1, mid);
    writeFileSync(join(d, 'uki.efi'), uki);
    expect(sh('openssl', ['dgst', '-sha256', '-verify', join(d, 'payload-key.pem'), '-signature', join(d, 'payload.sig'), join(d, 'uki.efi')]).status).not.toBe(0);
  });

  test('system-boot holds GRUB signed with db and no grub.cfg: its configuration is built in', () => {
    const img = built.images[0]!.path;
    const grub = fatCat(img, part(built, 'system-boot').offset, '/EFI/BOOT/BOOTX64.EFI')!;
    const f = join(world.tempDir('grub-'), 'grubx64.efi');
    writeFileSync(f, grub);
    expect(sh('sbverify', ['--cert', dbCert, f]).status).toBe(0);
    expect(fatCat(img, part(built, 'system-boot').offset, '/EFI/BOOT/grub.cfg')).toBeUndefined();
    expect(fatCat(img, part(built, 'system-boot').offset, '/EFI/BOOT/grub.cfg.dangerous')).toBeUndefined();
  });

  test('the manifest says verified-boot: UEFI, the payload files and the db certificate\'s sha256', () => {
    const der = execFileSync('openssl', ['x509', '-in', dbCert, '-outform', 'DER']);
    const sha = execFileSync('sha256sum', { input: der }).toString().split(' ')[0];
    expect(built.manifest['verified-boot']).toEqual({ kind: 'uefi', payload: ['boot/uki.efi', 'boot/uki.efi.sig', 'boot/payload.sig', 'boot/payload-key.pem'], signer: { role: 'db', name: 'db', 'certificate-sha256': sha } });
  });

  test('the same inputs and keys give the same bytes', async () => {
    // one model (each world.model() signs a new validation-set sequence, which the slot carries)
    const resolution = await world.resolve(await world.model({ gadget: 'vb-pc', kernel: 'vb-kernel' }));
    const first = await world.compose(resolution, { bootSigners: signers, digests: 'full' });
    const again = await world.compose(resolution, { bootSigners: signers, digests: 'full' });
    expect(again.images[0]!.sha256).toBe(first.images[0]!.sha256);
  }, SLOW);

  test('another set of boot keys signs other bytes, which sbverify refuses with this db certificate', async () => {
    const other = await world.compose(await world.resolve(await world.model({ gadget: 'vb-pc', kernel: 'vb-kernel' })), { bootSigners: otherSigners });
    const f = join(world.tempDir('uki-'), 'uki.efi');
    writeFileSync(f, ext4Cat(other.images[0]!.path, part(other, 'system-a').offset, '/boot/uki.efi')!);
    expect(sh('sbverify', ['--cert', dbCert, f]).status).not.toBe(0);
  }, SLOW);

  test('a UEFI gadget without its db signer: ERR_BOOT_KEYS_ROLE, and no image is written', async () => {
    const out = world.tempDir('out-');
    await expect(world.compose(await world.resolve(await world.model({ gadget: 'vb-pc', kernel: 'vb-kernel' })), { bootSigners: { fit: signers.fit }, outputDir: out })).rejects.toMatchObject({ code: 'ERR_BOOT_KEYS_ROLE', message: expect.stringContaining("brand's db key") });
    expect(readdirSync(out)).toEqual([]);
  }, SLOW);

  test('a kernel bundle whose initramfs does not honour the signed part (an older one): ERR_VERIFIED_PAYLOAD, and no image is written', async () => {
    const oldInitrd = gzipSync(cpioBytes([{ path: 'init', type: 'file', mode: 0o755, data: '#!/bin/sh\n' }], { mtime: 0 }));
    await world.publish('vb-old-kernel', { ...kernelTree('vb-old-kernel'), 'kernel.img': KERNEL, 'initrd.img': oldInitrd });
    const out = world.tempDir('out-');
    await expect(world.compose(await world.resolve(await world.model({ gadget: 'vb-pc', kernel: 'vb-old-kernel' })), { bootSigners: signers, outputDir: out })).rejects.toMatchObject({ code: 'ERR_VERIFIED_PAYLOAD', message: expect.stringContaining('would ignore the signed bundle list') });
    expect(readdirSync(out)).toEqual([]);
  }, SLOW);

  test('a UEFI gadget missing its verified GRUB configuration: ERR_VERIFIED_BOOT_INPUT naming the gadget and the file, no image', async () => {
    const { ['verified-boot/grub.cfg']: _dropped, ...files } = bootloaderFiles('pc');
    await world.publish('vb-pc-nocfg', gadgetTree('vb-pc-nocfg', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: files }));
    const out = world.tempDir('out-');
    await expect(world.compose(await world.resolve(await world.model({ gadget: 'vb-pc-nocfg', kernel: 'vb-kernel' })), { bootSigners: signers, outputDir: out })).rejects.toMatchObject({ code: 'ERR_VERIFIED_BOOT_INPUT', message: expect.stringMatching(/^gadget vb-pc-nocfg_\d+\.snap has no verified-boot\/grub\.cfg, which its verified boot chain needs$/) });
    expect(readdirSync(out)).toEqual([]);
  }, SLOW);

  // grub-mkimage follows links: a link in the gadget's module folder would put a file of the build
  // host into a GRUB the brand signs. The slot's payload stage unpacks the gadget without links.
  test('a gadget whose GRUB module folder holds a link (to a file of the build host): ERR_BUNDLE_FILE naming it, no image; the host file is never signed', async () => {
    const files = bootloaderFiles('pc');
    await world.publish('vb-pc-link', gadgetTree('vb-pc-link', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: { ...files, 'verified-boot/grub/x86_64-efi/secret.mod': { symlink: '/etc/passwd' } } }));
    const out = world.tempDir('out-');
    await expect(world.compose(await world.resolve(await world.model({ gadget: 'vb-pc-link', kernel: 'vb-kernel' })), { bootSigners: signers, outputDir: out })).rejects.toMatchObject({ code: 'ERR_BUNDLE_FILE', message: expect.stringContaining('verified-boot/grub/x86_64-efi/secret.mod is a symbolic link') });
    expect(readdirSync(out)).toEqual([]);
  }, SLOW);

  test('a gadget without verified-boot/ inputs: ERR_VERIFIED_BOOT_UNSUPPORTED naming it, and no image is written', async () => {
    const out = world.tempDir('out-');
    await expect(world.compose(await world.resolve(await world.model()), { bootSigners: signers, outputDir: out })).rejects.toMatchObject({ code: 'ERR_VERIFIED_BOOT_UNSUPPORTED', message: expect.stringMatching(/gadget \S+\.snap has no verified-boot\//) });
    expect(readdirSync(out)).toEqual([]);
  }, SLOW);
});

describe('a verified U-Boot image', () => {
  let r: ComposeResult;
  beforeAll(async () => {
    await world.publish('vb-uboot', gadgetTree('vb-uboot', gadgetYaml('pi', 'mbr', 'u-boot', abStructures('mbr')), { arch: 'arm64', extra: bootloaderFiles('arm64-uboot') }));
    // an arm64 Image header ("ARMd" at 0x38), which mkimage's FIT checks look for
    const image = noise(300_000, 'arm64-kernel');
    image.write('ARM\x64', 0x38, 'latin1');
    await world.publish('vb-kernel-arm64', { ...kernelTree('vb-kernel-arm64', { arch: 'arm64' }), 'kernel.img': image, 'initrd.img': INITRD });
    await world.publish('vb-base-arm64', { 'meta/snap.yaml': "name: vb-base-arm64\nversion: '1.0'\ntype: base\narchitectures: [arm64]\n", 'bin/sh': { data: '#!/bin/true\n', mode: 0o755 } });
    r = await world.compose(await world.resolve(await world.model({ model: 'vb-pi', gadget: 'vb-uboot', kernel: 'vb-kernel-arm64', base: 'vb-base-arm64', apps: [], architecture: 'arm64' })), { bootSigners: signers });
  }, SLOW);

  test('each slot holds a FIT whose configuration is signed with the FIT key; boot.scr is not on system-boot', () => {
    const img = r.images[0]!.path;
    const itb = join(world.tempDir('fit-'), 'boot.itb');
    writeFileSync(itb, ext4Cat(img, part(r, 'system-a').offset, '/boot/boot.itb')!);
    const info = sh('dumpimage', ['-l', itb]).stdout;
    expect(info).toContain(`Sign value:`);
    expect(info).toMatch(/Sign algo:\s+sha256,rsa2048:acme-fit/);
    expect(ext4Ls(img, part(r, 'system-a').offset, '/boot')).not.toContain('kernel.img');
    expect(fatCat(img, part(r, 'system-boot').offset, '/boot.scr')).toBeUndefined();
  });

  test('the factory files are outputs next to the image: a 64 MiB environment flash and the control dtb with the key required', () => {
    const img = r.images[0]!.path;
    const env = img.replace(/\.img$/, '.uboot-env.img');
    const dtb = img.replace(/\.img$/, '.uboot.dtb');
    expect(statSync(env).size).toBe(64 * 2 ** 20);
    // sparse: the environment and the script are written, the rest of the bank is a hole
    expect(statSync(env).blocks * 512).toBeLessThan(2 ** 20);
    expect(readFileSync(env).includes(Buffer.from('bootcmd=source 0x04040000\0'))).toBe(true);
    expect(sh('fdtget', [dtb, '/signature/key-acme-fit', 'required']).stdout.trim()).toBe('conf');
    expect(r.manifest.outputs.map((o) => o.format)).toEqual(expect.arrayContaining(['uboot-env', 'uboot-dtb']));
    expect(existsSync(env) && existsSync(dtb)).toBe(true);
  });
});
