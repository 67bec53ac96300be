/**
 * An independent check of a composed A/B image: libguestfs boots its appliance (a Debian kernel
 * under QEMU/TCG) over the image, read-only, and the Linux kernel's own GPT, vfat and ext4 code
 * reports the partitions, names, types, GUIDs, filesystems and labels and reads files from the
 * slots — nothing of ours (our GPT reader, debugfs, mtools) is involved on that side. ONE
 * guestfish session (one launch, 12–35 s) for the whole file: it is the slow tier.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Assertion } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import type { ComposeResult, PartitionManifest } from './compose.js';
import { abStructures, BOOT_ASSETS, gadgetTree, gadgetYaml, snapYaml } from '@edgeimage/testkit/image-bundles';
import { ext4Cat, fatCat, grubVars } from '@edgeimage/testkit/image-read';
import { makeImageWorld, type ImageWorld } from '@edgeimage/testkit/image-world';
import { guestfish, guestfishUnavailable, guestfsEnv, guestfsKernel, parseFilesystems, parsePartList, type GuestfishSession, type GuestfsKernel } from '@edgeimage/testkit/guestfs';
import { requires } from '@edgeimage/testkit/skips';

const unavailable = guestfishUnavailable();
const describeGuestfs = requires(unavailable).describe;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const lines = (s: string) => s.split('\n').filter(Boolean);

describeGuestfs('libguestfs reads the composed A/B image (independent check)', () => {
  let w: ImageWorld;
  let kernel: GuestfsKernel;
  let model: Assertion;
  let resolution: Resolution;
  let composed: ComposeResult;
  let image: string;
  let parts: PartitionManifest[];
  let session: GuestfishSession;
  let downloads: string;

  beforeAll(async () => {
    // The kernel libguestfs boots is also the real kernel the image carries in its slots.
    kernel = guestfsKernel();
    w = await makeImageWorld();
    await w.publish('guestfs-pc', gadgetTree('guestfs-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt', { slot: '40M' }))));
    await w.publish('debian-kernel', { 'meta/snap.yaml': snapYaml('debian-kernel', 'kernel', 'amd64'), 'kernel.img': readFileSync(kernel.kernel) });
    model = await w.model({ model: 'guestfs-pc', gadget: 'guestfs-pc', kernel: 'debian-kernel' });
    resolution = await w.resolve(model);
    composed = await w.compose(resolution);
    image = composed.images[0]!.path;
    parts = [...composed.manifest.partitions].sort((a, b) => a.index! - b.index!);
    downloads = w.tempDir('guestfish-');

    const perPartition = parts.flatMap((p) => [
      [`name${p.index}`, `part-get-name /dev/sda ${p.index}`],
      [`type${p.index}`, `part-get-gpt-type /dev/sda ${p.index}`],
      [`guid${p.index}`, `part-get-gpt-guid /dev/sda ${p.index}`],
      [`fstype${p.index}`, `vfs-type /dev/sda${p.index}`],
      [`label${p.index}`, `vfs-label /dev/sda${p.index}`],
    ]) as [string, string][];
    session = await guestfish(
      image,
      [
        ['partitions', 'list-partitions'],
        ['partList', 'part-list /dev/sda'],
        ['diskSize', 'blockdev-getsize64 /dev/sda'],
        ['diskGuid', 'part-get-disk-guid /dev/sda'],
        ['filesystems', 'list-filesystems'],
        ...perPartition,
        // Slot a: the model, the slot manifest, the kernel and the bundles.
        ['mountA', 'mount-ro /dev/sda2 /'],
        ['lsA', 'ls /'],
        ['dlModel', `download /model.assert "${join(downloads, 'model.assert')}"`],
        ['dlManifestA', `download /manifest.json "${join(downloads, 'manifest-a.json')}"`],
        ['kernelSum', 'checksum sha256 /boot/kernel.img'],
        ['lsBundles', 'ls /bundles'],
        ...resolution.bundles.map((b) => [`bundle:${b.name}`, `checksum sha256 /bundles/${b.name}_${b.revision}.snap`] as [string, string]),
        ['umountA', 'umount /'],
        // Slot b: the same system.
        ['mountB', 'mount-ro /dev/sda3 /'],
        ['dlManifestB', `download /manifest.json "${join(downloads, 'manifest-b.json')}"`],
        ['modelSumB', 'checksum sha256 /model.assert'],
        ['umountB', 'umount /'],
        // system-boot: the boot assets and the redundant boot environment.
        ['mountBoot', 'mount-ro /dev/sda1 /'],
        ['findBoot', 'find /'],
        ['dlEnv1', `download /EFI/edgeimage/env1/env "${join(downloads, 'env1')}"`],
        ['efiSum', 'checksum sha256 /EFI/BOOT/BOOTX64.EFI'],
        ['umountBoot', 'umount /'],
        // system-data: empty.
        ['mountData', 'mount-ro /dev/sda4 /'],
        ['lsData', 'ls /'],
      ],
      guestfsEnv(kernel),
    );
    console.log(
      `libguestfs: appliance launch (time run) ${session.launchSeconds.toFixed(1)} s; whole guestfish session ${session.totalSeconds.toFixed(1)} s ` +
        `(direct backend, TCG, kernel ${kernel.version}; image ${composed.manifest.size} bytes)`,
    );
  }, 300_000);

  afterAll(() => w?.cleanup());

  test('sees the four GPT partitions at the manifest offsets and sizes, with their names, types and GUIDs', () => {
    const out = session.out;
    expect(Number.isFinite(session.launchSeconds)).toBe(true);
    expect(parts.map((p) => p.name)).toEqual(['system-boot', 'system-a', 'system-b', 'system-data']);
    expect(lines(out['partitions']!)).toEqual(['/dev/sda1', '/dev/sda2', '/dev/sda3', '/dev/sda4']);
    expect(parsePartList(out['partList']!)).toEqual(parts.map((p) => ({ num: p.index, start: p.offset, end: p.offset + p.size - 1, size: p.size })));
    expect(Number(out['diskSize'])).toBe(composed.manifest.size);
    expect(out['diskGuid']!.trim().toUpperCase()).toBe(composed.manifest['disk-guid']!.toUpperCase());
    for (const p of parts) {
      expect({ index: p.index, name: out[`name${p.index}`]!.trim() }).toEqual({ index: p.index, name: p.name });
      expect(out[`type${p.index}`]!.trim().toUpperCase()).toBe(p.type.toUpperCase());
      expect(out[`guid${p.index}`]!.trim().toUpperCase()).toBe(p.guid!.toUpperCase());
    }
  });

  test('finds vfat, ext4, ext4, ext4 with the gadget labels (FAT stores its label upper-cased)', () => {
    const out = session.out;
    expect(parseFilesystems(out['filesystems']!)).toEqual({ '/dev/sda1': 'vfat', '/dev/sda2': 'ext4', '/dev/sda3': 'ext4', '/dev/sda4': 'ext4' });
    expect(parts.map((p) => p.filesystem)).toEqual(['vfat', 'ext4', 'ext4', 'ext4']);
    for (const p of parts) {
      expect(out[`fstype${p.index}`]!.trim()).toBe(p.filesystem);
      expect(out[`label${p.index}`]!.trim()).toBe(p.filesystem === 'vfat' ? p.label!.toUpperCase() : p.label);
    }
  });

  test('reads from slot a the signed model byte for byte, and the slot manifest debugfs reads', () => {
    const out = session.out;
    const [a, b] = [parts[1]!, parts[2]!];
    expect(lines(out['lsA']!)).toEqual(['assertions.assert', 'boot', 'bundles', 'lost+found', 'manifest.json', 'model.assert', 'trust']);
    const modelBytes = readFileSync(join(downloads, 'model.assert'));
    expect(modelBytes.equals(model.encode())).toBe(true);
    const manifestA = readFileSync(join(downloads, 'manifest-a.json'));
    expect(manifestA.equals(ext4Cat(image, a.offset, '/manifest.json')!)).toBe(true);
    expect(JSON.parse(manifestA.toString())).toMatchObject({ model: { 'brand-id': 'acme', model: 'guestfs-pc' }, kernel: ['boot/kernel.img'] });
    // The real Debian kernel, and every bundle exactly as resolved.
    expect(out['kernelSum']!.trim()).toBe(sha256(readFileSync(kernel.kernel)));
    // Each bundle with its dm-verity hash tree next to it.
    expect(lines(out['lsBundles']!)).toEqual(resolution.bundles.flatMap((x) => [`${x.name}_${x.revision}.snap`, `${x.name}_${x.revision}.snap.verity`]).sort());
    for (const x of resolution.bundles) expect({ bundle: x.name, sha256: out[`bundle:${x.name}`]!.trim() }).toEqual({ bundle: x.name, sha256: sha256(readFileSync(x.path)) });
    // Slot b holds the same system (a fresh device has a good fallback).
    expect(readFileSync(join(downloads, 'manifest-b.json')).equals(ext4Cat(image, b.offset, '/manifest.json')!)).toBe(true);
    expect(readFileSync(join(downloads, 'manifest-b.json')).equals(manifestA)).toBe(true);
    expect(out['modelSumB']!.trim()).toBe(sha256(model.encode()));
  });

  test('reads the boot assets and the boot environment from system-boot, and an empty system-data', () => {
    const out = session.out;
    const boot = parts[0]!;
    expect(lines(out['findBoot']!)).toEqual(expect.arrayContaining(['EFI/BOOT/BOOTX64.EFI', 'EFI/edgeimage/grub.cfg', 'EFI/edgeimage/env1/env', 'EFI/edgeimage/env1/lock', 'EFI/edgeimage/env2/env', 'EFI/edgeimage/env2/lock']));
    expect(out['efiSum']!.trim()).toBe(sha256(BOOT_ASSETS['boot-assets/EFI/BOOT/BOOTX64.EFI'] as Buffer));
    const env1 = readFileSync(join(downloads, 'env1'));
    expect(env1.equals(fatCat(image, boot.offset, '/EFI/edgeimage/env1/env')!)).toBe(true);
    expect(env1.length).toBe(1024);
    expect(grubVars(env1)).toMatchObject({ edge_slot: 'a' });
    expect(lines(out['lsData']!)).toEqual(['lost+found']);
  });
});
