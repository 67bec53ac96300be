import { factoryFilesOf } from '@edgeimage/qemu';
import { writeFileSync } from 'node:fs';
import {
  ARCHES,
  BootTestError,
  bootTest,
  checkScenarioUsage,
  CRASH_POINTS,
  FIRMWARES,
  HEALTHY,
  SECURE_BOOT_ENABLED,
  jsonReport,
  MAX_REBOOTS,
  junitReport,
  parseForward,
  parseHttpExpect,
  parseScreenExpect,
  checkScreenshotPath,
  type ScreenExpect,
  checkForwards,
  type HttpExpect,
  type PortForward,
  readSecureBootKeys,
  TAMPER_MAX_CONTENT,
  type TamperChange,
  type TamperOp,
  runScenario,
  scenarioReport,
  SCENARIOS,
  type Accel,
  type Arch,
  type BootRecord,
  type CrashPoint,
  type Firmware,
  type ScenarioName,
  type ScenarioOptionNames,
  type ScenarioResult,
  type ScenarioStep,
} from '@edgeimage/qemu';
import { readRegularFile } from '@edgeimage/assertions';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import type { Context } from './common.js';

interface BootTestArgs {
  image: string;
  arch?: Arch;
  firmware?: Firmware;
  expect?: string[];
  timeout?: number;
  diskSize?: string;
  log?: string;
  junit?: string;
  accel: Accel;
  inPlace: boolean;
  firmwareDir?: string;
  ubootEnv?: string;
  json?: boolean;
  scenario?: ScenarioName;
  update?: string;
  crashAt?: CrashPoint;
  expectRefusal?: string;
  keep?: string;
  logDir?: string;
  secureBoot?: boolean;
  secureBootKeys?: string;
  reboots?: number;
  expectPoweroff?: boolean;
  tamper?: string[];
  tamperReplace?: string[];
  forward?: string[];
  expectHttp?: string[];
  display?: boolean;
  memory?: number;
  screenshot?: string;
  screenshotAfter?: string;
  expectScreen?: string[];
}

function regex(option: string, s: string, flags = ''): RegExp {
  try {
    return new RegExp(s, flags);
  } catch (e) {
    throw new UsageError(`${option}: ${JSON.stringify(s)} is not a regular expression: ${(e as Error).message}`);
  }
}

function parseExpect(list: string[] | undefined, powerOff = false, secureBoot = false): RegExp[] {
  if (!list?.length) return powerOff ? [] : secureBoot ? [SECURE_BOOT_ENABLED, HEALTHY] : [HEALTHY];
  return list.map((s) => regex('--expect', s));
}

/** The CLI's flags for the scenario options, so the one check in @edgeimage/qemu names them as the user typed them. */
const SCENARIO_FLAGS: ScenarioOptionNames = {
  scenario: '--scenario',
  update: '--update',
  crashAt: '--crash-at',
  refusal: '--expect-refusal',
  inPlace: '--in-place',
  bootTimeoutSeconds: '--timeout',
  // not flags of boot-test (their defaults are used): named as in the API
  settleSeconds: 'settleSeconds',
  recoveryBoots: 'recoveryBoots',
};

/**
 * The options that go with --scenario, and those that do not: usage errors before anything runs.
 * What belongs together within a scenario is checkScenarioUsage's (the same check runScenario
 * makes); here only which boot-test options are not a scenario's.
 */
export function checkScenarioArgs(a: Record<string, unknown>): void {
  const scenario = a['scenario'] as string | undefined;
  const has = (k: string) => a[k] !== undefined && a[k] !== false && !(Array.isArray(a[k]) && (a[k] as unknown[]).length === 0);
  if (scenario === undefined) {
    for (const k of ['update', 'crash-at', 'expect-refusal', 'keep', 'log-dir']) if (has(k)) throw new UsageError(`--${k} belongs to a scenario: give --scenario ${SCENARIOS.join('|')}`);
    return;
  }
  for (const k of ['expect', 'junit', 'disk-size', 'reboots', 'expect-poweroff', 'tamper', 'tamper-replace']) if (has(k)) throw new UsageError(`--${k} is not for a scenario (--scenario ${scenario} has its own markers per boot)`);
  // the scenarios that end on a healthy boot they own: --forward/--expect-http/--screenshot/--expect-screen check that boot
  for (const k of ['forward', 'expect-http', 'screenshot', 'screenshot-after', 'expect-screen']) {
    if (has(k) && scenario !== 'update' && scenario !== 'rollback') throw new UsageError(`--${k} is for the last boot of --scenario update or rollback (the device healthy on the slot it ends on), not --scenario ${scenario}`);
  }
  if (has('expect-http') || has('forward')) parseNetArgs(a['forward'] as string[] | undefined, a['expect-http'] as string[] | undefined);
  try {
    checkScenarioUsage(
      {
        scenario,
        update: has('update') ? String(a['update']) : undefined,
        crashAt: has('crash-at') ? String(a['crash-at']) : undefined,
        refusal: has('expect-refusal') ? a['expect-refusal'] : undefined,
        inPlace: a['in-place'] === true,
        bootTimeoutSeconds: a['timeout'] === undefined ? undefined : Number(a['timeout']),
      },
      SCENARIO_FLAGS,
    );
  } catch (e) {
    if (e instanceof BootTestError) throw new UsageError(e.message);
    throw e;
  }
}

