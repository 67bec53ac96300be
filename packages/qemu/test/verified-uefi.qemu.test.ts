// The UEFI chain of a verified image under OVMF Secure Boot with our own enrolled keys: the GRUB
// that buildSignedGrub makes (Authenticode db, pgp verifier, config built in) chainloads a UKI
// that buildUki + signPe make from Debian's kernel, after checking its grubSignature. The firmware
// runs it only when db signed it; GRUB loads it only when its .sig verifies.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey, selfSignedCertificate } from '@edgeimage/assertions';
import { bootTest, SECURE_BOOT_FIRMWARE, type BootTestResult, type SecureBootKeys } from '@edgeimage/qemu';
import { hasQemu, makeGuest, type Guest } from '@edgeimage/testkit/qemu-guest';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { buildSignedGrub, buildUki, grubSignature, signPe, type PeSigner } from '@edgeimage/composer';

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const GRUB_MODULES = '/usr/lib/grub/x86_64-efi';
const missing = firstMissing(
  existsSync(SECURE_BOOT_FIRMWARE.amd64.code) ? undefined : `no ${SECURE_BOOT_FIRMWARE.amd64.code} (ovmf)`,
  existsSync(STUB) ? undefined : `no ${STUB} (systemd-boot-efi)`,
  existsSync(GRUB_MODULES) ? undefined : `no ${GRUB_MODULES} (grub-efi-amd64-bin)`,
  hasQemu('amd64') ? undefined : 'no qemu-system-x86_64',
);

const OWNER = 'e1d9a7f0-5e7a-4c1e-9a51-ed9e1a9e0001';
const MARKER = 'uefi-test: the UKI runs';
const CMDLINE = 'console=ttyS0 panic=-1 uefi-test=from-uki';
// $cmdpath is (hd0,gpt1)/EFI/BOOT: the ESP GRUB was started from ($root is the memdisk).
const CONFIG = `regexp --set=1:esp '^\\(([^)]+)\\)' "$cmdpath"
set root=$esp
echo "uefi-test: GRUB lockdown=$lockdown check_signatures=$check_signatures"
if chainloader /uki.efi; then boot; fi
echo "uefi-test: UKI refused"
halt
`;

let dir: string;
let guest: Guest;
let keys: SecureBootKeys;
let db: PeSigner;
let other: PeSigner;
let grub: Buffer;
let uki: Buffer;

function signer(name: string): PeSigner & { der: Buffer } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = selfSignedCertificate(PrivateKey.fromKeyObject(privateKey), { commonName: `edgeimage uefi test ${name}`, organization: 'test', codeSigning: true });
  return { key: privateKey, certPem: cert.pem, der: cert.der };
}

/** A GPT disk whose FAT ESP (named system-boot) holds the GRUB as \EFI\BOOT\BOOTX64.EFI and `files` at its root. */
function espDisk(name: string, files: Record<string, Buffer>): string {
  const disk = join(dir, name);
  writeFileSync(disk, '');
  execFileSync('truncate', ['-s', '42M', disk]);
  execFileSync('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { input: 'label: gpt\nstart=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=system-boot\n' });
  execFileSync('mkfs.vfat', ['-F', '16', '--offset', '2048', '-n', 'ESP', disk, '40960'], { stdio: 'ignore' });
  const fat = `${disk}@@1M`;
  execFileSync('mmd', ['-i', fat, '::/EFI', '::/EFI/BOOT']);
  writeFileSync(join(dir, 'BOOTX64.EFI'), grub);
  execFileSync('mcopy', ['-i', fat, join(dir, 'BOOTX64.EFI'), '::/EFI/BOOT/BOOTX64.EFI']);
  for (const [f, data] of Object.entries(files)) {
    writeFileSync(join(dir, f), data);
    execFileSync('mcopy', ['-i', fat, join(dir, f), `::/${f}`]);
  }
  return disk;
}

const boot = (disk: string, expect: RegExp[]): Promise<BootTestResult> => bootTest({ image: disk, arch: 'amd64', secureBoot: { keys }, expect, timeoutSeconds: 45 });

beforeAll(async () => {
  if (missing) return;
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-uefi-qemu-'));
  const g = await makeGuest('amd64');
  if (typeof g === 'string') throw new Error(g);
  guest = g;
  const pk = signer('PK');
  const kek = signer('KEK');
  const dbs = signer('db');
  db = dbs;
  other = signer('other');
  keys = { pk: pk.der, kek: kek.der, db: dbs.der, owner: OWNER };
  grub = await buildSignedGrub({ format: 'x86_64-efi', moduleDir: GRUB_MODULES, config: CONFIG, signer: db });
  const initrd = await guest.initrd(`echo "${MARKER}: $(cat /proc/cmdline)"\npoweroff -f\n`);
  uki = buildUki({ stub: readFileSync(STUB), kernel: readFileSync(guest.kernel.vmlinuz), initrd: readFileSync(initrd), cmdline: CMDLINE, osRelease: 'ID=edgeimage\nNAME="edgeimage uefi test"\n' });
}, 120_000);
afterAll(() => {
  guest?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

requires(missing).test('Secure Boot: the signed GRUB checks the UKI\'s OpenPGP signature, chainloads it, the firmware accepts its Authenticode signature and the kernel runs with the built-in cmdline', async () => {
  const signed = signPe(uki, db);
  const r = await boot(espDisk('good.img', { 'uki.efi': signed, 'uki.efi.sig': grubSignature(signed, db.key) }), [
    /uefi-test: GRUB lockdown=y check_signatures=enforce/,
    /secureboot: Secure boot enabled/,
    new RegExp(`${MARKER}: ${CMDLINE}`),
  ]);
  expect(r.reason).toBeUndefined();
  expect(r.passed).toBe(true);
  rmSync(r.log, { force: true });
}, 90_000);

requires(missing).test('a UKI Authenticode-signed by another key (its GRUB signature good) is refused by the firmware: GRUB prints "cannot load image" and the kernel never runs', async () => {
  const signed = signPe(uki, other);
  const r = await boot(espDisk('other-key.img', { 'uki.efi': signed, 'uki.efi.sig': grubSignature(signed, db.key) }), [new RegExp(MARKER)]);
  const log = readFileSync(r.log, 'utf8');
  expect(r.passed).toBe(false);
  expect(r.code).toBe('ERR_BOOTLOADER');
  expect(log).toMatch(/uefi-test: GRUB lockdown=y check_signatures=enforce/);
  expect(log).toContain('error: cannot load image');
  expect(log).not.toContain(MARKER);
  rmSync(r.log, { force: true });
}, 90_000);

requires(missing).test('a db-signed UKI whose OpenPGP signature is by another key is refused by GRUB before the firmware sees it', async () => {
  const signed = signPe(uki, db);
  const r = await boot(espDisk('other-sig.img', { 'uki.efi': signed, 'uki.efi.sig': grubSignature(signed, other.key) }), [new RegExp(MARKER)]);
  const log = readFileSync(r.log, 'utf8');
  expect(r.passed).toBe(false);
  expect(r.code).toBe('ERR_BOOTLOADER');
  expect(log).toMatch(/error: (public key [0-9a-f]+ not found|bad signature)/);
  expect(log).not.toContain(MARKER);
  rmSync(r.log, { force: true });
}, 90_000);
