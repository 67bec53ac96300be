import { closeSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from '../../partition/crc32.js';
import { ComposeError } from '../../errors.js';

/** qemu_arm64's CONFIG_ENV_SIZE: the environment at the start of the second flash bank. */
export const UBOOT_ENV_SIZE = 0x40000;
/** QEMU's virt pflash banks are 64 MiB each; QEMU refuses a file of another size. */
export const UBOOT_FLASH_BANK_SIZE = 64 * 1024 * 1024;
/** Where qemu_arm64 maps the second flash bank (the environment's bank). */
export const UBOOT_FLASH1_BASE = 0x04000000;

/** Where the default environment starts in Debian's qemu_arm64 u-boot.bin (its first variable). */
const DEFAULT_ENV_START = Buffer.from('\0bootcmd=run distro_bootcmd\0', 'latin1');
/** A U-Boot variable name (no `=`, no spaces or control characters; U-Boot's own are shorter). */
const VAR_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The default environment built into a qemu_arm64 `u-boot.bin`, as `name=value` strings in its
 * order. A valid flash environment replaces the built-in one whole, so every flash image starts
 * from these. ERR_UBOOT_ENV when the binary holds none (`file` names it).
 */
export function ubootDefaultEnvironment(bin: Buffer, file: string): string[] {
  const start = bin.indexOf(DEFAULT_ENV_START);
  if (start < 0) throw new ComposeError('ERR_UBOOT_ENV', `${file}: no default environment found (expected the one of Debian's qemu_arm64 U-Boot, starting "bootcmd=run distro_bootcmd")`, { file });
  const end = bin.indexOf(Buffer.from('\0\0', 'latin1'), start + 1);
  if (end < 0 || end - start > UBOOT_ENV_SIZE) throw new ComposeError('ERR_UBOOT_ENV', `${file}: its default environment does not end within ${UBOOT_ENV_SIZE} bytes`, { file });
  const vars = bin.subarray(start + 1, end).toString('latin1').split('\0');
  if (!vars.some((v) => v.startsWith('bootdelay='))) throw new ComposeError('ERR_UBOOT_ENV', `${file}: its default environment has no bootdelay`, { file });
  return vars;
}

/** The value of `name` in `name=value` strings. */
export const envValue = (vars: readonly string[], name: string): string | undefined => vars.find((v) => v.startsWith(`${name}=`))?.slice(name.length + 1);

/**
 * `vars` with each of `set` replaced in place (or appended), and the names in `remove` left out.
 * Names and values are checked: a name U-Boot cannot parse, or a value with a NUL or newline, is
 * ERR_UBOOT_ENV naming the variable.
 */
export function editEnvironment(vars: readonly string[], set: Readonly<Record<string, string>>, remove: (name: string) => boolean = () => false): string[] {
  for (const [k, v] of Object.entries(set)) {
    if (!VAR_NAME.test(k)) throw new ComposeError('ERR_UBOOT_ENV', `U-Boot variable name ${JSON.stringify(k.slice(0, 80))} is invalid: expected 1-64 of A-Z a-z 0-9 _ . : -`, { name: k.slice(0, 80) });
    if (/[\0\n\r]/.test(v)) throw new ComposeError('ERR_UBOOT_ENV', `U-Boot variable ${k}: its value holds a NUL or line break, which the flash environment cannot hold`, { name: k });
  }
  const left = new Set(Object.keys(set));
  const out: string[] = [];
  for (const kv of vars) {
    const name = kv.slice(0, kv.indexOf('=') < 0 ? kv.length : kv.indexOf('='));
    if (left.has(name)) {
      out.push(`${name}=${set[name]}`);
      left.delete(name);
    } else if (!remove(name)) out.push(kv);
  }
  for (const name of left) out.push(`${name}=${set[name]}`);
  return out;
}

/**
 * The environment block U-Boot reads from flash: CRC32 (little-endian) of the rest, then
 * `name=value\0…\0\0`, padded with 0xff to {@link UBOOT_ENV_SIZE} (what mkenvimage writes).
 * ERR_UBOOT_ENV when the variables do not fit.
 */
export function ubootEnvBlock(vars: readonly string[]): Buffer {
  const text = Buffer.from(`${vars.join('\0')}\0\0`, 'latin1');
  if (text.length > UBOOT_ENV_SIZE - 4) throw new ComposeError('ERR_UBOOT_ENV', `the U-Boot environment is ${text.length} bytes: more than the ${UBOOT_ENV_SIZE - 4} its flash block holds`, { size: text.length, max: UBOOT_ENV_SIZE - 4 });
  const block = Buffer.alloc(UBOOT_ENV_SIZE, 0xff);
  text.copy(block, 4);
  block.writeUInt32LE(crc32(block.subarray(4)) >>> 0, 0);
  return block;
}

/** The length of `buf` without its trailing zeros, rounded up to 4 KiB. */
function dataEnd(buf: Buffer): number {
  const zero = Buffer.alloc(4096);
  let end = Math.ceil(buf.length / 4096) * 4096;
  while (end > 0 && buf.subarray(end - 4096, end).equals(zero.subarray(0, Math.min(4096, buf.length - (end - 4096))))) end -= 4096;
  return Math.min(end, buf.length);
}

/**
 * Writes `head` (the environment block and whatever follows it in the bank, up to the whole bank)
 * as a flash bank image of {@link UBOOT_FLASH_BANK_SIZE} bytes, trailing zeros left sparse: a
 * temporary name, then renamed, so a failure leaves no partial image.
 */
export function writeUbootFlash(out: string, head: Buffer): void {
  if (head.length > UBOOT_FLASH_BANK_SIZE) throw new ComposeError('ERR_UBOOT_ENV', `${out}: ${head.length} bytes do not fit a ${UBOOT_FLASH_BANK_SIZE}-byte flash bank`, { file: out, size: head.length });
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    try {
      writeSync(fd, head, 0, dataEnd(head));
      ftruncateSync(fd, UBOOT_FLASH_BANK_SIZE);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
