/**
 * Issue 5: the initramfs boots a composed image's slot. An image-world image whose base bundle is
 * a static busybox with an /sbin/init that reports the slot and the root filesystem; the real
 * Debian kernel and the edgeimage initramfs (default /init) boot slot b of a copy of it.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ext4Cat, sfdiskJson } from '@edgeimage/testkit/image-read';
import { makeImageWorld, type ImageWorld } from '@edgeimage/testkit/image-world';
import { AGENT, BASE, APP, KERNEL } from '@edgeimage/testkit/image-bundles';
import { snapYaml } from '@edgeimage/testkit/image-bundles';
import { buildInitramfs } from './build.js';
import { initScript } from './init.js';
import { AMD64_MODULES, extractKernel, kernelDeb, removeKernels, type KernelTree } from '@edgeimage/testkit/debian-kernel';
import { bootQemu, directBootArgs, missingQemu } from '@edgeimage/testkit/qemu-direct';
import { firstMissing, requires } from '@edgeimage/testkit/skips';

const TIMEOUT_MS = 120_000;
/** The host's static busybox (Debian busybox-static, amd64). */
const BUSYBOX = '/bin/busybox';

const INIT = `#!/bin/sh
# /sbin/init of the test base bundle: report, then power off
echo "edgeimage-base: up on slot $(busybox cat /run/edgeimage/slot-name)"
if busybox grep -q ' / squashfs ro' /proc/mounts; then echo "root is the read-only base"; else echo "root is NOT the read-only base:"; busybox cat /proc/mounts; fi
if busybox touch /probe 2>/dev/null; then echo "root is writable"; else echo "root refuses writes"; fi
busybox grep -q ' /writable ext4 rw' /proc/mounts && busybox touch /writable/probe && echo "writable is writable"
echo "edgeimage-base: slot mounted: $(busybox ls /run/edgeimage/slot/bundles | busybox tr '\\n' ' ')"
echo "edgeimage-base: apps: $(busybox ls /run/edgeimage/snap | busybox tr '\\n' ' ')"
busybox cat /run/edgeimage/devices
busybox poweroff -f
`;

const missingHost = firstMissing(process.arch === 'x64' ? undefined : 'the slot boot runs the host busybox (amd64) in the guest', missingQemu);
const deb = missingHost ? undefined : kernelDeb('amd64');