/** The string options: each needs a value. */
const VALUED = ['expect', 'forward', 'expect-http', 'screenshot', 'screenshot-after', 'expect-screen', 'disk-size', 'log', 'junit', 'firmware-dir', 'uboot-env', 'update', 'expect-refusal', 'keep', 'log-dir', 'secure-boot-keys', 'tamper', 'tamper-replace'] as const;

const TAMPER_FLIP = /^([^:]{1,72}):(\/[^\0]{0,1023}?)(?:@(first|middle|last|\d{1,15}))?$/;
const TAMPER_REPLACE = /^([^:]{1,72}):(\/[^=\0]{0,1023})=([^\0]{1,4096})$/;

/** --tamper PART:FILE[@first|middle|last|N] and --tamper-replace PART:FILE=LOCAL as tamper operations (the paths are checked by tamperImage). */
export function parseTamperArgs(flips: readonly string[] = [], replaces: readonly string[] = []): TamperOp[] {
  const ops: TamperOp[] = [];
  for (const t of flips) {
    const m = TAMPER_FLIP.exec(t);
    if (!m) throw new UsageError(`--tamper ${JSON.stringify(t.slice(0, 200))}: expected PARTITION:/FILE[@first|middle|last|OFFSET], e.g. system-a:/bundles/base_1.snap@middle`);
    const at = m[3] === undefined ? undefined : /^\d/.test(m[3]) ? Number(m[3]) : (m[3] as 'first' | 'middle' | 'last');
    ops.push({ op: 'flip-byte', partition: m[1]!, file: m[2]!, ...(at !== undefined ? { at } : {}) });
  }
  for (const t of replaces) {
    const m = TAMPER_REPLACE.exec(t);
    if (!m) throw new UsageError(`--tamper-replace ${JSON.stringify(t.slice(0, 200))}: expected PARTITION:/FILE=LOCAL-FILE, e.g. system-a:/boot/uki.efi=other-key.uki.efi`);
    const local = m[3]!;
    const content = readRegularFile(local, TAMPER_MAX_CONTENT, (p) => new UsageError(`--tamper-replace: ${local} ${p.kind === 'missing' ? 'does not exist' : p.kind === 'too-large' ? `is ${p.size} bytes, more than ${TAMPER_MAX_CONTENT}` : p.kind === 'not-regular' ? 'is not a regular file' : p.kind === 'link' ? 'is a symbolic link' : `cannot be opened (${p.code})`}`));
    ops.push({ op: 'replace-file', partition: m[1]!, file: m[2]!, content });
  }
  return ops;
}

/**
 * --forward HOST_PORT:GUEST_PORT and --expect-http URL[=REGEX] as bootTest takes them; each
 * malformed one, a host port twice, or a URL on no forwarded port is a usage error naming it.
 */
export function parseNetArgs(forward: readonly string[] = [], expectHttp: readonly string[] = []): { forwards: PortForward[]; expectHttp: HttpExpect[] } {
  try {
    const forwards = forward.map(parseForward);
    checkForwards(forwards);
    const http = expectHttp.map(parseHttpExpect);
    for (const h of http) {
      const port = Number(new URL(h.url).port);
      if (!forwards.some((f) => f.host === port)) throw new UsageError(`--expect-http ${h.url}: port ${port} is not forwarded; add --forward ${port}:GUEST_PORT (the check reaches the guest through the forward)`);
    }
    return { forwards, expectHttp: http };
  } catch (e) {
    if (e instanceof BootTestError) throw new UsageError(`--${e.message}`);
    throw e;
  }
}

/** A console pattern is a line's worth, not a program: longer is refused. */
export const MAX_PATTERN_CHARS = 1000;

/** The most guest RAM --memory gives: QEMU's TCG guests here are small; 16 GiB is past any kiosk. */
export const MAX_MEMORY_MIB = 16384;

/**
 * --display, --memory, --screenshot FILE [--screenshot-after REGEX] and --expect-screen
 * COLOUR[@PERCENT] as bootTest takes them; each malformed one a usage error naming it.
 */
