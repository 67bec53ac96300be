import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { findRolePartition, inspectImage, readPartitionTable, toolEnv, type PartitionTable } from '@edgeimage/composer';
import { BootTestError } from './errors.js';
import { ubootEnvFlash } from './uboot-env.js';
import { factoryFilesOf } from './factory-files.js';
import { tamperImage, type TamperChange, type TamperOp } from './tamper.js';
import { SECURE_BOOT_FIRMWARE } from './firmware/secure-boot.js';
import { enrolledVarStore, writeVarStore, type SecureBootKeys } from './firmware/varstore.js';
import { initializedOvmfVars } from './firmware/nvram.js';
import { ARCHES, FIRMWARE_DIR_ENV, QEMU_BINARY, qemuCommand, resolveFirmware, type Accel, type Arch, type Firmware, type FirmwareFiles, type GuestForward } from './machine.js';
import { DEFAULT_FAILURES, QemuSession, type ConsoleLine, type FailurePattern } from './session.js';
import { checkForwards, checkHttpUrl, httpLabel, pollHttp, portsInUse, type HttpExpect, type PortForward } from './http-expect.js';
import { QmpClient } from './qmp.js';
import { checkScreen, describeColours, dominantColours, hexColour, placeCopy, readScreen, saveScreendump, screendump, screenLabel, type ScreenExpect } from './screen.js';

// The host tools' fixed environment: nothing of the build's own (EDGEIMAGE_KEY_PASSPHRASE) reaches a child.
const run = (cmd: string, args: readonly string[]) => promisify(execFile)(cmd, [...args], { env: toolEnv() });

/** The health check's line once the system is up; its group is the slot. The default marker. */
export const HEALTHY = /edgeimage-health: healthy on slot ([ab])/;
/** What the device's initramfs prints when the firmware says Secure Boot is on. */
export const SECURE_BOOT_ENABLED = /edgeimage-init: secure boot enabled/;

export interface DirectBoot {
  kernel: string;
  initrd?: string;
  /** The kernel command line (include the console: `console=ttyS0` on amd64, `console=ttyAMA0` on arm64). */
  append?: string;
}

export interface BootTestOptions {
  /** The disk image. Booted from a sparse copy unless `inPlace`. Optional only for a direct boot. */
  image?: string;
  /** The guest architecture; default: the image's model's. Refused when it contradicts the model. */
  arch?: Arch;
  /** Default: uefi on amd64; on arm64 uboot for an MBR image, uefi for GPT. */
  firmware?: Firmware;
  /** Firmware file paths (else the default file names in `firmwareDir`, else Debian's). */
  firmwareFiles?: FirmwareFiles;
  /** A folder holding the firmware files under Debian's names (default $EDGEIMAGE_FIRMWARE_DIR). */
  firmwareDir?: string;
  /**
   * UEFI Secure Boot with this variable store (the bytes of `enrolledVarStore`, or a file), or
   * with one enrolled with these keys for the guest's firmware: each boot gets its own copy (the
   * firmware writes it). The CODE becomes the secure-boot build unless `firmwareFiles.code` names
   * one. By default a firmware that starts nothing fails the boot at once: ERR_SECURE_BOOT_REFUSED
   * when it refused an image first (`Access Denied`), else ERR_NO_BOOTABLE_DEVICE.
   */
  secureBoot?: { vars: Uint8Array | string } | { keys: SecureBootKeys };
  /**
   * amd64 UEFI: the firmware's variable store at the start. `initialized` (default): as OVMF leaves
   * it after its first start on this machine, as a board's is after the factory; `blank`: Debian's
   * empty store, a board never started before (0.7-0.9 s more of OVMF under TCG).
   */
  nvram?: 'initialized' | 'blank';
  /**
   * U-Boot: an environment flash image (read-only second pflash). Default: Debian's default
   * environment with bootdelay=0 ({@link ubootEnvFlash}), so no 2 s countdown; `false`: none.
   */
  ubootEnvFlash?: string | false;
  /** U-Boot: the device tree QEMU gives the firmware (`-dtb`), e.g. the control dtb with the FIT key; default QEMU's own. */
  ubootDtb?: string;
  /** A boot without firmware: `-kernel/-initrd/-append` (same machine, CPU and disk). */
  direct?: DirectBoot;
  /** Console lines to see, in this order (default: [{@link HEALTHY}]). */
  expect?: readonly RegExp[];
  /** For the whole boot, from QEMU's start (default 120). */
  timeoutSeconds?: number;
  /** Grow the disk first: `+1G` (relative) or `3G` (absolute); K, M, G, T are powers of 1024. Never shrinks. */
  diskSize?: string;
  /** The console log (default: a new file in the temp folder, kept and reported). */
  log?: string;
  /** Default tcg (KVM hangs on some hosts). */
  accel?: Accel;
  /** Boot the image itself: its changes are kept (several boots in sequence). */
  inPlace?: boolean;
  /** `-no-reboot`: a guest reboot ends QEMU. By default a reboot continues in the same QEMU. */
  noReboot?: boolean;
  /** After the last marker, wait for QEMU to exit (the guest powers off) instead of killing it. */
  untilExit?: boolean;
  /**
   * After the last marker, watch the console this many more seconds before killing QEMU: the boot
   * fails if a `failOn` line shows or QEMU exits meanwhile (the system must stay up). Not with `untilExit`.
   */
  settleSeconds?: number;
  /** More raw disks after the main one (/dev/vdb, …), attached as they are (never copied). */
  extraDisks?: readonly string[];
  /**
   * A QEMU blkdebug rules file: I/O errors injected on the main disk where the rules say, to test
   * how the device fails (e.g. a slot write that hits a bad sector).
   */
  diskErrors?: string;
  /** Console lines that fail the boot (default: panic, initramfs FAILED, GRUB/U-Boot errors). */
  failOn?: readonly FailurePattern[];
  /**
   * The machine may restart this many times while the markers are awaited (a fallback watched as
   * one boot test). A restart is seen when the firmware's first line shows again ({@link bootBanner}):
   * a reboot of the guest, a watchdog reset, a panic with `panic=N`. The `failOn` lines of the
   * boots before the last allowed restart are reported in `boots`, not fatal; the boot fails when
   * the machine starts once more, or on a `failOn` line once the restarts are used up. Not with
   * `noReboot`. Unset: restarts are not watched (a reboot continues unseen in the same QEMU).
   */
  reboots?: number;
  /** The first line of a boot (default: the firmware's, {@link bootBanner}). */
  bootBanner?: BootBanner;
  /**
   * The guest must power off: the boot passes when QEMU exits on its own with status 0 once the
   * `expect` markers (default: none) were seen, within the timeout and the `reboots`. A system that
   * comes up and stays up fails on the timeout. Not with `noReboot` (a reboot would look the same).
   */
  expectPowerOff?: boolean;
  /**
   * Boot a tampered copy: these operations ({@link tamperImage}) change the copy before QEMU
   * starts, each change in the result's `tampered`. A refusal (a missing partition or file) is a
   * TamperError thrown before QEMU starts. Not with `inPlace`.
   */
  tamper?: readonly TamperOp[];
  /**
   * Guest TCP ports forwarded to 127.0.0.1 of the host (`{ host: 18080, guest: 8080 }`): the
   * machine gets a NIC on QEMU user networking that reaches nothing outside. A host port already
   * in use is ERR_PORT_IN_USE before QEMU starts. Without: no NIC.
   */
  forwards?: readonly PortForward[];
  /**
   * Services of the host the guest may reach (`{ guest: 80, host: 18081 }`): a connection of the
   * guest to GUEST_SERVICE_ADDRESS (10.0.2.100) on port `guest` goes to 127.0.0.1:`host` of the
   * host, and nothing else does (the NIC stays `restrict=on`): e.g. a store for network updates.
   */
  guestForwards?: readonly GuestForward[];
  /**
   * After the console markers: each URL (http://127.0.0.1 or localhost, on a forwarded host
   * port) polled about once a second until a 2xx answer whose body matches `pattern`, within the
   * boot's timeout; each answer becomes a marker (`GET URL …`, its seconds, `HTTP 200 body`).
   * Failing: ERR_HTTP_EXPECT naming the URL, the last status or error and the last body.
   */
  expectHttp?: readonly HttpExpect[];
  /** Guest RAM, MiB (default 512). */
  memoryMiB?: number;
  /**
   * A display device (QEMU's VGA on amd64, virtio-gpu on arm64) the guest draws on and QEMU can
   * screendump; nothing shows on the host. Default: on when `screenshot` or `expectScreen` is given.
   */
  display?: boolean;
  /**
   * Save the display as a PNG at `file` (QMP screendump): when a console line matches `after`, else
   * at the end of the boot. A boot that fails still gets one at its end (what the screen showed).
   * `after` never seen: the boot fails (ERR_SCREENSHOT_MARKER), the screenshot taken at the end.
   */
  screenshot?: { file: string; after?: RegExp };
  /**
   * After the console markers and HTTP answers: the display looked at about once a second until
   * each expectation holds in turn (a share of its pixels near a colour), within the boot's
   * timeout; each becomes a marker (its seconds: the screendump's). Failing: ERR_SCREEN_EXPECT with
   * the share seen last and the colours the screen showed most, the last screendump kept beside the log.
   */
  expectScreen?: readonly ScreenExpect[];
  /** Extra QEMU arguments, appended. */
  extraArgs?: readonly string[];
  /** Where the temporary copy goes (default the OS temp folder). */
  tmpDir?: string;
  /** Cancels the boot (Ctrl-C): QEMU is killed, temp files removed, the result is ERR_ABORTED. */
  signal?: AbortSignal;
  /** Each console line as it arrives. */
  onLine?: (line: ConsoleLine) => void;
}

