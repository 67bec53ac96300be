/**
 * `edgeimage boot-test`: usage errors (exit 2) and the refusals before QEMU starts (exit 1,
 * `[ERR_CODE]`), in-process through `main`, on images composed from the image test world.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestImages, type TestImages } from '@edgeimage/testkit/boot-images';
import { run } from '@edgeimage/testkit/cli-run';
import { checkScenarioUsage, type ScenarioUsage } from '@edgeimage/qemu';

const SLOW = 180_000;
let images: TestImages;
let emptyFw: string;
beforeAll(async () => {
  images = await makeTestImages();
  emptyFw = mkdtempSync(join(tmpdir(), 'edgeimage-no-firmware-'));
}, SLOW);
afterAll(() => {
  images?.world.cleanup();
  rmSync(emptyFw, { recursive: true, force: true });
});

test('--help shows the options, examples, the QEMU lines per firmware and that KVM hangs on some hosts', async () => {
  const r = await run(['boot-test', '--help']);
  expect(r.status).toBe(0);
  for (const o of ['--arch', '--firmware', '--expect', '--timeout', '--disk-size', '--log', '--junit', '--accel', '--in-place', '--json']) expect(r.out).toContain(o);
  expect(r.out).toMatch(/KVM hangs on some hosts/);
  expect(r.out).toMatch(/arm64 uboot: +qemu-system-aarch64 -M virt -cpu cortex-a57 -bios/);
});

test('usage errors exit 2: a bad --expect regex, an unknown --arch, a non-positive --timeout', async () => {
  const bad = await run(['boot-test', images.amd64Gpt, '--expect', 'slot (a']);
  expect(bad.status).toBe(2);
  expect(bad.err).toMatch(/--expect: "slot \(a" is not a regular expression/);
  const arch = await run(['boot-test', images.amd64Gpt, '--arch', 'riscv64']);
  expect(arch.status).toBe(2);
  expect(arch.err).toMatch(/Invalid values:[\s\S]*arch/);
  const t = await run(['boot-test', images.amd64Gpt, '--timeout', '0']);
  expect(t.status).toBe(2);
  expect(t.err).toMatch(/--timeout: expected a positive number/);
});

test('an image for another architecture is refused before QEMU starts', async () => {
  const r = await run(['boot-test', images.arm64Mbr, '--arch', 'amd64', '--timeout', '5']);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/^edgeimage: error: .*edge-arm-uboot\.img is an arm64 image \(the model of slot a\), but amd64 was asked for \[ERR_ARCH_MISMATCH\]$/m);
  expect(r.out).toBe('');
});

test('a missing firmware file is named with its Debian package (--firmware-dir and $EDGEIMAGE_FIRMWARE_DIR)', async () => {
  const r = await run(['boot-test', images.arm64Mbr, '--firmware-dir', emptyFw]);
  expect(r.status).toBe(1);
  expect(r.err).toContain(`firmware file ${join(emptyFw, 'u-boot.bin')} is missing`);
  expect(r.err).toMatch(/install the Debian package u-boot-qemu\) \[ERR_FIRMWARE_MISSING\]/);
  const before = process.env['EDGEIMAGE_FIRMWARE_DIR'];
  process.env['EDGEIMAGE_FIRMWARE_DIR'] = emptyFw;
  try {
    const e = await run(['boot-test', images.amd64Gpt]);
    expect(e.status).toBe(1);
    expect(e.err).toMatch(/OVMF_CODE_4M\.fd is missing .*ovmf\) \[ERR_FIRMWARE_MISSING\]/);
  } finally {
    if (before === undefined) delete process.env['EDGEIMAGE_FIRMWARE_DIR'];
    else process.env['EDGEIMAGE_FIRMWARE_DIR'] = before;
  }
});

test('an image without a system-boot partition, and a --disk-size that would shrink the disk', async () => {
  const r = await run(['boot-test', images.noBoot, '--arch', 'amd64']);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/no-boot\.img: no system-boot partition .* \[ERR_NO_BOOT_PARTITION\]$/m);
  const s = await run(['boot-test', images.amd64Gpt, '--disk-size', '1M']);
  expect(s.status).toBe(1);
  expect(s.err).toMatch(/disk size 1M is 1048576 bytes, smaller than the image .* \[ERR_DISK_SIZE\]$/m);
});

describe('--scenario: usage errors exit 2 before anything runs', () => {
  test('--scenario without --update, --update without --scenario', async () => {
    const r = await run(['boot-test', images.amd64Gpt, '--scenario', 'update']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/--scenario update needs the update to boot with: --update FILE/);
    const u = await run(['boot-test', images.amd64Gpt, '--update', 'x.update']);
    expect(u.status).toBe(2);
    expect(u.err).toMatch(/--update belongs to a scenario: give --scenario update\|rollback\|refuse\|power-cut/);
  });

  test('an unknown crash point is refused naming the valid ones; a crash point outside power-cut; an unknown scenario', async () => {
    const p = await run(['boot-test', images.amd64Gpt, '--scenario', 'power-cut', '--update', 'x.update', '--crash-at', 'half-way']);
    expect(p.status).toBe(2);
    expect(p.err).toMatch(/Invalid values:[\s\S]*crash-at[\s\S]*half-way/);
    for (const point of ['mid-slot-write', 'after-slot-write', 'env-between-copies', 'after-env', 'try-before-commit']) expect(p.err).toContain(point);
    const q = await run(['boot-test', images.amd64Gpt, '--scenario', 'update', '--update', 'x.update', '--crash-at', 'after-env']);
    expect(q.status).toBe(2);
    expect(q.err).toMatch(/--crash-at belongs to --scenario power-cut, not update/);
    const s = await run(['boot-test', images.amd64Gpt, '--scenario', 'upgrade', '--update', 'x.update']);
    expect(s.status).toBe(2);
    expect(s.err).toMatch(/Invalid values:[\s\S]*scenario/);
  });

  test('options that are not for a scenario, and power-cut over every point in place', async () => {
    const e = await run(['boot-test', images.amd64Gpt, '--scenario', 'update', '--update', 'x.update', '--expect', 'x']);
    expect(e.status).toBe(2);
    expect(e.err).toMatch(/--expect is not for a scenario/);
    const i = await run(['boot-test', images.amd64Gpt, '--scenario', 'power-cut', '--update', 'x.update', '--in-place']);
    expect(i.status).toBe(2);
    expect(i.err).toMatch(/each on a fresh copy of the image: name one point to run it --in-place/);
    const r = await run(['boot-test', images.amd64Gpt, '--scenario', 'refuse', '--update', 'x.update', '--expect-refusal', 'sig(']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/--expect-refusal: "sig\(" is not a regular expression/);
  });

  test('a missing update file is refused before QEMU (exit 1, [ERR_UPDATE_OPEN]); --help names the scenarios and crash points', async () => {
    const r = await run(['boot-test', images.amd64Gpt, '--scenario', 'update', '--update', join(emptyFw, 'missing.update')]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/update file .*missing\.update does not exist \[ERR_UPDATE_OPEN\]$/m);
    const h = await run(['boot-test', '--help']);
    for (const o of ['--scenario', '--update', '--crash-at', '--expect-refusal', '--keep', 'power-cut', 'try-before-commit', '/dev/vdb']) expect(h.out).toContain(o);
  });
});

describe('usage errors exit 2 wherever they arise: an option without its value, and the scenario checks made in @edgeimage/qemu', () => {
  test('a string option written without its value (--expect, --log, --update, --keep) is a usage error, not an empty pattern or path', async () => {
    for (const args of [['--expect'], ['--log'], ['--junit'], ['--scenario', 'update', '--update'], ['--scenario', 'update', '--update', 'x.update', '--keep']]) {
      const r = await run(['boot-test', images.amd64Gpt, ...args]);
      expect([args, r.status, r.err.split('\n')[0], r.out]).toEqual([args, 2, `edgeimage: ${args.at(-1)} needs a value`, '']);
    }
  });

  test("the scenario checks are qemu's checkScenarioUsage, naming the CLI's flags: the same words as the API's with its field names", async () => {
    const cases: [string[], ScenarioUsage, string][] = [
      [['--scenario', 'rollback', '--update', 'x.update', '--expect-refusal', 'signature'], { scenario: 'rollback', update: 'x.update', refusal: /signature/ }, '--expect-refusal belongs to --scenario refuse, not rollback'],
      [['--scenario', 'refuse', '--update', 'x.update', '--crash-at', 'after-env'], { scenario: 'refuse', update: 'x.update', crashAt: 'after-env' }, '--crash-at belongs to --scenario power-cut, not refuse'],
      [['--scenario', 'power-cut', '--update', 'x.update', '--in-place'], { scenario: 'power-cut', update: 'x.update', inPlace: true }, '--scenario power-cut without --crash-at runs every crash point, each on a fresh copy of the image: name one point to run it --in-place'],
      [['--scenario', 'rollback'], { scenario: 'rollback' }, '--scenario rollback needs the update to boot with: --update FILE (made by edgeimage update create)'],
    ];
    for (const [args, usage, message] of cases) {
      const r = await run(['boot-test', images.amd64Gpt, ...args]);
      expect([args, r.status, r.err.split('\n')[0]]).toEqual([args, 2, `edgeimage: ${message}`]);
      let api = '';
      try {
        checkScenarioUsage(usage);
      } catch (e) {
        api = (e as Error).message;
      }
      // the API's message is the CLI's with field names for flags
      const fields: Record<string, string> = { '--expect-refusal': 'refusal', '--crash-at': 'crashAt', '--scenario': 'scenario', '--in-place': 'inPlace', '--update': 'update' };
      expect(api).toBe(message.replace(/--[a-z-]+/g, (f) => fields[f] ?? f));
    }
  });
});

describe('--reboots and --expect-poweroff', () => {
  test('--help says what counts as a restart and what is reported', async () => {
    const h = await run(['boot-test', '--help']);
    const text = h.out.replace(/\s+/g, ' ');
    for (const s of ['--reboots', '--expect-poweroff', 'BdsDxe: loading Boot0001', 'UEFI firmware (version', 'U-Boot 2023.01', 'watchdog reset', '"boots"', 'ERR_TOO_MANY_REBOOTS', 'ERR_POWERED_OFF']) expect([s, text.includes(s)]).toEqual([s, true]);
  });

  test('usage errors exit 2: not a whole number from 0 to 100, or with --scenario', async () => {
    for (const v of ['-1', '1.5', 'abc', '101']) {
      const r = await run(['boot-test', images.amd64Gpt, '--reboots', v]);
      expect([v, r.status, r.err.split('\n')[0]]).toEqual([v, 2, expect.stringMatching(/^edgeimage: --reboots: expected a whole number of restarts from 0 to 100, found /)]);
    }
    for (const args of [['--reboots', '2'], ['--expect-poweroff']]) {
      const r = await run(['boot-test', images.amd64Gpt, '--scenario', 'update', '--update', 'x.update', ...args]);
      expect([args, r.status, r.err.split('\n')[0]]).toEqual([args, 2, `edgeimage: ${args[0]} is not for a scenario (--scenario update has its own markers per boot)`]);
    }
  });

  // A shell standing in for qemu-system-aarch64 on PATH plays U-Boot's console: what the command
  // prints and its --json (the restarts on a real machine: packages/qemu/src/reboots.qemu.test.ts).
  describe('what is printed, through a shell playing U-Boot restarting', () => {
    let fake: string;
    let path: string | undefined;
    const UBOOT = 'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)';
    const play = (lines: string[], end: string) => writeFileSync(join(fake, 'qemu-system-aarch64'), `#!/bin/sh\nprintf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')}\n${end}\n`, { mode: 0o755 });
    beforeAll(() => {
      fake = mkdtempSync(join(tmpdir(), 'edgeimage-fake-qemu-'));
      path = process.env['PATH'];
      process.env['PATH'] = `${fake}:${path}`;
    });
    afterAll(() => {
      process.env['PATH'] = path;
      rmSync(fake, { recursive: true, force: true });
    });

    test('each boot with its FAILED line, then the markers; --json has "boots"', async () => {
      play([UBOOT, 'edgeimage-uboot: FAILED: slot a does not verify', UBOOT, 'edgeimage-health: healthy on slot b'], 'exec sleep 30');
      const r = await run(['boot-test', images.arm64Mbr, '--reboots', '1', '--timeout', '20']);
      expect(r.err).toBe('');
      expect(r.status).toBe(0);
      const out = r.out.split('\n');
      expect(out[0]).toBe('boot 1 at 0.000 s: FAILED — U-Boot: slot a does not verify [ERR_BOOTLOADER]');
      expect(out[1]).toMatch(/^boot 2 at \d+\.\d{3} s: no FAILED line$/);
      expect(out[2]).toMatch(/^\[ *\d+\.\d{3}\] \/edgeimage-health: healthy on slot \(\[ab\]\)\/  edgeimage-health: healthy on slot b$/);
      expect(out[3]).toMatch(/^boot-test .*edge-arm-uboot\.img: passed \(arm64 uboot\): slot b in /);
      const j = await run(['boot-test', images.arm64Mbr, '--reboots', '1', '--timeout', '20', '--json']);
      expect(JSON.parse(j.out)).toMatchObject({ passed: true, slot: 'b', poweredOff: false, boots: [{ index: 0, seconds: 0, banner: UBOOT, failed: 'U-Boot: slot a does not verify', code: 'ERR_BOOTLOADER', line: 'edgeimage-uboot: FAILED: slot a does not verify' }, { index: 1, banner: UBOOT, failed: null, code: null }] });
    });

    test('one restart more than allowed fails [ERR_TOO_MANY_REBOOTS]; --expect-poweroff passes on the power-off, fails [ERR_POWERED_OFF] without it', async () => {
      play([UBOOT, 'edgeimage-uboot: FAILED: slot a does not verify', UBOOT, 'edgeimage-uboot: FAILED: slot b does not verify', UBOOT, 'edgeimage-uboot: FAILED: no bootable slot'], 'exit 0');
      const more = await run(['boot-test', images.arm64Mbr, '--reboots', '1', '--timeout', '20']);
      expect(more.status).toBe(1);
      expect(more.err).toMatch(/failed \(arm64 uboot\): U-Boot: slot b does not verify \(at [\d.]+ s\) on boot 2, after 1 reboot; earlier boots: boot 1 failed: U-Boot: slot a does not verify; still waiting for .* \[ERR_BOOTLOADER\]$/m);
      expect(more.out).toMatch(/^boot 1 at 0\.000 s: FAILED — U-Boot: slot a does not verify \[ERR_BOOTLOADER\]\nboot 2 at [\d.]+ s: FAILED — U-Boot: slot b does not verify \[ERR_BOOTLOADER\]$/m);
      const three = await run(['boot-test', images.arm64Mbr, '--reboots', '3', '--timeout', '20', '--expect-poweroff']);
      expect(three.status).toBe(0);
      expect(three.out).toMatch(/^boot 3 at [\d.]+ s: FAILED — U-Boot: no bootable slot \[ERR_BOOTLOADER\]$/m);
      expect(three.out).toMatch(/^\[ *[\d.]+\] the guest powered off$/m);
      const off = await run(['boot-test', images.arm64Mbr, '--reboots', '3', '--timeout', '20']);
      expect(off.status).toBe(1);
      expect(off.err).toMatch(/the guest powered off \(QEMU exited with status 0\) after 2 reboots, before \/edgeimage-health: healthy on slot \(\[ab\]\)\/ appeared; .* \[ERR_POWERED_OFF\]$/m);
      play([UBOOT, 'x', UBOOT, 'y'], 'exec sleep 30');
      const again = await run(['boot-test', images.arm64Mbr, '--reboots', '0', '--timeout', '20']);
      expect(again.err).toMatch(/the machine started a 2nd time at [\d.]+ s \("U-Boot 2023\.01.*"\) where 0 reboots were allowed; still waiting for .* \[ERR_TOO_MANY_REBOOTS\]$/m);
    });
  });
});

describe('--tamper and --tamper-replace: a tampered copy is booted', () => {
  let fake: string;
  let path: string | undefined;
  const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  beforeAll(() => {
    fake = mkdtempSync(join(tmpdir(), 'edgeimage-fake-qemu-'));
    writeFileSync(join(fake, 'qemu-system-aarch64'), "#!/bin/sh\nprintf '%s\\n' 'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)' 'edgeimage-health: healthy on slot a'\nexec sleep 30\n", { mode: 0o755 });
    path = process.env['PATH'];
    process.env['PATH'] = `${fake}:${path}`;
  });
  afterAll(() => {
    process.env['PATH'] = path;
    rmSync(fake, { recursive: true, force: true });
  });

  test('usage errors exit 2: not PARTITION:/FILE, with --in-place, a local file that is not there', async () => {
    for (const [args, message] of [
      [['--tamper', 'system-a'], '--tamper "system-a": expected PARTITION:/FILE[@first|middle|last|OFFSET], e.g. system-a:/bundles/base_1.snap@middle'],
      [['--tamper', ':/model.assert'], '--tamper ":/model.assert": expected PARTITION:/FILE[@first|middle|last|OFFSET], e.g. system-a:/bundles/base_1.snap@middle'],
      [['--tamper', 'system-a:/model.assert', '--in-place'], '--tamper and --tamper-replace change a copy of the image: not with --in-place'],
      [['--tamper-replace', 'system-a:/model.assert'], '--tamper-replace "system-a:/model.assert": expected PARTITION:/FILE=LOCAL-FILE, e.g. system-a:/boot/uki.efi=other-key.uki.efi'],
      [['--tamper-replace', `system-a:/model.assert=${join(fake, 'missing')}`], `--tamper-replace: ${join(fake, 'missing')} does not exist`],
    ] as [string[], string][]) {
      const r = await run(['boot-test', images.arm64Mbr, ...args]);
      expect([args, r.status, r.err.split('\n')[0], r.out]).toEqual([args, 2, `edgeimage: ${message}`, '']);
    }
  });

  test('a partition or file not in the image: exit 1 naming it, before QEMU starts, the image unchanged', async () => {
    const before = sha(images.arm64Mbr);
    const p = await run(['boot-test', images.arm64Mbr, '--tamper', 'system-c:/model.assert']);
    expect(p.status).toBe(1);
    expect(p.err).toMatch(/edge-arm-uboot\.img has no partition system-c \(filesystem labels: .*system-a.*\) \[ERR_TAMPER_PARTITION\]$/m);
    const f = await run(['boot-test', images.arm64Mbr, '--tamper', 'system-a:/bundles/nope_1.snap']);
    expect(f.err).toMatch(/\/bundles\/nope_1\.snap is not in partition system-a \(ext4\) \[ERR_TAMPER_FILE\]$/m);
    const d = await run(['boot-test', images.arm64Mbr, '--tamper', 'system-a:/../model.assert']);
    expect(d.err).toMatch(/"\.\." is not allowed.* \[ERR_TAMPER_PATH\]$/m);
    expect(sha(images.arm64Mbr)).toBe(before);
  });

  test('what changed is printed and in --json "tampered"; the image itself is unchanged', async () => {
    const before = sha(images.arm64Mbr);
    const local = join(fake, 'other.assert');
    writeFileSync(local, 'not the model\n');
    const r = await run(['boot-test', images.arm64Mbr, '--tamper', 'system-a:/model.assert@first', '--tamper-replace', `system-a:/manifest.json=${local}`, '--timeout', '20']);
    expect(r.err).toBe('');
    expect(r.out.split('\n')[0]).toMatch(/^tampered: system-a:\/model\.assert byte 0 \(image offset \d+\) 0x([0-9a-f]{2}) -> 0x[0-9a-f]{2}$/);
    expect(r.out.split('\n')[1]).toMatch(/^tampered: system-a:\/manifest\.json replaced rewritten \(\d+ bytes sha256 [0-9a-f]{16}… -> 14 bytes sha256 [0-9a-f]{16}…\)$/);
    const j = await run(['boot-test', images.arm64Mbr, '--tamper', 'system-a:/model.assert@3', '--timeout', '20', '--json']);
    const report = JSON.parse(j.out) as { passed: boolean; tampered: { fileOffset: number; old: number; new: number }[] };
    expect(report.passed).toBe(true);
    expect(report.tampered).toEqual([expect.objectContaining({ op: 'flip-byte', partition: 'system-a', filesystem: 'ext4', file: '/model.assert', fileOffset: 3 })]);
    expect(report.tampered[0]!.new).toBe(report.tampered[0]!.old ^ 0xff);
    expect(sha(images.arm64Mbr)).toBe(before);
  });
});

describe('--forward and --expect-http', () => {
  test('--help teaches them: the example, restrict=on, 127.0.0.1 only, the first "=" ends the URL', async () => {
    const r = await run(['boot-test', '--help']);
    expect(r.status).toBe(0);
    // (yargs wraps the text in columns)
    const out = r.out.replace(/\s+/g, ' ');
    expect(out).toContain(`--forward 18080:8080 --expect-http http://127.0.0.1:18080/health='"status": *"ok"'`);
    expect(out).toContain('restrict=on: the guest reaches nothing outside');
    expect(out).toContain('bound to 127.0.0.1');
    expect(out).toContain('The first "=" ends the URL');
    expect(out).toContain('no NIC unless --forward');
  });

  test('usage errors exit 2, naming the option and the value: a malformed forward, a port out of range or twice, a URL off the forwards or off the host, a bad pattern', async () => {
    const cases: [string[], RegExp][] = [
      [['--forward', '8080'], /--forward "8080": expected HOST_PORT:GUEST_PORT, e\.g\. 18080:8080/],
      [['--forward', '18080:0'], /--forward "18080:0": the guest port must be a whole number from 1 to 65535, found "0"/],
      [['--forward', '18080:80', '--forward', '18080:81'], /--forward: host port 18080 is forwarded twice/],
      [['--forward', '18080:8080', '--expect-http', 'http://127.0.0.1:18081/health'], /--expect-http http:\/\/127\.0\.0\.1:18081\/health: port 18081 is not forwarded; add --forward 18081:GUEST_PORT/],
      [['--forward', '18080:8080', '--expect-http', 'http://192.168.1.1:18080/'], /--expect-http: "http:\/\/192\.168\.1\.1:18080\/": only http:\/\/127\.0\.0\.1:PORT\/… or http:\/\/localhost:PORT\/… is fetched/],
      [['--forward', '18080:8080', '--expect-http', 'http://127.0.0.1:18080/=(ok'], /--expect-http http:\/\/127\.0\.0\.1:18080\/: "\(ok" is not a regular expression/],
      [['--forward', '18080:8080', '--expect-http', 'http://127.0.0.1:18080/', '--expect-poweroff'], /--expect-http needs the guest up: not with --expect-poweroff/],
      [['--forward'], /--forward needs a value/],
      [['--forward', '18080:8080', '--expect-http'], /--expect-http needs a value/],
      [['--scenario', 'refuse', '--update', 'x.update', '--forward', '18080:8080'], /--forward is for the last boot of --scenario update or rollback \(the device healthy on the slot it ends on\), not --scenario refuse/],
      [['--scenario', 'power-cut', '--update', 'x.update', '--forward', '18080:8080', '--expect-http', 'http://127.0.0.1:18080/'], /--forward is for the last boot of --scenario update or rollback/],
      [['--scenario', 'update', '--update', 'x.update', '--forward', '18080:8080', '--expect-http', 'http://127.0.0.1:18081/health'], /--expect-http http:\/\/127\.0\.0\.1:18081\/health: port 18081 is not forwarded/],
    ];
    for (const [args, message] of cases) {
      const r = await run(['boot-test', images.amd64Gpt, ...args]);
      expect([args, r.status]).toEqual([args, 2]);
      expect(r.err).toMatch(message);
    }
  });

  test('a forwarded host port in use is refused before QEMU starts (exit 1, naming the port) [ERR_PORT_IN_USE]', async () => {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await run(['boot-test', images.amd64Gpt, '--forward', `${port}:8080`, '--timeout', '5']);
      expect(r.status).toBe(1);
      expect(r.err).toMatch(new RegExp(`^edgeimage: error: host port ${port} \\(forward ${port}:8080\\) cannot be bound on 127\\.0\\.0\\.1 \\(EADDRINUSE\\).* \\[ERR_PORT_IN_USE\\]$`, 'm'));
      expect(r.out).toBe('');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('the screen: --display, --memory, --screenshot, --screenshot-after, --expect-screen', () => {
  test('--help teaches them, with the kiosk examples', async () => {
    const r = await run(['boot-test', '--help']);
    for (const o of ['--display', '--memory', '--screenshot', '--screenshot-after', '--expect-screen']) expect(r.out).toContain(o);
    expect(r.out).toMatch(/amd64 -device VGA,\s+arm64 -device\s+virtio-gpu-pci/);
    expect(r.out).toMatch(/--expect-screen '#1E90FF' --screenshot kiosk\.png/);
  });
  test.each([
    [['--screenshot-after', 'kiosk'], '--screenshot-after goes with --screenshot FILE.png'],
    [['--screenshot', 'shot.jpg'], '--screenshot shot.jpg: the screenshot is a PNG file: name it FILE.png'],
    [['--expect-screen', 'dodgerblue'], `--expect-screen "dodgerblue": expected #RRGGBB[@PERCENT], e.g. '#1E90FF' (40 % of the pixels, the default) or '#1E90FF@60'`],
    [['--expect-screen', '#1E90FF@0'], '--expect-screen #1E90FF@0: the share is a percentage above 0 and at most 100, found 0'],
    [['--memory', '32'], '--memory: expected MiB of guest RAM, a whole number from 64 to 16384, found 32'],
    [['--memory', '1.5'], '--memory: expected MiB of guest RAM, a whole number from 64 to 16384, found 1.5'],
    [['--no-display', '--screenshot', 'a.png'], '--no-display: --screenshot needs the display'],
    [['--no-display', '--expect-screen', '#1E90FF'], '--no-display: --expect-screen needs the display'],
    [['--screenshot-after', '(', '--screenshot', 'a.png'], '--screenshot-after: "(" is not a regular expression: Invalid regular expression: /(/: Unterminated group'],
    [['--expect-screen', '#1E90FF', '--expect-poweroff'], '--expect-screen needs the guest up: not with --expect-poweroff'],
    [['--scenario', 'power-cut', '--update', 'x.update', '--screenshot', 'a.png'], '--screenshot is for the last boot of --scenario update or rollback (the device healthy on the slot it ends on), not --scenario power-cut'],
    [['--scenario', 'refuse', '--update', 'x.update', '--expect-screen', '#1E90FF'], '--expect-screen is for the last boot of --scenario update or rollback (the device healthy on the slot it ends on), not --scenario refuse'],
  ])('%j: a usage error naming it', async (args, message) => {
    const r = await run(['boot-test', images.amd64Gpt, ...args]);
    expect([r.status, r.err.split('\n')[0]]).toEqual([2, `edgeimage: ${message}`]);
  });
  test('a screenshot into a folder that does not exist is a usage error, for a scenario too (not found after its boots)', async () => {
    const r = await run(['boot-test', images.amd64Gpt, '--screenshot', '/nonexistent-dir/kiosk.png']);
    expect([r.status, r.err.split('\n')[0]]).toEqual([2, 'edgeimage: --screenshot /nonexistent-dir/kiosk.png: the folder /nonexistent-dir does not exist']);
    const sc = await run(['boot-test', images.amd64Gpt, '--scenario', 'update', '--update', 'x.update', '--screenshot', '/nonexistent-dir/kiosk.png']);
    expect([sc.status, sc.err.split('\n')[0]]).toEqual([2, 'edgeimage: --screenshot /nonexistent-dir/kiosk.png: the folder /nonexistent-dir does not exist']);
  });
  test.each([
    [['--screenshot', 'a.png', '--screenshot', 'b.png'], '--screenshot is given once, found 2 times'],
    [['--screenshot', 'a.png', '--screenshot-after', 'x', '--screenshot-after', 'y'], '--screenshot-after is given once, found 2 times'],
    [['--memory', '512', '--memory', '1024'], '--memory is given once, found 2 times'],
    [['--screenshot', 'a.png', '--expect-poweroff'], '--screenshot at the end of the boot needs the guest up: with --expect-poweroff only with --screenshot-after REGEX (the line to take it at)'],
    [['--screenshot', 'a.png', '--screenshot-after', 'x'.repeat(1001)], '--screenshot-after: a pattern of at most 1000 characters, found 1001'],
  ])('%j: a usage error, not a crash', async (args, message) => {
    const r = await run(['boot-test', images.amd64Gpt, ...args]);
    expect([r.status, r.err.split('\n')[0]]).toEqual([2, `edgeimage: ${message}`]);
  });
});
