/**
 * The amd64 busybox-base bundle unpacked as a chroot, for tests that run the device's own shell
 * tools for real (busybox sh and the Debian binaries the base carries) on the host. The bundle is
 * the one `bundles/build` keeps (built once, then cached by its inputs). Root is needed to chroot.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const isRoot = process.getuid?.() === 0;

/** Unpacks the amd64 base into `dir` (which must not exist yet); throws with bundles/build's stderr when the build fails. */
export function unpackBase(dir: string): void {
  const r = spawnSync(join(ROOT, 'bundles/build'), [], { encoding: 'utf8' });
  const snap = r.stdout.split('\n').find((l) => /busybox-base_.*_amd64\.snap$/.test(l));
  if (r.status !== 0 || !snap) throw new Error(`bundles/build failed (${r.status}): ${r.stderr.slice(-2000)}`);
  execFileSync('unsquashfs', ['-q', '-n', '-d', dir, snap]);
}
