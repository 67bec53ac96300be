/**
 * The update scenarios of the three reference boards and the reference robot, end to end, as the
 * scenarios-*.qemu.test.ts files run them (one file per board or two, so that jest spreads them over
 * the cores; each with its own copy of the reference store): `scripts/scenarios --board B
 * --json F` builds a fresh image (model revision 1) and the updates its scenarios need (good,
 * broken, tampered, downgrade, wrong model) with `edgeimage update create`, and runs them under
 * QEMU with `edgeimage boot-test --scenario`. Each board is one test; the report must show every
 * scenario passed, with the slots where they should be:
 *   update → healthy on b, edge_slot=b;  rollback → healthy on a, edge_failed_slot=b;
 *   refusals (bad-signature, bad-digest, downgrade, wrong-model, aliased-manifest) → every boot on a;
 *   power-cut → every crash point ends healthy on a or b.
 * Which board runs what (the full matrix on every board stays `scripts/scenarios --board B`):
 *   pc-amd64 (x86 TCG, the fastest): every scenario, every refusal and every crash point — the
 *     refusals and mid-slot-write/after-slot-write are the device's edge-update alone, the same
 *     script on every board;
 *   arm64-efi (AAVMF, the same grub.cfg as pc): update, bad-digest (the slot hashed by the arm64
 *     binaries), power-cut after-env (GRUB on arm64 tries and commits the new slot) and
 *     try-before-commit (GRUB on arm64 rolls back an uncommitted try);
 *   arm64-uboot (U-Boot's own boot script and environment reader): update, wrong-model,
 *     power-cut env-between-copies (which copy U-Boot's reader takes) and try-before-commit
 *     (U-Boot rolls back an uncommitted try).
 *   robot-pc-amd64 (the reference robot: a Debian base, systemd, robot-sensor's python3 services):
 *     rollback (a robot-sensor whose services exit at once: systemd restarts them to their start
 *     limit, the health check gives up, the bootloader goes back to a) and power-cut after-env
 *     (the try and commit through the agent on systemd); its update scenario, with the HTTP
 *     answers of the updated service, is robot.qemu.test.ts' on both of the robot's boards
 *     (`scripts/scenarios --board robot-pc-amd64` runs update, rollback and power-cut: 999 s under
 *     a load of 3–4, boots 253 + 299 + 138 s).
 * The rollback scenario (an update never healthy) runs on pc-amd64 and on the robot: what it adds to
 * try-before-commit is the device's health check giving up (60 s), the same script on every
 * board; each bootloader's rollback is proven by try-before-commit on its board.
 * The images are verified (built with --boot-keys): update, rollback and the refusals boot under
 * Secure Boot on the UEFI boards, power-cut on the grade dangerous twin without it (its hooks).
 * tamper (a changed copy of the verified image booted with reboots allowed; the full list is
 * `scripts/scenarios --only tamper`), the cheapest meaningful cases per board:
 *   pc-amd64: bootloader (a byte of BOOTX64.EFI: the firmware refuses it), other-brand (firmware
 *     enrolled with another key set refuses the image), resigned (slot a's UKI and its GRUB
 *     signature by another key: GRUB refuses, slot b in the same start), base-byte (dm-verity in
 *     the initramfs fails slot a three times, then b);
 *   arm64-efi: initrd (a byte of the signed initramfs in the UKI: GRUB refuses it);
 *   arm64-uboot: unsigned (the FIT without its configuration signature: bootm refuses it),
 *     app-byte (dm-verity on arm64).
 * So each crash point, each refusal, each scenario and each board is covered. The reference store is built once
 * (`scripts/reference-images --store-only`) and each board starts from a copy of it (`--ref`);
 * pc-amd64's build is kept for the bad-sector test, which boots its image and good update.
 * Time (2 cores, load 1–4, two QEMUs at once with --jobs 2): 594 s in all — pc-amd64 343 s,
 * arm64-efi 112 s, arm64-uboot 88 s, the bad-sector test 38 s; the reference store a few seconds
 * when the bundles are already built (minutes on a clean clone, where this file builds them).
 * Under a load of 7–10: pc-amd64 552 s, arm64-efi 224 s, arm64-uboot 120 s. Every board at every
 * point was 987 s of boots on CI (1128–1210 s for the file).
 * Verified images with Secure Boot and the tamper cases (load 3–5, 2026-12-04): pc-amd64 524 s,
 * arm64-efi 170 s, arm64-uboot 226 s; of that the tamper cases 217 s of boots (pc-amd64
 * bootloader 6.5 s, other-brand 3.9 s, resigned 24 s, base-byte 70 s; arm64-efi initrd 19 s;
 * arm64-uboot unsigned 21 s, app-byte 71 s), run beside the other scenarios with --jobs 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRASH_POINTS } from '@edgeimage/qemu';
import { REPO } from './repo.js';

export const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-system-aarch64', ['--version']).status === 0;

// the device contract's list: a new crash point is run on pc-amd64 without editing this file
export const ALL_POINTS: string[] = [...CRASH_POINTS];
export const REFUSALS = ['bad-signature', 'bad-digest', 'downgrade', 'wrong-model', 'aliased-manifest'];
/** How each tamper case must end: the firmware refuses the bootloader, or slot a fails and b is healthy. */
export const REFUSED_BY_FIRMWARE = ['bootloader', 'other-brand'];
/**
 * Guests `scripts/scenarios` runs at once (--jobs). scripts/test runs the QEMU test files on every
 * core and sets it to 1, so that the cores hold one guest each; alone, a board's file runs two.
 */
