/**
 * The signed boot payload of a slot: what the bootloader loads and the firmware or U-Boot checks
 * before a single instruction of it runs. The kernel bundle's kernel and initramfs, with an extra
 * initramfs part holding the slot's bundles and their dm-verity root hashes (so a changed bundle,
 * root hash or initramfs breaks a signature), become a unified kernel image (UEFI, signed with the
 * brand's db key, with a detached OpenPGP signature for GRUB's verifier) or a FIT image (U-Boot,
 * its configuration signed with the brand's FIT key). The gadget provides the unsigned parts
 * (verified-boot/: the EFI stub, U-Boot's device tree).
 */
import { X509Certificate, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFile, type BootSigner } from '@edgeimage/assertions';
import { ComposeError } from '../errors.js';
import type { BundleVerityEntry } from '../verity/index.js';
import { verifiedInitrd } from './initrd.js';
import { buildUki, grubSignature, signPe } from './uefi/index.js';
import { buildFit } from './uboot/index.js';

/** Which chain a gadget's verified-boot/ inputs make. */
export type VerifiedBootKind = 'uefi' | 'fit';

/** The brand's boot signers; which one is needed depends on the gadget (db for UEFI, FIT for U-Boot). */
export interface BootSigners {
  db?: BootSigner;
  fit?: BootSigner;
}

/** The files of a verified slot's payload, relative to the slot root. */
export const UKI_FILE = 'boot/uki.efi';
export const UKI_SIG_FILE = 'boot/uki.efi.sig';
export const FIT_FILE = 'boot/boot.itb';
/**
 * A detached RSA/SHA-256 signature of the payload file by the same boot key (db or FIT), and that
 * key's public half: the device's updater checks a new slot's payload against the running slot's
 * key with `openssl dgst` before it switches, so an update whose payload the firmware or U-Boot
 * would refuse (other boot keys) is refused before it can leave the device without a bootable slot.
 */
export const PAYLOAD_SIG_FILE = 'boot/payload.sig';
export const PAYLOAD_KEY_FILE = 'boot/payload-key.pem';

/** The kernel console of each architecture's reference machine. */
const CONSOLE: Record<string, string> = { amd64: 'ttyS0', arm64: 'ttyAMA0' };

/** The largest file read from a gadget's verified-boot/ (an EFI stub is ~100 KiB, a dtb ~10 KiB). */
const MAX_INPUT_BYTES = 16 << 20;

/** A gadget's verified-boot/ folder: which chain it makes, or undefined when it has none. */
export function verifiedBootKind(gadgetDir: string): VerifiedBootKind | undefined {
  const dir = join(gadgetDir, 'verified-boot');
  if (!existsSync(dir)) return undefined;
  if (existsSync(join(dir, 'linux.efi.stub'))) return 'uefi';
  if (existsSync(join(dir, 'virt.dtb'))) return 'fit';
  return undefined;
}

/** A regular file of the unpacked gadget's verified-boot/, bounded (the gadget is an input like any other). */
export function gadgetInput(gadgetDir: string, name: string, gadget: string): Buffer {
  const file = `verified-boot/${name}`;
  return readRegularFile(join(gadgetDir, 'verified-boot', name), MAX_INPUT_BYTES, (p) => {
    const found = p.kind === 'missing' ? 'has no' : p.kind === 'too-large' ? `has a ${p.size}-byte (more than ${MAX_INPUT_BYTES})` : p.kind === 'link' ? 'has a symbolic link as its' : p.kind === 'not-regular' ? 'has something other than a regular file as its' : `cannot open (${p.code}) its`;
    return new ComposeError('ERR_VERIFIED_BOOT_INPUT', `gadget ${gadget} ${found} ${file}, which its verified boot chain needs`, { gadget, file });
  });
}

const payloadKeyPem = (s: BootSigner | undefined): string | undefined => (s ? (new X509Certificate(s.certPem).publicKey.export({ type: 'spki', format: 'pem' }) as string) : undefined);

function payloadSignature(slotDir: string, bytes: Buffer, signer: BootSigner): string[] {
  writeFileSync(join(slotDir, PAYLOAD_SIG_FILE), sign('sha256', bytes, signer.key));
  writeFileSync(join(slotDir, PAYLOAD_KEY_FILE), new X509Certificate(signer.certPem).publicKey.export({ type: 'spki', format: 'pem' }));
  return [PAYLOAD_SIG_FILE, PAYLOAD_KEY_FILE];
}

