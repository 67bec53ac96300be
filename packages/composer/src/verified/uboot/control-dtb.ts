import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rsaNumbers } from '@edgeimage/assertions';
import { ComposeError } from '../../errors.js';
import { fdtNode, fdtStrings, readFdt } from './fdt.js';
import { fitSource } from './fit.js';
import { mkimage, withKeyDir, type FitSigner } from './signer.js';

/** Bounds the base dtb (QEMU's virt dtb is ~1 MiB as dumped: its header reserves space). */
const MAX_DTB_BYTES = 16 * 1024 * 1024;

export interface ControlDtbOptions {
  /** The board's device tree without any key (QEMU virt: `virtDtb()` of @edgeimage/qemu), a file or its bytes. */
  baseDtb: string | Buffer;
  keyName: string;
  signer: FitSigner;
  /** Where the private work folder is made (default the system's temporary folder). */
  tmpDir?: string;
}

/**
 * U-Boot's control device tree with the FIT key: the base dtb plus `/signature/key-<keyName>`
 * (`required = "conf"`, `algo = "sha256,rsa2048"`, the modulus and exponent of the signer's
 * certificate). U-Boot then boots a FIT only through a configuration signed by that key. Debian 12's
 * u-boot-tools has no fdt_add_pubkey, so mkimage writes the key (`-K dtb -r`) while signing a stub
 * FIT, which is thrown away. Always from the clean base: a dtb that already holds a `/signature`
 * node is refused (a second -K run would add or rewrite keys and change bytes). Deterministic.
 *
 * Refusals: ERR_FDT_FORMAT (the base is no device tree), ERR_UBOOT_DTB (it holds keys already, or
 * mkimage wrote another key than the signer's), ERR_FIT_KEY, ERR_HOST_TOOL, ERR_TOOL_FAILED.
 */
export async function controlDtb(opts: ControlDtbOptions): Promise<Buffer> {
  const what = typeof opts.baseDtb === 'string' ? opts.baseDtb : 'the base dtb';
  let base: Buffer;
  try {
    base = typeof opts.baseDtb === 'string' ? readFileSync(opts.baseDtb) : opts.baseDtb;
  } catch (e) {
    throw new ComposeError('ERR_UBOOT_DTB', `the base dtb ${what} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: what });
  }
  if (base.length > MAX_DTB_BYTES) throw new ComposeError('ERR_UBOOT_DTB', `the base dtb ${what} is ${base.length} bytes: more than ${MAX_DTB_BYTES}`, { file: what, size: base.length });
  if (fdtNode(readFdt(base, what), '/signature')) throw new ComposeError('ERR_UBOOT_DTB', `the base dtb ${what} already has a /signature node: the control dtb is made from the board's dtb without keys`, { file: what });
  return withKeyDir(opts.keyName, opts.signer, opts.tmpDir, async (work, keyDir) => {
    const dtb = join(work, 'control.dtb');
    writeFileSync(dtb, base);
    // The stub FIT only carries the signing run that writes the key; its contents do not matter.
    writeFileSync(join(work, 'kernel'), Buffer.alloc(64));
    writeFileSync(join(work, 'initrd'), Buffer.alloc(64));
    writeFileSync(join(work, 'fdt'), base);
    writeFileSync(join(work, 'stub.its'), fitSource(opts.keyName));
    const said = await mkimage(['-f', join(work, 'stub.its'), '-k', keyDir, '-K', dtb, '-r', join(work, 'stub.itb')], 0, 'writing the FIT key into the control dtb');
    const out = readFileSync(dtb);
    const node = fdtNode(readFdt(out, 'the control dtb mkimage wrote'), `/signature/key-${opts.keyName}`);
    const modulus = node?.props.get('rsa,modulus');
    const { n } = rsaNumbers(createPublicKey(opts.signer.certPem));
    if (!node || fdtStrings(node.props.get('required'))[0] !== 'conf' || !modulus?.equals(n)) {
      throw new ComposeError('ERR_UBOOT_DTB', `mkimage did not write the signer's key as /signature/key-${opts.keyName} with required = "conf": ${said.slice(-300)}`, { keyName: opts.keyName });
    }
    return out;
  });
}