const SCENARIO_JOBS = process.env.EDGEIMAGE_SCENARIO_JOBS ?? '2';

/** What a board runs (see the header): `only` in scripts/scenarios' order, power-cut's points in CRASH_POINTS' order. */
export interface BoardScenarios {
  board: string;
  only: string[];
  points: string[];
  tamper: string[];
  minutes: number;
  /** Keep the board's build folder (image, updates) for a later test of the file: world.boardWork(board). */
  keepWork?: boolean;
}

/** The matrix, one entry per board (the files pick theirs). */
export const SCENARIO_BOARDS = {
  'pc-amd64': { board: 'pc-amd64', only: ['update', 'rollback', ...REFUSALS, 'power-cut', 'tamper'], points: ALL_POINTS, tamper: ['bootloader', 'other-brand', 'resigned', 'base-byte'], minutes: 45, keepWork: true },
  'arm64-efi': { board: 'arm64-efi', only: ['update', 'bad-digest', 'power-cut', 'tamper'], points: ['after-env', 'try-before-commit'], tamper: ['initrd'], minutes: 25 },
  'arm64-uboot': { board: 'arm64-uboot', only: ['update', 'wrong-model', 'power-cut', 'tamper'], points: ['env-between-copies', 'try-before-commit'], tamper: ['unsigned', 'app-byte'], minutes: 25 },
  // the reference robot: a Debian base with systemd (its services from the agent's generator, its
  // health from systemd and the app's health-command); the updates change robot-sensor
  'robot-pc-amd64': { board: 'robot-pc-amd64', only: ['rollback', 'power-cut'], points: ['after-env'], tamper: [], minutes: 25 },
  // the network updates (issue 15): one QEMU per board, its reboots followed, the store served by
  // the host through 10.0.2.100 (scripts/scenarios --only ota; packages/qemu/src/ota-scenario.ts)
  'ota-pc-amd64': { board: 'pc-amd64', only: ['ota'], points: [], tamper: [], minutes: 30 },
  'ota-arm64-uboot': { board: 'arm64-uboot', only: ['ota'], points: [], tamper: [], minutes: 35 },
} satisfies Record<string, BoardScenarios>;

/** The over-the-air scenario's console steps, in order (packages/qemu/src/ota-scenario.ts): each must be seen. */
export const OTA_STEPS = [
  'boot 1: healthy on slot a',
  'an expired pointer: refused',
  'a pointer signed by another key: refused',
  'revision 2 at rollout 0: not taken',
  'the connection cut half-way',
  'resumed where it stopped',
  'boot 2: committed',
  'a pointer to revision 1: refused',
  'boot 3: revision 3 is never healthy',
  'revision 3 is not tried again',
  'revision 4 as a trickle: given up, kept for later',
  'revision 4 with a byte changed: discarded',
  'revision 4 as an endless stream: stopped at its size, verified',
  'boot 5: healthy on slot a (revision 4)',
];

export interface Step {
  name: string;
  point?: string;
  slot: 'a' | 'b' | null;
  outcome: string;
  passed: boolean;
  markers: { pattern: string; seconds: number; line: string }[];
}
export interface Entry {
  name: string;
  passed: boolean;
  slot: 'a' | 'b' | null;
  steps: Step[];
  env: Record<string, string>;
  checks: { name: string; passed: boolean; detail: string }[];
  powerCut?: { point: string; passed: boolean; slot: 'a' | 'b' | null; why: string }[];
  tamper?: { case: string; passed: boolean; slot: 'a' | 'b' | null; seconds: number; why: string; failed: string[] }[];
  failures?: { point?: string; reason: string; code: string; tail: string | null }[];
  update: { model: string | null } | null;
}
export interface Report {
  board: string;
  passed: boolean;
  scenarios: Entry[];
}

