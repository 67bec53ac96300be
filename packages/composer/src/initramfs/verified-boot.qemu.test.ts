/**
 * Issue 13: the initramfs of a verified slot (the kernel bundle's, built by bundles/build).
 * - Direct boots (-kernel/-initrd, Debian amd64 kernel, QEMU TCG) of the unverified reference
 *   pc-amd64 image (scripts/reference-images --unverified: its slot keeps kernel.img and initrd.img)
 *   with verifiedInitrd() for slot a, as the UKI / FIT carries it: a changed byte of the base on the
 *   disk, a wrong root hash in the signed list, a missing tree or bundle fail the boot naming it.
 * - The same image signed (build --boot-keys) booted by OVMF with Secure Boot on: the slot from
 *   LoaderDevicePartUUID, every bundle through dm-verity, healthy with the slot's slot.env removed.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ext4Cat, sfdiskJson, sh } from '@edgeimage/testkit/image-read';
import { bootQemu, directBootArgs, missingQemu } from '@edgeimage/testkit/qemu-direct';
import { CLI_BIN, REPO } from '@edgeimage/testkit/repo';
import { requires } from '@edgeimage/testkit/skips';
import { verifiedInitrd } from '../verified/initrd.js';
import type { BundleVerityEntry } from '../verity/index.js';

const TIMEOUT_MS = 120_000;
const APPEND = 'console=ttyS0 panic=-1 edgeimage.slot=a';
/** Where a failure is complete (the FAILED line is printed, the reboot delay starts), or a boot that should have failed is up. */
const FAILED_DONE = /edgeimage-initramfs: rebooting in|edgeimage-health: healthy/;

interface SlotBundle { name: string; type: string; file: string; verity: BundleVerityEntry }