export function parseScreenArgs(a: { display?: boolean; memory?: number; screenshot?: string; screenshotAfter?: string; expectScreen?: string[] }): { display?: boolean; memoryMiB?: number; screenshot?: { file: string; after?: RegExp }; expectScreen?: ScreenExpect[] } {
  for (const [flag, v] of [['--screenshot', a.screenshot], ['--screenshot-after', a.screenshotAfter], ['--memory', a.memory], ['--display', a.display]] as const) {
    if (Array.isArray(v)) throw new UsageError(`${flag} is given once, found ${v.length} times`);
  }
  if (a.screenshotAfter !== undefined && a.screenshotAfter.length > MAX_PATTERN_CHARS) throw new UsageError(`--screenshot-after: a pattern of at most ${MAX_PATTERN_CHARS} characters, found ${a.screenshotAfter.length}`);
  if (a.screenshotAfter !== undefined && a.screenshot === undefined) throw new UsageError('--screenshot-after goes with --screenshot FILE.png');
  if (a.screenshot !== undefined && !a.screenshot.toLowerCase().endsWith('.png')) throw new UsageError(`--screenshot ${a.screenshot}: the screenshot is a PNG file: name it FILE.png`);
  if (a.display === false && (a.screenshot !== undefined || a.expectScreen?.length)) throw new UsageError(`--no-display: ${a.screenshot !== undefined ? '--screenshot' : '--expect-screen'} needs the display`);
  if (a.memory !== undefined && !(Number.isInteger(a.memory) && a.memory >= 64 && a.memory <= MAX_MEMORY_MIB)) throw new UsageError(`--memory: expected MiB of guest RAM, a whole number from 64 to ${MAX_MEMORY_MIB}, found ${String(a.memory)}`);
  let expectScreen: ScreenExpect[] | undefined;
  try {
    expectScreen = a.expectScreen?.map(parseScreenExpect);
  } catch (e) {
    if (e instanceof BootTestError) throw new UsageError(`--${e.message}`);
    throw e;
  }
  return {
    ...(a.display !== undefined ? { display: a.display } : {}),
    ...(a.memory !== undefined ? { memoryMiB: a.memory } : {}),
    ...(a.screenshot !== undefined ? { screenshot: { file: checkedScreenshot(a.screenshot), ...(a.screenshotAfter !== undefined ? { after: regex('--screenshot-after', a.screenshotAfter) } : {}) } } : {}),
    ...(expectScreen?.length ? { expectScreen } : {}),
  };
}

/** --screenshot's path, as bootTest would refuse it at the end of a boot (or of a scenario's boots), refused now. */
function checkedScreenshot(file: string): string {
  try {
    checkScreenshotPath(file);
  } catch (e) {
    if (e instanceof BootTestError) throw new UsageError(`--${e.message}`);
    throw e;
  }
  return file;
}

/** What a tamper operation changed, one line. */
function tamperLine(c: TamperChange): string {
  if (c.op === 'flip-byte') return `tampered: ${c.partition}:${c.file} byte ${c.fileOffset} (image offset ${c.offset}) 0x${c.old.toString(16).padStart(2, '0')} -> 0x${c.new.toString(16).padStart(2, '0')}`;
  return `tampered: ${c.partition}:${c.file} replaced ${c.how} (${c.oldSize} bytes sha256 ${c.oldSha256.slice(0, 16)}… -> ${c.newSize} bytes sha256 ${c.newSha256.slice(0, 16)}…)`;
}

/** --secure-boot and its key folder: usage errors before anything runs. */
export function checkSecureBootArgs(a: Record<string, unknown>): void {
  const keys = a['secure-boot-keys'];
  if (!a['secure-boot']) {
    if (keys !== undefined) throw new UsageError('--secure-boot-keys goes with --secure-boot');
    return;
  }
  if (a['firmware'] === 'uboot') throw new UsageError('--secure-boot is UEFI Secure Boot: not with --firmware uboot');
  if (keys === undefined && (typeof a['image'] !== 'string' || factoryFilesOf(a['image']).bootKeys === undefined)) {
    throw new UsageError(`--secure-boot needs the brand's PK, KEK and db certificates: --secure-boot-keys DIR (as "edgeimage boot-keys export DIR" writes them), or the IMAGE.boot-keys/ folder that "build --boot-keys" writes next to the image${typeof a['image'] === 'string' ? ` (there is no ${a['image'].replace(/\.img$/, '')}.boot-keys/)` : ''}`);
  }
}

/** The key folder of --secure-boot: --secure-boot-keys, else the one build --boot-keys wrote next to the image. */
export function secureBootKeysDir(a: { image?: string; secureBootKeys?: string }): string {
  return a.secureBootKeys ?? factoryFilesOf(a.image!).bootKeys!;
}

