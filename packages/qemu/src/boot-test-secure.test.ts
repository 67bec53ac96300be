/**
 * Under Secure Boot, a firmware that starts nothing is ERR_SECURE_BOOT_REFUSED only when it refused
 * an image from a disk first; else ERR_NO_BOOTABLE_DEVICE. A real QemuSession (a shell standing in
 * for QEMU) plays OVMF's console as Debian 12's secboot OVMF printed it; the boots themselves are
 * in test/secure-boot.qemu.test.ts.
 */
import { DENIAL_LOOKBACK_LINES, NO_BOOTABLE_DEVICE, secureBootRefusal } from './boot-test.js';
import { BootTestError } from './errors.js';
import { DEFAULT_FAILURES, QemuSession } from './session.js';

const SHELL = 'Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)';
const DISK = 'Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)';
/** What OVMF printed for an empty disk: it refuses only its own shell. */
const NO_ESP = [`BdsDxe: failed to load ${DISK}: Not Found`, `BdsDxe: loading ${SHELL}`, `BdsDxe: starting ${SHELL}`, `BdsDxe: failed to start ${SHELL}: Security Violation`];
/** What it printed for a disk whose \EFI\BOOT\BOOTX64.EFI is not signed by db. */
const UNSIGNED = [`BdsDxe: loading ${DISK}`, `BdsDxe: failed to load ${DISK}: Access Denied`, `BdsDxe: loading ${SHELL}`, `BdsDxe: starting ${SHELL}`, `BdsDxe: failed to start ${SHELL}: Security Violation`];
const NOTHING = ['BdsDxe: No bootable option or device was found.', 'BdsDxe: Press any key to enter the Boot Manager Menu.'];

/** The error bootTest reports for a console: the session's failure, then the look back over the lines before it. */
async function failure(console: readonly string[]): Promise<BootTestError> {
  const script = `printf '%s\\n' ${console.map((l) => `'${l.replace(/'/g, `'\\''`)}'`).join(' ')}; exec sleep 30`;
  const s = QemuSession.start({ binary: '/bin/sh', args: ['-c', script] });
  try {
    await s.waitFor(/edgeimage-health: healthy/, 10_000, { failOn: [...DEFAULT_FAILURES, NO_BOOTABLE_DEVICE] });
  } catch (e) {
    if (!(e instanceof BootTestError)) throw e;
    return secureBootRefusal(e, s.lines.slice(Math.max(0, s.cursor - 1 - DENIAL_LOOKBACK_LINES), s.cursor - 1));
  } finally {
    await s.kill();
  }
  throw new Error('the boot did not fail');
}

test('no EFI System Partition: ERR_NO_BOOTABLE_DEVICE naming what the firmware said, although it refused its own shell', async () => {
  const e = await failure([...NO_ESP, ...NOTHING]);
  expect(e.code).toBe('ERR_NO_BOOTABLE_DEVICE');
  expect(e.message).toMatch(/^the firmware found nothing to start \("BdsDxe: No bootable option or device was found\."\): no boot option loaded a bootloader \(no disk, or no EFI System Partition .*\), and Secure Boot refused no image from a disk \(at [\d.]+ s\)$/);
});

test('no disk at all (only the shell is tried): ERR_NO_BOOTABLE_DEVICE', async () => {
  expect((await failure([...NO_ESP.slice(1), ...NOTHING])).code).toBe('ERR_NO_BOOTABLE_DEVICE');
});

test('an unsigned bootloader on the disk (Access Denied): ERR_SECURE_BOOT_REFUSED quoting the refusal', async () => {
  const e = await failure([...UNSIGNED, ...NOTHING]);
  expect(e.code).toBe('ERR_SECURE_BOOT_REFUSED');
  expect(e.message).toMatch(/^Secure Boot: the firmware refused the bootloader \("BdsDxe: failed to load Boot0001 \\"UEFI Misc Device\\" from PciRoot\(0x0\)\/Pci\(0x2,0x0\): Access Denied" at [\d.]+ s\), then found nothing else to start: it is not signed by a key in db \(at [\d.]+ s\)$/);
  expect(e.context['denial']).toBe(`BdsDxe: failed to load ${DISK}: Access Denied`);
});

test('Security Violation for an image from a disk is a refusal too', async () => {
  const hd = 'Boot0003 "ubuntu" from HD(1,GPT,0B5E1A5E-0000-4000-8000-000000000001,0x800,0x10000)/\\EFI\\BOOT\\BOOTX64.EFI';
  const e = await failure([`BdsDxe: failed to start ${hd}: Security Violation`, ...NOTHING]);
  expect(e.code).toBe('ERR_SECURE_BOOT_REFUSED');
  expect(e.context['denial']).toContain('Security Violation');
});

test('a refusal more than DENIAL_LOOKBACK_LINES lines back is not looked at; other failures pass through', async () => {
  const filler = Array.from({ length: DENIAL_LOOKBACK_LINES }, (_, i) => `BdsDxe: filler ${i}`);
  expect((await failure([UNSIGNED[1]!, ...filler, ...NOTHING])).code).toBe('ERR_NO_BOOTABLE_DEVICE');
  expect((await failure([UNSIGNED[1]!, ...filler.slice(1), ...NOTHING])).code).toBe('ERR_SECURE_BOOT_REFUSED');
  const panic = await failure([...UNSIGNED, 'Kernel panic - not syncing: VFS']);
  expect(panic.code).toBe('ERR_KERNEL_PANIC');
});
