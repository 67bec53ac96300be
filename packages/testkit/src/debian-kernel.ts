import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';


export interface KernelTree {
  dir: string;
  version: string;
  vmlinuz: string;
}

const made: string[] = [];

export type KernelDeb = { deb: string; missing?: undefined } | { deb?: undefined; missing: string };

/**
 * Debian's kernel package for `arch` (scripts/fetch-debs downloads it once and caches it), or why
 * it cannot be had here (no network, no apt source). Quick once cached: a test file calls it when
 * it defines its tests, so that a missing kernel skips them (`requires(deb.missing)`).
 */
export function kernelDeb(arch = 'amd64'): KernelDeb {
  const r = spawnSync(join(REPO, 'scripts/fetch-debs'), [arch, `linux-image-${arch}`], { encoding: 'utf8' });
  const deb = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !deb || !existsSync(deb)) return { missing: `cannot fetch linux-image-${arch}: ${r.stderr.trim()}` };
  return { deb };
}

/** The kernel package `deb` extracted to a temp dir (removed by {@link removeKernels}). */
export function extractKernel(deb: string): KernelTree {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-kernel-'));
  made.push(dir);
  execFileSync('dpkg-deb', ['-x', deb, dir]);
  const version = readdirSync(join(dir, 'lib/modules'))[0];
  if (version === undefined) throw new Error(`no lib/modules in ${deb}`);
  return { dir, version, vmlinuz: join(dir, 'boot', `vmlinuz-${version}`) };
}

/** The Debian kernel for `arch` extracted to a temp dir, or why it cannot be had here. */
export function debianKernel(arch = 'amd64'): KernelTree | string {
  const k = kernelDeb(arch);
  return k.missing ?? extractKernel(k.deb!);
}

export function removeKernels(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The amd64 module list of boot-notes (17) plus loop and overlay. */
export const AMD64_MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'virtio_blk',
  'crc32c_generic', 'crc32c-intel', 'jbd2', 'mbcache', 'crc16', 'ext4', 'squashfs', 'fat', 'vfat',
  'nls_cp437', 'nls_ascii', 'loop', 'overlay',
];

/** The short list of the brief (dependencies come from modules.dep) plus the virtio PCI transport. */
export const SHORT_MODULES = ['virtio_pci', 'virtio_blk', 'ext4', 'squashfs', 'vfat', 'nls_cp437', 'nls_ascii', 'crc32c_generic', 'crc32c-intel', 'loop', 'overlay'];