export interface MarkerResult {
  /** The regular expression's source. */
  pattern: string;
  /** Seconds since QEMU started. */
  seconds: number;
  line: string;
  /** An HTTP expectation's answer (its `line` is `HTTP STATUS BODY…`). */
  http?: { url: string; status: number };
  /** A screen expectation's look: the colour and the share of the pixels near it. */
  screen?: { colour: string; share: number };
}

export interface BootTestResult {
  passed: boolean;
  /** The slot a marker captured (its `slot` group, else its first group, when `a` or `b`); the last one wins. */
  slot?: 'a' | 'b';
  /** The markers seen, in order. */
  markers: MarkerResult[];
  /** The markers expected (sources), seen or not. */
  expected: string[];
  log: string;
  /** Failed: what happened (names the cause). */
  reason?: string;
  /** Failed: the BootTestError code. */
  code?: string;
  /** Failed: the last lines of the log. */
  tail?: string;
  error?: BootTestError;
  arch: Arch;
  firmware: Firmware | 'direct';
  image?: string;
  /** The QEMU command line (its temp paths are gone once the boot is over). */
  command: { binary: string; args: string[] };
  /** From QEMU's start to the end of the boot. */
  seconds: number;
  /** With `reboots` or `expectPowerOff`: each start of the machine seen, in order (the first is QEMU's start). */
  boots?: BootRecord[];
  /** QEMU exited on its own with status 0 (the guest powered off) while the boot was watched. */
  poweredOff?: boolean;
  /** With `tamper`: what each operation changed in the booted copy. */
  tampered?: TamperChange[];
  /** With `screenshot`: the PNG written and when its screendump was taken (seconds since QEMU started). */
  screenshot?: { file: string; seconds: number };
}

/** One start of the machine within a boot test. */
export interface BootRecord {
  /** 0 for QEMU's start, then 1, 2, … per restart. */
  index: number;
  /** When it started, seconds since QEMU started (its first line; 0 for the first boot). */
  seconds: number;
  /** Its first line (the firmware's banner), once seen. */
  banner?: string;
  /** The first `failOn` line of this boot: its reason. */
  failed?: string;
  /** That failure's code (ERR_INITRAMFS_FAILED, ERR_BOOTLOADER, …). */
  code?: string;
  /** That failure's console line. */
  line?: string;
}

/**
 * The line a firmware prints first when the machine starts; seen a second time, the machine
 * restarted. `notAfter`: the line starts a boot only when the line before it does not match this
 * (OVMF prints no banner: its first line is the boot manager's `BdsDxe: loading Boot0001 …`, and
 * it prints several `BdsDxe:` lines in a row when one boot option fails and the next is tried).
 */
export interface BootBanner {
  pattern: RegExp;
  notAfter?: RegExp;
}

