// UEFI Secure Boot under QEMU with a variable store enrolled by our own code (enrolledVarStore):
// OVMF's secboot CODE must refuse a bootloader that is not signed by the enrolled db key and run
// one that is. The bootloader is a tiny GRUB whose built-in config prints a line and powers off.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { bootTest, enrolledVarStore, SECURE_BOOT_FIRMWARE, type BootTestOptions, type BootTestResult, type SecureBootKeys } from '../src/index.js';

const OWNER = 'e1d9a7f0-5e7a-4c1e-9a51-ed9e1a9e0001';
const GRUB_MODULES = '/usr/lib/grub/x86_64-efi';
const onPath = (tool: string): string | undefined => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `no ${tool}`;
  }
};
const missing = firstMissing(
  existsSync(SECURE_BOOT_FIRMWARE.amd64.code) ? undefined : `no ${SECURE_BOOT_FIRMWARE.amd64.code} (ovmf)`,
  existsSync(GRUB_MODULES) ? undefined : `no ${GRUB_MODULES} (grub-efi-amd64-bin)`,
  onPath('sbsign') && `${onPath('sbsign')} (sbsigntool)`,
  onPath('grub-mkimage'),
  onPath('qemu-system-x86_64'),
);

const MARKER = 'edgeimage-sb: GRUB ran';
/** What OVMF prints when it refuses a boot option's image (then tries the next one). */
const REFUSED = /BdsDxe: failed to load Boot\d+ .*: Access Denied/;
/** OVMF's last line when nothing could be started: it then waits for a key, forever. */
const NOTHING_BOOTS = /BdsDxe: No bootable option or device was found/;

let dir: string;
let keys: SecureBootKeys;
let vars: Buffer;

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A GPT disk with one FAT ESP named system-boot holding `efi` as \EFI\BOOT\BOOTX64.EFI. */
function espDisk(efi: string, name: string): string {
  const disk = join(dir, name);
  writeFileSync(disk, '');
  sh('truncate', ['-s', '34M', disk]);
  execFileSync('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { input: 'label: gpt\nstart=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=system-boot\n' });
  sh('mkfs.vfat', ['-F', '16', '--offset', '2048', '-n', 'ESP', disk, '32768']);
  const fat = `${disk}@@1M`;
  sh('mmd', ['-i', fat, '::/EFI', '::/EFI/BOOT']);
  sh('mcopy', ['-i', fat, efi, '::/EFI/BOOT/BOOTX64.EFI']);
  return disk;
}

beforeAll(() => {
  if (missing) return;
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-secure-boot-'));
  const der: Record<string, Buffer> = {};
  for (const role of ['PK', 'KEK', 'db']) {
    sh('openssl', ['req', '-new', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650', '-subj', `/CN=edgeimage test ${role}`, '-keyout', join(dir, `${role}.key`), '-out', join(dir, `${role}.crt`)]);
    chmodSync(join(dir, `${role}.key`), 0o600);
    der[role] = execFileSync('openssl', ['x509', '-in', join(dir, `${role}.crt`), '-outform', 'DER']);
  }
  keys = { pk: der['PK']!, kek: der['KEK']!, db: der['db']!, owner: OWNER };
  vars = enrolledVarStore('ovmf-4m', keys);
  // Under Secure Boot GRUB locks itself down and sets $lockdown=y (not set otherwise): the line shows SB is on.
  writeFileSync(join(dir, 'early.cfg'), `echo "${MARKER}, lockdown=$lockdown"\nhalt\n`);
  sh('grub-mkimage', ['-O', 'x86_64-efi', '-d', GRUB_MODULES, '--disable-shim-lock', '-c', join(dir, 'early.cfg'), '-p', '/EFI/BOOT', '-o', join(dir, 'grub.efi'), 'echo', 'halt']);
  sh('sbsign', ['--key', join(dir, 'db.key'), '--cert', join(dir, 'db.crt'), '--output', join(dir, 'grub-signed.efi'), join(dir, 'grub.efi')]);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const boot = (disk: string, expect: RegExp[], secureBoot: BootTestOptions['secureBoot']): Promise<BootTestResult> => bootTest({ image: disk, arch: 'amd64', secureBoot, expect, timeoutSeconds: 60 });

requires(missing).test('an unsigned bootloader is refused by the firmware (Access Denied): the boot fails as soon as nothing boots', async () => {
  // the keys: bootTest writes the store for the guest's firmware
  const r = await boot(espDisk(join(dir, 'grub.efi'), 'unsigned.img'), [REFUSED, new RegExp(MARKER)], { keys });
  const log = readFileSync(r.log, 'utf8');
  expect(r.passed).toBe(false);
  expect(r.code).toBe('ERR_SECURE_BOOT_REFUSED');
  expect(r.reason).toMatch(/^Secure Boot: the firmware refused the bootloader \("BdsDxe: failed to load Boot\d+ \\"UEFI Misc Device\\" from PciRoot\(.*\): Access Denied" at [\d.]+ s\), then found nothing else to start: it is not signed by a key in db/);
  expect(r.markers.map((m) => m.pattern)).toEqual([REFUSED.source]);
  expect(log).toMatch(NOTHING_BOOTS);
  expect(log).not.toContain(MARKER);
  expect(r.command.args).toEqual(expect.arrayContaining(['q35,smm=on', 'driver=cfi.pflash01,property=secure,value=on', `if=pflash,format=raw,readonly=on,file=${SECURE_BOOT_FIRMWARE.amd64.code}`]));
  rmSync(r.log, { force: true });
}, 90_000);

requires(missing).test('the same bootloader signed with the enrolled db key runs, with GRUB locked down (Secure Boot on)', async () => {
  const r = await boot(espDisk(join(dir, 'grub-signed.efi'), 'signed.img'), [new RegExp(`${MARKER}, lockdown=y`)], { vars });
  const log = readFileSync(r.log, 'utf8');
  expect(r.reason).toBeUndefined();
  expect(r.passed).toBe(true);
  expect(log).not.toMatch(REFUSED);
  rmSync(r.log, { force: true });
}, 90_000);

requires(missing).test('a disk with no EFI System Partition is ERR_NO_BOOTABLE_DEVICE, not a Secure Boot refusal (the firmware refuses only its own EFI shell)', async () => {
  // a partition named system-boot (bootTest wants one) of the Linux type, never formatted: nothing for the firmware to load
  const disk = join(dir, 'no-esp.img');
  writeFileSync(disk, '');
  sh('truncate', ['-s', '34M', disk]);
  execFileSync('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { input: 'label: gpt\nstart=2048, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=system-boot\n' });
  const r = await boot(disk, [new RegExp(MARKER)], { keys });
  const log = readFileSync(r.log, 'utf8');
  expect(r.passed).toBe(false);
  expect(r.code).toBe('ERR_NO_BOOTABLE_DEVICE');
  expect(r.reason).toMatch(/^the firmware found nothing to start \("BdsDxe: No bootable option or device was found\.?"\): .*Secure Boot refused no image from a disk/);
  expect(log).toMatch(NOTHING_BOOTS);
  expect(log).not.toMatch(REFUSED);
  rmSync(r.log, { force: true });
}, 90_000);
