/**
 * scripts/test's time limit per project: a project past it is stopped, the files it did not finish
 * are named, and the run counts a failure (a test whose main thread blocks — a deadlock in native
 * code — fires no jest timeout: without the limit, CI waits for its own). And a signal to the
 * script reaches jest (which runs in timeout's process group). Runs the real script on this very
 * file with EDGEIMAGE_TEST_LIMIT_PROBE set, which makes it block its main thread, with a results
 * folder of its own and without the set-up (done by the run around it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';

const SELF = 'packages/testkit/src/test-limit.test.ts';
const QUICK = 'packages/testkit/src/model-revision.test.ts';

if (process.env['EDGEIMAGE_TEST_LIMIT_PROBE'] === '1') {
  test('the probe: a main thread blocked for 120 s, as by a deadlock', () => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  }, 180_000);
} else if (process.env['EDGEIMAGE_TEST_LIMIT_PROBE'] === 'linger') {
  test('the probe: passes, and leaves a timer running in jest\'s own process (it runs one file alone)', () => {
    setInterval(() => undefined, 1000);
  });
} else if (process.env['EDGEIMAGE_TEST_LIMIT_PROBE'] === 'crash') {
  test("the probe: jest's main process killed, as by a crash, once the quick file's result is kept", async () => {
    // (a worker's parent is jest's main process; the reporter's file is named in the environment)
    const partial = process.env['EDGEIMAGE_PARTIAL_RESULTS'] ?? '';
    for (let i = 0; i < 1200 && !(existsSync(partial) && readFileSync(partial, 'utf8').includes('model-revision.test.ts')); i++) await new Promise((r) => setTimeout(r, 100));
    // (never another process: the parent must be jest's)
    expect(readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8')).toContain('node_modules/jest/bin/jest.js');
    // (this worker's pid, for the test to see it gone with the run)
    writeFileSync(join(process.env['EDGEIMAGE_TEST_RESULTS'] ?? '', 'probe.pid'), String(process.pid));
    process.kill(process.ppid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 60_000));
  }, 180_000);
} else {
  let dir: string;
  let n = 0;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgeimage-test-limit-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The script's environment: a results folder of its own (its path marks the run's processes). */
  const env = (limitS: number, probe: boolean | 'crash' | 'linger', extra: Record<string, string> = {}) => ({
    ...process.env, EDGEIMAGE_SKIP_SETUP: '1', EDGEIMAGE_FAST_LIMIT_S: String(limitS), EDGEIMAGE_TEST_RESULTS: join(dir, `run-${++n}`), EDGEIMAGE_TEST_LIMIT_PROBE: probe === true ? '1' : probe || '', ...extra,
  });
  const run = (files: string[], limitS: number, probe: boolean | 'crash' | 'linger', extra: Record<string, string> = {}) =>
    spawnSync(join(REPO, 'scripts/test'), ['--fast', ...files], { cwd: REPO, encoding: 'utf8', env: env(limitS, probe, extra), timeout: 200_000 });
  /** Processes whose command line names the folder (jest's --outputFile does). */
  const processesOf = (folder: string) => spawnSync('pgrep', ['-f', folder], { encoding: 'utf8' }).stdout.trim();

  test('a blocked test past the limit: stopped, its file named (not the quick one that finished), one failure counted; the quick file alone passes', () => {
    // Both files on workers of their own, at once: jest runs a short list in its own process, one
    // file after the other, when its cache knows only fast times for it (the quick file's, on a
    // clean clone before this file ever finished), and the probe, first, then blocks the quick file
    // out. A cache of its own knows no times. 30 s: the quick file's worker, under the load of the
    // run around it, is done well before (CI's clean clone, twice).
    const stopped = run([QUICK, SELF, '--cacheDirectory', join(dir, 'cache')], 30, true, { EDGEIMAGE_TEST_WORKERS: '2' });
    const lines = stopped.stdout.trimEnd().split('\n');
    expect(stopped.status).not.toBe(0);
    expect(stopped.stderr).toMatch(/PASS.*fast.*model-revision\.test\.ts/);
    const at = lines.indexOf('the fast project ran past its limit of 30 s and was stopped (a test hung?); its files that did not finish:');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toBe(`  ${SELF}`);
    // the quick file's tests still counted (jest wrote no result: scripts/jest-partial-reporter.mjs
    // kept each file's as it ended), the stop one failure
    expect(lines.slice(at + 2)).toEqual(['project fast: 1 files, wall ' + lines[at + 2]?.split(' wall ')[1], 'slowest 1 test files:', expect.stringMatching(/^ +[\d.ms]+ {2}fast {2}packages\/testkit\/src\/model-revision\.test\.ts$/), expect.stringMatching(/^[1-9]\d* passed, 1 failed, 0 skipped$/)]);
    const passed = run([QUICK], 180, false);
    expect([passed.status, passed.stdout.trimEnd().split('\n').at(-1)]).toEqual([0, expect.stringMatching(/^[1-9]\d* passed, 0 failed, 0 skipped$/)]);
    expect(passed.stdout).not.toContain('ran past its limit');
    // as many as the quick file alone passes
    expect(lines.at(-1)?.split(' ')[0]).toBe(passed.stdout.trimEnd().split('\n').at(-1)?.split(' ')[0]);
  }, 420_000);

  test("a jest that dies without writing its results: the tests of the files that ended are counted, and one failure", () => {
    const r = run([QUICK, SELF, '--cacheDirectory', join(dir, 'cache-crash')], 120, 'crash', { EDGEIMAGE_TEST_WORKERS: '2' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(r.status).not.toBe(0);
    const at = lines.indexOf('jest ended the fast project with status 137 without writing its results: the tests of the files that ended are counted, and one failure; its files that did not finish:');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toBe(`  ${SELF}`);
    expect(lines.at(-1)).toMatch(/^[1-9]\d* passed, 1 failed, 0 skipped$/);
    expect(r.stdout).not.toContain('ran past its limit');
    // the orphaned worker (its parent killed) went with the run's process group (gone, or a zombie
    // where PID 1 reaps no orphans, as in some containers)
    const probe = Number(readFileSync(join(dir, `run-${n}`, 'probe.pid'), 'utf8'));
    const state = existsSync(`/proc/${probe}/status`) ? /^State:\s+(\S)/m.exec(readFileSync(`/proc/${probe}/status`, 'utf8'))?.[1] : 'gone';
    expect(['gone', 'Z']).toContain(state);
  });

  test('a jest that ran every file but does not exit (an open handle) is stopped at the limit: its result kept, one failure', () => {
    const r = run([SELF], 12, 'linger');
    const lines = r.stdout.trimEnd().split('\n');
    expect(r.status).not.toBe(0);
    expect(lines).toContain('the fast project ran past its limit of 12 s and was stopped: its test files had all ended, but jest did not exit (an open handle?)');
    expect(lines.at(-1)).toBe('1 passed, 1 failed, 0 skipped');
  });

  test('a results folder that cannot be made is refused at once, with one failure', () => {
    const r = run([QUICK], 180, false, { EDGEIMAGE_TEST_RESULTS: '/dev/null/results' });
    expect([r.status, r.stderr.trimEnd().split('\n').at(-1), r.stdout.trimEnd()]).toEqual([1, 'scripts/test: the results folder /dev/null/results cannot be made or entered', '0 passed, 1 failed, 0 skipped']);
  });

  test("a run whose deadline leaves a project no time does not start it, and counts it as a failure", () => {
    // (the deadline less the summary's 2 minutes is below zero: jest is never started)
    const r = run([QUICK], 180, false, { EDGEIMAGE_TEST_DEADLINE_S: '100' });
    expect([r.status, r.stdout.trimEnd().split('\n').slice(-2)]).toEqual([1, ["the fast project was not run: the run's deadline (100 s) is reached", '0 passed, 1 failed, 0 skipped']]);
  });

  test('SIGTERM to the script stops jest and its workers too, and the run says it was interrupted', async () => {
    const e = env(600, true);
    const child = spawn(join(REPO, 'scripts/test'), ['--fast', SELF], { cwd: REPO, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // jest is up once its process names the results folder; then the probe blocks its worker
    for (let i = 0; i < 600 && !processesOf(e.EDGEIMAGE_TEST_RESULTS); i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesOf(e.EDGEIMAGE_TEST_RESULTS)).not.toBe('');
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGTERM');
    expect([await exited, err.slice(-2000) && out.trimEnd().split('\n').slice(-2)]).toEqual([130, ['scripts/test: interrupted during the fast project', '0 passed, 1 failed, 0 skipped']]);
    // nothing of the run is left: jest's main process, and the worker blocked in the probe (killed)
    expect(processesOf(e.EDGEIMAGE_TEST_RESULTS)).toBe('');
  }, 120_000);
}
