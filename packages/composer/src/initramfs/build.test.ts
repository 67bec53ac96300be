import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildInitramfs, busyboxVersion } from './build.js';
import { DEFAULT_INIT, initScript } from './init.js';
import { AMD64_MODULES, extractKernel, kernelDeb, removeKernels, type KernelTree } from '@edgeimage/testkit/debian-kernel';
import { firstMissing, requires } from '@edgeimage/testkit/skips';

const BUSYBOX = '/bin/busybox';
const missingBusybox = spawnSync(BUSYBOX, ['--list']).status === 0 ? undefined : `${BUSYBOX} is not installed (Debian package busybox-static)`;
const deb = kernelDeb('amd64');
const dirs: string[] = [];
afterAll(() => { removeKernels(); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('init script', () => {
  test('is valid sh, never execs a shell, reboots on failure', () => {
    for (const s of [DEFAULT_INIT, initScript({ waitForPartname: "it's", then: 'poweroff -f' })]) {
      expect(spawnSync('sh', ['-n'], { input: s }).status).toBe(0);
      expect(s).toContain('reboot -f');
      expect(s).not.toMatch(/exec\s+(\/bin\/)?sh|^\s*sh\s*$/m);
    }
    expect(DEFAULT_INIT).toContain('modules loaded');
  });
});

requires(firstMissing(missingBusybox, deb.missing)).describe('buildInitramfs with the Debian amd64 kernel and busybox-static', () => {
  let k: KernelTree;
  beforeAll(() => { k = extractKernel(deb.deb!); }, 120_000);

  test('same bytes twice; busybox, applets, modules in order, /init', async () => {
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-'));
    dirs.push(d);
    const opts = { kernelTree: k.dir, version: k.version, arch: 'amd64', modules: AMD64_MODULES, busybox: BUSYBOX };
    const r = await buildInitramfs({ ...opts, output: join(d, '1.gz') });
    await buildInitramfs({ ...opts, output: join(d, '2.gz') });
    const a = readFileSync(join(d, '1.gz'));
    expect(a.equals(readFileSync(join(d, '2.gz')))).toBe(true);

    const list = spawnSync('cpio', ['-itv', '--quiet'], { input: gunzipSync(a), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* init$/m);
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* bin\/busybox$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* sbin\/insmod -> \/bin\/busybox$/m);
    const kos = list.stdout.split('\n').filter((l) => l.endsWith('.ko')).length;
    expect(kos).toBe(r.modules.length);
    expect(r.modules.map((m) => m.name)).toEqual(expect.arrayContaining(['ext4', 'virtio_blk', 'overlay', 'loop']));

    const x = join(d, 'x');
    spawnSync('mkdir', [x]);
    expect(spawnSync('cpio', ['-id', '--quiet', 'etc/modules.order', 'init'], { input: gunzipSync(a), cwd: x }).status).toBe(0);
    expect(readFileSync(join(x, 'etc/modules.order'), 'utf8')).toBe(r.modules.map((m) => `/lib/modules/${k.version}/${m.path}\n`).join(''));
    expect(readFileSync(join(x, 'init'), 'utf8')).toBe(DEFAULT_INIT);
  }, 120_000);

  test('a foreign-arch busybox needs a host busybox of the same version', async () => {
    expect(busyboxVersion(BUSYBOX)).toMatch(/^BusyBox v1\.\d+/);
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-'));
    dirs.push(d);
    // The same binary stands in for the arm64 one: same version, so the host list is used.
    const r = await buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'arm64', modules: ['loop'], busybox: BUSYBOX, output: join(d, 'a.gz') });
    expect(r.applets).toContain('bin/sh');
    await expect(buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'arm64', modules: ['loop'], busybox: '/bin/true', output: join(d, 'b.gz') }))
      .rejects.toMatchObject({ code: 'ERR_FS_SOURCE' });
  }, 120_000);
});
