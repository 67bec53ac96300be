/**
 * `edgeimage boot-test`: usage errors (exit 2) and the refusals before QEMU starts (exit 1,
 * `[ERR_CODE]`), in-process through `main`, on images composed from the image test world.
 */
import { mkdtempSync, rmSync } from 'node:fs';
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
