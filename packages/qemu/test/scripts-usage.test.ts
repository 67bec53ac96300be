/**
 * The scenario scripts' usage errors: exit 2 before any build, with a message naming the option,
 * what was expected and what was given.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const script = (name: string, args: string[]) => spawnSync(join(ROOT, 'scripts', name), args, { encoding: 'utf8' });

let empty: string;
beforeAll(() => { empty = mkdtempSync(join(tmpdir(), 'edgeimage-ref-')); });
afterAll(() => rmSync(empty, { recursive: true, force: true }));

test('scenarios --ref of a folder that is not a reference-images output: exit 2, naming the files it expected', () => {
  const r = script('scenarios', ['--ref', empty]);
  expect([r.status, r.stderr.trim()]).toEqual([2, `scenarios: --ref ${empty}: expected the output of scripts/reference-images --out ${empty} (${empty}/store/store.json and ${empty}/models/pc-amd64.validation-set)`]);
});

test('scenarios --build-only without --work: exit 2 (the build would be removed at the end)', () => {
  const r = script('scenarios', ['--build-only']);
  expect([r.status, r.stderr.trim()]).toEqual([2, 'scenarios: --build-only needs --work DIR (else the build is removed at the end)']);
});

test('--help of scenarios and reference-images ends with the header comment (no code lines)', () => {
  for (const [name, last] of [['scenarios', /--build-only \(with --work\)/], ['reference-images', /--unverified builds them without/]] as const) {
    const r = script(name, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(last);
  }
});

/** Each script's usage errors: exit 2 and one line naming the option and what it needs, before any build or setup. */
const USAGE: [string, string[], string][] = [
  ['scenarios', ['--json'], 'scenarios: --json needs a file'],
  ['scenarios', ['--board'], 'scenarios: --board needs a board: pc-amd64, arm64-efi, arm64-uboot, robot-pc-amd64, robot-arm64-uboot, kiosk-pc-amd64 or kiosk-arm64-efi'],
  ['scenarios', ['--work', '--build-only'], 'scenarios: --work needs a folder'],
  ['scenarios', ['--jobs'], 'scenarios: --jobs needs a number'],
  ['scenarios', ['--jobs', '0'], "scenarios: --jobs: expected a positive number, not '0'"],
  ['scenarios', ['--crash-at'], 'scenarios: --crash-at needs crash points, comma-separated'],
  ['scenarios', ['--crash-at', 'half-way'], "scenarios: unknown crash point 'half-way' (crash points: mid-slot-write after-slot-write env-between-copies after-env try-before-commit)"],
  ['scenarios', ['--only'], 'scenarios: --only needs scenario names, comma-separated'],
  ['scenarios', ['--board', 'robot-pc-amd64', '--only', 'rollback,ota'], 'scenarios: ota runs on the reference boards (pc-amd64, arm64-efi, arm64-uboot), not robot-pc-amd64'],
  ['scenarios', ['--board', 'kiosk-arm64-efi', '--only', 'update,ota-update'], 'scenarios: ota-update runs on the reference boards (pc-amd64, arm64-efi, arm64-uboot), not kiosk-arm64-efi'],
  ['scenarios', ['--only', 'upgrade'], "scenarios: unknown scenario 'upgrade' (scenarios: update rollback bad-signature bad-digest downgrade wrong-model aliased-manifest power-cut tamper ota ota-update)"],
  ['scenarios', ['--board', 'riscv'], "scenarios: --board is pc-amd64, arm64-efi, arm64-uboot, robot-pc-amd64, robot-arm64-uboot, kiosk-pc-amd64 or kiosk-arm64-efi, not 'riscv'"],
  ['scenarios', ['--board', 'kiosk-arm64-uboot'], "scenarios: --board is pc-amd64, arm64-efi, arm64-uboot, robot-pc-amd64, robot-arm64-uboot, kiosk-pc-amd64 or kiosk-arm64-efi, not 'kiosk-arm64-uboot'"],
  ['demo', ['--board'], 'demo: --board needs a board: pc-amd64, arm64-efi or arm64-uboot'],
  ['demo', ['--board', 'riscv'], "demo: --board is pc-amd64, arm64-efi or arm64-uboot, not 'riscv'"],
  ['demo', ['--fast'], 'demo: unknown option --fast (try --help)'],
  ['demo', ['--product', 'drone'], "demo: --product is reference, kiosk or robot, not 'drone'"],
  ['demo', ['--product', 'kiosk', '--board', 'arm64-uboot'], 'demo: the kiosk is built for pc-amd64 and arm64-efi, not arm64-uboot'],
  ['demo', ['--product', 'robot', '--board', 'arm64-efi'], 'demo: the robot is built for pc-amd64 and arm64-uboot, not arm64-efi'],
  ['reference-images', ['--out'], 'reference-images: --out needs a folder'],
  ['reference-images', ['riscv'], 'reference-images: unknown board or option: riscv (boards: pc-amd64 arm64-efi arm64-uboot, the robot on robot-pc-amd64 robot-arm64-uboot, the kiosk on kiosk-pc-amd64 kiosk-arm64-efi, and their twins BOARD-dangerous)'],
  ['reference-images', ['kiosk-arm64-uboot'], 'reference-images: unknown board or option: kiosk-arm64-uboot (boards: pc-amd64 arm64-efi arm64-uboot, the robot on robot-pc-amd64 robot-arm64-uboot, the kiosk on kiosk-pc-amd64 kiosk-arm64-efi, and their twins BOARD-dangerous)'],
  ['bench', ['nope'], "bench: unknown section 'nope' (sections: assertions boot compose kiosk resolve robot update)"],
];
test('bundles/build OUT NAME of a folder that is not a bundle: exit 2 before building anything', () => {
  const r = spawnSync(join(ROOT, 'bundles/build'), [join(empty, 'out'), 'busybox-base', 'no-such-bundle'], { encoding: 'utf8' });
  expect([r.status, r.stderr.trim(), r.stdout]).toEqual([2, 'bundles/build: no bundle folder bundles/no-such-bundle (with meta/snap.yaml or BASE.yaml)', '']);
});

test.each(USAGE)('%s %j: exit 2, "%s"', (name, args, message) => {
  const r = script(name, args);
  expect([r.status, r.stderr.trim(), r.stdout]).toEqual([2, message, '']);
});
