/**
 * Verified boot on U-Boot, end to end on QEMU's arm64 virt board with Debian's qemu_arm64 U-Boot:
 * a flash script (ubootScriptFlash) loads a FIT from the disk's FAT partition, checks the FDT magic
 * and runs `bootm ADDR#conf-1`; U-Boot's control dtb holds the FIT key (controlDtb, `-dtb`). A FIT
 * signed by that key (buildFit) boots Debian's kernel into a busybox initramfs that prints a
 * marker; an unsigned one, one signed by another key under the same name, and the signed one with
 * one ramdisk byte flipped are refused by U-Boot and never start a kernel.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey, selfSignedCertificate } from '@edgeimage/assertions';
import { assertBooted, bootTest } from '@edgeimage/qemu';
import { makeGuest, hasQemu, type Guest } from '@edgeimage/testkit/qemu-guest';
import { REPO } from '@edgeimage/testkit/repo';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { buildFit, controlDtb, fdtNode, fitSource, readFdt, ubootScriptFlash, writeUbootFlash, type FitSigner } from '@edgeimage/composer';

const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const EPOCH = 1767225600;
const KEY = 'acme-fit';
const MARKER = 'vb-test: the verified payload runs';
const has = (t: string): boolean => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;
const missing = firstMissing(
  hasQemu('arm64') ? undefined : 'qemu-system-aarch64 is not installed',
  spawnSync('test', ['-r', UBOOT]).status === 0 ? undefined : `no ${UBOOT} (u-boot-qemu)`,
  ['mkimage', 'dtc', 'fdtput', 'mkfs.vfat', 'mcopy', 'sfdisk'].find((t) => !has(t)),
);

/** The test's flash script: the FIT named by vb_fit, FIT magic first, then bootm of conf-1 only. */
const SCRIPT = `setenv bootargs "console=ttyAMA0 panic=-1"
echo "vb-test: loading \${vb_fit}"
if load virtio 0:1 0x48000000 \${vb_fit}; then
  setexpr.l vb_magic *0x48000000
  if test "\${vb_magic}" = edfe0dd0; then
    bootm 0x48000000#conf-1
    echo "edgeimage-uboot: FAILED: \${vb_fit} does not verify (bootm refused it)"
  else
    echo "edgeimage-uboot: FAILED: \${vb_fit} is not a FIT (first word \${vb_magic})"
  fi
else
  echo "edgeimage-uboot: FAILED: cannot load \${vb_fit}"
fi
poweroff
`;

function signerOf(): FitSigner {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return { key, certPem: selfSignedCertificate(PrivateKey.fromKeyObject(key), { commonName: 'test FIT key', organization: 'acme', now: new Date(EPOCH * 1000) }).pem };
}