/** One start of the machine: when, and the FAILED line it ended on, if any. */
function bootLine(b: BootRecord): string {
  return `boot ${b.index + 1} at ${b.seconds.toFixed(3)} s: ${b.failed ? `FAILED — ${b.failed} [${b.code}]` : 'no FAILED line'}`;
}

const bootJson = (b: BootRecord) => ({ index: b.index, seconds: Number(b.seconds.toFixed(3)), banner: b.banner ?? null, failed: b.failed ?? null, code: b.code ?? null, line: b.line ?? null });

function stepLine(s: ScenarioStep): string {
  const mark = s.passed ? 'ok  ' : 'FAIL';
  return `${mark} ${s.name}${s.updateDisk ? ' [update on /dev/vdb]' : ''} — ${s.summary} (${s.seconds.toFixed(1)} s)`;
}

export function bootTestCommand(ctx: Context) {
  return {
    command: 'boot-test <image>',
    describe: 'boot an image under QEMU (from a copy) and wait for console markers, in order',
    builder: (y: Argv) =>
      y
        .positional('image', { type: 'string', demandOption: true, describe: 'the raw disk image (left unchanged unless --in-place)' })
        .option('arch', { choices: ARCHES, describe: "the guest architecture (default: the image model's; refused when they differ)" })
        .option('firmware', { choices: FIRMWARES, describe: 'default: uefi on amd64; on arm64 uboot for an MBR image, uefi for GPT' })
        .option('expect', { type: 'string', array: true, describe: 'a regular expression a console line must match, in order (repeatable; default: the health check\'s "edgeimage-health: healthy on slot ([ab])")' })
        .option('timeout', { type: 'number', describe: 'seconds for the whole boot (default 120; with --scenario, for each boot: default 300)' })
        .option('disk-size', { type: 'string', describe: 'grow the disk first: +1G (by) or 3G (to); never shrinks' })
        .option('log', { type: 'string', describe: 'the console log, one line each with the seconds since QEMU started (default: a file in the temp folder)' })
        .option('junit', { type: 'string', describe: 'also write the result as JUnit XML (one testcase per marker)' })
        .option('accel', { choices: ['tcg', 'kvm'] as const, default: 'tcg' as Accel, describe: 'QEMU accelerator; KVM hangs on some hosts, so TCG is the default' })
        .option('in-place', { type: 'boolean', default: false, describe: 'boot the image itself: what the guest writes is kept (several boots in sequence)' })
        .option('firmware-dir', { type: 'string', describe: 'a folder holding the firmware files under their Debian names (default: $EDGEIMAGE_FIRMWARE_DIR, else /usr/share/OVMF, /usr/share/AAVMF, /usr/lib/u-boot/qemu_arm64)' })
        .option('uboot-env', { type: 'string', describe: 'U-Boot: an environment flash image for the second pflash (e.g. bootdelay=0)' })
        .option('json', { type: 'boolean', describe: 'print {passed, slot, markers: [{pattern, seconds}], log} (+ reason) as JSON; with --scenario also "scenario" and "steps"' })
        .option('scenario', { choices: SCENARIOS, describe: 'run an update scenario, each boot a QEMU of its own on one copy: update (apply, try, commit), rollback (a try never healthy), refuse (nothing written), power-cut (a crash at a point, then healthy on a or b)' })
        .option('update', { type: 'string', describe: 'the update file (edgeimage update create) for --scenario, attached as /dev/vdb on the boot that applies it' })
        .option('crash-at', { choices: CRASH_POINTS, describe: 'power-cut: the crash point (default: every point in turn, each on a fresh copy)' })
        .option('expect-refusal', { type: 'string', describe: 'refuse: a regular expression (case-insensitive) the REFUSED reason must match, e.g. signature' })
        .option('keep', { type: 'string', describe: "scenario: keep the final disk at this path (power-cut over every point: NAME.POINT.img)" })
        .option('log-dir', { type: 'string', describe: "scenario: a folder for each boot's console log (default: a new folder in the temp folder)" })
        .option('secure-boot', { type: 'boolean', describe: "UEFI Secure Boot: the firmware build that enforces signatures and a copy of its variable store with the brand's PK, KEK and db enrolled (setup mode off). An image built with --boot-keys of the same brand boots; without --expect the boot must show the device's \"edgeimage-init: secure boot enabled\" line, then healthy; any other image's GRUB is refused (Access Denied) and the boot fails with ERR_SECURE_BOOT_REFUSED" })
        .option('reboots', { type: 'number', describe: `the machine may restart up to N times while the markers are awaited (0-${MAX_REBOOTS}), so a fallback to the other slot is one boot test. A restart is the firmware's first line showing again: OVMF's "BdsDxe: loading Boot0001 …" after lines of others, AAVMF's "UEFI firmware (version …)", U-Boot's "U-Boot 2023.01… (date)" — a reboot, a watchdog reset, a panic with panic=N alike. The FAILED lines (initramfs, GRUB, U-Boot, panic) of the boots before the last allowed restart are printed per boot and in --json "boots", not fatal; one more restart fails the boot [ERR_TOO_MANY_REBOOTS], and so does a FAILED line once the N restarts are used up. Without it, restarts are not watched` })
        .option('expect-poweroff', { type: 'boolean', describe: 'the device must power off: passes when QEMU exits on its own (status 0) after the --expect markers (default: none), e.g. a device with both slots tampered that must never come up; a system that comes up and stays up fails on --timeout. Without it, a power-off before the markers fails the boot [ERR_POWERED_OFF] once --reboots is given, else [ERR_QEMU_EXITED]' })
        .option('tamper', { type: 'string', array: true, describe: 'boot a tampered copy: flip every bit of one byte of a file in a partition of the copy, PARTITION:/FILE[@first|middle|last|OFFSET] (default middle; repeatable), e.g. system-a:/bundles/base_1.snap or system-boot:/EFI/BOOT/BOOTX64.EFI@first; ext4 and vfat partitions. What changed (offsets, old and new byte) is printed and in --json "tampered"; the image itself is never changed' })
        .option('tamper-replace', { type: 'string', array: true, describe: 'boot a tampered copy: a file of an ext4 partition gets the bytes of a local file (mode and owner kept; the slot checked with e2fsck), PARTITION:/FILE=LOCAL, e.g. system-a:/boot/uki.efi=resigned.efi (repeatable)' })
        .option('forward', { type: 'string', array: true, describe: 'HOST_PORT:GUEST_PORT: a TCP port of the guest on 127.0.0.1:HOST_PORT of the host (repeatable), e.g. --forward 18080:8080. The machine then gets a virtio-net NIC on QEMU user networking with restrict=on: the guest reaches nothing outside (the DHCP of QEMU gives it 10.0.2.15 and no router), only the forwards come in, bound to 127.0.0.1. A HOST_PORT in use is refused before QEMU starts [ERR_PORT_IN_USE]. Without --forward the machine has no NIC. With --scenario update or rollback, --forward and --expect-http apply to the scenario\'s last boot (the device healthy on the slot it ends on)' })
        .option('expect-http', { type: 'string', array: true, describe: `URL[=REGEX]: after the console markers, GET the URL about once a second until a 2xx answer whose body (its first 64 KiB) matches REGEX (default: any 2xx), within --timeout (repeatable, in order). Only http://127.0.0.1:PORT/… or http://localhost:PORT/… on a --forward HOST_PORT, e.g. --forward 18080:8080 --expect-http http://127.0.0.1:18080/health='"status": *"ok"' (the quotes keep the shell off the pattern); redirects are not followed; each request gets 5 s. The first "=" ends the URL (write an "=" of a query as %3D). Each answer is a marker (its seconds, "HTTP 200 body…"; in --json with url and status); a failure names the URL, the last status or error and the last body [ERR_HTTP_EXPECT]` })
        .option('display', { type: 'boolean', describe: 'give the machine a display (amd64: VGA; arm64: virtio-gpu) the guest draws on and QEMU can screendump; nothing shows on the host. Implied by --screenshot and --expect-screen. With --scenario: every boot' })
        .option('memory', { type: 'number', describe: `guest RAM in MiB (default 512; 64-${MAX_MEMORY_MIB}), e.g. --memory 1024 for a browser that needs it. With --scenario: every boot` })
        .option('screenshot', { type: 'string', describe: 'save the display as FILE.png (QMP screendump): when the --screenshot-after line appears, else at the end of the boot; a failed boot still gets one at its end. In --json: "screenshot" and "screenshotSeconds". With --scenario update or rollback: its last boot' })
        .option('screenshot-after', { type: 'string', describe: 'REGEX: take the --screenshot when a console line matches it (its seconds in --json); never seen: the boot fails [ERR_SCREENSHOT_MARKER] and the screenshot is taken at the end' })
        .option('expect-screen', { type: 'string', array: true, describe: "COLOUR[@PERCENT]: after the console markers (and --expect-http), look at the display about once a second until PERCENT (default 40) of its pixels are within ±8 of COLOUR on each channel, within --timeout (repeatable, in order), e.g. --expect-screen '#1E90FF'. Each is a marker (the seconds of the screendump that showed it: a time to first frame); a failure names the share seen last and the colours shown most, and keeps the last screendump beside the log [ERR_SCREEN_EXPECT]. With --scenario update or rollback: its last boot" })
        .option('secure-boot-keys', { type: 'string', describe: 'with --secure-boot: the folder of the PK, KEK and db certificates (NAME.cer DER or NAME.crt PEM, and db.esl for the owner GUID), as "edgeimage boot-keys export DIR" writes them; default: IMAGE.boot-keys/, which build --boot-keys writes next to the image' })
        .check((a) => {
          // yargs gives a string option written without its value as '': a usage error, not an empty path or pattern
          for (const k of VALUED) {
            const v = a[k];
            if (v === '' || (Array.isArray(v) && (v.length === 0 || v.includes('')))) throw new UsageError(`--${k} needs a value`);
          }
          if (a['timeout'] !== undefined && !(Number(a['timeout']) > 0)) throw new UsageError(`--timeout: expected a positive number of seconds, found ${String(a['timeout'])}`);
          if (a['reboots'] !== undefined && !(Number.isInteger(a['reboots']) && Number(a['reboots']) >= 0 && Number(a['reboots']) <= MAX_REBOOTS)) throw new UsageError(`--reboots: expected a whole number of restarts from 0 to ${MAX_REBOOTS}, found ${String(a['reboots'])}`);
          if ((a['tamper'] !== undefined || a['tamper-replace'] !== undefined) && a['in-place']) throw new UsageError('--tamper and --tamper-replace change a copy of the image: not with --in-place');
          checkScenarioArgs(a);
          checkSecureBootArgs(a);
          if (a['expect-http'] !== undefined && a['expect-poweroff']) throw new UsageError('--expect-http needs the guest up: not with --expect-poweroff');
          parseNetArgs(a['forward'] as string[] | undefined, a['expect-http'] as string[] | undefined);
          parseScreenArgs({ display: a['display'] as boolean | undefined, memory: a['memory'] as number | undefined, screenshot: a['screenshot'] as string | undefined, screenshotAfter: a['screenshot-after'] as string | undefined, expectScreen: a['expect-screen'] as string[] | undefined });
          if (a['expect-screen'] !== undefined && a['expect-poweroff']) throw new UsageError('--expect-screen needs the guest up: not with --expect-poweroff');
          if (a['screenshot'] !== undefined && a['screenshot-after'] === undefined && a['expect-poweroff']) throw new UsageError('--screenshot at the end of the boot needs the guest up: with --expect-poweroff only with --screenshot-after REGEX (the line to take it at)');
          return true;
        })
        .example('$0 boot-test images/pc-amd64.img', 'boot a copy until the health check reports healthy')
        .example("$0 boot-test images/pi-arm64.img --expect 'hello-kiosk .* up on slot a' --expect 'healthy on slot a' --timeout 180", 'two markers in order')
        .example('$0 boot-test images/pc-amd64.img --disk-size +1G --json --junit boot.xml', 'on a bigger disk; reports for CI')
        .example('$0 boot-test images/pc-amd64.img --scenario update --update rev2.update', 'apply an update from /dev/vdb, try and commit slot b, stay on it')
        .example('$0 boot-test images/pc-amd64.img --secure-boot', "Secure Boot with the brand's keys enrolled (from images/pc-amd64.boot-keys/): a verified image boots, any other is refused")
        .example('$0 boot-test images/pc-amd64.img --secure-boot --secure-boot-keys factory/other-brand', "another brand's firmware: the image's GRUB is refused (ERR_SECURE_BOOT_REFUSED)")
        .example("$0 boot-test tampered.img --reboots 3 --expect 'healthy on slot b' --timeout 600", 'slot a was tampered: its failed boots are reported, the device must end healthy on slot b')
        .example('$0 boot-test both-tampered.img --reboots 8 --expect-poweroff --timeout 900', 'both slots tampered: the device must never come up, and power off')
        .example("$0 boot-test verified.img --tamper system-a:/bundles/base_1.snap --reboots 3 --expect 'healthy on slot b' --timeout 600", 'a byte of the base bundle of slot a flipped in the copy: the device must fall back to slot b')
        .example(`$0 boot-test images/robot-amd64.img --forward 18080:8080 --expect-http http://127.0.0.1:18080/health='"status": *"ok"'`, "the guest's port 8080 on 127.0.0.1:18080 of the host: healthy, then /health answers 2xx with status ok")
        .example('$0 boot-test images/robot-amd64.img --forward 18080:8080 --expect-http http://127.0.0.1:18080/telemetry --json', 'any 2xx answer of /telemetry; the answer (status, seconds, body) in the JSON markers')
        .example("$0 boot-test images/kiosk-pc-amd64.img --expect-screen '#1E90FF' --screenshot kiosk.png --json", 'the kiosk: healthy, then its page on the screen (40 % of the pixels within ±8 of #1E90FF, looked at once a second); the screen saved at the end')
        .example("$0 boot-test images/kiosk-pc-amd64.img --screenshot boot.png --screenshot-after 'kiosk-browser: showing'", 'what the screen shows the moment the browser starts')
        .example('$0 boot-test images/pc-amd64.img --scenario power-cut --update rev2.update --crash-at after-env --json', 'a power cut right after the boot environment changed')
        .epilog(
          [
            'QEMU per architecture and firmware (TCG, 512 MiB, -nodefaults, serial console on stdio, no NIC unless --forward, an i6300esb watchdog that resets the machine):',
            '  amd64 uefi:  qemu-system-x86_64 -M q35, OVMF_CODE_4M.fd + a copy of OVMF_VARS_4M.fd (package ovmf)',
            '  arm64 uefi:  qemu-system-aarch64 -M virt -cpu cortex-a57, AAVMF_CODE.fd + a copy of AAVMF_VARS.fd (package qemu-efi-aarch64)',
            '  arm64 uboot: qemu-system-aarch64 -M virt -cpu cortex-a57 -bios u-boot.bin (package u-boot-qemu)',
            '  --secure-boot: amd64 -M q35,smm=on, OVMF_CODE_4M.secboot.fd, the variable flash writable from SMM only; arm64 AAVMF_CODE.fd; both with a per-boot copy of a store holding the keys',
            'Display (--display, implied by --screenshot and --expect-screen): amd64 -device VGA, arm64 -device virtio-gpu-pci (the guest needs the bochs or virtio_gpu driver; the Debian kernel bundle carries both), nothing shown on the host; QEMU\'s QMP socket (a temporary unix socket) takes the screendumps (PNG). The guest gets 512 MiB unless --memory.',
            'A boot fails on a timeout, a kernel panic, "edgeimage-initramfs: FAILED", a GRUB error line, or QEMU exiting early; the log tail is printed. ' +
              'QEMU is always killed and the temporary copy removed, also on Ctrl-C. Exit status: 0 passed, 1 failed, 2 usage.',
            'Scenarios (--scenario): every boot is a QEMU of its own with -no-reboot on one copy of the image; the update is a second virtio disk (/dev/vdb) only on the boot that should apply it. ' +
              'power-cut sets edge_kargs=edge.crash=POINT offline (the bootloader appends it to the kernel command line; only on an image of a grade dangerous model: a signed or secured image ignores the hook), clears it after the crash, and boots at most 3 times until healthy on slot a or b. ' +
              `Crash points: ${CRASH_POINTS.join(', ')}.`,
          ].join('\n'),
        ),
    handler: async (a: BootTestArgs) => {
      if (a.scenario !== undefined) return scenarioHandler(ctx, a);
      const expect = parseExpect(a.expect, a.expectPoweroff === true, a.secureBoot === true);
      const tamper = parseTamperArgs(a.tamper, a.tamperReplace);
      const net = parseNetArgs(a.forward, a.expectHttp);
      const screen = parseScreenArgs(a);
      const secureBoot = a.secureBoot ? { keys: readSecureBootKeys(secureBootKeysDir(a)) } : undefined;
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const r = await bootTest({
          image: a.image,
          arch: a.arch,
          firmware: a.firmware,
          firmwareDir: a.firmwareDir,
          ubootEnvFlash: a.ubootEnv,
          expect,
          timeoutSeconds: a.timeout ?? 120,
          diskSize: a.diskSize,
          log: a.log,
          accel: a.accel,
          inPlace: a.inPlace,
          secureBoot,
          reboots: a.reboots,
          expectPowerOff: a.expectPoweroff,
          tamper: tamper.length ? tamper : undefined,
          ...(net.forwards.length ? { forwards: net.forwards } : {}),
          ...(net.expectHttp.length ? { expectHttp: net.expectHttp } : {}),
          ...screen,
          signal: abort.signal,
        });
        if (a.junit) writeFileSync(a.junit, junitReport(r));
        if (r.code === 'ERR_ABORTED') {
          ctx.io.err(`edgeimage: boot-test interrupted; QEMU stopped, temporary files removed (log: ${r.log}) [ERR_ABORTED]`);
          ctx.exitCode = 130;
          return;
        }
        if (!r.passed) ctx.exitCode = 1;
        if (a.json) return printJson(ctx.io, { ...jsonReport(r), ...(r.boots ? { boots: r.boots.map(bootJson), poweredOff: r.poweredOff === true } : {}), ...(r.tampered ? { tampered: r.tampered } : {}) });
        const what = `${r.arch} ${r.firmware}${secureBoot ? ', Secure Boot' : ''}${a.inPlace ? ', in place' : ''}`;
        for (const c of r.tampered ?? []) ctx.io.out(tamperLine(c));
        for (const b of r.boots ?? []) ctx.io.out(bootLine(b));
        for (const m of r.markers) ctx.io.out(`[${m.seconds.toFixed(3).padStart(8)}] ${m.http || m.screen ? m.pattern : `/${m.pattern}/`}  ${m.line}`);
        if (r.screenshot) ctx.io.out(`[${r.screenshot.seconds.toFixed(3).padStart(8)}] screenshot: ${r.screenshot.file}`);
        if (r.passed && r.poweredOff) ctx.io.out(`[${r.seconds.toFixed(3).padStart(8)}] the guest powered off`);
        if (r.passed) {
          ctx.io.out(`boot-test ${a.image}: passed (${what})${r.slot ? `: slot ${r.slot}` : ''} in ${r.seconds.toFixed(1)} s; log ${r.log}`);
        } else {
          ctx.io.err(`--- last lines of ${r.log} ---\n${r.tail ?? ''}\n---`);
          ctx.io.err(`edgeimage: boot-test ${a.image} failed (${what}): ${r.reason} [${r.code}]`);
          if (r.code === 'ERR_SECURE_BOOT_REFUSED') ctx.io.err(`edgeimage: note: the firmware enrolled with the keys of ${secureBootKeysDir(a)} refused the image's bootloader: an image built without --boot-keys, or with another brand's keys, is refused`);
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}

async function scenarioHandler(ctx: Context, a: BootTestArgs): Promise<void> {
  const refusal = a.expectRefusal !== undefined ? regex('--expect-refusal', a.expectRefusal, 'i') : undefined;
  const net = parseNetArgs(a.forward, a.expectHttp);
  const { display, memoryMiB, screenshot, expectScreen } = parseScreenArgs(a);
  const last = { ...(net.forwards.length ? { forwards: net.forwards } : {}), ...(net.expectHttp.length ? { expectHttp: net.expectHttp } : {}), ...(screenshot ? { screenshot } : {}), ...(expectScreen ? { expectScreen } : {}) };
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Progress: each boot as it ends (stderr with --json, so stdout stays one JSON document).
  const progress = (t: string) => (a.json ? ctx.io.err(t) : ctx.io.out(t));
  let r: ScenarioResult;
  try {
    r = await runScenario({
      image: a.image,
      scenario: a.scenario!,
      update: a.update!,
      crashAt: a.crashAt,
      refusal,
      inPlace: a.inPlace,
      keep: a.keep,
      logDir: a.logDir,
      bootTimeoutSeconds: a.timeout,
      boot: { arch: a.arch, firmware: a.firmware, firmwareDir: a.firmwareDir, ubootEnvFlash: a.ubootEnv, accel: a.accel, ...(a.secureBoot ? { secureBoot: { keys: readSecureBootKeys(secureBootKeysDir(a)) } } : {}), ...(display !== undefined || screenshot || expectScreen ? { display: display ?? true } : {}), ...(memoryMiB !== undefined ? { memoryMiB } : {}) },
      ...(Object.keys(last).length ? { lastBoot: last } : {}),
      signal: abort.signal,
      onStep: (s) => progress(`${a.scenario}: ${stepLine(s)}`),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (r.failure?.code === 'ERR_ABORTED') {
    ctx.io.err(`edgeimage: boot-test --scenario ${r.scenario} interrupted; QEMU stopped, temporary files removed (logs: ${r.logDir}) [ERR_ABORTED]`);
    ctx.exitCode = 130;
    return;
  }
  if (!r.passed) ctx.exitCode = 1;
  if (a.json) return printJson(ctx.io, { ...scenarioReport(r), arch: a.arch ?? null });
  for (const c of r.checks) ctx.io.out(`${c.passed ? 'ok  ' : 'FAIL'} check: ${c.name} — ${c.detail}`);
  for (const p of r.powerCut ?? []) ctx.io.out(`power-cut at ${p.point}: ${p.passed ? `healthy on slot ${p.slot} — ${p.why}` : `FAILED — ${p.why}`}`);
  const update = [r.manifest.brandId, r.manifest.model].filter(Boolean).join('/') + (r.manifest.revision !== undefined ? ` revision ${r.manifest.revision}` : '');
  if (r.passed) {
    ctx.io.out(`boot-test --scenario ${r.scenario} ${a.image} with ${update || a.update}: passed in ${r.seconds.toFixed(1)} s${r.slot ? `; ends healthy on slot ${r.slot}` : ''} (logs: ${r.logDir})`);
  } else {
    const f = r.failure!;
    if (f.tail) ctx.io.err(`--- last lines of ${f.log ?? 'the log'} ---\n${f.tail}\n---`);
    ctx.io.err(`edgeimage: boot-test --scenario ${r.scenario} ${a.image} failed at ${f.step}: ${f.reason} [${f.code}]`);
  }
}
