import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootTestError } from './errors.js';
import { FIRMWARE_DIR_ENV, qemuCommand, resolveFirmware } from './machine.js';
import { thrownBy } from '@edgeimage/testkit/refusals';

const COMMON = ['-m', '512', '-nodefaults', '-nographic', '-serial', 'stdio', '-nic', 'none'];
const TAIL = ['-device', 'i6300esb', '-action', 'watchdog=reset'];

describe('qemuCommand: the QEMU command line per architecture and firmware', () => {
  test('amd64 uefi: q35, TCG, OVMF code read-only + the vars copy, virtio disk, i6300esb', () => {
    const c = qemuCommand({ arch: 'amd64', accel: 'tcg', disk: '/t/disk.img', firmware: { kind: 'uefi', files: { code: '/fw/OVMF_CODE_4M.fd', vars: '/t/OVMF_VARS_4M.fd' } } });
    expect(c.binary).toBe('qemu-system-x86_64');
    expect(c.args).toEqual(['-M', 'q35', '-accel', 'tcg', ...COMMON, '-drive', 'if=pflash,format=raw,readonly=on,file=/fw/OVMF_CODE_4M.fd', '-drive', 'if=pflash,format=raw,file=/t/OVMF_VARS_4M.fd', '-boot', 'menu=on,splash-time=0', '-drive', 'file=/t/disk.img,format=raw,if=virtio', ...TAIL]);
  });

  test('arm64 uefi: virt without ACPI (AAVMF hands over the device tree), cortex-a57, AAVMF pflash pair', () => {
    const c = qemuCommand({ arch: 'arm64', accel: 'tcg', disk: '/t/d.img', firmware: { kind: 'uefi', files: { code: '/fw/AAVMF_CODE.fd', vars: '/t/AAVMF_VARS.fd' } } });
    expect(c.binary).toBe('qemu-system-aarch64');
    expect(c.args).toEqual(['-M', 'virt,acpi=off', '-cpu', 'cortex-a57', '-accel', 'tcg', ...COMMON, '-drive', 'if=pflash,format=raw,readonly=on,file=/fw/AAVMF_CODE.fd', '-drive', 'if=pflash,format=raw,file=/t/AAVMF_VARS.fd', '-boot', 'menu=on,splash-time=0', '-drive', 'file=/t/d.img,format=raw,if=virtio', ...TAIL]);
  });

  test('arm64 uboot: -bios u-boot.bin (and the env flash when given); -no-reboot only when asked', () => {
    const c = qemuCommand({ arch: 'arm64', accel: 'tcg', disk: '/t/d.img', firmware: { kind: 'uboot', files: { bios: '/fw/u-boot.bin' } }, ubootEnvFlash: '/t/env.img', noReboot: true });
    expect(c.args).toEqual(['-M', 'virt', '-cpu', 'cortex-a57', '-accel', 'tcg', ...COMMON, '-bios', '/fw/u-boot.bin', '-drive', 'if=pflash,index=1,format=raw,readonly=on,file=/t/env.img', '-drive', 'file=/t/d.img,format=raw,if=virtio', ...TAIL, '-no-reboot']);
    expect(qemuCommand({ arch: 'arm64', accel: 'tcg', firmware: { kind: 'uboot', files: { bios: '/b' } } }).args).not.toContain('-no-reboot');
  });

  test('arm64 uboot with a control dtb: -dtb FILE after the env flash; without it no -dtb; refused for other boots (ERR_USAGE)', () => {
    const c = qemuCommand({ arch: 'arm64', accel: 'tcg', disk: '/t/d.img', firmware: { kind: 'uboot', files: { bios: '/fw/u-boot.bin' } }, ubootEnvFlash: '/t/env.img', ubootDtb: '/t/ctl.dtb' });
    expect(c.args).toEqual(['-M', 'virt', '-cpu', 'cortex-a57', '-accel', 'tcg', ...COMMON, '-bios', '/fw/u-boot.bin', '-drive', 'if=pflash,index=1,format=raw,readonly=on,file=/t/env.img', '-dtb', '/t/ctl.dtb', '-drive', 'file=/t/d.img,format=raw,if=virtio', ...TAIL]);
    expect(qemuCommand({ arch: 'arm64', accel: 'tcg', firmware: { kind: 'uboot', files: { bios: '/b' } } }).args).not.toContain('-dtb');
    for (const spec of [{ firmware: { kind: 'uefi' as const, files: { code: '/c', vars: '/v' } } }, { direct: { kernel: '/k' } }]) {
      let code = '';
      try {
        qemuCommand({ arch: 'arm64', accel: 'tcg', ubootDtb: '/t/ctl.dtb', ...spec });
      } catch (e) {
        code = (e as BootTestError).code;
      }
      expect(code).toBe('ERR_USAGE');
    }
  });

  test('a direct boot: -kernel/-initrd/-append and no firmware; kvm uses the host CPU; commas in paths are doubled', () => {
    const c = qemuCommand({ arch: 'amd64', accel: 'kvm', disk: '/t/a,b.img', direct: { kernel: '/k/vmlinuz', initrd: '/k/initrd', append: 'console=ttyS0' } });
    expect(c.args).toEqual(['-M', 'q35', '-cpu', 'host', '-accel', 'kvm', ...COMMON, '-kernel', '/k/vmlinuz', '-initrd', '/k/initrd', '-append', 'console=ttyS0', '-drive', 'file=/t/a,,b.img,format=raw,if=virtio', ...TAIL]);
    expect(c.args.join(' ')).not.toMatch(/pflash|-bios/);
  });
});

  test('extra disks follow the main disk, in order (the guest sees /dev/vdb, /dev/vdc)', () => {
    const c = qemuCommand({ arch: 'amd64', accel: 'tcg', disk: '/t/disk.img', extraDisks: ['/t/update,1.img', '/t/other.img'], firmware: { kind: 'uefi', files: { code: '/c', vars: '/v' } } });
    const drives = c.args.flatMap((a, i) => (c.args[i - 1] === '-drive' && a.includes('if=virtio') ? [a] : []));
    expect(drives).toEqual(['file=/t/disk.img,format=raw,if=virtio', 'file=/t/update,,1.img,format=raw,if=virtio', 'file=/t/other.img,format=raw,if=virtio']);
  });

  test('disk errors: the main disk goes through blkdebug with the rules file; without a disk they are refused', () => {
    const c = qemuCommand({ arch: 'amd64', accel: 'tcg', disk: '/t/disk,1.img', diskErrors: '/t/rules.conf', extraDisks: ['/t/u.img'] });
    const drives = c.args.flatMap((a, i) => (c.args[i - 1] === '-drive' ? [a] : []));
    expect(drives).toEqual(['if=virtio,format=raw,file.driver=blkdebug,file.config=/t/rules.conf,file.image.filename=/t/disk,,1.img', 'file=/t/u.img,format=raw,if=virtio']);
    expect(() => qemuCommand({ arch: 'amd64', accel: 'tcg', diskErrors: '/t/rules.conf' })).toThrow('disk errors need a disk');
  });

