import { lstatSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';

/**
 * The suffix of a boot asset's grade-dangerous variant (`EFI/BOOT/grub.cfg.dangerous`,
 * `boot.scr.dangerous`, written by bundles/bootloader/build-assets): the variant that keeps the
 * test hooks (edge_kargs from the boot environment onto the kernel command line).
 */
export const DANGEROUS_SUFFIX = '.dangerous';

/** Deeper than any boot asset tree; bounds the walk of a gadget's content. */
const MAX_DEPTH = 16;

/**
 * Installs the boot-asset variants of a model grade into a staged system-boot tree: for grade
 * `dangerous`, each `NAME.dangerous` replaces `NAME`; for every other grade (`signed`, `secured`,
 * and models without a grade) each `NAME.dangerous` is removed, so that an image whose model is
 * signed carries no script that reads a test hook from the boot partition, which anyone who can
 * write that partition controls. Returns the installed or removed variants, relative, sorted.
 *
 * ```ts
 * applyGradeVariants('work/stage/pc/0', 'signed'); // ['EFI/BOOT/grub.cfg.dangerous'] (removed)
 * ```
 */
export function applyGradeVariants(dir: string, grade: string): string[] {
  const found: string[] = [];
  const walk = (rel: string, depth: number) => {
    if (depth > MAX_DEPTH) {
      throw new ComposeError('ERR_BOOT_ASSETS_DEPTH', `system-boot content: ${rel} is more than ${MAX_DEPTH} folders deep; boot assets are never that deep`, { path: rel });
    }
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) walk(r, depth + 1);
      else if (st.isFile() && name.endsWith(DANGEROUS_SUFFIX) && name.length > DANGEROUS_SUFFIX.length) found.push(r);
    }
  };
  walk('', 0);
  for (const r of found) {
    if (grade === 'dangerous') renameSync(join(dir, r), join(dir, r.slice(0, -DANGEROUS_SUFFIX.length)));
    else rmSync(join(dir, r));
  }
  return found;
}
