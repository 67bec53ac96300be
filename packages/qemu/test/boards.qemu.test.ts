/**
 * Issue 5: the three reference boards boot to healthy on real parts — signed models, the example
 * store, the resolver, the composer, OVMF/AAVMF/U-Boot, GRUB or boot.scr, Debian's kernel,
 * edgeimage's initramfs and the busybox base — under QEMU TCG. Per board, three boots of one copy
 * of the image, on a disk 1 GiB larger than the image:
 *   1. healthy with hello-kiosk up on slot a; the root read-only, /writable read-write;
 *      system-data grown to the end of the bigger disk (the GPT verifies afterwards);
 *   2. a reboot: hello-kiosk's data survived (its second start is recorded), nothing grown again;
 *   3. `edgeimage env set edge_slot=b` offline: slot b boots, healthy, data still there.
 * Then, on fresh copies: a power cut in the middle of the first-boot growth (the next boot
 * finishes it) on the board's grade dangerous twin (the only image that keeps the crash points),
 * and a corrupted kernel (the bootloader names it). On pc-amd64, the signed image ignores test
 * hooks written into its boot partition: edge_kargs=rdinit=/bin/sh edgeimage.slot=b changes nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPartitionTable, readImageEnv, bootPartitionOffset } from '@edgeimage/composer';
import { bootTest, HEALTHY, type BootTestResult } from '../src/index.js';
import { jest } from '@jest/globals';
import { ext4Bytes } from '@edgeimage/testkit/disk-read';

// Each board's tests are one sequence on one disk (first boot, then reboot, then slot b): jest
// retries a failed test after the rest of its block, on a disk the later tests changed, so a
// retry here could only mislead. No retries in this file (jest.qemu-setup.js gives one elsewhere).
jest.retryTimes(0);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOARDS = ['pc-amd64', 'arm64-efi', 'arm64-uboot'] as const;
const BOOT_TIMEOUT_S = 240;

const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-system-aarch64', ['--version']).status === 0;

let work: string;
let images: Record<string, string> = {};
let buildError: string | undefined;

beforeAll(() => {
  if (!hasQemu) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-boards-'));
  const r = spawnSync(join(ROOT, 'scripts/reference-images'), ['--out', work, ...BOARDS, ...BOARDS.map((b) => `${b}-dangerous`)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    buildError = `scripts/reference-images failed (${r.status}):\n${r.stderr.split('\n').slice(-30).join('\n')}`;
    return;
  }
  images = Object.fromEntries(r.stdout.trim().split('\n').map((p) => [p.replace(/^.*\//, '').replace(/\.img$/, ''), p]));
}, 20 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function boot(board: string, disk: string, expect: RegExp[], extra: { diskSize?: string } = {}): Promise<BootTestResult> {
  return bootTest({
    image: disk,
    inPlace: true,
    expect,
    timeoutSeconds: BOOT_TIMEOUT_S,
    log: `${disk}.${Date.now()}.log`,
    ...extra,
  });
}

function explain(r: BootTestResult): string {
  return r.passed ? '' : `${r.code}: ${r.reason}\n${r.tail ?? ''}`;
}

const text = (r: BootTestResult, re: RegExp): string | undefined => r.markers.map((m) => m.line).find((l) => re.test(l));

(hasQemu ? describe.each(BOARDS) : describe.skip.each(BOARDS))('reference board %s', (board) => {
  let disk: string;

  beforeAll(() => {
    if (buildError || !images[board]) return;
    disk = join(work, `${board}.boot.img`);
    execFileSync('cp', ['--sparse=always', images[board]!, disk]);
  });

  const ready = () => {
    if (buildError) throw new Error(buildError);
    expect(images[board]).toBeDefined();
  };

  test('boots to healthy with hello-kiosk up on slot a; the root is read-only; system-data grows into a 1 GiB bigger disk', async () => {
    ready();
    const before = readPartitionTable(disk).partitions.find((p) => p.name === 'system-data' || p.index === 4)!;
    const r = await boot(board, disk, [
      /edgeimage-init: mounts: (.*)/,
      /edgeimage-grow: system-data is now (\d+) MiB/,
      /hello-kiosk \S+ up on slot a \(start 1 /,
      HEALTHY,
    ], { diskSize: '+1G' });
    expect(explain(r)).toBe('');
    expect(r.slot).toBe('a');
    const mounts = text(r, /mounts:/)!;
    // the kernel's own mount table: the root is the squashfs base, read-only; data read-write
    expect(mounts).toMatch(/\/ squashfs ro;/);
    expect(mounts).toMatch(/\/writable ext4 rw;/);
    const after = readPartitionTable(disk).partitions.find((p) => p.index === before.index)!;
    expect(after.size).toBeGreaterThanOrEqual(before.size + 1024 * 1024 * 1024 - 1024 * 1024);
    expect(Number(/now (\d+) MiB/.exec(text(r, /system-data is now/)!)![1]) * 1024 * 1024).toBe(after.size);
    if (readPartitionTable(disk).kind === 'gpt') {
      const v = spawnSync('sgdisk', ['-v', disk], { encoding: 'utf8' });
      expect(v.stdout).toContain('No problems found');
    }
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('its data survives a reboot: the second start of hello-kiosk is recorded, nothing grows again', async () => {
    ready();
    const r = await boot(board, disk, [/hello-kiosk \S+ up on slot a \(start (\d+) /, HEALTHY]);
    expect(explain(r)).toBe('');
    expect(text(r, /hello-kiosk/)).toMatch(/\(start 2 recorded in \/writable\/apps\/hello-kiosk\/starts\.log\)/);
    expect(r.markers.some((m) => /edgeimage-grow: growing/.test(m.line))).toBe(false);
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('edge_slot=b set offline with edgeimage env set: slot b boots to healthy, with the same data', async () => {
    ready();
    execFileSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), 'env', 'set', disk, 'edge_slot=b']);
    expect((await readImageEnv(disk, bootPartitionOffset(disk))).vars['edge_slot']).toBe('b');
    const r = await boot(board, disk, [/booting slot b/, /hello-kiosk \S+ up on slot b \(start 3 /, HEALTHY]);
    expect(explain(r)).toBe('');
    expect(r.slot).toBe('b');
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('grade dangerous twin: a power cut in the first-boot growth, after the partition table and before the filesystem: the next boot grows the filesystem', async () => {
    ready();
    const cut = join(work, `${board}.grow-cut.img`);
    expect(images[`${board}-dangerous`]).toBeDefined();
    execFileSync('cp', ['--sparse=always', images[`${board}-dangerous`]!, cut]);
    const cli = (...args: string[]) => execFileSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), ...args]);
    cli('env', 'set', cut, 'edge_kargs=edge.crash=grow-after-table');
    const crashed = await bootTest({
      image: cut,
      inPlace: true,
      diskSize: '+1G',
      expect: [/edgeimage-grow: growing system-data/, /edgeimage: crash point grow-after-table: rebooting at once/],
      noReboot: true,
      untilExit: true,
      timeoutSeconds: BOOT_TIMEOUT_S,
      log: `${cut}.crash.log`,
    });
    expect(explain(crashed)).toBe('');
    const data = () => readPartitionTable(cut).partitions.find((p) => p.name === 'system-data' || p.index === 4)!;
    // the cut left the table grown and the filesystem at its old size
    expect(ext4Bytes(cut, data().start)).toBeLessThan(data().size);
    cli('env', 'set', cut, 'edge_kargs=');
    const r = await boot(board, cut, [
      /edgeimage-grow: the filesystem of system-data \((\d+) MiB\) is smaller than its partition \((\d+) MiB\): an earlier growth was cut off/,
      /edgeimage-grow: system-data is now (\d+) MiB/,
      HEALTHY,
    ]);
    expect(explain(r)).toBe('');
    expect(r.markers.some((m) => /edgeimage-grow: growing/.test(m.line))).toBe(false);
    expect(ext4Bytes(cut, data().start)).toBe(data().size);
    rmSync(cut);
  }, (2 * BOOT_TIMEOUT_S + 60) * 1000);

  (board === 'pc-amd64' ? test : test.skip)('the signed image ignores test hooks in its boot partition: edge_kargs=rdinit=/bin/sh edgeimage.slot=b, and slot a boots to healthy through the normal init', async () => {
    ready();
    const hooked = join(work, `${board}.hooked.img`);
    execFileSync('cp', ['--sparse=always', images[board]!, hooked]);
    execFileSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), 'env', 'set', hooked, 'edge_kargs=rdinit=/bin/sh edgeimage.slot=b']);
    expect((await readImageEnv(hooked, bootPartitionOffset(hooked))).vars['edge_kargs']).toBe('rdinit=/bin/sh edgeimage.slot=b');
    const r = await boot(board, hooked, [/booting slot a \(status empty\)/, /Kernel command line: (.*)$/, /edgeimage-initramfs: booting slot a/, /hello-kiosk \S+ up on slot a /, HEALTHY]);
    expect(explain(r)).toBe('');
    expect(r.slot).toBe('a');
    const cmdline = text(r, /Kernel command line:/)!;
    expect(cmdline).toMatch(/edgeimage\.slot=a /);
    expect(cmdline).not.toMatch(/rdinit|edgeimage\.slot=b/);
    rmSync(hooked);
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('a corrupted kernel in slot a: the boot fails at the bootloader, naming the cause, without hanging', async () => {
    ready();
    const bad = join(work, `${board}.bad-kernel.img`);
    execFileSync('cp', ['--sparse=always', images[board]!, bad]);
    corruptSlotKernel(bad, 'a');
    const r = await boot(board, bad, [HEALTHY]);
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_BOOTLOADER');
    expect(r.reason).toMatch(/magic|kernel/i);
    rmSync(bad);
  }, (BOOT_TIMEOUT_S + 60) * 1000);
});

/** Replaces boot/kernel.img of a slot with 4 MiB of garbage (debugfs on the slot's ext4, no root). */
function corruptSlotKernel(image: string, slot: 'a' | 'b'): void {
  const table = readPartitionTable(image);
  const p = table.kind === 'gpt' ? table.partitions.find((x) => x.name === `system-${slot}`)! : table.partitions[slot === 'a' ? 1 : 2]!;
  const fs = `${image}.slot.ext4`;
  const garbage = `${image}.garbage`;
  execFileSync('dd', [`if=${image}`, `of=${fs}`, 'bs=1M', `skip=${p.start / 1048576}`, `count=${p.size / 1048576}`, 'status=none']);
  execFileSync('sh', ['-c', `head -c 4194304 /dev/urandom > '${garbage}'`]);
  execFileSync('debugfs', ['-w', '-R', 'rm /boot/kernel.img', fs], { stdio: 'ignore' });
  execFileSync('debugfs', ['-w', '-R', `write ${garbage} /boot/kernel.img`, fs], { stdio: 'ignore' });
  execFileSync('dd', [`if=${fs}`, `of=${image}`, 'bs=1M', `seek=${p.start / 1048576}`, 'conv=notrunc,sparse', 'status=none']);
  rmSync(fs);
  rmSync(garbage);
}

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the board boots are skipped', () => undefined);