/** The first line of each firmware, as Debian 12's builds print it on the serial console. */
export const BOOT_BANNERS = {
  /** amd64 UEFI (OVMF): no banner; its boot manager's first line. */
  ovmf: { pattern: /^BdsDxe: loading Boot[0-9A-Fa-f]{4} /, notAfter: /^BdsDxe: / },
  /** arm64 UEFI (AAVMF): `UEFI firmware (version  built at 13:10:49 on Nov  5 2024)`. */
  aavmf: { pattern: /^UEFI firmware \(version / },
  /** U-Boot: `U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)`. */
  uboot: { pattern: /^U-Boot \d{4}\.\d{2}\S* \(/ },
  /** amd64 direct boots start in SeaBIOS: `SeaBIOS (version 1.16.2-debian-1.16.2-1)`. */
  seabios: { pattern: /^SeaBIOS \(version / },
  /** arm64 direct boots have no firmware: the kernel's first line (not printed with `quiet`). */
  linuxArm64: { pattern: /^\[ *\d+\.\d+\] Booting Linux on physical CPU / },
} as const satisfies Record<string, BootBanner>;

/** The banner that starts a boot of this machine. */
export function bootBanner(arch: Arch, firmware: Firmware | 'direct'): BootBanner {
  if (firmware === 'uboot') return BOOT_BANNERS.uboot;
  if (firmware === 'uefi') return arch === 'amd64' ? BOOT_BANNERS.ovmf : BOOT_BANNERS.aavmf;
  return arch === 'amd64' ? BOOT_BANNERS.seabios : BOOT_BANNERS.linuxArm64;
}

/** At most this many restarts may be allowed: each is a full boot under TCG. */
export const MAX_REBOOTS = 100;

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** The new size of a disk of `current` bytes: `+1G` grows it by 1 GiB, `3G` makes it 3 GiB (rounded up to 512 bytes). Never smaller. */
export function parseDiskSize(spec: string, current: number): number {
  const m = /^\s*(\+?)(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(spec);
  if (!m) throw new BootTestError('ERR_DISK_SIZE', `disk size ${JSON.stringify(spec)}: expected a size such as 3G (absolute) or +1G (grow by), in bytes or K/M/G/T`, { spec });
  const bytes = Math.ceil((Number(m[2]) * UNITS[m[3]!.toUpperCase()]!) / 512) * 512;
  const size = m[1] ? current + bytes : bytes;
  if (size < current) throw new BootTestError('ERR_DISK_SIZE', `disk size ${spec} is ${size} bytes, smaller than the image (${current} bytes): a disk is never shrunk`, { spec, size, current });
  return size;
}

function hostArch(): Arch | undefined {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

function onPath(binary: string): boolean {
  for (const d of (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter)) {
    try {
      accessSync(join(d, binary), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

function mustExist(path: string, what: string): void {
  if (!existsSync(path)) throw new BootTestError('ERR_IMAGE_OPEN', `${what} ${path} does not exist`, { path });
}

interface ImageFacts {
  arch?: Arch;
  table?: PartitionTable;
}

/** The partition table and the model's architecture; the checks a firmware boot needs. */
async function imageFacts(image: string, direct: boolean, wantArch: Arch | undefined): Promise<ImageFacts> {
  let table: PartitionTable;
  try {
    table = readPartitionTable(image);
  } catch (e) {
    if (direct) return {};
    throw e;
  }
  if (!direct && !findRolePartition(image, table, 'system-boot')) {
    throw new BootTestError('ERR_NO_BOOT_PARTITION', `${image}: no system-boot partition (GPT partition named system-boot, or on MBR a filesystem labelled SYSTEM-BOOT): the firmware has nothing to boot`, { image });
  }
  let models: { slot: string; architecture: string }[] = [];
  let why = 'no slot holds a model';
  let active: string | undefined;
  try {
    const inspection = await inspectImage(image);
    models = inspection.slots.filter((s) => s.model).map((s) => ({ slot: s.slot, architecture: s.model!.architecture }));
    active = inspection.bootEnvironment?.vars['edge_slot'];
  } catch (e) {
    why = `its model cannot be read: ${(e as Error).message}`;
  }
  const model = models.find((m) => m.slot === active) ?? models[0];
  if (!model) {
    if (wantArch || direct) return { table, arch: wantArch };
    throw new BootTestError('ERR_ARCH_UNKNOWN', `${image}: cannot tell the architecture (${why}); give it (--arch amd64|arm64)`, { image });
  }
  if (!(ARCHES as readonly string[]).includes(model.architecture)) {
    throw new BootTestError('ERR_ARCH_UNKNOWN', `${image}: the model of slot ${model.slot} is for ${model.architecture || 'no architecture'}; boot-test boots ${ARCHES.join(' and ')}`, { image, arch: model.architecture });
  }
  const arch = model.architecture as Arch;
  if (wantArch && wantArch !== arch) {
    throw new BootTestError('ERR_ARCH_MISMATCH', `${image} is an ${arch} image (the model of slot ${model.slot}), but ${wantArch} was asked for`, { image, arch, requested: wantArch });
  }
  return { table, arch };
}

let logCounter = 0;

/**
 * OVMF's and AAVMF's line once no boot option could be started: they then wait for a key,
 * forever, so under Secure Boot the boot ends here at once. By itself it says only that nothing
 * started (no disk, no EFI System Partition, no bootloader on it); {@link secureBootRefusal}
 * makes it ERR_SECURE_BOOT_REFUSED when the firmware refused an image first.
 */
export const NO_BOOTABLE_DEVICE: FailurePattern = {
  pattern: /BdsDxe: No bootable option or device was found\.?/,
  code: 'ERR_NO_BOOTABLE_DEVICE',
  describe: (m) => `the firmware found nothing to start ("${m[0]}"): no boot option loaded a bootloader (no disk, or no EFI System Partition with \\EFI\\BOOT\\BOOT<arch>.EFI on it), and Secure Boot refused no image from a disk`,
};

/**
 * What OVMF and AAVMF print for a boot option's image that Secure Boot refused: `BdsDxe: failed to
 * load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0): Access Denied`. Debian's
 * secboot OVMF also refuses its own EFI shell (`… from Fv(…)/FvFile(…): Security Violation`) on
 * every boot that gets that far, so an image from a firmware volume is no refusal of the disk's.
 */
const SECURE_BOOT_DENIAL = /^BdsDxe: failed to (?:load|start) Boot[0-9A-Fa-f]{4} "[^"]{0,200}" from (?!Fv\().{1,1000}: (?:Access Denied|Security Violation)$/;
/** Console lines looked back through for that refusal: the firmware prints a few per boot option. */
export const DENIAL_LOOKBACK_LINES = 200;
const quote = (text: string) => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);

/**
 * Under Secure Boot, ERR_NO_BOOTABLE_DEVICE is the firmware's refusal only when an `Access Denied`
 * or `Security Violation` line for an image from a disk came before it (`before`: the console lines before the failure,
 * the last {@link DENIAL_LOOKBACK_LINES} of them looked at): then ERR_SECURE_BOOT_REFUSED quoting
 * that line. Otherwise the error stands: blaming the signatures of a disk that holds nothing to
 * boot would send the user after keys.
 */
export function secureBootRefusal(e: BootTestError, before: readonly ConsoleLine[]): BootTestError {
  if (e.code !== NO_BOOTABLE_DEVICE.code) return e;
  for (let i = before.length - 1; i >= Math.max(0, before.length - DENIAL_LOOKBACK_LINES); i--) {
    const denial = before[i]!;
    if (!SECURE_BOOT_DENIAL.test(denial.text)) continue;
    const at = typeof e.context['seconds'] === 'number' ? ` (at ${e.context['seconds'].toFixed(3)} s)` : '';
    return new BootTestError('ERR_SECURE_BOOT_REFUSED', `Secure Boot: the firmware refused the bootloader (${quote(denial.text)} at ${denial.seconds.toFixed(3)} s), then found nothing else to start: it is not signed by a key in db${at}`, { ...e.context, denial: denial.text });
  }
  return e;
}

/** Watches the console for `seconds`: QEMU exiting or a failure line meanwhile is a BootTestError. */
async function settle(session: QemuSession, seconds: number, waitOpts: { failOn?: readonly FailurePattern[] }): Promise<void> {
  let status;
  try {
    status = await session.waitForExit(seconds * 1000, waitOpts);
  } catch (e) {
    if (e instanceof BootTestError && e.code === 'ERR_BOOT_TIMEOUT') return; // still up: settled
    throw e;
  }
  const how = status.code !== null ? `with status ${status.code}` : status.signal ? `on signal ${status.signal}` : '';
  throw new BootTestError('ERR_QEMU_EXITED', `QEMU exited ${how} within ${seconds} s after the last marker: the guest rebooted or powered off where it should have stayed up`, { exitCode: status.code, signal: status.signal, stderr: status.stderr, tail: session.tail() });
}

/** The most of an HTTP answer's body a marker's line keeps. */
const HTTP_LINE_BODY = 200;

/**
 * Runs `work` while the console is watched: a failure line or QEMU's exit meanwhile aborts the
 * signal `work` gets, with that error as its reason (`what`: what was being waited for).
 */
async function whileWatching<T>(session: QemuSession, failOn: readonly FailurePattern[], what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  let watching = true;
  // short waits, so that the console is free again soon after the work (one waiter at a time)
  const watcher = (async () => {
    while (watching) {
      try {
        const status = await session.waitForExit(200, { failOn });
        const how = status.code !== null ? `with status ${status.code}` : status.signal ? `on signal ${status.signal}` : '';
        stop.abort(new BootTestError('ERR_QEMU_EXITED', `QEMU exited ${how} while ${what}: the guest rebooted or powered off`, { exitCode: status.code, signal: status.signal, stderr: status.stderr, tail: session.tail() }));
        return;
      } catch (e) {
        if (e instanceof BootTestError && e.code === 'ERR_BOOT_TIMEOUT') continue;
        stop.abort(e);
        return;
      }
    }
  })();
  try {
    return await work(stop.signal);
  } catch (e) {
    // the work's own error may be a consequence of what the watcher sees (QMP's socket closes as
    // QEMU exits; the exit status lags the exit by up to a second): the cause is the better error
    if (!stop.signal.aborted && e instanceof BootTestError && e.code === 'ERR_QMP') {
      const until = performance.now() + 1500;
      while (!stop.signal.aborted && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
    }
    throw stop.signal.aborted ? stop.signal.reason : e;
  } finally {
    watching = false;
    await watcher;
  }
}

/**
 * Each HTTP expectation in turn, polled until its answer or the deadline, while the console is
 * watched: a failure line or QEMU's exit meanwhile ends the polling with that error.
 */
async function expectHttpAnswers(session: QemuSession, list: readonly HttpExpect[], deadline: number, markers: MarkerResult[], failOn: readonly FailurePattern[]): Promise<void> {
  if (!list.length) return;
  await whileWatching(session, failOn, 'waiting for an HTTP answer', async (signal) => {
    for (const h of list) {
      const a = await pollHttp(h, { deadline, signal });
      const body = a.body.replace(/\s+/g, ' ').trim();
      markers.push({ pattern: httpLabel(h), seconds: session.elapsed(), line: `HTTP ${a.status} ${body.length > HTTP_LINE_BODY ? `${body.slice(0, HTTP_LINE_BODY)}…` : body}`.trim(), http: { url: a.url, status: a.status } });
    }
  });
}

/** How often the display is looked at while a screen expectation waits. */
export const SCREEN_INTERVAL_MS = 1000;

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Each screen expectation in turn: a screendump about once a second until enough of its pixels
 * are near the colour, or the deadline (ERR_SCREEN_EXPECT, the last screendump kept at `keepLast`),
 * while the console is watched.
 */
async function expectScreens(session: QemuSession, qmp: Promise<QmpClient>, list: readonly ScreenExpect[], deadline: number, markers: MarkerResult[], failOn: readonly FailurePattern[], scratch: string, keepLast: string): Promise<void> {
  if (!list.length) return;
  const client = await qmp;
  await whileWatching(session, failOn, 'waiting for the screen', async (signal) => {
    for (const e of list) {
      const started = session.elapsed();
      for (;;) {
        if (signal.aborted) throw signal.reason;
        let at = session.elapsed();
        try {
          await screendump(client, scratch, () => (at = session.elapsed()));
        } catch (err) {
          // a console without a surface yet (a mode switch, a device reset) is no frame yet; a
          // closed connection or a QEMU that cannot write PNG is the end
          if (!(err instanceof BootTestError) || err.context['qmpClass'] !== 'GenericError' || /PNG screendumps/.test(err.message)) throw err;
          if (performance.now() + SCREEN_INTERVAL_MS >= deadline) throw new BootTestError('ERR_SCREEN_EXPECT', `the screen never showed ${screenLabel(e)}: QEMU could not take a screendump until the end (${err.message})`, { tail: session.tail() });
          await pause(SCREEN_INTERVAL_MS, signal);
          continue;
        }
        const screen = readScreen(scratch);
        const c = checkScreen(screen, e);
        if (c.passed) {
          markers.push({ pattern: screenLabel(e), seconds: at, line: `screen: ${c.line}`, screen: { colour: hexColour(e.colour), share: Number(c.share.toFixed(4)) } });
          break;
        }
        if (performance.now() + SCREEN_INTERVAL_MS >= deadline) {
          let kept: string;
          try {
            placeCopy(scratch, keepLast);
            kept = `kept as ${keepLast}`;
          } catch (err) {
            kept = `it could not be kept as ${keepLast}: ${(err as Error).message}`;
          }
          throw new BootTestError('ERR_SCREEN_EXPECT', `the screen never showed ${screenLabel(e)} in ${(at - started).toFixed(0)} s of looking: the last screendump (at ${at.toFixed(1)} s) had ${c.line}; it showed mostly ${describeColours(dominantColours(screen))} (${kept})`, { share: c.share, ...(kept.startsWith('kept') ? { screenshot: keepLast } : {}), tail: session.tail() });
        }
        await pause(SCREEN_INTERVAL_MS, signal);
      }
    }
  });
}

/** What {@link watchBoots} follows; `deadline` is on `performance.now()`'s clock. */
export interface WatchSpec {
  expect: readonly RegExp[];
  failOn: readonly FailurePattern[];
  reboots: number;
  banner: BootBanner;
  deadline: number;
  /** After the markers, wait for QEMU to exit on its own with status 0 (the guest powers off). */
  untilPowerOff: boolean;
}

/** What {@link watchBoots} has seen so far; filled in as it goes, so a failure still has it. */
export interface WatchState {
  markers: MarkerResult[];
  boots: BootRecord[];
  slot?: 'a' | 'b';
  poweredOff?: boolean;
}

const ANY_LINE = /^/;
const describeBoots = (boots: readonly BootRecord[]): string => {
  const failed = boots.filter((b) => b.failed);
  return failed.length ? `; earlier boots: ${failed.map((b) => `boot ${b.index + 1} failed: ${b.failed}`).join('; ')}` : '';
};

/**
 * Follows the console through the machine's restarts: markers in order (across boots), the
 * `failOn` lines of the first `reboots` boots recorded in `state.boots`, a failure once the
 * restarts are used up or when the machine starts once more (ERR_TOO_MANY_REBOOTS), and QEMU's
 * exit (ERR_POWERED_OFF with status 0, or the success `untilPowerOff` waits for).
 */
export async function watchBoots(session: QemuSession, spec: WatchSpec, state: WatchState): Promise<void> {
  const { expect: expectList, failOn, reboots, banner } = spec;
  if (state.boots.length === 0) state.boots.push({ index: 0, seconds: 0 });
  let previous = session.cursor > 0 ? session.lines[session.cursor - 1]?.text : undefined;
  const awaited = () => (state.markers.length < expectList.length ? String(expectList[state.markers.length]) : 'the guest powered off');
  for (;;) {
    if (state.markers.length === expectList.length && !spec.untilPowerOff) return;
    let line: ConsoleLine;
    try {
      line = (await session.waitFor(ANY_LINE, spec.deadline - performance.now(), { failOn: [] })).line;
    } catch (e) {
      if (!(e instanceof BootTestError)) throw e;
      const status = session.exitStatus;
      if (e.code === 'ERR_QEMU_EXITED' && status?.code === 0) {
        state.poweredOff = true;
        if (spec.untilPowerOff && state.markers.length === expectList.length) return;
        const used = state.boots.length - 1;
        throw new BootTestError('ERR_POWERED_OFF', `the guest powered off (QEMU exited with status 0) after ${used} reboot${used === 1 ? '' : 's'}, before ${awaited()} appeared${describeBoots(state.boots)}`, { ...e.context, boots: state.boots });
      }
      if (e.code === 'ERR_QEMU_EXITED') throw new BootTestError(e.code, e.message.replace(`before ${ANY_LINE} appeared`, `before ${awaited()} appeared`), { ...e.context, boots: state.boots });
      if (e.code === 'ERR_BOOT_TIMEOUT') {
        throw new BootTestError(e.code, `${e.message.replace(/ waiting until .*$/s, '')} waiting until ${state.markers.length < expectList.length ? `${awaited()} appeared` : 'the guest powered off'}${describeBoots(state.boots)}`, { ...e.context, pattern: awaited(), boots: state.boots });
      }
      throw e;
    }
    const text = line.text;
    const starts = banner.pattern.test(text) && !(banner.notAfter && previous !== undefined && banner.notAfter.test(previous));
    previous = text;
    if (starts) {
      if (state.boots.length === 1 && state.boots[0]!.banner === undefined) {
        state.boots[0]!.banner = text;
      } else if (state.boots.length - 1 >= reboots) {
        throw new BootTestError('ERR_TOO_MANY_REBOOTS', `the machine started a ${ordinal(state.boots.length + 1)} time at ${line.seconds.toFixed(3)} s (${quote(text)}) where ${reboots} reboot${reboots === 1 ? ' was' : 's were'} allowed${describeBoots(state.boots)}`, { line: text, seconds: line.seconds, reboots, boots: state.boots, tail: session.tail() });
      } else {
        state.boots.push({ index: state.boots.length, seconds: line.seconds, banner: text });
      }
    }
    const failure = firstFailure(text, failOn);
    if (failure) {
      const reason = failure.f.describe(failure.m);
      const boot = state.boots[state.boots.length - 1]!;
      // (a firmware that found nothing to start waits for a key forever: no restart comes)
      if (state.boots.length - 1 >= reboots || failure.f.code === NO_BOOTABLE_DEVICE.code) {
        const message = `${reason} (at ${line.seconds.toFixed(3)} s)${reboots > 0 ? ` on boot ${boot.index + 1}${state.boots.length - 1 >= reboots ? `, after ${reboots} reboot${reboots === 1 ? '' : 's'}` : ''}` : ''}${describeBoots(state.boots)}`;
        // the boot that ended the test is reported with its line too
        if (boot.failed === undefined) Object.assign(boot, { failed: reason, code: failure.f.code, line: text });
        throw new BootTestError(failure.f.code, message, { line: text, seconds: line.seconds, detail: failure.m[1], boots: state.boots, tail: session.tail() });
      }
      if (boot.failed === undefined) Object.assign(boot, { failed: reason, code: failure.f.code, line: text });
      continue;
    }
    const pattern = expectList[state.markers.length];
    if (!pattern) continue;
    const m = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')).exec(text);
    if (!m) continue;
    state.markers.push({ pattern: pattern.source, seconds: line.seconds, line: text });
    const s = m.groups?.['slot'] ?? m[1];
    if (s === 'a' || s === 'b') state.slot = s;
  }
}

function firstFailure(text: string, failOn: readonly FailurePattern[]): { f: FailurePattern; m: RegExpExecArray } | undefined {
  for (const f of failOn) {
    const m = f.pattern.exec(text);
    if (m) return { f, m };
  }
  return undefined;
}

const ordinal = (n: number): string => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;

/**
 * Boots an image under QEMU and waits for console markers, in order.
 *
 * Refusals before QEMU starts throw a {@link BootTestError} (ERR_ARCH_MISMATCH,
 * ERR_FIRMWARE_MISSING, ERR_NO_BOOT_PARTITION, ERR_DISK_SIZE, …). A boot that fails (timeout,
 * panic, initramfs or bootloader error, QEMU exiting) resolves with `passed: false`, the
 * `reason`, the `code` and the log's `tail`. QEMU is always killed and the temporary copy removed.
 *
 * ```ts
 * const r = await bootTest({ image, expect: [/hello-kiosk .* up on slot a/, HEALTHY], timeoutSeconds: 120 });
 * expect(r.passed).toBe(true);
 * ```
 */
export async function bootTest(opts: BootTestOptions): Promise<BootTestResult> {
  // Under Secure Boot the device must also say the firmware enforces it, not only come up.
  const expectList = opts.expect ?? (opts.expectPowerOff ? [] : opts.secureBoot ? [SECURE_BOOT_ENABLED, HEALTHY] : [HEALTHY]);
  // Restarts are followed only when asked for: otherwise the boot is watched exactly as before.
  const watch = opts.reboots !== undefined || opts.expectPowerOff === true;
  const timeoutMs = (opts.timeoutSeconds ?? 120) * 1000;
  const direct = opts.direct;
  if (!direct && opts.image === undefined) throw new BootTestError('ERR_USAGE', 'an image is needed (only a direct boot may go without a disk)');
  if (opts.image !== undefined) mustExist(opts.image, 'image');
  for (const d of opts.extraDisks ?? []) mustExist(d, 'extra disk');
  if (opts.diskErrors !== undefined) mustExist(opts.diskErrors, 'disk error rules');
  if ((opts.untilExit || opts.expectPowerOff) && opts.settleSeconds !== undefined) throw new BootTestError('ERR_USAGE', 'a boot either waits for QEMU to exit (untilExit, expectPowerOff) or settles with the system up (settleSeconds), not both');
  if (opts.reboots !== undefined && !(Number.isInteger(opts.reboots) && opts.reboots >= 0 && opts.reboots <= MAX_REBOOTS)) throw new BootTestError('ERR_USAGE', `reboots: expected a whole number from 0 to ${MAX_REBOOTS}, found ${opts.reboots}`, { reboots: opts.reboots });
  if (opts.tamper?.length && (opts.inPlace || opts.image === undefined)) throw new BootTestError('ERR_USAGE', opts.inPlace ? 'a tampered boot changes a copy of the image, not the image itself: not with inPlace' : 'tampering needs an image');
  if (opts.noReboot && (opts.reboots || opts.expectPowerOff)) throw new BootTestError('ERR_USAGE', `noReboot ends QEMU on the guest's reboot, so ${opts.reboots ? 'no reboot can be watched (reboots)' : 'a reboot would look like the power-off expectPowerOff waits for'}`);
  const forwards = opts.forwards ?? [];
  checkForwards(forwards);
  const httpList = opts.expectHttp ?? [];
  for (const h of httpList) {
    const port = Number(checkHttpUrl(h.url).port);
    if (!forwards.some((f) => f.host === port)) throw new BootTestError('ERR_USAGE', `expect-http ${h.url}: port ${port} is not a forwarded host port (${forwards.length ? `forwards: ${forwards.map((f) => `${f.host}:${f.guest}`).join(', ')}` : 'no forwards'}); the check reaches the guest through a forward`, { url: h.url });
  }
  if (httpList.length && (opts.untilExit || opts.expectPowerOff)) throw new BootTestError('ERR_USAGE', 'HTTP expectations need the guest up: not with untilExit or expectPowerOff');
  const screenList = opts.expectScreen ?? [];
  if (screenList.length && (opts.untilExit || opts.expectPowerOff)) throw new BootTestError('ERR_USAGE', 'screen expectations need the guest up: not with untilExit or expectPowerOff');
  const wantsScreen = opts.screenshot !== undefined || screenList.length > 0;
  if (wantsScreen && opts.display === false) throw new BootTestError('ERR_USAGE', `${opts.screenshot ? 'a screenshot' : 'a screen expectation'} needs the display: not with display false`);
  const display = opts.display ?? wantsScreen;
  if (opts.screenshot) {
    checkScreenshotPath(opts.screenshot.file);
    // after QEMU exited there is no screen to take: only a line seen while it ran can say when
    if (!opts.screenshot.after && (opts.untilExit || opts.expectPowerOff)) throw new BootTestError('ERR_USAGE', 'a screenshot at the end of the boot needs the guest up: with untilExit or expectPowerOff only with a console line to take it at (screenshot.after)');
  }
  for (const e of screenList) checkScreenExpect(e);
  if (direct) {
    mustExist(direct.kernel, 'kernel');
    if (direct.initrd !== undefined) mustExist(direct.initrd, 'initrd');
  }
  // A verified U-Boot image boots with the flash and device tree its build wrote next to it.
  if (opts.image !== undefined && !opts.direct && opts.firmware !== 'uefi') {
    const f = factoryFilesOf(opts.image);
    opts = { ...opts, ...(opts.ubootEnvFlash === undefined && f.ubootEnv ? { ubootEnvFlash: f.ubootEnv } : {}), ...(opts.ubootDtb === undefined && f.ubootDtb ? { ubootDtb: f.ubootDtb } : {}) };
  }
  if (typeof opts.ubootEnvFlash === 'string') mustExist(opts.ubootEnvFlash, 'U-Boot environment flash');
  if (opts.ubootDtb !== undefined) mustExist(opts.ubootDtb, 'U-Boot device tree');
  const facts = opts.image !== undefined ? await imageFacts(opts.image, !!direct, opts.arch) : { arch: opts.arch };
  const arch = facts.arch ?? opts.arch ?? hostArch() ?? 'amd64';
  const firmware: Firmware | 'direct' = direct ? 'direct' : opts.firmware ?? (arch === 'amd64' ? 'uefi' : facts.table?.kind === 'mbr' ? 'uboot' : 'uefi');
  const fwEnv = opts.firmwareDir !== undefined ? { ...process.env, [FIRMWARE_DIR_ENV]: opts.firmwareDir } : process.env;
  let fwFiles = opts.firmwareFiles;
  if (opts.secureBoot) {
    if (firmware !== 'uefi') throw new BootTestError('ERR_USAGE', `Secure Boot needs UEFI firmware, not ${firmware}`, { firmware });
    const code = SECURE_BOOT_FIRMWARE[arch].code;
    const dir = fwEnv[FIRMWARE_DIR_ENV] || undefined;
    const vars = 'vars' in opts.secureBoot && typeof opts.secureBoot.vars === 'string' ? { vars: opts.secureBoot.vars } : {};
    fwFiles = { code: dir ? join(dir, basename(code)) : code, ...vars, ...opts.firmwareFiles };
  }
  const fw = firmware === 'direct' ? undefined : resolveFirmware(arch, firmware, fwFiles, fwEnv);
  const accel = opts.accel ?? 'tcg';
  if (accel === 'kvm' && hostArch() !== arch) throw new BootTestError('ERR_ACCEL', `KVM runs only guests of the host's architecture (${process.arch}), not ${arch}: use tcg`, { arch, accel });
  const q = QEMU_BINARY[arch];
  if (!onPath(q.binary)) throw new BootTestError('ERR_QEMU_MISSING', `${q.binary} is not installed (Debian package ${q.package})`, { binary: q.binary, package: q.package });
  let newSize: number | undefined;
  if (opts.diskSize !== undefined) {
    if (opts.image === undefined) throw new BootTestError('ERR_DISK_SIZE', 'a disk size needs an image');
    newSize = parseDiskSize(opts.diskSize, statSync(opts.image).size);
  }
  const busy = await portsInUse(forwards.map((f) => f.host));
  if (busy.length) {
    const b = busy[0]!;
    const f = forwards.find((x) => x.host === b.port)!;
    throw new BootTestError('ERR_PORT_IN_USE', `host port ${b.port} (forward ${f.host}:${f.guest}) cannot be bound on 127.0.0.1 (${b.error}): something else listens on it; choose another HOST_PORT`, { port: b.port, error: b.error, ports: busy.map((x) => x.port) });
  }

  const work = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'edgeimage-boot-'));
  const log = opts.log ?? join(opts.tmpDir ?? tmpdir(), `edgeimage-boot-test-${process.pid}-${Date.now()}-${++logCounter}.log`);
  let session: QemuSession | undefined;
  const markers: MarkerResult[] = [];
  const watched: WatchState = { markers, boots: [] };
  let tampered: { tampered?: TamperChange[] } = {};
  let slot: 'a' | 'b' | undefined;
  let command = { binary: q.binary, args: [] as string[] };
  const expected = [...expectList.map((p) => p.source), ...httpList.map(httpLabel), ...screenList.map(screenLabel)];
  // QMP only when the screen is looked at; its socket's path must fit sun_path (108 bytes), else
  // a short folder of /tmp's
  let qmpDir: string | undefined;
  let qmpSocket: string | undefined;
  let qmp: Promise<QmpClient> | undefined;
  let shot: Promise<{ file: string; seconds: number }> | undefined;
  let shotError: BootTestError | undefined;
  const takeShot = () => {
    const file = opts.screenshot!.file;
    shot = qmp!.then((c) => saveScreendump(c, work, file, () => session!.elapsed())).then((seconds) => ({ file, seconds }));
    shot.catch((e: unknown) => (shotError = new BootTestError('ERR_SCREENSHOT', `the screenshot ${file} could not be taken: ${(e as Error).message}`, { file, cause: e instanceof BootTestError ? e.code : undefined })));
  };
  const after = opts.screenshot?.after ? new RegExp(opts.screenshot.after.source, opts.screenshot.after.flags.replace(/[gy]/g, '')) : undefined;
  const onLine = after
    ? (l: ConsoleLine) => {
        if (!shot && qmp && after.test(l.text)) takeShot();
        opts.onLine?.(l);
      }
    : opts.onLine;
  /** The screenshot, taken now unless its line came; a failure of it is the boot's. */
  const finishShot = async (): Promise<{ screenshot?: { file: string; seconds: number } }> => {
    if (!opts.screenshot) return {};
    const missed = after !== undefined && !shot;
    if (missed && session!.exitStatus) throw new BootTestError('ERR_SCREENSHOT_MARKER', `no console line matched the screenshot's ${after} while QEMU ran: no screenshot was taken`, { tail: session!.tail() });
    if (!shot) takeShot();
    const taken = await shot!.catch(() => undefined);
    if (shotError) throw shotError;
    if (missed) throw new BootTestError('ERR_SCREENSHOT_MARKER', `no console line matched the screenshot's ${after} before the boot ended; the screenshot ${taken!.file} was taken at its end (${taken!.seconds.toFixed(1)} s) instead`, { file: taken!.file, tail: session!.tail() });
    return { screenshot: taken! };
  };
  const qmpGiveUp = new AbortController();
  try {
    if (wantsScreen) {
      qmpDir = Buffer.byteLength(join(work, 'qmp.sock')) < 100 ? work : mkdtempSync(join('/tmp', 'eiq-'));
      qmpSocket = join(qmpDir, 'qmp.sock');
    }
    let disk = opts.image;
    if (disk !== undefined && !opts.inPlace) {
      const copy = join(work, basename(disk));
      if (opts.tamper?.length) tampered = { tampered: (await tamperImage(disk, copy, opts.tamper)).changes };
      else await run('cp', ['--sparse=always', disk, copy]);
      disk = copy;
    }
    if (disk !== undefined && newSize !== undefined) truncateSync(disk, newSize);
    let files = fw;
    if (fw?.vars !== undefined) {
      const vars = join(work, basename(fw.vars));
      const sb = opts.secureBoot;
      if (sb && 'keys' in sb) writeVarStore(vars, enrolledVarStore(SECURE_BOOT_FIRMWARE[arch].store, sb.keys));
      else if (sb && typeof sb.vars !== 'string') writeVarStore(vars, sb.vars);
      else {
        // OVMF's store as a started board has it (firmware/nvram.ts), unless a test asks for the blank one.
        const start = arch === 'amd64' && !sb && opts.nvram !== 'blank' && opts.firmwareFiles?.vars === undefined ? await initializedOvmfVars(fw.code!, fw.vars, { memoryMiB: opts.memoryMiB }) : undefined;
        await run('cp', ['--sparse=always', start ?? fw.vars, vars]);
      }
      files = { ...fw, vars };
    }
    const cmd = qemuCommand({
      arch,
      accel,
      memoryMiB: opts.memoryMiB,
      disk,
      diskErrors: opts.diskErrors,
      extraDisks: opts.extraDisks,
      firmware: firmware !== 'direct' ? { kind: firmware, files: files! } : undefined,
      direct,
      noReboot: opts.noReboot,
      secureBoot: opts.secureBoot !== undefined,
      ubootEnvFlash: firmware === 'uboot' && opts.ubootEnvFlash !== false ? (opts.ubootEnvFlash ?? ubootEnvFlash(files!.bios!)) : undefined,
      ubootDtb: opts.ubootDtb,
      forwards,
      guestForwards: opts.guestForwards,
      display,
      qmpSocket,
      extraArgs: opts.extraArgs,
    });
    command = cmd;
    if (opts.signal?.aborted) throw new BootTestError('ERR_ABORTED', 'the boot was cancelled');
    session = QemuSession.start(cmd, { log, signal: opts.signal, onLine });
    const deadline = performance.now() + timeoutMs;
    if (qmpSocket !== undefined) {
      qmp = QmpClient.connect(qmpSocket, 15_000, qmpGiveUp.signal);
      qmp.catch(() => undefined);
    }
    const scratch = join(work, 'screen.png');
    const keepLast = log.replace(/\.log$/, '') + '.screen.png';
    const waitOpts = { failOn: opts.failOn ?? (opts.secureBoot ? [...DEFAULT_FAILURES, NO_BOOTABLE_DEVICE] : undefined) };
    if (watch) {
      const banner = opts.bootBanner ?? bootBanner(arch, firmware);
      await watchBoots(session, { expect: expectList, failOn: waitOpts.failOn ?? DEFAULT_FAILURES, reboots: opts.reboots ?? 0, banner, deadline, untilPowerOff: opts.expectPowerOff === true || opts.untilExit === true }, watched);
      slot = watched.slot;
      await expectHttpAnswers(session, httpList, deadline, markers, waitOpts.failOn ?? DEFAULT_FAILURES);
      await expectScreens(session, qmp!, screenList, deadline, markers, waitOpts.failOn ?? DEFAULT_FAILURES, scratch, keepLast);
      if (opts.settleSeconds !== undefined && opts.settleSeconds > 0) await settle(session, opts.settleSeconds, waitOpts);
      const screenshot = await finishShot();
      return { passed: true, slot, markers, expected, log, arch, firmware, image: opts.image, command, seconds: session.elapsed(), boots: watched.boots, ...(watched.poweredOff ? { poweredOff: true } : {}), ...tampered, ...screenshot };
    }
    for (const pattern of expectList) {
      const m = await session.waitFor(pattern, deadline - performance.now(), waitOpts);
      markers.push({ pattern: pattern.source, seconds: m.line.seconds, line: m.line.text });
      const s = m.match.groups?.['slot'] ?? m.match[1];
      if (s === 'a' || s === 'b') slot = s;
    }
    if (opts.untilExit) await session.waitForExit(deadline - performance.now(), waitOpts);
    await expectHttpAnswers(session, httpList, deadline, markers, waitOpts.failOn ?? DEFAULT_FAILURES);
    await expectScreens(session, qmp!, screenList, deadline, markers, waitOpts.failOn ?? DEFAULT_FAILURES, scratch, keepLast);
    if (opts.settleSeconds !== undefined && opts.settleSeconds > 0) await settle(session, opts.settleSeconds, waitOpts);
    const screenshot = await finishShot();
    return { passed: true, slot, markers, expected, log, arch, firmware, image: opts.image, command, seconds: session.elapsed(), ...tampered, ...screenshot };
  } catch (e) {
    if (!(e instanceof BootTestError) || !session) throw e;
    // a failure line sets the cursor just past itself
    const err = opts.secureBoot ? secureBootRefusal(e, session.lines.slice(Math.max(0, session.cursor - 1 - DENIAL_LOOKBACK_LINES), session.cursor - 1)) : e;
    const tail = typeof err.context['tail'] === 'string' ? err.context['tail'] : session.tail();
    const missing = expectList[markers.length];
    const reason = missing && err.code !== 'ERR_BOOT_TIMEOUT' && err.code !== 'ERR_POWERED_OFF' ? `${err.message}; still waiting for ${missing}` : err.message;
    const boots = watch ? { boots: watched.boots, ...(watched.poweredOff ? { poweredOff: true } : {}) } : {};
    // what the screen showed when the boot failed (QEMU still up), best effort
    let screenshot: { screenshot?: { file: string; seconds: number } } = {};
    if (opts.screenshot && !session.exitStatus && err.code !== 'ERR_ABORTED') {
      if (!shot && qmp) takeShot();
      const taken = await shot!.catch(() => undefined);
      if (taken) screenshot = { screenshot: taken };
    } else if (shot) {
      const taken = await shot.catch(() => undefined);
      if (taken) screenshot = { screenshot: taken };
    }
    return { ...screenshot, passed: false, slot: watch ? watched.slot : slot, markers, expected, log, reason, code: err.code, tail, error: err, arch, firmware, image: opts.image, command, seconds: session.elapsed(), ...boots, ...tampered };
  } finally {
    qmpGiveUp.abort();
    if (qmp) void qmp.then((c) => c.close(), () => undefined);
    await session?.kill();
    rmSync(work, { recursive: true, force: true });
    if (qmpDir !== undefined && qmpDir !== work) rmSync(qmpDir, { recursive: true, force: true });
  }
}

/**
 * A screenshot goes into an existing folder we may write, as a new file or over a regular one; a
 * link there (dangling or not) is refused, so no boot ends writing where a link pointed.
 */
export function checkScreenshotPath(file: string): void {
  if (!file.toLowerCase().endsWith('.png')) throw new BootTestError('ERR_USAGE', `screenshot ${file}: the file is a PNG: name it FILE.png`, { file });
  const dir = dirname(file) || '.';
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BootTestError('ERR_USAGE', `screenshot ${file}: the folder ${dir} does not exist`, { file });
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new BootTestError('ERR_USAGE', `screenshot ${file}: the folder ${dir} is not writable`, { file });
  }
  let st;
  try {
    st = lstatSync(file);
  } catch {
    return; // a new file
  }
  if (st.isSymbolicLink()) throw new BootTestError('ERR_USAGE', `screenshot ${file}: is a symbolic link (not followed, not replaced): give another path`, { file });
  if (!st.isFile()) throw new BootTestError('ERR_USAGE', `screenshot ${file}: exists and is not a regular file`, { file });
}

/** A screen expectation as the API takes it: a colour of three bytes, a share in (0, 1], a tolerance of 0-255. */
export function checkScreenExpect(e: ScreenExpect): void {
  const byte = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255;
  if (!byte(e.colour?.r) || !byte(e.colour?.g) || !byte(e.colour?.b)) throw new BootTestError('ERR_USAGE', `expectScreen: a colour is three whole numbers 0-255 (r, g, b), found ${JSON.stringify(e.colour)}`);
  if (e.share !== undefined && !(e.share > 0 && e.share <= 1)) throw new BootTestError('ERR_USAGE', `expectScreen: share is a fraction above 0 and at most 1 (0.4 is 40 %), found ${e.share}`);
  if (e.tolerance !== undefined && !byte(e.tolerance)) throw new BootTestError('ERR_USAGE', `expectScreen: tolerance is a whole number 0-255, found ${e.tolerance}`);
}

/** Throws the boot's error (with the reason and the log's tail in its message) unless it passed. */
export function assertBooted(r: BootTestResult): void {
  if (r.passed) return;
  throw new BootTestError(r.code ?? 'ERR_BOOT_FAILED', `boot-test failed: ${r.reason}\nlog: ${r.log}\n${r.tail ?? ''}`, { ...(r.error?.context ?? {}), log: r.log });
}

