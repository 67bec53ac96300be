import { parseModulesDep, resolveModules } from './modules.js';
import { extractKernel, kernelDeb, removeKernels, SHORT_MODULES, type KernelTree } from '@edgeimage/testkit/debian-kernel';
import { requires } from '@edgeimage/testkit/skips';
import { BOARD_MODULES } from './boards.js';

const deb = kernelDeb('amd64');

afterAll(removeKernels);

describe('parseModulesDep / resolve order (synthetic)', () => {
  test('parses lines and stops at depmod -n section headers', () => {
    const deps = parseModulesDep('kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n# Aliases\nalias x y\n');
    expect([...deps.entries()]).toEqual([['kernel/a.ko', ['kernel/b.ko', 'kernel/c.ko']], ['kernel/b.ko', ['kernel/c.ko']], ['kernel/c.ko', []]]);
  });
});

requires(deb.missing).describe('resolveModules with the Debian amd64 kernel', () => {
  let k: KernelTree;
  beforeAll(() => { k = extractKernel(deb.deb!); }, 120_000);

  test('each module comes after its dependencies, no duplicates', async () => {
    const { load, builtin } = await resolveModules(k.dir, k.version, SHORT_MODULES);
    const names = load.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    const before = (a: string, b: string): void => {
      expect(names).toContain(a);
      expect(names.indexOf(a)).toBeLessThan(names.indexOf(b));
    };
    before('jbd2', 'ext4');
    before('mbcache', 'ext4');
    before('crc16', 'ext4');
    before('virtio', 'virtio_blk');
    before('virtio_ring', 'virtio_blk');
    before('virtio_pci_modern_dev', 'virtio_pci');
    before('virtio_pci_legacy_dev', 'virtio_pci');
    before('fat', 'vfat');
    expect(names).toEqual(expect.arrayContaining(['squashfs', 'nls_cp437', 'nls_ascii', 'crc32c_generic', 'crc32c_intel', 'loop', 'overlay']));
    expect(builtin).toEqual([]);
    // Every module listed after all of its modules.dep entries.
    expect(load.every((m) => m.path.startsWith('kernel/') && /\.ko(\.\w+)?$/.test(m.path))).toBe(true);
    expect(load).toHaveLength(19);
  }, 60_000);

  test('an unknown module is ERR_FS_SOURCE', async () => {
    await expect(resolveModules(k.dir, k.version, ['no_such_module'])).rejects.toMatchObject({ code: 'ERR_FS_SOURCE' });
  }, 60_000);
});

describe.each(['amd64', 'arm64'])('the reference boards\' modules with the Debian %s kernel', (arch) => {
  const d = kernelDeb(arch);
  requires(d.missing).test('dm-verity with its dependencies (modules.dep), and efivarfs, all loadable', async () => {
    const t = extractKernel(d.deb!);
    const { load, builtin } = await resolveModules(t.dir, t.version, BOARD_MODULES[arch]!);
    const names = load.map((m) => m.name);
    const deps = arch === 'arm64' ? ['reed_solomon', 'dax', 'dm_mod', 'dm_bufio'] : ['reed_solomon', 'dm_mod', 'dm_bufio'];
    for (const dep of deps) {
      expect(names).toContain(dep);
      expect(names.indexOf(dep)).toBeLessThan(names.indexOf('dm_verity'));
    }
    expect(names).toContain('efivarfs');
    expect(builtin).toEqual([]);
  }, 120_000);
});
