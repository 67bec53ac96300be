import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs } from './build.js';
import { initScript } from './init.js';
import { AMD64_MODULES, extractKernel, kernelDeb, removeKernels, type KernelTree } from '@edgeimage/testkit/debian-kernel';
import { bootQemu, missingQemu } from '@edgeimage/testkit/qemu-direct';
import { firstMissing, requires } from '@edgeimage/testkit/skips';

const TIMEOUT_MS = 120_000;
const dirs: string[] = [];
afterAll(() => { removeKernels(); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const deb = missingQemu ? undefined : kernelDeb('amd64');

requires(firstMissing(missingQemu, deb?.missing)).describe('initramfs boots the Debian amd64 kernel under QEMU (-kernel/-initrd)', () => {
  let k: KernelTree;
  beforeAll(() => { k = extractKernel(deb!.deb!); }, 120_000);

  test('loads every module, sees the GPT partition system-a on virtio, powers off', async () => {
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-boot-'));
    dirs.push(d);
    const t0 = Date.now();
    const result = await buildInitramfs({
      kernelTree: k.dir, version: k.version, arch: 'amd64', modules: AMD64_MODULES, busybox: '/bin/busybox',
      init: initScript({ waitForPartname: 'system-a', rebootDelay: 1, then: 'say "test done, powering off"\npoweroff -f' }),
      output: join(d, 'initrd.gz'),
    });
    const buildSeconds = (Date.now() - t0) / 1000;
    const disk = join(d, 'disk.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 64 * 2 ** 20);
    closeSync(fd);
    const sg = spawnSync('sgdisk', ['-n', '1:2048:+16M', '-c', '1:system-a', disk], { encoding: 'utf8' });
    expect(sg.status).toBe(0);

    const boot = await bootQemu([
      '-accel', 'tcg', '-M', 'q35', '-m', '512', '-nodefaults', '-nographic', '-serial', 'stdio', '-nic', 'none', '-no-reboot',
      '-kernel', k.vmlinuz, '-initrd', result.output, '-append', 'console=ttyS0 panic=-1 quiet',
      '-drive', `file=${disk},format=raw,if=virtio`,
    ], TIMEOUT_MS);
    const tail = boot.output.split('\n').slice(-40).join('\n');
    console.log(`initramfs build ${buildSeconds.toFixed(2)} s; QEMU boot to poweroff ${boot.seconds.toFixed(2)} s; ${result.modules.length} modules\n${tail}`);

    expect(boot.timedOut).toBe(false);
    expect(boot.code).toBe(0);
    const m = /edgeimage-initramfs: (\d+) modules loaded/.exec(boot.output);
    expect(m).not.toBeNull();
    const optional = (boot.output.match(/edgeimage-initramfs: optional module \S+ not loaded/g) ?? []).length;
    // crc32c-intel needs SSE4.2, which TCG's default CPU lacks: allowed to fail, nothing else.
    expect(optional).toBeLessThanOrEqual(1);
    expect(Number(m?.[1]) + optional).toBe(result.modules.length);
    expect(boot.output).toMatch(/edgeimage-initramfs: block DEVNAME=vda DEVTYPE=disk/);
    expect(boot.output).toMatch(/edgeimage-initramfs: block DEVNAME=vda1 DEVTYPE=partition PARTN=1 PARTNAME=system-a/);
    expect(boot.output).toContain('edgeimage-initramfs: test done, powering off');
    expect(boot.output).not.toMatch(/FAILED|Kernel panic/);
  }, 240_000);
});
