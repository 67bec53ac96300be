/**
 * The update scenarios of the three reference boards, end to end: `scripts/scenarios --board B
 * --json F` builds a fresh image (model revision 1) and its updates (good, broken, tampered,
 * downgrade, wrong model) with `edgeimage update create`, and runs every scenario under QEMU with
 * `edgeimage boot-test --scenario`. Each board is one test; the report must show every scenario
 * passed, with the slots where they should be:
 *   update → healthy on b, edge_slot=b;  rollback → healthy on a, edge_failed_slot=b;
 *   refusals (bad-signature, bad-digest, downgrade, wrong-model) → every boot on a;
 *   power-cut → every crash point ends healthy on a or b.
 * Time (2 cores, two QEMUs at once with --jobs 2): ~9 min for pc-amd64 with every crash point,
 * ~4–6 min per arm64 board. Power-cut over every point runs on pc-amd64; the arm64 boards run two
 * (env-between-copies: their bootloader reads a redundant environment whose copies differ;
 * try-before-commit: their bootloader's rollback), to keep the whole suite within its budget.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-system-aarch64', ['--version']).status === 0;

const ALL_POINTS = ['mid-slot-write', 'after-slot-write', 'env-between-copies', 'after-env', 'try-before-commit'];
const BOARDS: { board: string; points: string[]; minutes: number }[] = [
  { board: 'pc-amd64', points: ALL_POINTS, minutes: 30 },
  { board: 'arm64-efi', points: ['env-between-copies', 'try-before-commit'], minutes: 25 },
  { board: 'arm64-uboot', points: ['env-between-copies', 'try-before-commit'], minutes: 25 },
];

interface Step {
  name: string;
  point?: string;
  slot: 'a' | 'b' | null;
  outcome: string;
  passed: boolean;
  markers: { pattern: string; seconds: number; line: string }[];
}
interface Entry {
  name: string;
  passed: boolean;
  slot: 'a' | 'b' | null;
  steps: Step[];
  env: Record<string, string>;
  checks: { name: string; passed: boolean; detail: string }[];
  powerCut?: { point: string; passed: boolean; slot: 'a' | 'b' | null; why: string }[];
  failures?: { point?: string; reason: string; code: string; tail: string | null }[];
}
interface Report {
  board: string;
  passed: boolean;
  scenarios: Entry[];
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'edgeimage-scenarios-test-'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs the script (not synchronously: jest's timeout stays in charge); its stderr is the progress. */
function scenarios(args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(join(ROOT, 'scripts/scenarios'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

(hasQemu ? describe.each(BOARDS) : describe.skip.each(BOARDS))('$board', ({ board, points, minutes }) => {
  test(`update, rollback, bad-signature, bad-digest, downgrade, wrong-model and power-cut (${points.length === ALL_POINTS.length ? 'every crash point' : points.join(', ')}) pass`, async () => {
    const json = join(work, `${board}.json`);
    const out = await scenarios(['--board', board, '--json', json, '--crash-at', points.join(','), '--jobs', '2'], (minutes - 1) * 60_000);
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
    expect(Object.keys(by).sort()).toEqual(['bad-digest', 'bad-signature', 'downgrade', 'power-cut', 'rollback', 'update', 'wrong-model']);

    // update: applied from slot a, then every later boot on b; the environment names b
    const u = by['update']!;
    expect(u.steps.map((s) => [s.slot, s.outcome])).toEqual([['a', 'applied'], ['b', 'healthy'], ['b', 'healthy']]);
    expect(u.steps[1]!.markers.map((m) => m.line).join('\n')).toMatch(/committed slot b/);
    expect(u.slot).toBe('b');
    expect(u.env).toMatchObject({ edge_slot: 'b', edge_status: '', edge_try_slot: '' });

    // rollback: the try of b is never healthy, the bootloader goes back to a and records b
    const r = by['rollback']!;
    expect(r.steps.map((s) => [s.slot, s.outcome])).toEqual([['a', 'applied'], ['b', 'not-committed'], ['a', 'rolled-back']]);
    expect(r.slot).toBe('a');
    expect(r.env).toMatchObject({ edge_slot: 'a', edge_failed_slot: 'b', edge_status: '' });

    // refusals: nothing written, every boot on a
    for (const name of ['bad-signature', 'bad-digest', 'downgrade', 'wrong-model']) {
      const e = by[name]!;
      expect([name, e.steps.map((s) => [s.slot, s.outcome])]).toEqual([name, [['a', 'refused'], ['a', 'healthy']]]);
      expect(e.checks.filter((c) => /unchanged/.test(c.name)).map((c) => c.passed)).toEqual([true, true]);
      expect(e.env).toMatchObject({ edge_slot: 'a', edge_status: '' });
    }

    // power-cut: each point ends healthy on a slot, a or b — never neither
    const p = by['power-cut']!;
    expect(p.powerCut!.map((x) => x.point)).toEqual(points);
    for (const x of p.powerCut!) {
      expect([x.point, x.passed]).toEqual([x.point, true]);
      expect(['a', 'b']).toContain(x.slot);
    }
    // the points that cannot have changed the boot environment stay on a; try-before-commit rolls back
    for (const x of p.powerCut!) if (['mid-slot-write', 'after-slot-write', 'try-before-commit'].includes(x.point)) expect([x.point, x.slot]).toEqual([x.point, 'a']);
    for (const x of p.powerCut!) if (x.point === 'after-env') expect([x.point, x.slot]).toEqual([x.point, 'b']);
  }, minutes * 60_000);
});

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the scenarios are skipped', () => undefined);
