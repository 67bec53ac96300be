/**
 * bootTest's `reboots` and `expectPowerOff`: a real QemuSession (a shell standing in for QEMU)
 * plays the consoles of machines that restart — OVMF's, AAVMF's, U-Boot's first lines as Debian
 * 12's builds print them — through watchBoots; the real reboot is in direct-boot.qemu.test.ts.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_BANNERS, bootBanner, bootTest, HEALTHY, MAX_REBOOTS, NO_BOOTABLE_DEVICE, watchBoots, type BootBanner, type WatchState } from './boot-test.js';
import { BootTestError } from './errors.js';
import { DEFAULT_FAILURES, QemuSession, type FailurePattern } from './session.js';

const OVMF_BOOT = ['BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)', 'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)', 'edgeimage-grub: booting slot a'];
const VERITY_FAILED = 'edgeimage-initramfs: FAILED: bundle bundles/base_1.snap does not verify';
const AAVMF = 'UEFI firmware (version  built at 13:10:49 on Nov  5 2024)';
const UBOOT = 'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)';

interface Played {
  state: WatchState;
  error?: BootTestError;
}

/** Plays `console` (then exits with `exit`, or sleeps) and watches it as bootTest does. */
async function play(console: readonly string[], spec: { reboots: number; expect?: RegExp[]; banner?: BootBanner; untilPowerOff?: boolean; exit?: number; seconds?: number; failOn?: readonly FailurePattern[] }): Promise<Played> {
  const lines = console.map((l) => `'${l.replace(/'/g, `'\\''`)}'`).join(' ');
  const end = spec.exit !== undefined ? `exit ${spec.exit}` : 'exec sleep 30';
  const s = QemuSession.start({ binary: '/bin/sh', args: ['-c', `printf '%s\\n' ${lines}; ${end}`] });
  const state: WatchState = { markers: [], boots: [] };
  try {
    await watchBoots(s, { expect: spec.expect ?? [HEALTHY], failOn: spec.failOn ?? DEFAULT_FAILURES, reboots: spec.reboots, banner: spec.banner ?? BOOT_BANNERS.ovmf, deadline: performance.now() + (spec.seconds ?? 10) * 1000, untilPowerOff: spec.untilPowerOff ?? false }, state);
    return { state };
  } catch (e) {
    if (!(e instanceof BootTestError)) throw e;
    return { state, error: e };
  } finally {
    await s.kill();
  }
}

describe('OVMF: the boot manager\'s first "BdsDxe: loading" line after lines of others starts a boot', () => {
  const fallback = [...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT.slice(0, 2), 'edgeimage-grub: booting slot b', 'edgeimage-health: healthy on slot b'];

  test('a FAILED line of a boot before the last allowed reboot is reported, not fatal; the marker after the reboot passes', async () => {
    const r = await play(fallback, { reboots: 1 });
    expect(r.error).toBeUndefined();
    expect(r.state.slot).toBe('b');
    expect(r.state.boots).toMatchObject([
      { index: 0, seconds: 0, banner: OVMF_BOOT[0], failed: 'the initramfs failed: bundle bundles/base_1.snap does not verify', code: 'ERR_INITRAMFS_FAILED', line: VERITY_FAILED },
      { index: 1, banner: OVMF_BOOT[0] },
    ]);
    expect(r.state.boots[1]).not.toHaveProperty('failed');
    expect(r.state.boots[1]!.seconds).toBeGreaterThan(0);
    expect(r.state.markers.map((m) => m.line)).toEqual(['edgeimage-health: healthy on slot b']);
  });

  test('several BdsDxe lines in a row (a boot option refused, the next tried) are one boot', async () => {
    const refusedFirst = ['BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)', 'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0): Not Found', 'BdsDxe: loading Boot0002 "UEFI Misc Device 2" from PciRoot(0x0)/Pci(0x3,0x0)', 'edgeimage-health: healthy on slot a'];
    const r = await play(refusedFirst, { reboots: 0 });
    expect(r.error).toBeUndefined();
    expect(r.state.boots).toEqual([{ index: 0, seconds: 0, banner: refusedFirst[0] }]);
  });

  test('with 0 reboots the FAILED line fails the boot at once, as without reboots', async () => {
    const r = await play(fallback, { reboots: 0 });
    expect(r.error?.code).toBe('ERR_INITRAMFS_FAILED');
    expect(r.error?.message).toMatch(/^the initramfs failed: bundle bundles\/base_1\.snap does not verify \(at [\d.]+ s\)$/);
    expect(r.state.markers).toEqual([]);
    expect(r.state.boots).toEqual([{ index: 0, seconds: 0, banner: OVMF_BOOT[0], failed: 'the initramfs failed: bundle bundles/base_1.snap does not verify', code: 'ERR_INITRAMFS_FAILED', line: VERITY_FAILED }]);
  });

  test('a FAILED line once the reboots are used up is fatal, naming the boot and the earlier failures', async () => {
    const r = await play([...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, 'edgeimage-initramfs: FAILED: bundle bundles/hello_1.snap does not verify', 'edgeimage-health: healthy on slot a'], { reboots: 1 });
    expect(r.error?.code).toBe('ERR_INITRAMFS_FAILED');
    expect(r.error?.message).toMatch(/^the initramfs failed: bundle bundles\/hello_1\.snap does not verify \(at [\d.]+ s\) on boot 2, after 1 reboot; earlier boots: boot 1 failed: the initramfs failed: bundle bundles\/base_1\.snap does not verify$/);
    // the boot that failed the test is reported with its FAILED line too
    expect(r.state.boots.map((b) => b.line)).toEqual([VERITY_FAILED, 'edgeimage-initramfs: FAILED: bundle bundles/hello_1.snap does not verify']);
    expect(r.error?.context['boots']).toBe(r.state.boots);
  });

  test('one start more than allowed is ERR_TOO_MANY_REBOOTS, quoting the line that started it', async () => {
    const r = await play([...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, 'edgeimage-grub: FAILED: slot b does not verify', ...OVMF_BOOT, 'edgeimage-health: healthy on slot a'], { reboots: 1 });
    // the second boot's FAILED line came after the last allowed reboot: that one is fatal first
    expect(r.error?.code).toBe('ERR_BOOTLOADER');
    const three = await play([...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, 'edgeimage-health: healthy on slot a'], { reboots: 1, expect: [/never/] });
    expect(three.error?.code).toBe('ERR_INITRAMFS_FAILED');
    const quiet = await play([...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, 'nothing failed', ...OVMF_BOOT, 'edgeimage-health: healthy on slot a'], { reboots: 1 });
    expect(quiet.error?.code).toBe('ERR_TOO_MANY_REBOOTS');
    expect(quiet.error?.message).toMatch(/^the machine started a 3rd time at [\d.]+ s \("BdsDxe: loading Boot0001 \\"UEFI Misc Device\\" from PciRoot\(0x0\)\/Pci\(0x2,0x0\)"\) where 1 reboot was allowed; earlier boots: boot 1 failed: the initramfs failed: bundle bundles\/base_1\.snap does not verify$/);
    expect(quiet.state.boots).toHaveLength(2);
  });
  test('a firmware that found nothing to start fails the boot at once, reboots left or not: it waits for a key forever', async () => {
    const nothing = [OVMF_BOOT[0]!, 'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0): Access Denied', 'BdsDxe: No bootable option or device was found.'];
    const r = await play([...OVMF_BOOT, VERITY_FAILED, ...nothing], { reboots: 3, failOn: [...DEFAULT_FAILURES, NO_BOOTABLE_DEVICE], seconds: 5 });
    expect(r.error?.code).toBe('ERR_NO_BOOTABLE_DEVICE');
    expect(r.error?.message).toMatch(/^the firmware found nothing to start .* \(at [\d.]+ s\) on boot 2; earlier boots: boot 1 failed: the initramfs failed: bundle bundles\/base_1\.snap does not verify$/);
  });
});

describe('AAVMF and U-Boot print a banner first: its second showing is a restart', () => {
  test.each([
    ['AAVMF', AAVMF, bootBanner('arm64', 'uefi')],
    ['U-Boot', UBOOT, bootBanner('arm64', 'uboot')],
  ])('%s', async (_name, banner, pattern) => {
    const boot = [banner, 'some firmware line', 'BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)'];
    const r = await play([...boot, 'edgeimage-uboot: FAILED: cannot load slot a', ...boot, 'edgeimage-health: healthy on slot b'], { reboots: 2, banner: pattern });
    expect(r.error).toBeUndefined();
    expect(r.state.boots.map((b) => [b.index, b.banner, b.code])).toEqual([[0, banner, 'ERR_BOOTLOADER'], [1, banner, undefined]]);
  });

  test('the banner per machine: OVMF (amd64 UEFI), AAVMF, U-Boot, SeaBIOS (amd64 direct), the arm64 kernel (arm64 direct)', () => {
    expect(bootBanner('amd64', 'uefi')).toBe(BOOT_BANNERS.ovmf);
    expect(bootBanner('arm64', 'uefi').pattern.test(AAVMF)).toBe(true);
    expect(bootBanner('arm64', 'uboot').pattern.test(UBOOT)).toBe(true);
    expect(bootBanner('amd64', 'direct').pattern.test('SeaBIOS (version 1.16.2-debian-1.16.2-1)')).toBe(true);
    expect(bootBanner('arm64', 'direct').pattern.test('[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]')).toBe(true);
    // U-Boot's `version` output inside a script run is no banner: it has no date in parentheses
    expect(bootBanner('arm64', 'uboot').pattern.test('U-Boot 2023.01+dfsg-2+deb12u3')).toBe(false);
  });
});

describe('QEMU exiting while the markers are awaited', () => {
  const tampered = [...OVMF_BOOT, VERITY_FAILED, ...OVMF_BOOT, 'edgeimage-initramfs: FAILED: bundle bundles/base_1.snap does not verify (slot b)', ...OVMF_BOOT.slice(0, 2), 'edgeimage-grub: no bootable slot'];

  test('untilPowerOff: the guest powering off after its failed boots is the success, and says so', async () => {
    const r = await play(tampered, { reboots: 3, expect: [], untilPowerOff: true, exit: 0 });
    expect(r.error).toBeUndefined();
    expect(r.state.poweredOff).toBe(true);
    expect(r.state.boots.map((b) => b.code ?? null)).toEqual(['ERR_INITRAMFS_FAILED', 'ERR_INITRAMFS_FAILED', null]);
  });

  test('without it, a power-off before the marker is ERR_POWERED_OFF naming the marker and the failed boots; another exit status stays ERR_QEMU_EXITED', async () => {
    const r = await play(tampered, { reboots: 3, exit: 0 });
    expect(r.error?.code).toBe('ERR_POWERED_OFF');
    expect(r.error?.message).toMatch(/^the guest powered off \(QEMU exited with status 0\) after 2 reboots, before \/edgeimage-health: healthy on slot \(\[ab\]\)\/ appeared; earlier boots: boot 1 failed: .*; boot 2 failed: .*\(slot b\)$/);
    expect(r.state.poweredOff).toBe(true);
    const crashed = await play(tampered, { reboots: 3, exit: 1 });
    expect(crashed.error?.code).toBe('ERR_QEMU_EXITED');
    expect(crashed.error?.message).toMatch(/^QEMU exited with status 1 after .* before \/edgeimage-health: healthy on slot \(\[ab\]\)\/ appeared/);
    expect(crashed.state.poweredOff).toBeUndefined();
  });

  test('untilPowerOff with a marker not seen before the power-off fails; a system that stays up times out naming the power-off', async () => {
    const r = await play(tampered, { reboots: 3, expect: [/never printed/], untilPowerOff: true, exit: 0 });
    expect(r.error?.code).toBe('ERR_POWERED_OFF');
    const up = await play([...OVMF_BOOT, 'edgeimage-health: healthy on slot a'], { reboots: 3, expect: [], untilPowerOff: true, seconds: 1.5 });
    expect(up.error?.code).toBe('ERR_BOOT_TIMEOUT');
    expect(up.error?.message).toMatch(/^timed out after 1\.5 s waiting until the guest powered off$/);
  });
});

describe('bootTest refuses reboots it cannot watch, before QEMU starts', () => {
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'edgeimage-reboots-')); });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  async function refused(opts: Parameters<typeof bootTest>[0]): Promise<BootTestError> {
    try {
      await bootTest({ tmpDir: tmp, direct: { kernel: '/bin/sh' }, arch: 'amd64', ...opts });
    } catch (e) {
      if (!(e instanceof BootTestError)) throw e;
      expect(readdirSync(tmp)).toEqual([]);
      return e;
    }
    throw new Error('not refused');
  }

  test('a negative, fractional or too large number of reboots; reboots or expectPowerOff with noReboot; expectPowerOff with settleSeconds; tamper in place or without an image', async () => {
    for (const reboots of [-1, 1.5, MAX_REBOOTS + 1, Number.NaN]) {
      const e = await refused({ reboots });
      expect([reboots, e.code, e.message]).toEqual([reboots, 'ERR_USAGE', `reboots: expected a whole number from 0 to ${MAX_REBOOTS}, found ${reboots}`]);
    }
    expect((await refused({ reboots: 2, noReboot: true })).message).toMatch(/^noReboot ends QEMU on the guest's reboot, so no reboot can be watched/);
    expect((await refused({ expectPowerOff: true, noReboot: true })).message).toMatch(/a reboot would look like the power-off expectPowerOff waits for$/);
    expect((await refused({ expectPowerOff: true, settleSeconds: 3 })).code).toBe('ERR_USAGE');
    // a tampered boot changes a copy: not the image in place, not without an image
    const flip = [{ op: 'flip-byte' as const, partition: 'system-a', file: '/boot/uki.efi' }];
    expect((await refused({ tamper: flip })).message).toBe('tampering needs an image');
    expect((await refused({ tamper: flip, image: '/bin/sh', inPlace: true })).message).toBe('a tampered boot changes a copy of the image, not the image itself: not with inPlace');
  });
});