/** A file's temporary folder and its copy of the reference store (`scripts/reference-images --store-only`). */
export interface ScenarioWorld {
  work(): string;
  ref(): string;
  /** A board's kept build folder (BoardScenarios.keepWork). */
  boardWork(board: string): string;
}

/**
 * Registers the beforeAll (the reference store, built once per file) and afterAll (removed) of a
 * scenario file. `boards`: whose bundles the store needs (the robot's Debian bases are built only
 * for a robot board; default the three reference boards).
 */
export function useScenarioWorld(boards: string[] = []): ScenarioWorld {
  let work: string | undefined;
  let ref: string | undefined;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'edgeimage-scenarios-test-'));
    if (!hasQemu) return;
    const out = await runScript(join(REPO, 'scripts/reference-images'), ['--out', join(work, 'ref'), '--store-only', ...boards], 15 * 60_000);
    if (out.status !== 0) throw new Error(`scripts/reference-images --store-only failed (exit ${out.status}):\n${out.stderr.split('\n').slice(-40).join('\n')}`);
    ref = join(work, 'ref');
  }, 16 * 60_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });
  const must = (v: string | undefined, what: string) => {
    if (!v) throw new Error(`the scenario world has no ${what}: its beforeAll did not run or failed`);
    return v;
  };
  return { work: () => must(work, 'work folder'), ref: () => must(ref, 'reference store'), boardWork: (board) => join(must(work, 'work folder'), `${board}.work`) };
}

