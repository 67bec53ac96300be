/**
 * Cheap real guests for the QEMU tests: Debian's kernel (scripts/fetch-debs) booted directly with
 * a small busybox initramfs whose /init is the test's script — a boot to a marker in seconds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs } from '@edgeimage/composer';
import type { Arch } from '@edgeimage/qemu';
import { debianKernel, removeKernels, type KernelTree } from './debian-kernel.js';
import { REPO } from './repo.js';

export { removeKernels, type KernelTree };

export const hasQemu = (arch: Arch): boolean => spawnSync(arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64', ['--version']).status === 0;

/** The console of the kernel command line, and `panic=-1` so a panic of a -no-reboot boot ends QEMU. */
export const CONSOLE: Record<Arch, string> = { amd64: 'console=ttyS0', arm64: 'console=ttyAMA0' };

const dirs: string[] = [];

/** A static busybox for `arch`: the host's for amd64, Debian's busybox-static:arm64 (fetched into the cache) for arm64. */
export function busyboxFor(arch: Arch): string {
  if (arch === 'amd64') return '/bin/busybox';
  const r = spawnSync(join(REPO, 'scripts/fetch-debs'), ['arm64', 'busybox-static'], { encoding: 'utf8' });
  const deb = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !deb || !existsSync(deb)) throw new Error(`cannot fetch busybox-static:arm64: ${r.stderr}`);
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-busybox-'));
  dirs.push(d);
  execFileSync('dpkg-deb', ['-x', deb, d]);
  return join(d, 'bin/busybox');
}

/** The start of every test /init: the kernel filesystems and the virtio disk driver. */
export const INIT_PRELUDE = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "$ko" 2>/dev/null; done < /etc/modules.order
`;

export interface Guest {
  kernel: KernelTree;
  arch: Arch;
  busybox: string;
  /** An initramfs whose /init is `INIT_PRELUDE + script`. */
  initrd(script: string): Promise<string>;
  cleanup(): void;
}

/** Debian's kernel for `arch` and an initramfs builder, or the reason why not (for a visible skip). */
export async function makeGuest(arch: Arch): Promise<Guest | string> {
  const kernel = debianKernel(arch);
  if (typeof kernel === 'string') return kernel;
  const busybox = busyboxFor(arch);
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-guest-'));
  dirs.push(dir);
  let n = 0;
  return {
    kernel,
    arch,
    busybox,
    initrd: async (script) =>
      (await buildInitramfs({ kernelTree: kernel.dir, version: kernel.version, arch, modules: ['virtio_pci', 'virtio_blk'], busybox, init: INIT_PRELUDE + script, output: join(dir, `initrd-${++n}.gz`) })).output,
    cleanup: () => {
      removeKernels();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}
