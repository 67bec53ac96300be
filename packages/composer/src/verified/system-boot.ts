/**
 * The bootloader side of a verified image. UEFI: system-boot's EFI/BOOT/BOOT<arch>.EFI becomes a
 * GRUB with its configuration, the pgp verifier and the brand's db key built in, signed with db;
 * no grub.cfg is left on the partition (a configuration there would not be read, and should not
 * seem to matter). U-Boot: the A/B script leaves the partition for U-Boot's environment flash, and
 * U-Boot's control device tree gets the brand's FIT key as required; both are outputs next to the
 * image, what a factory programs.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { gadgetInput, verifiedBootKind, type BootSigners } from './payload.js';
import { buildSignedGrub } from './uefi/index.js';
import { controlDtb, ubootScriptFlash } from './uboot/index.js';

const GRUB: Record<string, { format: 'x86_64-efi' | 'arm64-efi'; file: string }> = {
  amd64: { format: 'x86_64-efi', file: 'BOOTX64.EFI' },
  arm64: { format: 'arm64-efi', file: 'BOOTAA64.EFI' },
};

/** Debian's U-Boot for QEMU's arm64 virt board: its default environment is the base of the flash. */
export const QEMU_ARM64_UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';

export interface VerifiedSystemBootOptions {
  /** The staged system-boot tree (grade variants already applied). */
  tree: string;
  gadgetDir: string;
  gadget: string;
  arch: string;
  grade: string;
  signers: BootSigners;
  /** U-Boot gadgets: the U-Boot whose default environment the flash starts from. */
  ubootBin?: string;
}

/** What a factory programs besides the disk (U-Boot boards): bytes, written next to the image. */
export interface FactoryFiles {
  /** U-Boot's environment flash (QEMU's second pflash bank) with the A/B script. */
  ubootEnv?: Buffer;
  /** U-Boot's control device tree with the brand's FIT key (`-dtb`). */
  ubootDtb?: Buffer;
}

export async function stageVerifiedSystemBoot(o: VerifiedSystemBootOptions): Promise<FactoryFiles> {
  const kind = verifiedBootKind(o.gadgetDir);
  // The grade-dangerous configuration keeps the test hooks (edge_kargs), as the unverified one does.
  const variant = (name: string) => (o.grade === 'dangerous' && existsSync(join(o.gadgetDir, 'verified-boot', `${name}.dangerous`)) ? `${name}.dangerous` : name);
  if (kind === 'uefi') {
    const g = GRUB[o.arch];
    if (!g) throw new ComposeError('ERR_VERIFIED_BOOT_UNSUPPORTED', `no verified GRUB for architecture ${o.arch}`, { arch: o.arch });
    if (!o.signers.db) throw new ComposeError('ERR_BOOT_KEYS_ROLE', `gadget ${o.gadget} boots through UEFI: its GRUB is signed with the brand's db key, which was not given`, { gadget: o.gadget });
    const config = gadgetInput(o.gadgetDir, variant('grub.cfg'), o.gadget).toString('utf8');
    const moduleDir = join(o.gadgetDir, 'verified-boot', 'grub', g.format);
    if (!existsSync(join(moduleDir, 'moddep.lst'))) throw new ComposeError('ERR_VERIFIED_BOOT_INPUT', `gadget ${o.gadget} has no GRUB modules for ${g.format} in verified-boot/grub/${g.format}`, { gadget: o.gadget });
    const grub = await buildSignedGrub({ format: g.format, moduleDir, config, signer: o.signers.db });
    writeFileSync(join(o.tree, 'EFI', 'BOOT', g.file), grub);
    for (const f of ['grub.cfg', 'grub.cfg.dangerous']) rmSync(join(o.tree, 'EFI', 'BOOT', f), { force: true });
    return {};
  }
  if (kind === 'fit') {
    const fit = o.signers.fit;
    if (!fit) throw new ComposeError('ERR_BOOT_KEYS_ROLE', `gadget ${o.gadget} boots through U-Boot: its FIT images are checked with the brand's FIT key, which was not given`, { gadget: o.gadget });
    const script = gadgetInput(o.gadgetDir, variant('boot.cmd'), o.gadget).toString('utf8');
    const ubootEnv = ubootScriptFlash({ ubootBin: o.ubootBin ?? QEMU_ARM64_UBOOT, script });
    const ubootDtb = await controlDtb({ baseDtb: gadgetInput(o.gadgetDir, 'virt.dtb', o.gadget), keyName: fit.name, signer: fit });
    // U-Boot runs the script from its flash only: one on the partition would be a way around it.
    for (const f of ['boot.scr', 'boot.scr.dangerous']) rmSync(join(o.tree, f), { force: true });
    return { ubootEnv, ubootDtb };
  }
  throw new ComposeError('ERR_VERIFIED_BOOT_UNSUPPORTED', `gadget ${o.gadget} has no verified-boot/ inputs: it cannot make a verified image`, { gadget: o.gadget });
}
