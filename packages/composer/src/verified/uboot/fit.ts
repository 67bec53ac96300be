import { closeSync, copyFileSync, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../../errors.js';
import { FDT_MAGIC } from './fdt.js';
import { mkimage, withKeyDir, type FitSigner } from './signer.js';

/** qemu_arm64's kernel_addr_r: bootm copies the kernel image here and enters it. */
export const FIT_KERNEL_LOAD = 0x40400000;
/** The configuration a board's script boots: `bootm ADDR#conf-1`. */
export const FIT_CONFIG = 'conf-1';
/** Bounds each input: a FIT is loaded whole into RAM by U-Boot (the virt boards have 512 MiB or more). */
export const MAX_FIT_INPUT_BYTES = 256 * 1024 * 1024;

export interface BuildFitOptions {
  /** An arm64 Linux `Image` (uncompressed: Debian's arm64 vmlinuz is one). */
  kernel: string;
  /** The initramfs, as the kernel reads it (cpio, compressed or not, or several concatenated). */
  initrd: string;
  /** The device tree the kernel gets. */
  fdt: string;
  /** U-Boot's key name: `key-name-hint`, the control dtb's `/signature/key-<keyName>`. */
  keyName: string;
  signer: FitSigner;
  /** The FIT's and its signature's timestamp. */
  sourceDateEpoch: number;
  /** Where the private work folder is made (default the system's temporary folder). */
  tmpDir?: string;
}

/**
 * Checks one input file and returns its size: a regular file, not empty, within
 * {@link MAX_FIT_INPUT_BYTES}, and starting as `magic` says.
 */
function checkInput(role: string, file: string, magic?: { offset: number; bytes: Buffer; what: string }): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ComposeError('ERR_FIT_INPUT', `the FIT's ${role} ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { role, file });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ComposeError('ERR_FIT_INPUT', `the FIT's ${role} ${file} is not a regular file`, { role, file });
    if (st.size === 0 || st.size > MAX_FIT_INPUT_BYTES) throw new ComposeError('ERR_FIT_INPUT', `the FIT's ${role} ${file} is ${st.size} bytes: expected 1 to ${MAX_FIT_INPUT_BYTES}`, { role, file, size: st.size });
    if (magic) {
      const got = Buffer.alloc(magic.bytes.length);
      readSync(fd, got, 0, got.length, magic.offset);
      if (!got.equals(magic.bytes)) throw new ComposeError('ERR_FIT_INPUT', `the FIT's ${role} ${file} is not ${magic.what} (bytes ${got.toString('hex')} at offset ${magic.offset}, expected ${magic.bytes.toString('hex')})`, { role, file });
    }
  } finally {
    closeSync(fd);
  }
}

const ARM64_IMAGE_MAGIC = { offset: 0x38, bytes: Buffer.from('ARMd', 'latin1'), what: 'an arm64 Linux Image (uncompressed)' };
const FDT = { offset: 0, bytes: Buffer.from(FDT_MAGIC.toString(16), 'hex'), what: 'a flattened device tree' };

/**
 * The FIT source: three images each with a sha256 hash, one configuration whose signature covers
 * the configuration and all three images (their nodes and hashes, so any changed byte of their data
 * fails `Bad Data Hash`). Signing only the configuration with the key `required = "conf"` in U-Boot
 * is what stops mixing a kernel, initrd and dtb of different signed payloads.
 */
export function fitSource(keyName: string): string {
  return `/dts-v1/;
/ {
	description = "edgeimage slot boot payload";
	#address-cells = <1>;
	images {
		kernel-1 {
			description = "Linux kernel";
			data = /incbin/("kernel");
			type = "kernel";
			arch = "arm64";
			os = "linux";
			compression = "none";
			load = <0x${FIT_KERNEL_LOAD.toString(16)}>;
			entry = <0x${FIT_KERNEL_LOAD.toString(16)}>;
			hash-1 { algo = "sha256"; };
		};
		ramdisk-1 {
			description = "initramfs";
			data = /incbin/("initrd");
			type = "ramdisk";
			arch = "arm64";
			os = "linux";
			compression = "none";
			hash-1 { algo = "sha256"; };
		};
		fdt-1 {
			description = "device tree";
			data = /incbin/("fdt");
			type = "flat_dt";
			arch = "arm64";
			compression = "none";
			hash-1 { algo = "sha256"; };
		};
	};
	configurations {
		default = "${FIT_CONFIG}";
		${FIT_CONFIG} {
			description = "slot boot";
			kernel = "kernel-1";
			ramdisk = "ramdisk-1";
			fdt = "fdt-1";
			signature-1 {
				algo = "sha256,rsa2048";
				key-name-hint = "${keyName}";
				sign-images = "kernel", "ramdisk", "fdt";
			};
		};
	};
};
`;
}

/**
 * A signed FIT (`boot.itb`) of a slot: kernel, initrd and device tree, configuration `conf-1`
 * signed `sha256,rsa2048` by `signer` under `keyName`, made by `mkimage -f -k`. The inputs are
 * copied into a private folder under fixed names (no path reaches the .its); the key is there
 * only while mkimage runs. Same inputs and time, same bytes (PKCS#1 v1.5 is deterministic).
 *
 * Refusals: ERR_FIT_INPUT (a missing, empty, oversized input; a kernel that is no arm64 Image; an
 * fdt that is no device tree), ERR_FIT_KEY (a key name mkimage/U-Boot cannot use, a key that is not
 * RSA-2048, a certificate of another key), ERR_HOST_TOOL (mkimage or dtc missing), ERR_TOOL_FAILED.
 */
export async function buildFit(opts: BuildFitOptions): Promise<Buffer> {
  if (!Number.isInteger(opts.sourceDateEpoch) || opts.sourceDateEpoch < 0 || opts.sourceDateEpoch > 0xffffffff) throw new ComposeError('ERR_FIT_INPUT', `sourceDateEpoch ${opts.sourceDateEpoch} is not a time a FIT holds (0 to 2^32-1 seconds)`, { sourceDateEpoch: opts.sourceDateEpoch });
  checkInput('kernel', opts.kernel, ARM64_IMAGE_MAGIC);
  checkInput('initrd', opts.initrd);
  checkInput('fdt', opts.fdt, FDT);
  return withKeyDir(opts.keyName, opts.signer, opts.tmpDir, async (work, keyDir) => {
    copyFileSync(opts.kernel, join(work, 'kernel'));
    copyFileSync(opts.initrd, join(work, 'initrd'));
    copyFileSync(opts.fdt, join(work, 'fdt'));
    const its = join(work, 'boot.its');
    writeFileSync(its, fitSource(opts.keyName));
    const out = join(work, 'boot.itb');
    const said = await mkimage(['-f', its, '-k', keyDir, out], opts.sourceDateEpoch, 'signing the FIT');
    if (!said.includes(`Signature written to '${out}', node '/configurations/${FIT_CONFIG}/signature-1'`)) throw new ComposeError('ERR_TOOL_FAILED', `signing the FIT: mkimage did not report the signature of ${FIT_CONFIG}: ${said.slice(-500)}`, { tool: 'mkimage' });
    return readFileSync(out);
  });
}