describe('resolveFirmware', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgeimage-fw-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = (f: () => unknown): BootTestError => thrownBy(f, BootTestError);

  test('a missing file is ERR_FIRMWARE_MISSING naming the file and the Debian package', () => {
    const e = refusal(() => resolveFirmware('amd64', 'uefi', {}, { [FIRMWARE_DIR_ENV]: dir }));
    expect(e.code).toBe('ERR_FIRMWARE_MISSING');
    expect(e.message).toContain(join(dir, 'OVMF_CODE_4M.fd'));
    expect(e.message).toMatch(/Debian package ovmf/);
    expect(e.context).toMatchObject({ file: join(dir, 'OVMF_CODE_4M.fd'), package: 'ovmf' });
    expect(refusal(() => resolveFirmware('arm64', 'uefi', {}, { [FIRMWARE_DIR_ENV]: dir })).message).toMatch(/AAVMF_CODE\.fd .*qemu-efi-aarch64/);
    const given = refusal(() => resolveFirmware('arm64', 'uboot', { bios: join(dir, 'nope.bin') }));
    expect(given.message).toMatch(/nope\.bin is missing .*u-boot-qemu/);
  });

  test('files in $EDGEIMAGE_FIRMWARE_DIR replace the defaults; per-file options win', () => {
    writeFileSync(join(dir, 'OVMF_CODE_4M.fd'), 'code');
    // the vars file is still missing there
    expect(refusal(() => resolveFirmware('amd64', 'uefi', {}, { [FIRMWARE_DIR_ENV]: dir })).message).toContain(join(dir, 'OVMF_VARS_4M.fd'));
    writeFileSync(join(dir, 'OVMF_VARS_4M.fd'), 'vars');
    writeFileSync(join(dir, 'other-vars.fd'), 'vars');
    expect(resolveFirmware('amd64', 'uefi', {}, { [FIRMWARE_DIR_ENV]: dir })).toEqual({ code: join(dir, 'OVMF_CODE_4M.fd'), vars: join(dir, 'OVMF_VARS_4M.fd') });
    expect(resolveFirmware('amd64', 'uefi', { vars: join(dir, 'other-vars.fd') }, { [FIRMWARE_DIR_ENV]: dir }).vars).toBe(join(dir, 'other-vars.fd'));
  });

  test('U-Boot on amd64 is refused', () => {
    expect(refusal(() => resolveFirmware('amd64', 'uboot')).code).toBe('ERR_FIRMWARE_UNSUPPORTED');
  });
});

const NET_FORWARDS = [{ host: 18080, guest: 8080 }, { host: 18022, guest: 22 }];