requires(missingQemu).describe('a verified slot boots through dm-verity (reference pc-amd64 image, direct boot)', () => {
  let work: string;
  let image: string;
  let slotOffset: number;
  let kernel: string;
  let bundleInitrd: Buffer;
  let bundles: SlotBundle[];
  let grade: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'edgeimage-verified-boot-'));
    const r = spawnSync(join(REPO, 'scripts/reference-images'), ['--out', join(work, 'ref'), '--unverified', 'pc-amd64'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`scripts/reference-images failed (${r.status}):\n${r.stderr.split('\n').slice(-30).join('\n')}`);
    image = join(work, 'ref/pc-amd64.img');
    slotOffset = sfdiskJson(image).partitions.find((p) => p.name === 'system-a')!.start * 512;
    const read = (path: string): Buffer => {
      const b = ext4Cat(image, slotOffset, path);
      if (!b) throw new Error(`slot a has no ${path}`);
      return b;
    };
    kernel = join(work, 'kernel.img');
    writeFileSync(kernel, read('/boot/kernel.img'));
    bundleInitrd = read('/boot/initrd.img');
    bundles = (JSON.parse(read('/manifest.json').toString('utf8')) as { bundles: SlotBundle[] }).bundles;
    grade = /^EDGE_GRADE=(\w+)$/m.exec(read('/boot/slot.env').toString('utf8'))![1]!;
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const base = () => bundles.find((b) => b.type === 'base')!;
  /** The initrd of a verified slot a: its signed part (with `patch` applied to the entries), then the kernel bundle's initrd. */
  const initrdFor = (name: string, patch: (e: BundleVerityEntry) => BundleVerityEntry = (e) => e): string => {
    const all = verifiedInitrd(bundleInitrd, {
      grade,
      base: base().file,
      agent: bundles.find((b) => b.type === 'snapd')!.file,
      kernel: bundles.find((b) => b.type === 'kernel')!.file,
      apps: bundles.filter((b) => b.type === 'app').map((b) => b.file),
      verity: bundles.map((b) => patch(b.verity)),
    });
    const f = join(work, `${name}.initrd`);
    writeFileSync(f, all);
    return f;
  };
  /** A copy of the image with `edit` run on slot a (debugfs -w). */
  const disk = (name: string, ...requests: string[]): string => {
    const copy = join(work, `${name}.img`);
    copyFileSync(image, copy);
    for (const req of requests) {
      const d = sh('debugfs', ['-w', '-R', req, `${copy}?offset=${slotOffset}`]);
      if (d.status !== 0 || /not found|error/i.test(d.stderr)) throw new Error(`debugfs ${req}: ${d.stderr}`);
    }
    return copy;
  };
  const summary = (out: string) => out.split('\n').filter((l) => /edgeimage|FAILED|verity|panic/i.test(l)).join('\n');

  test('a byte of the base bundle changed on the disk: FAILED naming the bundle and the corrupted block', async () => {
    const b = base();
    // the middle 4 KiB block of the base, where it lies in the slot's ext4 (4 KiB blocks)
    const block = Math.floor(b.verity['data-blocks'] / 2);
    const bmap = sh('debugfs', ['-R', `bmap /${b.file} ${block}`, `${image}?offset=${slotOffset}`]);
    const phys = Number(bmap.stdout.trim());
    expect(phys).toBeGreaterThan(0);
    expect(sh('debugfs', ['-R', 'stats', `${image}?offset=${slotOffset}`]).stdout).toMatch(/^Block size: +4096$/m);
    const copy = disk('flipped');
    const fd = openSync(copy, 'r+');
    const at = slotOffset + phys * 4096 + 1234;
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0x01;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    expect(ext4Cat(copy, slotOffset, `/${b.file}`)!.equals(ext4Cat(image, slotOffset, `/${b.file}`)!)).toBe(false);
    const boot = await bootQemu(directBootArgs(kernel, initrdFor('flipped'), APPEND, copy), TIMEOUT_MS, FAILED_DONE);
    console.log(`flipped byte: FAILED after ${boot.seconds.toFixed(2)} s\n${summary(boot.output)}`);
    expect(boot.output).not.toContain('Initramfs unpacking failed');
    expect(boot.output).toContain('edgeimage-init: not UEFI (no /sys/firmware/efi): no secure boot');
    expect(boot.output).toContain('edgeimage-initramfs: verified boot: bundles are opened through dm-verity with the root hashes of this initramfs');
    expect(boot.output).toContain(`edgeimage-initramfs: FAILED: bundle ${b.file} does not verify (dm-verity: data block ${block} is corrupted)`);
    expect(boot.output).not.toMatch(/mounted read-only as the root|edgeimage-health/);
  }, TIMEOUT_MS + 30_000);

  test('a wrong root hash for the base in the signed list: FAILED naming the bundle', async () => {
    const b = base();
    const wrong = (e: BundleVerityEntry): BundleVerityEntry => (e === b.verity ? { ...e, 'root-hash': `${e['root-hash'][0] === '0' ? '1' : '0'}${e['root-hash'].slice(1)}` } : e);
    const boot = await bootQemu(directBootArgs(kernel, initrdFor('wrong-root', wrong), APPEND, disk('wrong-root')), TIMEOUT_MS, FAILED_DONE);
    console.log(`wrong root hash: FAILED after ${boot.seconds.toFixed(2)} s\n${summary(boot.output)}`);
    expect(boot.output).toMatch(new RegExp(`edgeimage-initramfs: FAILED: bundle ${b.file} does not verify \\(dm-verity: metadata block \\d+ is corrupted\\)`));
    expect(boot.output).not.toMatch(/mounted read-only as the root|edgeimage-health/);
  }, TIMEOUT_MS + 30_000);

  test('an app bundle\'s .verity missing from the slot: FAILED naming it', async () => {
    const app = bundles.find((b) => b.type === 'app')!;
    const boot = await bootQemu(directBootArgs(kernel, initrdFor('no-tree'), APPEND, disk('no-tree', `rm /${app.verity.file}`)), TIMEOUT_MS, FAILED_DONE);
    console.log(`missing tree: FAILED after ${boot.seconds.toFixed(2)} s`);
    expect(boot.output).toContain(`edgeimage-initramfs: FAILED: bundle ${app.file} has no dm-verity tree ${app.verity.file} in slot a`);
  }, TIMEOUT_MS + 30_000);

  test('the base bundle missing from the slot (the signed list names it): FAILED naming it', async () => {
    const b = base();
    const boot = await bootQemu(directBootArgs(kernel, initrdFor('no-base'), APPEND, disk('no-base', `rm /${b.file}`)), TIMEOUT_MS, FAILED_DONE);
    console.log(`missing bundle: FAILED after ${boot.seconds.toFixed(2)} s`);
    expect(boot.output).toContain(`edgeimage-initramfs: FAILED: bundle ${b.file} is not in slot a (the signed verity.list names it)`);
  }, TIMEOUT_MS + 30_000);

  test('healthy: the image signed (build --boot-keys) under OVMF Secure Boot: secure boot enabled, the slot from LoaderDevicePartUUID (the PARTUUID of system-a), the base, the agent, the kernel and the app opened through dm-verity, read in full and mounted from /dev/mapper; slot.env is not read (removed here)', () => {
    const keys = join(REPO, 'signing-keys.example');
    const ref = join(work, 'ref');
    const trust = ['--no-default-trust', '--trusted', join(keys, 'root.account-key'), '--trusted', join(keys, 'example-root.account'), '--trusted', join(keys, 'store.account-key'), '--trusted', join(keys, 'example-store.account')];
    const out = join(work, 'signed');
    const b = spawnSync(process.execPath, [CLI_BIN, 'build', join(ref, 'models/pc-amd64.assert'), '--store', join(ref, 'store'), ...trust, '--boot-keys', keys, '-o', out, '--format', 'raw'], { encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`edgeimage build --boot-keys failed (${b.status}): ${b.stderr}`);
    const signed = join(out, 'pc-amd64.img');
    const slotA = sfdiskJson(signed).partitions.find((p) => p.name === 'system-a')!.start * 512;
    const rm = sh('debugfs', ['-w', '-R', 'rm /boot/slot.env', `${signed}?offset=${slotA}`]);
    if (rm.status !== 0 || /not found|error/i.test(rm.stderr)) throw new Error(`debugfs rm /boot/slot.env: ${rm.stderr}`);
    const partUuid = sfdiskJson(signed).partitions.find((p) => p.name === 'system-a')!.uuid!.toLowerCase();
    const log = join(work, 'signed.log');
    const r = spawnSync(process.execPath, [CLI_BIN, 'boot-test', signed, '--secure-boot', '--timeout', '240', '--log', log,
      '--expect', 'edgeimage-init: secure boot enabled',
      '--expect', 'edgeimage-initramfs: slot a: the bootloader started this kernel from /dev/vda2 \\(LoaderDevicePartUUID [0-9a-f-]{36}\\); boot disk /dev/vda',
      '--expect', 'edgeimage-initramfs: bundle bundles/busybox-base_[0-9]+\\.snap verified',
      '--expect', 'edgeimage-health: healthy on slot a'], { encoding: 'utf8', timeout: 300_000 });
    const text = readFileSync(log, 'utf8');
    console.log(`signed image under Secure Boot: ${r.stdout.trim().split('\n').pop()}\n${summary(text)}`);
    if (r.status !== 0) throw new Error(`boot-test failed (${r.status}): ${r.stderr}`);
    expect(text).toContain(`(LoaderDevicePartUUID ${partUuid})`);
    const signedBundles = (JSON.parse(ext4Cat(signed, slotA, '/manifest.json')!.toString('utf8')) as { bundles: SlotBundle[] }).bundles;
    for (const x of signedBundles.filter((y) => y.type !== 'gadget')) {
      expect(text).toContain(`edgeimage-initramfs: bundle ${x.file} verified: /dev/mapper/edge-${x.name}`);
    }
    for (const x of signedBundles.filter((y) => y.type === 'app')) expect(text).toContain(`edgeimage-initramfs: app ${x.name} mounted on /run/edgeimage/snap/${x.name}`);
    const agent = signedBundles.find((y) => y.type === 'snapd')!;
    expect(text).toContain(`edgeimage-initramfs: device agent ${agent.file} mounted on /run/edgeimage/agent`);
    expect(text).toContain(`/dev/mapper/edge-${agent.name} on /run/edgeimage/agent squashfs ro,nosuid,nodev`);
    // the gadget bundle is in the slot but not in the list: never opened
    expect(text).not.toMatch(/edge-pc\b/);
    const app = signedBundles.find((y) => y.type === 'app')!.name;
    // the booted system's own view (edgeimage-init: devices): the app's mount is the dm-verity device
    expect(text).toContain(`/dev/mapper/edge-${app} on /run/edgeimage/snap/${app} squashfs ro`);
    expect(text).not.toMatch(/FAILED|Initramfs unpacking failed/);
  }, 360_000);
});
