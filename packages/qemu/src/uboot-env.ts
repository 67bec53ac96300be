import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, ftruncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from '@edgeimage/composer';
import { BootTestError } from './errors.js';

/** qemu_arm64's CONFIG_ENV_SIZE: the environment at the start of the second flash bank. */
const ENV_SIZE = 0x40000;
/** QEMU's virt pflash banks are 64 MiB each. */
const BANK_SIZE = 64 * 1024 * 1024;

/**
 * A U-Boot environment for Debian's qemu_arm64 U-Boot with `bootdelay` changed (default 0: no 2 s
 * countdown), as a flash image for QEMU's second pflash bank (`-drive if=pflash,index=1`).
 * qemu_arm64 keeps its environment there (CRC32 + "key=value\0…\0\0"); a valid one replaces the
 * built-in default whole, so this copies the default environment out of `u-boot.bin` and changes
 * bootdelay only. Deterministic; cached by the digest of u-boot.bin under
 * ~/.cache/edgeimage/uboot-env/, written to a temporary name and renamed.
 */
export function ubootEnvFlash(ubootBin: string, opts: { bootdelay?: number; cacheDir?: string } = {}): string {
  const delay = opts.bootdelay ?? 0;
  const bin = readFileSync(ubootBin);
  const digest = createHash('sha256').update(bin).digest('hex').slice(0, 16);
  const dir = opts.cacheDir ?? join(process.env['EDGEIMAGE_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'edgeimage'), 'uboot-env');
  const out = join(dir, `${digest}-bootdelay${delay}.img`);
  if (existsSync(out)) return out;
  const start = bin.indexOf(Buffer.from('\0bootcmd=run distro_bootcmd\0', 'latin1'));
  if (start < 0) throw new BootTestError('ERR_FIRMWARE_UNSUPPORTED', `${ubootBin}: no default environment found (expected the one of Debian's qemu_arm64 U-Boot)`, { file: ubootBin });
  const end = bin.indexOf(Buffer.from('\0\0', 'latin1'), start + 1);
  const vars = bin.subarray(start + 1, end).toString('latin1').split('\0');
  if (!vars.some((v) => v.startsWith('bootdelay='))) throw new BootTestError('ERR_FIRMWARE_UNSUPPORTED', `${ubootBin}: its default environment has no bootdelay`, { file: ubootBin });
  const data = Buffer.alloc(ENV_SIZE - 4, 0xff);
  const text = Buffer.from(`${vars.map((v) => (v.startsWith('bootdelay=') ? `bootdelay=${delay}` : v)).join('\0')}\0\0`, 'latin1');
  text.copy(data);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(crc32(data) >>> 0);
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, head);
    writeSync(fd, data);
    ftruncateSync(fd, BANK_SIZE);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, out);
  return out;
}
