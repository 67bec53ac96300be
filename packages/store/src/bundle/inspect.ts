/**
 * Reading a bundle file without mounting it: `unsquashfs -cat` prints meta/snap.yaml from the
 * image as an ordinary user, with nothing extracted to disk.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { StoreError } from '../errors.js';
import { fileDigest } from './digest.js';
import { runTool, stderrTail } from '@edgeimage/host-tools';
import { parseSnapYaml, type SnapYaml } from './snap-yaml.js';

export interface BundleInfo {
  path: string;
  size: number;
  sha3_384: string;
  snap: SnapYaml;
}

/** snap.yaml files are small; anything larger is not one. */
const MAX_SNAP_YAML = 1024 * 1024;

function invalid(file: string, why: string, extra: Record<string, unknown> = {}): StoreError {
  return new StoreError('ERR_BUNDLE_INVALID', `${file}: not a valid bundle: ${why}`, { file, ...extra });
}

const SQUASHFS_MAGIC = 0x73717368; // "hsqs", little-endian

/**
 * Checks the squashfs superblock: the magic number, and that the file holds all `bytes_used`
 * bytes of the image (a download cut short), so that the error says what is wrong rather than
 * unsquashfs's "File system corruption detected".
 */
function checkSuperblock(file: string, size: number): void {
  const sb = Buffer.alloc(96);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, sb, 0, sb.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n < sb.length || sb.readUInt32LE(0) !== SQUASHFS_MAGIC) throw invalid(file, 'not a squashfs image (no squashfs superblock)');
  const used = sb.readBigUInt64LE(40);
  if (used > BigInt(size)) throw invalid(file, `cut short: the squashfs image is ${used} bytes, the file ${size}`, { expected: Number(used), actual: size });
}

/**
 * meta/snap.yaml of a bundle, read without mounting (unsquashfs -cat). A file that is not a
 * squashfs image or has no meta/snap.yaml is a {@link StoreError} `ERR_BUNDLE_INVALID`; a
 * snap.yaml that breaks a rule is a `SnapYamlError` naming `FILE:meta/snap.yaml:LINE:COL`.
 *
 * @example
 * const y = await readSnapYaml('hello-kiosk_1.0_all.snap');
 * y.name; // 'hello-kiosk'
 */
export async function readSnapYaml(file: string): Promise<SnapYaml> {
  // A missing file is the caller's ENOENT, with its path; anything else that is not a file is invalid.
  const st = statSync(file);
  if (!st.isFile()) throw invalid(file, 'not a regular file');
  checkSuperblock(file, st.size);
  // An absolute path: a file named "-x.snap" must not read as an option.
  const r = await runTool('unsquashfs', ['-cat', resolve(file), 'meta/snap.yaml'], { maxStdout: MAX_SNAP_YAML });
  if (r.overflow) throw invalid(file, `meta/snap.yaml is larger than ${MAX_SNAP_YAML} bytes`);
  if (r.exitCode !== 0) {
    const err = r.stderr;
    let why: string;
    if (/valid SQUASHFS superblock/i.test(err)) why = 'not a squashfs image (no squashfs superblock)';
    else if (/no matches for/i.test(err)) why = 'it has no meta/snap.yaml';
    else if (/is a directory/i.test(err)) why = 'meta/snap.yaml is a directory';
    else if (/symbolic link/i.test(err)) why = 'meta/snap.yaml is a symbolic link that does not resolve inside the bundle';
    else why = `cannot read meta/snap.yaml (unsquashfs ${r.signal ? `stopped by ${r.signal}` : `exited ${r.exitCode}`}${err.trim() ? `: ${stderrTail(err)}` : ''})`;
    throw invalid(file, why, { stderr: err });
  }
  return parseSnapYaml(r.stdout.toString('utf8'), `${file}:meta/snap.yaml`);
}

/**
 * What `edgeimage bundle info` shows: meta/snap.yaml, size and sha3-384 of a bundle file.
 *
 * @example
 * const info = await readBundleInfo('hello-kiosk_1.0_all.snap');
 * info.sha3_384; // 64 characters, as in the snap-revision assertion
 */
export async function readBundleInfo(file: string): Promise<BundleInfo> {
  const snap = await readSnapYaml(file);
  const { sha3_384, size } = await fileDigest(file);
  return { path: resolve(file), size, sha3_384, snap };
}
