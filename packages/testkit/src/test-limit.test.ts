/**
 * scripts/test's time limit per project: a project past it is stopped, the files it did not finish
 * are named, and the run counts a failure (a test whose main thread blocks — a deadlock in native
 * code — fires no jest timeout: without the limit, CI waits for its own). Runs the real script on
 * this very file with EDGEIMAGE_TEST_LIMIT_PROBE set, which makes it block its main thread, and
 * with a results folder of its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';

const SELF = 'packages/testkit/src/test-limit.test.ts';
const QUICK = 'packages/testkit/src/model-revision.test.ts';

if (process.env['EDGEIMAGE_TEST_LIMIT_PROBE'] === '1') {
  test('the probe: a main thread blocked for 120 s, as by a deadlock', () => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  }, 180_000);
} else {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgeimage-test-limit-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (file: string, limit: string, probe: boolean) => spawnSync(join(REPO, 'scripts/test'), ['--fast', file], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, EDGEIMAGE_FAST_LIMIT: limit, EDGEIMAGE_TEST_RESULTS: join(dir, `${limit}-${probe}`), EDGEIMAGE_TEST_LIMIT_PROBE: probe ? '1' : '' },
    timeout: 240_000,
  });

  test('a blocked test past the limit: stopped, its file named, one failure counted; a quick file within it passes', () => {
    const stopped = run(SELF, '5s', true);
    const lines = stopped.stdout.trimEnd().split('\n');
    expect(stopped.status).not.toBe(0);
    expect(lines).toContain('the fast project ran past its limit of 5s and was stopped (a test hung?); its files that did not finish:');
    expect(lines).toContain(`  ${SELF}`);
    expect(lines.at(-1)).toBe('0 passed, 1 failed, 0 skipped');
    // (a limit no quick run reaches, even on a loaded machine)
    const passed = run(QUICK, '3m', false);
    expect([passed.status, passed.stdout.trimEnd().split('\n').at(-1)]).toEqual([0, expect.stringMatching(/^[1-9]\d* passed, 0 failed, 0 skipped$/)]);
    expect(passed.stdout).not.toContain('ran past its limit');
  }, 300_000);
}
