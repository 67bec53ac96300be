import { readFileSync } from 'node:fs';
import { crc32 } from '../../partition/crc32.js';
import { ComposeError } from '../../errors.js';
import { editEnvironment, ubootDefaultEnvironment, ubootEnvBlock, UBOOT_ENV_SIZE, UBOOT_FLASH1_BASE, UBOOT_FLASH_BANK_SIZE } from './env.js';

/** Where the script image sits in the environment's flash bank: right after the environment. */
export const UBOOT_SCRIPT_OFFSET = UBOOT_ENV_SIZE;
/** The address U-Boot runs it from (the bank is memory-mapped): `bootcmd=source 0x04040000`. */
export const UBOOT_SCRIPT_ADDRESS = UBOOT_FLASH1_BASE + UBOOT_SCRIPT_OFFSET;
const HEADER = 64;
/** The largest script: the rest of the bank after the environment, the header and the size table. */
export const MAX_UBOOT_SCRIPT_BYTES = UBOOT_FLASH_BANK_SIZE - UBOOT_SCRIPT_OFFSET - HEADER - 8;

/**
 * A legacy U-Boot script image, as `mkimage -A arm64 -O linux -T script -C none -n NAME -d FILE`
 * writes it with SOURCE_DATE_EPOCH=`time`: the 64-byte header (magic 27051956, header and data
 * CRC32s), then the one-entry size table (the script's length, a zero word) and the script.
 */
export function legacyScriptImage(script: Buffer, opts: { name?: string; time?: number } = {}): Buffer {
  const name = Buffer.from(opts.name ?? '', 'latin1');
  if (name.length > 31) throw new ComposeError('ERR_UBOOT_SCRIPT', `script image name ${JSON.stringify(opts.name)} is longer than the 31 bytes a legacy header holds`, { name: opts.name });
  const data = Buffer.alloc(8 + script.length);
  data.writeUInt32BE(script.length, 0);
  script.copy(data, 8);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32BE(0x27051956, 0); // IH_MAGIC
  h.writeUInt32BE((opts.time ?? 0) >>> 0, 8);
  h.writeUInt32BE(data.length, 12);
  h.writeUInt32BE(crc32(data) >>> 0, 24);
  h[28] = 5; // IH_OS_LINUX
  h[29] = 22; // IH_ARCH_ARM64
  h[30] = 6; // IH_TYPE_SCRIPT
  h[31] = 0; // IH_COMP_NONE
  name.copy(h, 32);
  h.writeUInt32BE(crc32(h) >>> 0, 4);
  return Buffer.concat([h, data]);
}

/**
 * Variables of the default environment that make up distro boot: they load and run what a disk
 * offers (`boot.scr`, extlinux.conf, `efi/boot/bootaa64.efi`, `qfw load` + booti), all unsigned.
 * The flash of a verified board leaves them out, so not even a prompt can `run distro_bootcmd`.
 */
export function isDistroBootVariable(name: string): boolean {
  return (
    name === 'distro_bootcmd' ||
    name === 'boot_targets' ||
    name.startsWith('bootcmd_') ||
    name.startsWith('scan_dev_for_') ||
    name.startsWith('boot_efi_') ||
    /^(?:usb|scsi|nvme|virtio)_boot$/.test(name) ||
    ['boot_a_script', 'boot_extlinux', 'load_efi_dtb', 'boot_scripts', 'boot_script_dhcp', 'boot_syslinux_conf', 'boot_prefixes', 'efi_dtb_prefixes'].includes(name)
  );
}

/**
 * Variables the caller may not set through `extraEnv`: they decide what runs (bootcmd, the
 * countdown, the preboot hook) or switch FIT verification off (`verify=no` makes bootm skip
 * every hash and signature check).
 */
const RESERVED = new Set(['bootcmd', 'bootdelay', 'preboot', 'verify', 'bootstopkey', 'bootstopkeysha256', 'bootdelaykey', 'altbootcmd', 'bootlimit']);

export interface ScriptFlashOptions {
  /** Debian's qemu_arm64 `u-boot.bin`: its default environment is the base. */
  ubootBin: string;
  /** The hush script the board runs at every start (e.g. the A/B boot script). */
  script: string | Buffer;
  /** More variables for the environment (not the reserved ones: bootcmd, bootdelay, verify, …). */
  extraEnv?: Readonly<Record<string, string>>;
  /** The script image's timestamp (default 0). */
  sourceDateEpoch?: number;
}

/**
 * The pflash1 image of a verified U-Boot board (the whole 64 MiB bank, zeros after the script):
 * U-Boot's default environment with
 * `bootcmd=source 0x04040000`, `bootdelay=-2` (no key can stop autoboot) and no distro boot
 * variables, then at +0x40000 a legacy script image of `script`. The script's trust is the flash's
 * (read-only in QEMU; the board's factory flash), and it stays a readable multi-line file instead
 * of a one-line variable. Deterministic. {@link writeUbootFlash} writes it with the zeros sparse.
 *
 * ```ts
 * writeUbootFlash('virt.uboot-env.img', ubootScriptFlash({ ubootBin, script: readFileSync('boot.cmd') }));
 * ```
 */
export function ubootScriptFlash(opts: ScriptFlashOptions): Buffer {
  const script = Buffer.isBuffer(opts.script) ? opts.script : Buffer.from(opts.script, 'utf8');
  if (!script.length) throw new ComposeError('ERR_UBOOT_SCRIPT', 'the U-Boot flash script is empty', {});
  if (script.length > MAX_UBOOT_SCRIPT_BYTES) throw new ComposeError('ERR_UBOOT_SCRIPT', `the U-Boot flash script is ${script.length} bytes: more than the ${MAX_UBOOT_SCRIPT_BYTES} the flash bank holds after the environment`, { size: script.length, max: MAX_UBOOT_SCRIPT_BYTES });
  if (script.includes(0)) throw new ComposeError('ERR_UBOOT_SCRIPT', 'the U-Boot flash script holds a NUL byte: U-Boot stops reading a script there', {});
  for (const k of Object.keys(opts.extraEnv ?? {})) {
    if (RESERVED.has(k) || isDistroBootVariable(k)) throw new ComposeError('ERR_UBOOT_ENV', `extraEnv may not set ${k}: the verified flash fixes what runs at start (bootcmd=source 0x${UBOOT_SCRIPT_ADDRESS.toString(16).padStart(8, '0')}, bootdelay=-2) and never disables verification`, { name: k });
  }
  let bin: Buffer;
  try {
    bin = readFileSync(opts.ubootBin);
  } catch (e) {
    throw new ComposeError('ERR_UBOOT_ENV', `U-Boot binary ${opts.ubootBin} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: opts.ubootBin });
  }
  const vars = editEnvironment(ubootDefaultEnvironment(bin, opts.ubootBin), { ...opts.extraEnv, bootcmd: `source 0x${UBOOT_SCRIPT_ADDRESS.toString(16).padStart(8, '0')}`, bootdelay: '-2' }, isDistroBootVariable);
  // The whole bank: QEMU refuses a pflash file of any other size.
  const bank = Buffer.alloc(UBOOT_FLASH_BANK_SIZE);
  ubootEnvBlock(vars).copy(bank);
  legacyScriptImage(script, { time: opts.sourceDateEpoch ?? 0, name: 'edgeimage boot script' }).copy(bank, UBOOT_SCRIPT_OFFSET);
  return bank;
}
