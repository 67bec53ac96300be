import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { debianPackage } from '@edgeimage/host-tools';
import { BootTestError } from './errors.js';
import { checkForwards, type PortForward } from './http-expect.js';

export type Arch = 'amd64' | 'arm64';
export type Firmware = 'uefi' | 'uboot';
export type Accel = 'tcg' | 'kvm';

export const ARCHES: readonly Arch[] = ['amd64', 'arm64'];
export const FIRMWARES: readonly Firmware[] = ['uefi', 'uboot'];

/** The firmware files of a boot. Every path can be overridden; see {@link resolveFirmware}. */
export interface FirmwareFiles {
  /** UEFI: the read-only code flash (OVMF_CODE_4M.fd, AAVMF_CODE.fd). */
  code?: string;
  /** UEFI: the template of the variable store; the boot uses a writable copy of it. */
  vars?: string;
  /** U-Boot: the `-bios` binary. */
  bios?: string;
}

interface FirmwareDefault {
  files: Required<Pick<FirmwareFiles, 'code' | 'vars'>> | Required<Pick<FirmwareFiles, 'bios'>>;
  /** The Debian package that installs the files. */
  package: string;
}

/** Debian's firmware files (boot-notes: the 4M OVMF pair, not the secure-boot CODE, which needs SMM). */
export const DEFAULT_FIRMWARE: Record<`${Arch}/${Firmware}`, FirmwareDefault | undefined> = {
  'amd64/uefi': { files: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' }, package: debianPackage('/usr/share/OVMF/OVMF_CODE_4M.fd') },
  'arm64/uefi': { files: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' }, package: debianPackage('/usr/share/AAVMF/AAVMF_CODE.fd') },
  'arm64/uboot': { files: { bios: '/usr/lib/u-boot/qemu_arm64/u-boot.bin' }, package: debianPackage('/usr/lib/u-boot/qemu_arm64/u-boot.bin') },
  'amd64/uboot': undefined,
};

/** The QEMU binary of each architecture and its Debian package (from host-tools.tsv). */
export const QEMU_BINARY: Record<Arch, { binary: string; package: string }> = {
  amd64: { binary: 'qemu-system-x86_64', package: debianPackage('qemu-system-x86_64') },
  arm64: { binary: 'qemu-system-aarch64', package: debianPackage('qemu-system-aarch64') },
};

/** The environment variable naming a folder that replaces the default folders of every firmware file (same base names). */
export const FIRMWARE_DIR_ENV = 'EDGEIMAGE_FIRMWARE_DIR';

/**
 * The firmware files of `arch`/`firmware`: `overrides` first, else the default file's base name
 * in `$EDGEIMAGE_FIRMWARE_DIR` when set, else Debian's path. Every file must be readable: a
 * missing one is ERR_FIRMWARE_MISSING naming the file and the package that provides it.
 */
export function resolveFirmware(arch: Arch, firmware: Firmware, overrides: FirmwareFiles = {}, env: NodeJS.ProcessEnv = process.env): FirmwareFiles {
  const d = DEFAULT_FIRMWARE[`${arch}/${firmware}`];
  if (!d) throw new BootTestError('ERR_FIRMWARE_UNSUPPORTED', `firmware ${firmware} is not available for ${arch} (use ${arch === 'amd64' ? 'uefi' : 'uefi or uboot'})`, { arch, firmware });
  const dir = env[FIRMWARE_DIR_ENV] || undefined;
  const out: FirmwareFiles = {};
  for (const [key, path] of Object.entries(d.files) as [keyof FirmwareFiles, string][]) {
    const file = overrides[key] ?? (dir ? join(dir, path.slice(path.lastIndexOf('/') + 1)) : path);
    try {
      accessSync(file, constants.R_OK);
    } catch {
      const how = overrides[key] ? 'given' : dir ? `looked up in $${FIRMWARE_DIR_ENV}=${dir}` : `installed by the Debian package ${d.package}`;
      throw new BootTestError('ERR_FIRMWARE_MISSING', `firmware file ${file} is missing (${arch} ${firmware} ${key} file, ${how}; install the Debian package ${d.package})`, { file, package: d.package, arch, firmware, role: key });
    }
    out[key] = file;
  }
  return out;
}

/** The console device of the kernel command line (boot-notes: ttyS0 on x86, ttyAMA0 on arm64 virt). */
export const KERNEL_CONSOLE: Record<Arch, string> = { amd64: 'ttyS0', arm64: 'ttyAMA0' };

/**
 * The arm64 CPU model. cortex-a57 rather than `max`: under TCG, `max` emulates pointer
 * authentication (QARMA), which makes every function call of an arm64 kernel expensive.
 */
export const ARM64_CPU = 'cortex-a57';

export interface MachineSpec {
  arch: Arch;
  accel: Accel;
  /** Guest RAM in MiB (default 512). */
  memoryMiB?: number;
  /** The disk (raw); left out: no disk. */
  disk?: string;
  /**
   * A QEMU blkdebug rules file for the disk: its I/O errors are injected as the rules say
   * (`[inject-error] event = "write_aio" errno = "5" sector = "N"`), to test failure paths.
   */
  diskErrors?: string;
  /**
   * More raw disks, each `-drive file=…,format=raw,if=virtio` after the main disk, in order: the
   * guest sees them as /dev/vdb, /dev/vdc, … (e.g. an update on a stand-in for a USB stick).
   */
  extraDisks?: readonly string[];
  /** A firmware boot: the files (already resolved; `vars` is the writable copy). */
  firmware?: { kind: Firmware; files: FirmwareFiles };
  /** A direct boot: no firmware. */
  direct?: { kernel: string; initrd?: string; append?: string };
  /** U-Boot: an environment flash image (second pflash, read-only), e.g. one with bootdelay=0. */
  ubootEnvFlash?: string;
  /**
   * U-Boot: the device tree QEMU hands the firmware (`-dtb`) instead of its own, e.g. the control
   * dtb holding the FIT key with `required = "conf"`: without it U-Boot knows no key and boots
   * unsigned FITs. QEMU still patches `/memory` for `-m`.
   */
  ubootDtb?: string;
  /** `-no-reboot`: a guest reboot (and a watchdog reset) ends QEMU. */
  noReboot?: boolean;
  /**
   * UEFI Secure Boot. amd64: OVMF's secboot CODE runs only with SMM (without it: no output at all,
   * a silent hang), and the variable flash is made writable from SMM only, so the OS cannot
   * rewrite the enrolled keys. `firmware.files` must be the secure-boot CODE and an enrolled store's copy.
   */
  secureBoot?: boolean;
  /**
   * TCP ports of the guest forwarded to 127.0.0.1 of the host. With any, the machine gets one NIC
   * (virtio-net-pci on QEMU user networking, `restrict=on`: the guest reaches nothing outside,
   * the forwards still work); without, no NIC at all.
   */
  forwards?: readonly PortForward[];
  /** Host services the guest reaches at GUEST_SERVICE_ADDRESS (guestfwd); with any, the machine gets the NIC too. */
  guestForwards?: readonly GuestForward[];
  /**
   * A display the guest can draw on and QEMU can screendump ({@link DISPLAY_DEVICE}); nothing is
   * shown on the host (-nographic). Without: no display device at all (-nodefaults).
   */
  display?: boolean;
  /** QEMU's QMP monitor on this unix socket (QEMU makes it; {@link QmpClient} connects). */
  qmpSocket?: string;
  /** Arguments appended at the end. */
  extraArgs?: readonly string[];
}

/**
 * The display of each architecture, at a fixed PCI slot (after the NIC's 0x10) so that no other
 * device moves: the disk keeps the slot the firmware's boot option names. amd64: QEMU's standard
 * VGA (OVMF draws on it through QemuVideoDxe; Linux's efifb, then the bochs DRM driver). arm64:
 * virtio-gpu (AAVMF's VirtioGpuDxe; Linux's virtio_gpu DRM driver, in the kernel bundle's modules).
 */
export const DISPLAY_DEVICE: Record<Arch, string> = {
  amd64: 'VGA,addr=0x11',
  arm64: 'virtio-gpu-pci,addr=0x11',
};

/**
 * UEFI firmware: no boot-menu countdown. AAVMF's platform default is a 5 s countdown before it
 * boots (idle under TCG: most of its own start); OVMF's is 0. Both take the countdown from QEMU
 * only when the boot menu is on (`etc/boot-menu-wait`, milliseconds rounded up to seconds), so
 * `menu=on` with `splash-time=0` sets it to 0 and nothing waits for a key.
 */
export const UEFI_NO_BOOT_DELAY: readonly string[] = ['-boot', 'menu=on,splash-time=0'];

/** A path inside a QEMU option list (`-drive file=…,format=raw`): commas are doubled. */
export const qemuPath = (p: string): string => p.replace(/,/g, ',,');

/** The QEMU command line of a boot: the binary and its arguments. Pure: no file is touched. */
export function qemuCommand(spec: MachineSpec): { binary: string; args: string[] } {
  const args: string[] = [];
  if (spec.arch === 'amd64') args.push('-M', spec.secureBoot ? 'q35,smm=on' : 'q35');
  // arm64 UEFI: the virt board without ACPI tables, so AAVMF hands the kernel QEMU's device tree,
  // as an EBBR (UEFI + device tree) edge board does and as U-Boot and the direct boot do. With ACPI
  // the same kernel took 0.3-0.5 s longer to reach healthy under TCG (bench boot, kernel s).
  else args.push('-M', spec.firmware?.kind === 'uefi' ? 'virt,acpi=off' : 'virt', '-cpu', spec.accel === 'kvm' ? 'host' : ARM64_CPU);
  if (spec.arch === 'amd64' && spec.accel === 'kvm') args.push('-cpu', 'host');
  args.push('-accel', spec.accel, '-m', String(spec.memoryMiB ?? 512));
  // -nodefaults: no DVD-ROM, no default NIC to try PXE on (boot-notes: +4 s or more on q35).
  args.push('-nodefaults', '-nographic', '-serial', 'stdio', '-nic', 'none');
  if (spec.firmware && spec.direct) throw new BootTestError('ERR_USAGE', 'a boot is either a firmware boot or a direct (-kernel) boot, not both');
  if (spec.secureBoot && spec.firmware?.kind !== 'uefi') throw new BootTestError('ERR_USAGE', 'Secure Boot needs a UEFI firmware boot');
  if (spec.firmware) {
    const f = spec.firmware.files;
    if (spec.firmware.kind === 'uefi') {
      args.push('-drive', `if=pflash,format=raw,readonly=on,file=${qemuPath(f.code!)}`, '-drive', `if=pflash,format=raw,file=${qemuPath(f.vars!)}`, ...UEFI_NO_BOOT_DELAY);
      if (spec.secureBoot && spec.arch === 'amd64') args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    } else {
      args.push('-bios', f.bios!);
      if (spec.ubootEnvFlash !== undefined) args.push('-drive', `if=pflash,index=1,format=raw,readonly=on,file=${qemuPath(spec.ubootEnvFlash)}`);
      if (spec.ubootDtb !== undefined) args.push('-dtb', spec.ubootDtb);
    }
  }
  if (spec.ubootDtb !== undefined && spec.firmware?.kind !== 'uboot') throw new BootTestError('ERR_USAGE', 'a U-Boot device tree (-dtb) needs a U-Boot firmware boot');
  if (spec.direct) {
    args.push('-kernel', spec.direct.kernel);
    if (spec.direct.initrd !== undefined) args.push('-initrd', spec.direct.initrd);
    if (spec.direct.append !== undefined) args.push('-append', spec.direct.append);
  }
  if (spec.disk !== undefined) {
    if (spec.diskErrors !== undefined) args.push('-drive', `if=virtio,format=raw,file.driver=blkdebug,file.config=${qemuPath(spec.diskErrors)},file.image.filename=${qemuPath(spec.disk)}`);
    else args.push('-drive', `file=${qemuPath(spec.disk)},format=raw,if=virtio`);
  } else if (spec.diskErrors !== undefined) throw new BootTestError('ERR_USAGE', 'disk errors need a disk');
  for (const d of spec.extraDisks ?? []) args.push('-drive', `file=${qemuPath(d)},format=raw,if=virtio`);
  if (spec.forwards?.length || spec.guestForwards?.length) args.push(...netArgs(spec.forwards ?? [], spec.guestForwards ?? []));
  if (spec.display) args.push('-device', DISPLAY_DEVICE[spec.arch]);
  if (spec.qmpSocket !== undefined) args.push('-qmp', `unix:${qemuPath(spec.qmpSocket)},server=on,wait=off`);
  // The i6300esb is a PCI device: q35 and virt both have PCI. A watchdog timeout resets the
  // machine (QEMU's default action, spelled out); with -no-reboot the reset ends QEMU.
  args.push('-device', 'i6300esb', '-action', 'watchdog=reset');
  if (spec.noReboot) args.push('-no-reboot');
  if (spec.extraArgs) args.push(...spec.extraArgs);
  return { binary: QEMU_BINARY[spec.arch].binary, args };
}

/**
 * The NIC of a machine with forwards: QEMU user networking with `restrict=on` (the guest is cut
 * off from the host and the outside; hostfwd still connects in) and each forward bound to
 * 127.0.0.1 only. `romfile=` (none): no iPXE option ROM, so the firmware has no network boot to
 * try before the disk. virtio-net-pci on q35 and on virt alike (both have PCI), at a fixed slot
 * (0x10): QEMU places `-device`s before `-drive if=virtio` disks, so without it the NIC would take
 * the disk's slot 0x2 and move the disk to 0x3, where the boot option of OVMF's initialized
 * variable store (firmware/nvram.ts) no longer finds it; at 0x10 every other device keeps its slot.
 */
export function netArgs(forwards: readonly PortForward[], guestForwards: readonly GuestForward[] = []): string[] {
  checkForwards(forwards);
  checkGuestForwards(guestForwards);
  const fwd = forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join('');
  // guestfwd's cmd: runs once per connection of the guest, its stdin and stdout the connection:
  // busybox nc (a host tool already) pipes it to the host's port, so any number of connections
  // work (a chardev target would take one); restrict=on still holds for everything else
  const gfwd = guestForwards.map((g) => `,guestfwd=tcp:${GUEST_SERVICE_ADDRESS}:${g.guest}-cmd:busybox nc 127.0.0.1 ${g.host}`).join('');
  return ['-netdev', `user,id=net0,restrict=on${fwd}${gfwd}`, '-device', 'virtio-net-pci,netdev=net0,romfile=,addr=0x10'];
}

/** Where the guest reaches the host services of `guestForwards` (QEMU user networking's 10.0.2.0/24, not a QEMU service address). */
export const GUEST_SERVICE_ADDRESS = '10.0.2.100';

/** A host service the guest may reach: its connections to GUEST_SERVICE_ADDRESS:`guest` go to 127.0.0.1:`host`. */
export interface GuestForward {
  guest: number;
  host: number;
}

export function checkGuestForwards(list: readonly GuestForward[]): void {
  const seen = new Set<number>();
  for (const g of list) {
    for (const [what, p] of [['guest', g.guest], ['host', g.host]] as const) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BootTestError('ERR_USAGE', `guest forward ${g.guest}→127.0.0.1:${g.host}: the ${what} port must be a whole number from 1 to 65535`, { forward: g });
    }
    if (seen.has(g.guest)) throw new BootTestError('ERR_USAGE', `guest forward: guest port ${g.guest} is forwarded twice`, { port: g.guest });
    seen.add(g.guest);
  }
}
