/**
 * `edgeimage pack`: a directory with `meta/snap.yaml` → a bundle (snap) file, deterministically:
 * the same tree gives the same bytes whoever packs it, whenever, in whatever order the files
 * were created.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { chmod, open, rename, rm, truncate } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SnapYamlError, StoreError } from '../errors.js';
import { fileDigest } from './digest.js';
import { runTool, stderrTail } from '@edgeimage/host-tools';
import { parseSnapYaml, type SnapYaml } from './snap-yaml.js';

export interface PackResult {
  path: string;
  size: number;
  sha3_384: string;
  snap: SnapYaml;
}

/**
 * The mksquashfs options of every bundle (squashfs-tools ≥ 4.4):
 *
 * - `-noappend`: build a new filesystem, never add to an existing file.
 * - `-comp xz`, `-no-fragments`: as snapd's `snap pack` (snap/squashfs Build). Without
 *   fragments every file's tail sits in its own block, so a changed file does not shift the bytes
 *   of unrelated files sharing a fragment block: binary deltas between revisions stay small, and
 *   the bundle has the same layout as a snap from snapd. It costs a few KiB on trees of tiny files.
 * - `-all-root`: every file owned by 0:0, whoever runs the build (ownership in a build tree made
 *   without root means nothing on the device).
 * - `-no-xattrs`: no extended attributes (SELinux labels and the like differ between hosts).
 * - `-mkfs-time 0`, `-all-time 0`: the superblock and every inode dated 1970-01-01.
 * - `-reproducible`: deterministic output despite parallel compression (the default since 4.4,
 *   stated because some builds change defaults).
 * - `-exit-on-error`: a file mksquashfs cannot read is an error, not a warning and a bundle
 *   without that file.
 * - `-no-progress`, `-quiet`: no output unless something fails.
 *
 * Directory entries are sorted by mksquashfs itself (squashfs requires it), so creation order
 * does not matter. What still goes in as found: permission bits, symlink targets, hard links.
 */
export const MKSQUASHFS_OPTIONS: readonly string[] = [
  '-noappend',
  '-comp',
  'xz',
  '-no-fragments',
  '-all-root',
  '-no-xattrs',
  '-mkfs-time',
  '0',
  '-all-time',
  '0',
  '-reproducible',
  '-exit-on-error',
  '-no-progress',
  '-quiet',
];

/**
 * snapd pads a snap smaller than this with zeros (`MinimumSnapSize`): when a loop device is set up
 * on a smaller file, some kernels log errors while scanning it for a partition table. The device
 * mounts bundles through loop devices, so we pad too (zeros after the image; squashfs ignores them).
 */
export const MINIMUM_BUNDLE_SIZE = 16384;

/**
 * `NAME_VERSION_ARCH.snap`, ARCH being the architectures joined with `-` (`all` when there is no
 * specific one).
 *
 * @example
 * bundleFileName({ name: 'hello-kiosk', version: '1.0', architectures: ['all'] }); // 'hello-kiosk_1.0_all.snap'
 */
export function bundleFileName(snap: Pick<SnapYaml, 'name' | 'version' | 'architectures'>): string {
  const arch = snap.architectures.length > 0 ? snap.architectures.join('-') : 'all';
  return `${snap.name}_${snap.version}_${arch}.snap`;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Reads and checks DIR/meta/snap.yaml; the path in errors is as the caller wrote DIR. */
export function readSourceSnapYaml(dir: string): SnapYaml {
  const file = join(dir, 'meta', 'snap.yaml');
  let st;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new SnapYamlError('missing: a bundle directory needs meta/snap.yaml (at least name and version)', file);
    }
    throw new SnapYamlError(`cannot read: ${(e as Error).message}`, file);
  }
  // mksquashfs stores a symlink as a symlink: a link to a file outside the tree would leave the
  // bundle without its snap.yaml.
  if (st.isSymbolicLink()) throw new SnapYamlError('is a symbolic link; it must be a regular file inside the bundle directory', file);
  if (!st.isFile()) throw new SnapYamlError('is not a regular file', file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SnapYamlError(`cannot read: ${(e as Error).message}`, file);
  }
  return parseSnapYaml(text, file);
}

/**
 * Packs DIR into a bundle. The default output is `NAME_VERSION_ARCH.snap` in the current
 * directory; `output` names the file, or a directory to put the default name in. The file is
 * built under a temporary name next to its destination and renamed into place only when it is
 * complete, so a failure never leaves a partial bundle behind. Returns the absolute path.
 *
 * @example
 * const r = await pack('bundles/hello-kiosk', { output: 'images/bundles' });
 * // r.path: '/…/images/bundles/hello-kiosk_1.0_all.snap', r.size, r.sha3_384, r.snap.name
 */
export async function pack(dir: string, opts: { output?: string } = {}): Promise<PackResult> {
  const source = resolve(dir);
  if (!isDir(source)) {
    throw new StoreError('ERR_BUNDLE_SOURCE', `${dir}: not a directory (pack takes the directory holding meta/snap.yaml)`, { dir });
  }
  const snap = readSourceSnapYaml(dir);
  const name = bundleFileName(snap);

  let dest: string;
  if (!opts.output) dest = resolve(name);
  else if (opts.output.endsWith('/') || isDir(opts.output)) dest = resolve(opts.output, name);
  else dest = resolve(opts.output);
  const destDir = dirname(dest);
  if (!isDir(destDir)) {
    throw new StoreError('ERR_PACK_OUTPUT', `${destDir}: no such directory to write ${basename(dest)} into`, { output: opts.output, dir: destDir });
  }

  const tmp = join(destDir, `.${basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const args = [source, tmp, ...MKSQUASHFS_OPTIONS];
  // mksquashfs leaves its own output out of the image, but not an earlier bundle at the final
  // path (`cd DIR && edgeimage pack .` twice): exclude it so that repacking gives the same bytes.
  // Relative to DIR, as mksquashfs stats absolute exclude paths and fails when there is none yet.
  const rel = relative(source, dest);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) args.push('-e', rel);

  try {
    // squashfs-tools ≥ 4.6 refuses -mkfs-time/-all-time when SOURCE_DATE_EPOCH is set; our
    // times are fixed already.
    const r = await runTool('mksquashfs', args, { env: { SOURCE_DATE_EPOCH: undefined } });
    if (r.exitCode !== 0) {
      const why = r.signal ? `was stopped by ${r.signal}` : `exited ${r.exitCode}`;
      throw new StoreError('ERR_MKSQUASHFS', `mksquashfs ${why} packing ${dir}${r.stderr.trim() ? `: ${stderrTail(r.stderr)}` : ''}`, {
        dir,
        exitCode: r.exitCode,
        signal: r.signal,
        stderr: r.stderr,
      });
    }
    const built = statSync(tmp);
    if (!built.isFile()) throw new StoreError('ERR_MKSQUASHFS', `mksquashfs wrote no file packing ${dir}`, { dir });
    if (built.size < MINIMUM_BUNDLE_SIZE) await truncate(tmp, MINIMUM_BUNDLE_SIZE);
    await chmod(tmp, 0o644);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const { sha3_384, size } = await fileDigest(tmp);
    await rename(tmp, dest);
    return { path: dest, size, sha3_384, snap };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
