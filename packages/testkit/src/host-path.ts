import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A folder of symbolic links to every program on the host's PATH except `without` (their
 * names): a PATH on which those tools are missing.
 */
export function pathWithout(dir: string, without: readonly string[]): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin']) {
    if (!existsSync(d)) continue;
    for (const n of readdirSync(d)) {
      if (without.includes(n) || existsSync(join(dir, n))) continue;
      symlinkSync(join(d, n), join(dir, n));
    }
  }
  return dir;
}

/** mtools' programs (all links to `mtools`). */
export const MTOOLS = ['mtools', 'mattrib', 'mbadblocks', 'mcat', 'mcd', 'mclasserase', 'mcopy', 'mdel', 'mdeltree', 'mdir', 'mdu', 'mformat', 'minfo', 'mlabel', 'mmd', 'mmount', 'mmove', 'mpartition', 'mrd', 'mren', 'mshortname', 'mshowfat', 'mtoolstest', 'mtype', 'mzip', 'amuFormat.sh', 'mcheck', 'mcomp', 'mkmanifest', 'mxtar', 'tgz', 'uz', 'lz'];