requires(missing).describe('U-Boot verified boot: a signed FIT boots, unsigned / other-key / tampered FITs are refused (QEMU arm64 virt, Debian U-Boot and kernel)', () => {
  let work: string;
  let guest: Guest;
  let disk: string;
  let ctl: string;
  const flash: Record<string, string> = {};
  let prepSeconds = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    work = mkdtempSync(join(tmpdir(), 'edgeimage-uboot-qemu-'));
    const g = await makeGuest('arm64');
    if (typeof g === 'string') throw new Error(g);
    guest = g;
    const initrd = await guest.initrd(`echo "${MARKER}: $(cat /proc/cmdline)"\npoweroff -f\n`);
    execFileSync(join(REPO, 'bundles/bootloader/build-verified-inputs'), ['arm64-uboot', work], { stdio: 'pipe' });
    const fdt = join(work, 'virt.dtb');
    const signer = signerOf();
    const files = join(work, 'fat');
    mkdirSync(files);
    const fit = await buildFit({ kernel: guest.kernel.vmlinuz, initrd, fdt, keyName: KEY, signer, sourceDateEpoch: EPOCH });
    writeFileSync(join(files, 'signed.itb'), fit);
    writeFileSync(join(files, 'other.itb'), await buildFit({ kernel: guest.kernel.vmlinuz, initrd, fdt, keyName: KEY, signer: signerOf(), sourceDateEpoch: EPOCH }));
    // one byte in the middle of the ramdisk's data: the signed hash no longer matches
    const data = fdtNode(readFdt(fit, 'fit'), '/images/ramdisk-1')!.props.get('data')!;
    const tampered = Buffer.from(fit);
    const at = data.byteOffset - fit.byteOffset + (data.length >> 1);
    tampered.writeUInt8(tampered.readUInt8(at) ^ 0xff, at);
    writeFileSync(join(files, 'tampered.itb'), tampered);
    // the same FIT source without -k: the signature node is there, its value is not
    const u = join(work, 'unsigned');
    mkdirSync(u);
    copyFileSync(guest.kernel.vmlinuz, join(u, 'kernel'));
    copyFileSync(initrd, join(u, 'initrd'));
    copyFileSync(fdt, join(u, 'fdt'));
    writeFileSync(join(u, 'boot.its'), fitSource(KEY));
    execFileSync('mkimage', ['-f', join(u, 'boot.its'), join(files, 'unsigned.itb')], { stdio: 'ignore' });
    ctl = join(work, 'control.dtb');
    writeFileSync(ctl, await controlDtb({ baseDtb: fdt, keyName: KEY, signer }));
    // MBR, one FAT partition labelled system-boot holding the FITs
    disk = join(work, 'disk.img');
    execFileSync('truncate', ['-s', '200M', disk]);
    execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', disk], { input: 'start=2048, type=c\n' });
    execFileSync('mkfs.vfat', ['--offset', '2048', '-n', 'SYSTEM-BOOT', disk, String((200 * 1024 - 1024))], { stdio: 'ignore' });
    for (const f of ['signed.itb', 'other.itb', 'tampered.itb', 'unsigned.itb']) execFileSync('mcopy', ['-i', `${disk}@@1M`, join(files, f), `::${f}`]);
    for (const f of ['signed.itb', 'other.itb', 'tampered.itb', 'unsigned.itb']) {
      flash[f] = join(work, `flash-${f}.img`);
      const image = ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { vb_fit: f } });
      // the image is the whole bank: written as it is (as the composer's output) or sparse, QEMU takes it
      if (f === 'signed.itb') writeFileSync(flash[f], image);
      else writeUbootFlash(flash[f], image);
    }
    prepSeconds = (performance.now() - t0) / 1000;
  }, 180_000);
  afterAll(() => {
    guest?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** One boot of the disk with `fit`'s flash, to QEMU's exit; fails unless `expect` shows in order. */
  async function boot(fit: string, expect: RegExp[], dtb: 'control dtb' | 'none' = 'control dtb') {
    const r = await bootTest({ image: disk, inPlace: true, arch: 'arm64', firmware: 'uboot', ubootEnvFlash: flash[fit], ubootDtb: dtb === 'none' ? undefined : ctl, expect, failOn: [], untilExit: true, noReboot: true, timeoutSeconds: 60 });
    assertBooted(r);
    return r;
  }

  test('the signed FIT: U-Boot checks the configuration signature with the key of its control dtb and every image hash, then the kernel runs the initramfs', async () => {
    const r = await boot('signed.itb', [/Verifying Hash Integrity \.\.\. sha256,rsa2048:acme-fit\+ OK/, /Starting kernel/, new RegExp(MARKER)]);
    console.log(`prep ${prepSeconds.toFixed(1)} s; signed boot ${r.seconds.toFixed(1)} s`);
    expect(readFileSync(r.log, 'utf8')).not.toMatch(/FAILED/);
  }, 90_000);

  for (const [fit, refusal] of [
    ['unsigned.itb', /Failed to verify required signature 'key-acme-fit'/],
    ['other.itb', /Failed to verify required signature 'key-acme-fit'/],
    ['tampered.itb', /Bad Data Hash/],
  ] as const) {
    test(`${fit}: U-Boot refuses it (${refusal.source.replace(/\\/g, '')}), the script prints FAILED and powers off, and no kernel starts`, async () => {
      const r = await boot(fit, [refusal, new RegExp(`^edgeimage-uboot: FAILED: ${fit.replace('.', '\\.')} does not verify`)]);
      const log = readFileSync(r.log, 'utf8');
      expect(log).not.toContain('Starting kernel');
      expect(log).not.toContain(MARKER);
    }, 90_000);
  }

  test('without the control dtb U-Boot knows no key: the unsigned FIT boots (the -dtb is what enforces)', async () => {
    const r = await boot('unsigned.itb', [/Starting kernel/, new RegExp(MARKER)], 'none');
    expect(readFileSync(r.log, 'utf8')).not.toMatch(/Failed to verify required signature/);
  }, 90_000);
});
