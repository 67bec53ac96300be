/**
 * What a factory programs besides the disk, as `edgeimage build --boot-keys` writes it next to the
 * image: the certificates to enrol (IMAGE.boot-keys/), and for U-Boot boards the environment flash
 * with the A/B script (IMAGE.uboot-env.img) and the control device tree with the FIT key
 * (IMAGE.uboot.dtb). A boot test of a verified image uses them as a board fresh from the factory has
 * them; without them a verified U-Boot image has no boot script at all.
 */
import { existsSync, lstatSync } from 'node:fs';

export interface FactoryFiles {
  bootKeys?: string;
  ubootEnv?: string;
  ubootDtb?: string;
}

const isFile = (p: string) => existsSync(p) && lstatSync(p).isFile();

/** The factory files next to `image` (`NAME.img` → `NAME.boot-keys/`, `NAME.uboot-env.img`, `NAME.uboot.dtb`) that exist. */
export function factoryFilesOf(image: string): FactoryFiles {
  const stem = image.replace(/\.img$/, '');
  const out: FactoryFiles = {};
  if (existsSync(`${stem}.boot-keys`) && lstatSync(`${stem}.boot-keys`).isDirectory()) out.bootKeys = `${stem}.boot-keys`;
  if (stem !== image && isFile(`${stem}.uboot-env.img`)) out.ubootEnv = `${stem}.uboot-env.img`;
  if (isFile(`${stem}.uboot.dtb`)) out.ubootDtb = `${stem}.uboot.dtb`;
  return out;
}