/** Runs a script (not synchronously: jest's timeout stays in charge); its stderr is the progress. */
export function runScript(script: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

const explain = (r: Report | undefined, out: { stdout: string; stderr: string }) =>
  JSON.stringify(r?.scenarios.filter((e) => !e.passed).map((e) => ({ name: e.name, failures: e.failures, checks: e.checks.filter((c) => !c.passed) })) ?? null, null, 2) +
  `\n--- table ---\n${out.stdout}\n--- last progress lines ---\n${out.stderr.split('\n').slice(-40).join('\n')}`;

const title = (only: string[], points: string[], tamper: string[]) =>
  only.map((s) => (s === 'power-cut' ? `power-cut (${points.length === ALL_POINTS.length ? `every crash point: ${points.join(', ')}` : points.join(', ')})` : s === 'tamper' ? `tamper (${tamper.join(', ')})` : s)).join(', ');

/** Registers the test of one board: scripts/scenarios runs its scenarios, and the report must show each ending where it should (see the header). */
export function describeBoardScenarios(spec: BoardScenarios, world: ScenarioWorld): void {
  const { board, only, points, tamper, minutes } = spec;
  (hasQemu ? describe : describe.skip)(only.join(' ') === 'ota' ? `${board} over the air` : board, () => {
  test(`${title(only, points, tamper)} pass`, async () => {
    const json = join(world.work(), `${board}.json`);
    const keepBuild = spec.keepWork ? ['--work', world.boardWork(board)] : [];
    const out = await runScript(join(REPO, 'scripts/scenarios'), ['--board', board, '--ref', world.ref(), '--json', json, '--only', only.join(','), ...(points.length ? ['--crash-at', points.join(',')] : []), ...(tamper.length ? ['--tamper-cases', tamper.join(',')] : []), '--jobs', SCENARIO_JOBS, ...keepBuild], (minutes - 1) * 60_000);
    let report: Report | undefined;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    } catch {
      /* explained below */
    }
    expect(report ? '' : `no report (exit ${out.status})`).toBe('');
    const failed = report!.scenarios.filter((e) => !e.passed).map((e) => e.name);
    if (failed.length) throw new Error(`scenarios failed on ${board}: ${failed.join(', ')}\n${explain(report, out)}`);
    expect(out.status).toBe(0);
    expect(report!.passed).toBe(true);
    // an empty variable may be left out of a copy (U-Boot's `env export` skips them): as empty
    const by = Object.fromEntries(report!.scenarios.map((e) => [e.name, { ...e, env: { edge_slot: '', edge_try_slot: '', edge_status: '', edge_failed_slot: '', ...e.env } }]));
    expect(Object.keys(by).sort()).toEqual([...only].sort());

    // update: applied from slot a, then every later boot on b; the environment names b
    const u = by['update'];
    if (only.includes('update')) {
      expect(u!.steps.map((s) => [s.slot, s.outcome])).toEqual([['a', 'applied'], ['b', 'healthy'], ['b', 'healthy']]);
      expect(u!.steps[1]!.markers.map((m) => m.line).join('\n')).toMatch(/committed slot b/);
      expect(u!.slot).toBe('b');
      expect(u!.env).toMatchObject({ edge_slot: 'b', edge_status: '', edge_try_slot: '' });
    }

    // rollback: the try of b is never healthy, the bootloader goes back to a and records b
    const r = by['rollback'];
    if (only.includes('rollback')) {
      expect(r!.steps.map((s) => [s.slot, s.outcome])).toEqual([['a', 'applied'], ['b', 'not-committed'], ['a', 'rolled-back']]);
      expect(r!.slot).toBe('a');
      expect(r!.env).toMatchObject({ edge_slot: 'a', edge_failed_slot: 'b', edge_status: '' });
    }

    // refusals: nothing written, every boot on a
    for (const name of REFUSALS.filter((n) => only.includes(n))) {
      const e = by[name]!;
      expect([name, e.steps.map((s) => [s.slot, s.outcome])]).toEqual([name, [['a', 'refused'], ['a', 'healthy']]]);
      expect(e.checks.filter((c) => /unchanged/.test(c.name)).map((c) => c.passed)).toEqual([true, true]);
      expect(e.env).toMatchObject({ edge_slot: 'a', edge_status: '' });
    }

    // the signed model's image for update, rollback and the refusals; its grade dangerous twin
    // (the only one with the crash points) for power-cut
    for (const name of ['update', 'rollback', 'bad-signature', 'bad-digest', 'downgrade'].filter((n) => only.includes(n))) expect([name, by[name]!.update?.model]).toEqual([name, board]);
    if (only.includes('power-cut')) {
      expect(by['power-cut']!.update?.model).toBe(`${board}-dangerous`);
      // power-cut: each point ends healthy on a slot, a or b — never neither
      const p = by['power-cut']!;
      expect(p.powerCut!.map((x) => x.point)).toEqual(points);
      expect(points.length).toBeGreaterThan(0);
      for (const x of p.powerCut!) {
        expect([x.point, x.passed]).toEqual([x.point, true]);
        expect(['a', 'b']).toContain(x.slot);
      }
      // the points that cannot have changed the boot environment stay on a; try-before-commit rolls back
      for (const x of p.powerCut!) if (['mid-slot-write', 'after-slot-write', 'try-before-commit'].includes(x.point)) expect([x.point, x.slot]).toEqual([x.point, 'a']);
      for (const x of p.powerCut!) if (x.point === 'after-env') expect([x.point, x.slot]).toEqual([x.point, 'b']);
    }

    // over the air: every step seen in order, the checks of the store's side passed (the resumed
    // download within 10 % of the delta), the device ends on revision 4 in slot a
    const o = by['ota'];
    if (only.includes('ota')) {
      const seen = o!.steps.map((s) => s.name);
      expect(OTA_STEPS.filter((n) => !seen.includes(n))).toEqual([]);
      expect(o!.checks.map((c) => [c.name, c.passed])).toEqual([
        ['the bytes fetched in all are within 10 % of the delta', true],
        ['the second request asked for the rest (Range, 206)', true],
        ['the endless stream: more was sent than the size, the device kept the size', true],
      ]);
      for (const c of o!.checks) console.log(`${board} ota: ${c.name}: ${c.detail}`);
      expect(o!.slot).toBe('a');
    }

    // tamper: each case on its own changed copy; the firmware refuses a changed or foreign
    // bootloader, a changed slot a is left for slot b (edge_failed_slot=a read from the disk)
    const t = by['tamper'];
    expect(t?.tamper?.map((x) => x.case) ?? []).toEqual(tamper);
    for (const x of t?.tamper ?? []) {
      console.log(`${board} tamper ${x.case}: ${x.why} in ${x.seconds} s${x.failed.length ? `; ${x.failed.join('; ')}` : ''}`);
      expect([x.case, x.passed]).toEqual([x.case, true]);
      if (REFUSED_BY_FIRMWARE.includes(x.case)) expect([x.case, x.why]).toEqual([x.case, 'ERR_SECURE_BOOT_REFUSED']);
      else expect([x.case, x.slot, x.why]).toEqual([x.case, 'b', 'healthy on b, edge_failed_slot=a']);
    }
  }, minutes * 60_000);
});
}