requires(firstMissing(missingHost, deb?.missing)).describe('the initramfs boots slot b of a composed GPT image (Debian amd64 kernel, QEMU TCG)', () => {
  let k: KernelTree;
  let world: ImageWorld;
  let image: string;
  let initrd: string;
  /** The same /init with a 1 s delay before the reboot of a failure. */
  let quickFailInitrd: string;
  let prepSeconds = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    k = extractKernel(deb!.deb!);
    world = await makeImageWorld();
    await world.publish(BASE, {
      'meta/snap.yaml': snapYaml(BASE, 'base', 'amd64'),
      'bin/busybox': { data: readFileSync(BUSYBOX), mode: 0o755 },
      'bin/sh': { symlink: 'busybox' },
      'sbin/init': { data: INIT, mode: 0o755 },
      'etc/os-release': 'NAME="edge base"\nID=edge\n',
      ...Object.fromEntries(['dev', 'proc', 'sys', 'run', 'writable'].map((d) => [d, { dir: true as const }])),
    });
    const built = await world.compose(await world.resolve(await world.model()));
    image = built.images[0]!.path;
    initrd = (await buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'amd64', modules: AMD64_MODULES, busybox: BUSYBOX, output: join(world.tempDir('initrd-'), 'initrd.gz') })).output;
    quickFailInitrd = (await buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'amd64', modules: AMD64_MODULES, busybox: BUSYBOX, init: initScript({ rebootDelay: 1 }), output: join(world.tempDir('initrd-'), 'initrd.gz') })).output;
    prepSeconds = (Date.now() - t0) / 1000;
  }, 240_000);
  afterAll(() => { removeKernels(); world?.cleanup(); });

  test('slot b holds boot/slot.env naming its base, agent, kernel and app bundles', () => {
    const b = sfdiskJson(image).partitions.find((p) => p.name === 'system-b')!;
    const env = ext4Cat(image, b.start * 512, '/boot/slot.env')?.toString('utf8');
    const base = world.bundles.get(BASE)!;
    const app = world.bundles.get(APP)!;
    const agent = world.bundles.get(AGENT)!;
    const kernel = world.bundles.get(KERNEL)!;
    expect(env).toBe(`EDGE_BASE=bundles/${BASE}_${base.revision}.snap\nEDGE_AGENT=bundles/${AGENT}_${agent.revision}.snap\nEDGE_KERNEL=bundles/${KERNEL}_${kernel.revision}.snap\nEDGE_APPS="bundles/${APP}_${app.revision}.snap"\nEDGE_GRADE=signed\n`);
  });

  test('edgeimage.slot=b (then a later edgeimage.slot=a, which the first occurrence wins over): the base bundle is the read-only root, system-data is /writable, apps are mounted, and its /sbin/init runs', async () => {
    const copy = join(world.tempDir('boot-'), 'disk.img');
    copyFileSync(image, copy);
    const boot = await bootQemu(directBootArgs(k.vmlinuz, initrd, 'console=ttyS0 panic=-1 edgeimage.slot=b edgeimage.slot=a', copy), TIMEOUT_MS);
    const tail = boot.output.split('\n').filter((l) => /edgeimage|root is|FAILED|panic/i.test(l)).join('\n');
    console.log(`world + compose + initramfs ${prepSeconds.toFixed(2)} s; QEMU boot to poweroff ${boot.seconds.toFixed(2)} s\n${tail}`);
    expect(boot.timedOut).toBe(false);
    expect(boot.output).toContain('edgeimage-base: up on slot b');
    expect(boot.output).toContain('root is the read-only base');
    expect(boot.output).toContain('root refuses writes');
    expect(boot.output).toContain('writable is writable');
    expect(boot.output).toContain(`edgeimage-base: apps: ${APP} `);
    expect(boot.output).toMatch(/slot_dev=\/dev\/vda3\s+data_dev=\/dev\/vda4\s+boot_dev=\/dev\/vda1/);
    expect(boot.output).toMatch(/edgeimage-initramfs: slot b: \/dev\/vda3 mounted/);
    expect(boot.output).toMatch(/edgeimage-initramfs: device agent bundles\/edge-agent_\d+\.snap mounted on \/run\/edgeimage\/agent/);
    expect(boot.output).not.toMatch(/FAILED|Kernel panic/);
    expect(boot.code).toBe(0);
  }, 240_000);

  test('a slot.env without EDGE_AGENT: FAILED "no device agent", then a reboot; the base\'s init never runs', async () => {
    const copy = join(world.tempDir('boot-'), 'disk.img');
    copyFileSync(image, copy);
    const b = sfdiskJson(copy).partitions.find((p) => p.name === 'system-b')!;
    const env = ext4Cat(copy, b.start * 512, '/boot/slot.env')!.toString('utf8');
    const local = join(world.tempDir('env-'), 'slot.env');
    writeFileSync(local, env.replace(/^EDGE_AGENT=.*\n/m, ''));
    for (const req of ['rm /boot/slot.env', `write ${local} /boot/slot.env`]) {
      const d = spawnSync('debugfs', ['-w', '-R', req, `${copy}?offset=${b.start * 512}`], { encoding: 'utf8' });
      if (d.status !== 0 || /not found|error/i.test(d.stderr)) throw new Error(`debugfs ${req}: ${d.stderr}`);
    }
    const boot = await bootQemu(directBootArgs(k.vmlinuz, quickFailInitrd, 'console=ttyS0 panic=-1 edgeimage.slot=b', copy), TIMEOUT_MS);
    expect(boot.timedOut).toBe(false);
    expect(boot.output).toContain('edgeimage-initramfs: FAILED: no device agent: slot b names no agent bundle (EDGE_AGENT; the model needs a snap of type snapd)');
    expect(boot.output).toContain('edgeimage-initramfs: rebooting in 1 s');
    expect(boot.output).not.toContain('edgeimage-base:');
  }, 240_000);

  test('edgeimage.slot=c: FAILED with the reason, then a reboot (QEMU exits with -no-reboot), never a shell', async () => {
    const copy = join(world.tempDir('boot-'), 'disk.img');
    copyFileSync(image, copy);
    const boot = await bootQemu(directBootArgs(k.vmlinuz, quickFailInitrd, 'console=ttyS0 panic=-1 edgeimage.slot=c', copy), TIMEOUT_MS);
    console.log(`failing boot to reboot ${boot.seconds.toFixed(2)} s`);
    expect(boot.timedOut).toBe(false);
    expect(boot.output).toContain('edgeimage-initramfs: FAILED: edgeimage.slot=c: the slot is a or b');
    expect(boot.output).toContain('edgeimage-initramfs: rebooting in 1 s');
    expect(boot.output).not.toContain('edgeimage-base:');
    expect(boot.output).not.toMatch(/Kernel panic/);
  }, 240_000);
});