describe('forwards: a NIC only when asked', () => {
  const NET = ['-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=tcp:127.0.0.1:18022-:22', '-device', 'virtio-net-pci,netdev=net0,romfile=,addr=0x10'];
  const forwards = NET_FORWARDS;

  test('amd64 and arm64 (UEFI, U-Boot): virtio-net-pci on restricted user networking, forwards bound to 127.0.0.1, after the disks', () => {
    for (const spec of [
      { arch: 'amd64' as const, firmware: { kind: 'uefi' as const, files: { code: '/c', vars: '/v' } } },
      { arch: 'arm64' as const, firmware: { kind: 'uefi' as const, files: { code: '/c', vars: '/v' } } },
      { arch: 'arm64' as const, firmware: { kind: 'uboot' as const, files: { bios: '/b' } } },
    ]) {
      const c = qemuCommand({ ...spec, accel: 'tcg', disk: '/t/d.img', extraDisks: ['/t/u.img'], forwards });
      const at = c.args.indexOf('-netdev');
      expect(c.args.slice(at, at + 4)).toEqual(NET);
      expect(c.args[at - 1]).toBe('file=/t/u.img,format=raw,if=virtio');
      expect(c.args.filter((a) => a === '-netdev')).toHaveLength(1);
    }
  });

  // QEMU creates -device devices before -drive if=virtio disks: a NIC without its own slot took
  // the disk's, and OVMF's initialized boot option (firmware/nvram.ts) no longer found the disk.
  test('QEMU itself (paused, info pci): with forwards the watchdog and the disk keep their PCI slots, the NIC is at 0x10', () => {
    for (const arch of ['amd64', 'arm64'] as const) {
      const bin = arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
      if (spawnSync(bin, ['--version']).status !== 0) continue;
      const slots = (forwards?: typeof NET_FORWARDS) => {
        const c = qemuCommand({ arch, accel: 'tcg', disk: '/dev/null', forwards });
        const args = c.args.map((a, i) => (c.args[i - 1] === '-serial' ? 'none' : a));
        const r = spawnSync(c.binary, [...args, '-S', '-monitor', 'stdio'], { input: 'info pci\nquit\n', encoding: 'utf8', timeout: 30_000 });
        const out: Record<string, number> = {};
        let device = -1;
        for (const l of r.stdout.split('\n')) {
          const m = /Bus +0, device +(\d+), function 0:/.exec(l);
          if (m) device = Number(m[1]);
          const id = /PCI device (1af4:100[01]|8086:25ab)/.exec(l);
          if (id) out[{ '1af4:1000': 'nic', '1af4:1001': 'disk', '8086:25ab': 'watchdog' }[id[1]!]!] = device;
        }
        return out;
      };
      expect([arch, slots()]).toEqual([arch, { watchdog: 1, disk: 2 }]);
      expect([arch, slots(NET_FORWARDS)]).toEqual([arch, { watchdog: 1, disk: 2, nic: 16 }]);
    }
  });

  test('no forwards (or an empty list): no NIC at all, as before', () => {
    for (const forwards of [undefined, []]) {
      const c = qemuCommand({ arch: 'amd64', accel: 'tcg', disk: '/t/d.img', forwards });
      expect(c.args.join(' ')).not.toMatch(/-netdev|virtio-net|hostfwd/);
      expect(c.args).toContain('none');
    }
  });

  test('guest forwards: the guest reaches 127.0.0.1:HOST of the host at 10.0.2.100:GUEST through busybox nc, one per connection; restrict=on stays; a NIC with them alone', () => {
    const c = qemuCommand({ arch: 'amd64', accel: 'tcg', disk: '/t/d.img', guestForwards: [{ guest: 80, host: 18081 }] });
    const at = c.args.indexOf('-netdev');
    expect(c.args.slice(at, at + 4)).toEqual(['-netdev', 'user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:busybox nc 127.0.0.1 18081', '-device', 'virtio-net-pci,netdev=net0,romfile=,addr=0x10']);
    const both = qemuCommand({ arch: 'arm64', accel: 'tcg', disk: '/t/d.img', forwards: [{ host: 18080, guest: 8080 }], guestForwards: [{ guest: 80, host: 18081 }] });
    expect(both.args).toContain('user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080,guestfwd=tcp:10.0.2.100:80-cmd:busybox nc 127.0.0.1 18081');
    expect(() => qemuCommand({ arch: 'amd64', accel: 'tcg', guestForwards: [{ guest: 80, host: 1 }, { guest: 80, host: 2 }] })).toThrow('guest port 80 is forwarded twice');
    expect(() => qemuCommand({ arch: 'amd64', accel: 'tcg', guestForwards: [{ guest: 80, host: 0 }] })).toThrow('the host port must be a whole number from 1 to 65535');
  });

  test('a host port twice or out of range is refused (ERR_USAGE) naming it', () => {
    expect(() => qemuCommand({ arch: 'amd64', accel: 'tcg', forwards: [{ host: 8080, guest: 80 }, { host: 8080, guest: 81 }] })).toThrow('host port 8080 is forwarded twice');
    expect(() => qemuCommand({ arch: 'amd64', accel: 'tcg', forwards: [{ host: 8080, guest: 70000 }] })).toThrow('forward 8080:70000: the guest port must be a whole number from 1 to 65535');
  });
});
