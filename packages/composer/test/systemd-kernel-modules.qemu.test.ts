/**
 * The kernel bundle's modules/VERSION/ (bundles/debian-kernel/modules-subset, run by assemble):
 * the modules a base loads at run time, chosen from Debian's full tree with their dependencies and
 * their own modules.dep. The initramfs binds the bundle's modules/ over the base's
 * /usr/lib/modules, so here the subset is put at ROOT/lib/modules/VERSION and the host's modprobe
 * resolves in it as a base's modprobe would (modprobe reads a foreign architecture's index too).
 * Real Debian kernel packages of both architectures (cached by scripts/fetch-debs); slow for the
 * fast project (the package is ~100 MB to unpack), so in the qemu project though no VM boots.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDeb } from '@edgeimage/testkit/debian-kernel';
import { REPO } from '@edgeimage/testkit/repo';
import { requires } from '@edgeimage/testkit/skips';

const SUBSET = join(REPO, 'bundles/debian-kernel/modules-subset');
const tools = ['depmod', 'modprobe', 'dpkg-deb'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
let top: string;
beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), 'edgeimage-modules-'));
});
afterAll(() => rmSync(top, { recursive: true, force: true }));

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}
const digest = (dir: string) => {
  const h = createHash('sha256');
  for (const f of files(dir)) h.update(`${f}\0`).update(readFileSync(join(dir, f)));
  return h.digest('hex');
};

describe.each([['amd64'], ['arm64']])('modules-subset (%s)', (arch) => {
  const deb = tools.length ? { missing: `${tools.join(', ')} not installed` } : kernelDeb(arch);
  const { test: kTest } = requires(deb.missing);
  let full: string;
  let version: string;
  let out: string;
  let run: ReturnType<typeof spawnSync>;
  /** a root whose lib/modules is the bundle's modules/, as the initramfs binds it */
  let root: string;
  const modprobe = (...args: string[]) => spawnSync('modprobe', ['-d', root, '-S', version, ...args], { encoding: 'utf8' });

  beforeAll(() => {
    if (deb.missing) return;
    full = join(top, `full-${arch}`);
    mkdirSync(full);
    execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./lib/modules/*"', 'sh', deb.deb!, full]);
    version = readdirSync(join(full, 'lib/modules'))[0]!;
    out = join(top, `bundle-${arch}/modules`);
    run = spawnSync(SUBSET, [full, version, out], { encoding: 'utf8' });
    root = join(top, `root-${arch}`);
    mkdirSync(join(root, 'lib'), { recursive: true });
    symlinkSync(out, join(root, 'lib/modules'));
  }, 120_000);

  kTest('modules/VERSION/ with modules.dep and the other index files of depmod, nothing else beside', () => {
    expect(run.stderr).toMatch(new RegExp(`modules-subset: \\d+ of \\d+ modules, \\d+ KiB \\(full tree \\d+ KiB\\)`));
    expect(run.status).toBe(0);
    expect(readdirSync(out)).toEqual([version]);
    for (const f of ['modules.dep', 'modules.dep.bin', 'modules.alias.bin', 'modules.symbols.bin', 'modules.softdep', 'modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      expect(existsSync(join(out, version, f))).toBe(true);
    }
  });

  kTest('modprobe virtio_net resolves in it (with its dependencies), as on a base', () => {
    const r = modprobe('-n', '-v', 'virtio_net');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/insmod \S+\/kernel\/drivers\/net\/virtio_net\.ko/);
    expect(r.stdout).toMatch(/insmod \S+\/net_failover\.ko/);
  });

  kTest('what a robot or kiosk needs is there: network, input/HID, USB, DRM virtio-gpu and bochs, filesystems, watchdogs, I2C/CAN, device mapper; each resolves', () => {
    const wanted = ['virtio_net', 'virtio_blk', 'tun', 'bridge', 'nf_tables', 'r8152', 'cdc_ether', 'evdev', 'usbhid', 'hid_generic', 'hid_multitouch', 'xhci_pci', 'usb_storage', 'cdc_acm', 'ftdi_sio', 'virtio_gpu', 'bochs', 'ext4', 'vfat', 'exfat', 'squashfs', 'overlay', 'fuse', 'softdog', 'i2c_dev', 'can_raw', 'dm_verity', 'autofs4', 'configfs', 'efi_pstore'];
    if (arch === 'amd64') wanted.push('i6300esb', 'e1000e', 'r8169');
    if (arch === 'arm64') wanted.push('genet', 'dwc2', 'xhci_plat_hcd');
    const unresolved = wanted.filter((m) => modprobe('-n', m).status !== 0);
    expect(unresolved).toEqual([]);
    // every watchdog driver of the full tree
    const dogs = readdirSync(join(full, 'lib/modules', version, 'kernel/drivers/watchdog'));
    expect(dogs.length).toBeGreaterThan(3);
    expect(dogs.filter((d) => !existsSync(join(out, version, 'kernel/drivers/watchdog', d)))).toEqual([]);
  });

  kTest('no sound, no wireless, no large GPU drivers; the subset is a small part of the full tree', () => {
    const ko = files(join(out, version)).filter((f) => /\.ko(\.xz|\.zst)?$/.test(f));
    expect(ko.filter((f) => /^kernel\/(sound|drivers\/net\/wireless|drivers\/gpu\/drm\/(i915|amd|nouveau|radeon))\//.test(f))).toEqual([]);
    const size = (dir: string) => files(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    const sub = size(join(out, version));
    expect(sub).toBeLessThan(40 * 1024 * 1024);
    expect(sub * 10).toBeLessThan(size(join(full, 'lib/modules', version)));
    // every module modules.dep names is in the tree, and every module of the tree is in modules.dep
    const dep = readFileSync(join(out, version, 'modules.dep'), 'utf8');
    const named = new Set(dep.split('\n').flatMap((l) => l.replace(':', '').split(' ')).filter(Boolean));
    expect([...named].filter((m) => !existsSync(join(out, version, m)))).toEqual([]);
    expect(ko.filter((m) => !named.has(m))).toEqual([]);
  });

  kTest('the same inputs give the same tree, byte for byte', () => {
    const again = join(top, `again-${arch}`);
    const r = spawnSync(SUBSET, [full, version, again], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(files(join(again, version))).toEqual(files(join(out, version)));
    expect(digest(join(again, version))).toBe(digest(join(out, version)));
  });

  kTest('a root without that kernel version is an error naming the folder, and nothing is written', () => {
    const dest = join(top, `none-${arch}`);
    const r = spawnSync(SUBSET, [full, '0.0.0-none', dest], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`modules-subset: no modules in ${join(full, 'lib/modules/0.0.0-none')}`);
    expect(existsSync(dest)).toBe(false);
  });
});