export interface SlotPayloadOptions {
  /** The slot being staged: the payload goes to its boot/. */
  slotDir: string;
  /** The kernel bundle's kernel.img and initrd.img, unpacked. */
  kernelDir: string;
  gadgetDir: string;
  /** For messages: `pc_1.snap`. */
  gadget: string;
  arch: string;
  grade: string;
  brandModel: string;
  revision: number;
  sourceDateEpoch: number;
  /** Paths in the slot (`bundles/NAME_REV.snap`). */
  base: string;
  /** The device agent bundle in the slot (the model's snapd-type snap). */
  agent: string;
  /** The kernel bundle in the slot (its modules/ are bound over the base's /usr/lib/modules). */
  kernel: string;
  apps: string[];
  verity: BundleVerityEntry[];
  signers: BootSigners;
}

/**
 * Writes the slot's signed payload into its boot/ (which then holds no unsigned kernel for a
 * bootloader to fall back to); returns the payload's files (relative to the slot) and its kind.
 */
export async function stageSlotPayload(o: SlotPayloadOptions): Promise<{ kind: VerifiedBootKind; files: string[] }> {
  const kind = verifiedBootKind(o.gadgetDir);
  if (!kind) throw new ComposeError('ERR_VERIFIED_BOOT_UNSUPPORTED', `gadget ${o.gadget} has no verified-boot/ inputs (an EFI stub or a U-Boot device tree): it cannot make a verified image; build without --boot-keys, or use a gadget built by bundles/build`, { gadget: o.gadget });
  const console = CONSOLE[o.arch];
  if (!console) throw new ComposeError('ERR_VERIFIED_BOOT_UNSUPPORTED', `no verified boot chain for architecture ${o.arch} (amd64 and arm64 have one)`, { arch: o.arch });
  mkdirSync(join(o.slotDir, 'boot'), { recursive: true });
  const kernel = readFileSync(join(o.kernelDir, 'kernel.img'));
  if (!existsSync(join(o.kernelDir, 'initrd.img'))) throw new ComposeError('ERR_KERNEL_NO_INITRD', `the kernel bundle has no initrd.img: a verified slot needs the edgeimage initramfs, which opens its bundles through dm-verity`);
  // the signed part first: appended after the gzip archive, the kernel may drop it (see verifiedInitrd)
  const initrd = verifiedInitrd(readFileSync(join(o.kernelDir, 'initrd.img')), { grade: o.grade, base: o.base, agent: o.agent, kernel: o.kernel, apps: o.apps, verity: o.verity, payloadKey: payloadKeyPem(kind === 'uefi' ? o.signers.db : o.signers.fit) });
  let files: string[];
  if (kind === 'uefi') {
    const db = o.signers.db;
    if (!db) throw new ComposeError('ERR_BOOT_KEYS_ROLE', `gadget ${o.gadget} boots through UEFI: its payload is signed with the brand's db key, which was not given`, { gadget: o.gadget });
    const stub = gadgetInput(o.gadgetDir, 'linux.efi.stub', o.gadget);
    // No edgeimage.slot: the initramfs takes the slot from the partition the UKI was loaded from
    // (LoaderDevicePartUUID), so one payload serves both slots and cannot boot as the other.
    const cmdline = `console=${console} panic=5 loglevel=6`;
    const osRelease = `NAME=edgeimage\nID=edgeimage\nPRETTY_NAME="${o.brandModel} revision ${o.revision}"\nVERSION_ID=${o.revision}\nIMAGE_ID=${o.brandModel.replace(/[^A-Za-z0-9._-]/g, '-')}\n`;
    const uki = signPe(buildUki({ stub, kernel, initrd, cmdline, osRelease }), db);
    writeFileSync(join(o.slotDir, UKI_FILE), uki);
    // GRUB hashes the file it chainloads: the signature is over the signed PE.
    writeFileSync(join(o.slotDir, UKI_SIG_FILE), grubSignature(uki, db.key));
    files = [UKI_FILE, UKI_SIG_FILE, ...payloadSignature(o.slotDir, uki, db)];
  } else {
    const fit = o.signers.fit;
    if (!fit) throw new ComposeError('ERR_BOOT_KEYS_ROLE', `gadget ${o.gadget} boots through U-Boot: its payload is signed with the brand's FIT key, which was not given`, { gadget: o.gadget });
    gadgetInput(o.gadgetDir, 'virt.dtb', o.gadget);
    // mkimage reads files: the combined initramfs next to the kernel bundle's (a scratch folder).
    const initrdFile = join(o.kernelDir, 'initrd.verified');
    writeFileSync(initrdFile, initrd);
    writeFileSync(join(o.slotDir, FIT_FILE), await buildFit({ kernel: join(o.kernelDir, 'kernel.img'), initrd: initrdFile, fdt: join(o.gadgetDir, 'verified-boot', 'virt.dtb'), keyName: fit.name, signer: fit, sourceDateEpoch: o.sourceDateEpoch }));
    rmSync(initrdFile);
    files = [FIT_FILE, ...payloadSignature(o.slotDir, readFileSync(join(o.slotDir, FIT_FILE)), fit)];
  }
  return { kind, files };
}
