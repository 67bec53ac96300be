import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ComposeError, editEnvironment, ubootDefaultEnvironment, ubootEnvBlock, writeUbootFlash } from '@edgeimage/composer';
import { BootTestError } from './errors.js';

/**
 * A U-Boot environment for Debian's qemu_arm64 U-Boot with `bootdelay` changed (default 0: no 2 s
 * countdown), as a flash image for QEMU's second pflash bank (`-drive if=pflash,index=1`).
 * qemu_arm64 keeps its environment there (CRC32 + "key=value\0…\0\0"); a valid one replaces the
 * built-in default whole, so this copies the default environment out of `u-boot.bin` and changes
 * bootdelay only (the composer's env code, shared with the verified board's script flash).
 * Deterministic; cached by the digest of u-boot.bin under ~/.cache/edgeimage/uboot-env/, written
 * to a temporary name and renamed.
 */
export function ubootEnvFlash(ubootBin: string, opts: { bootdelay?: number; cacheDir?: string } = {}): string {
  const delay = opts.bootdelay ?? 0;
  const bin = readFileSync(ubootBin);
  const digest = createHash('sha256').update(bin).digest('hex').slice(0, 16);
  const dir = opts.cacheDir ?? join(process.env['EDGEIMAGE_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'edgeimage'), 'uboot-env');
  const out = join(dir, `${digest}-bootdelay${delay}.img`);
  if (existsSync(out)) return out;
  let vars: string[];
  try {
    vars = ubootDefaultEnvironment(bin, ubootBin);
  } catch (e) {
    if (e instanceof ComposeError) throw new BootTestError('ERR_FIRMWARE_UNSUPPORTED', e.message, { file: ubootBin });
    throw e;
  }
  writeUbootFlash(out, ubootEnvBlock(editEnvironment(vars, { bootdelay: String(delay) })));
  return out;
}
