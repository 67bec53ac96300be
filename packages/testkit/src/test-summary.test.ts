/**
 * scripts/test-summary.mjs, the end of scripts/test that CI reads: fed a synthetic jest --json
 * result, run as scripts/test runs it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';

const SCRIPT = join(REPO, 'scripts/test-summary.mjs');
const ROOT = '/repo';
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-test-summary-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Assertion {
  fullName: string;
  status: 'passed' | 'failed' | 'pending' | 'todo' | 'disabled';
  invocations?: number;
  retryReasons?: string[];
}
interface Suite {
  name: string;
  status: 'passed' | 'failed' | 'pending' | 'focused';
  message?: string;
  startTime: number;
  endTime: number;
  assertionResults: Assertion[];
}

let n = 0;
function summary(testResults: Suite[], top: Record<string, unknown> = {}, args: string[] = []): { status: number | null; lines: string[]; stderr: string } {
  const file = join(dir, `jest-${++n}.json`);
  // The counts jest itself puts at the top are deliberately wrong: the summary counts the tests.
  writeFileSync(file, JSON.stringify({ numPassedTests: 999, numFailedTests: 999, numPendingTests: 999, ...top, testResults }));
  const r = spawnSync(process.execPath, [SCRIPT, file, ROOT, ...args], { encoding: 'utf8' });
  return { status: r.status, lines: r.stdout.trimEnd().split('\n'), stderr: r.stderr };
}

const suite = (name: string, startTime: number, ms: number, assertionResults: Assertion[], extra: Partial<Suite> = {}): Suite => ({
  name: `${ROOT}/${name}`,
  status: assertionResults.some((a) => a.status === 'failed') ? 'failed' : 'passed',
  startTime,
  endTime: startTime + ms,
  assertionResults,
  ...extra,
});
const t = (fullName: string, status: Assertion['status'] = 'passed'): Assertion => ({ fullName, status });

describe('scripts/test-summary.mjs', () => {
  test('last line alone: passed, failed (failed tests + broken suites), skipped (skip and todo), the skipped tests named above it with their reasons', () => {
    const r = summary([
      suite('packages/a/src/a.test.ts', 1000, 2000, [t('a one'), t('a two'), t('a three', 'failed')]),
      suite('packages/b/src/b.test.ts', 1500, 500, [t('b boots [skipped: qemu-system-aarch64 is not installed]', 'pending'), t('b later', 'todo'), t('b ok')]),
      // Did not load (a syntax or import error): no test results at all.
      suite('packages/c/src/c.test.ts', 1600, 100, [], { status: 'failed', message: '\n  ● Test suite failed to run\n\n    Cannot find module' }),
      // Every test passed but an afterAll threw.
      suite('packages/d/test/d.qemu.test.ts', 1000, 60_000, [t('d boots')], { status: 'failed', message: 'afterAll: cleanup failed' }),
    ]);
    expect(r.status).toBe(0);
    expect(r.lines.at(-1)).toBe('4 passed, 3 failed, 2 skipped');
    expect(r.lines.slice(-3, -1)).toEqual([
      'skipped: packages/b/src/b.test.ts: b boots [skipped: qemu-system-aarch64 is not installed]',
      'skipped: packages/b/src/b.test.ts: b later',
    ]);
    expect(r.lines).toContain('broken suite: packages/c/src/c.test.ts: ● Test suite failed to run');
    expect(r.lines).toContain('broken suite: packages/d/test/d.qemu.test.ts: afterAll: cleanup failed');
  });

  test('jest failing outside the tests (success false, a runtime error) is one failure, never a clean line', () => {
    const passing = [suite('packages/a/src/a.test.ts', 1, 10, [t('x'), t('y')])];
    for (const top of [{ success: false }, { success: true, numRuntimeErrorTestSuites: 1 }]) {
      const r = summary(passing, top);
      expect([top, r.lines.at(-1)]).toEqual([top, '2 passed, 1 failed, 0 skipped']);
      expect(r.lines).toContain('jest reported a failure outside the tests (success false or a runtime error): counted as one failure');
    }
    expect(summary(passing, { success: true, numRuntimeErrorTestSuites: 0 }).lines.at(-1)).toBe('2 passed, 0 failed, 0 skipped');
  });

  test('a run with a name pattern (-t): the tests it does not match are counted as not run; a matching skip or todo is still a skipped test', () => {
    const results = [suite('packages/b/src/b.test.ts', 1, 10, [t('b alpha ok'), t('b other', 'pending'), t('b third', 'pending'), t('b alpha is disabled', 'pending'), t('b ALPHA todo', 'todo'), t('b boots [skipped: not root]', 'pending')])];
    const r = summary(results, {}, ['--filtered=alpha']);
    expect(r.lines.at(-1)).toBe('1 passed, 0 failed, 2 skipped');
    expect(r.lines.filter((l) => l.startsWith('skipped:'))).toEqual(['skipped: packages/b/src/b.test.ts: b alpha is disabled', 'skipped: packages/b/src/b.test.ts: b ALPHA todo']);
    expect(r.lines).toContain('3 tests not matching the name pattern (-t) were not run');
    // Without the pattern, every pending test is a skipped one.
    expect(summary(results).lines.at(-1)).toBe('1 passed, 0 failed, 5 skipped');
  });

  test('a run with a name pattern that ran no test is one failure, never a green line', () => {
    const r = summary([suite('packages/b/src/b.test.ts', 1, 10, [t('b one', 'pending'), t('b two', 'pending')])], { success: true }, ['--filtered=nosuchname']);
    expect(r.lines.at(-1)).toBe('0 passed, 1 failed, 0 skipped');
    expect(r.lines).toContain('no test matched the name pattern "nosuchname" and ran: counted as one failure');
  });

  test('all passing and nothing skipped still prints the three counts', () => {
    const r = summary([suite('packages/a/src/a.test.ts', 0 + 1, 10, [t('x'), t('y')])]);
    expect(r.lines.at(-1)).toBe('2 passed, 0 failed, 0 skipped');
    expect(r.lines.filter((l) => l.startsWith('skipped:'))).toEqual([]);
  });

  test('wall time per jest project (first start to last end) and the slowest files, slowest first', () => {
    const suites = [
      suite('packages/q/test/one.qemu.test.ts', 10_000, 200_000, [t('q1')]),
      suite('packages/q/test/two.qemu.test.ts', 100_000, 150_000, [t('q2')]),
      ...Array.from({ length: 11 }, (_, i) => suite(`packages/f/src/f${i}.test.ts`, 1_000 + i * 1_000, (i + 1) * 1_000, [t(`f${i}`)])),
    ];
    const r = summary(suites);
    // qemu: 10 s to 250 s; fast: 1 s to 11 s + 11 s = 22 s.
    expect(r.lines).toContain('project qemu: 2 files, wall 4m00.0s (first start to last end), 5m50.0s summed over files');
    expect(r.lines).toContain('project fast: 11 files, wall 21.0s (first start to last end), 1m06.0s summed over files');
    const at = r.lines.indexOf('slowest 10 test files:');
    expect(at).toBeGreaterThanOrEqual(0);
    const slowest = r.lines.slice(at + 1, at + 11).map((l) => l.trim().split(/\s+/));
    expect(slowest.map(([, , f]) => f)).toEqual([
      'packages/q/test/one.qemu.test.ts',
      'packages/q/test/two.qemu.test.ts',
      ...[10, 9, 8, 7, 6, 5, 4, 3].map((i) => `packages/f/src/f${i}.test.ts`),
    ]);
    expect(slowest[0]).toEqual(['3m20.0s', 'qemu', 'packages/q/test/one.qemu.test.ts']);
    expect(slowest[2]).toEqual(['11.0s', 'fast', 'packages/f/src/f10.test.ts']);
    expect(r.lines.at(-1)).toBe('13 passed, 0 failed, 0 skipped');
  });

  test('a test that needed a second attempt is named with its first error', () => {
    const r = summary([suite('packages/q/test/x.qemu.test.ts', 1, 10, [{ fullName: 'boots once', status: 'passed', invocations: 2, retryReasons: ['timed out waiting for "healthy"\n  at …'] }])]);
    expect(r.lines).toContain('retried (passed on attempt 2): boots once — first error: timed out waiting for "healthy"');
    expect(r.lines.at(-1)).toBe('1 passed, 0 failed, 0 skipped');
  });

  test('without a result file it is a usage error', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: test-summary\.mjs JEST_JSON/);
  });
});

describe('scripts/test-partial.mjs: what a project that wrote no result (stopped, crashed) still ran', () => {
  const PARTIAL = join(REPO, 'scripts/test-partial.mjs');
  test('the reporter lines of the files that ended, cut-off last line left out, summarized as scripts/test does: failed tests and broken suites counted once; the files without a line named', () => {
    const lines = [
      suite('packages/a/src/a.test.ts', 1000, 2000, [t('a one'), t('a two')]),
      suite('packages/b/src/b.test.ts', 1500, 500, [t('b one', 'failed'), t('b two'), t('b later [skipped: no qemu]', 'pending')]),
      suite('packages/c/src/c.test.ts', 1600, 100, [], { status: 'failed', message: '  ● Test suite failed to run\n\n    Cannot find module' }),
    ].map((x) => JSON.stringify(x));
    // not a file's result: JSON of another shape, and the last line cut short by the kill
    const text = [...lines, 'null', '{"name":42}', JSON.stringify(suite('packages/d/src/d.test.ts', 1, 1, [t('d')])).slice(0, 40)].join('\n');
    const from = join(dir, 'fast.partial.jsonl');
    const out = join(dir, 'fast.json');
    const list = join(dir, 'list');
    writeFileSync(from, text);
    writeFileSync(list, ['a/src/a.test.ts', 'd/src/d.test.ts', 'b/src/b.test.ts', 'c/src/c.test.ts', 'e/test/e.test.ts'].map((f) => `${ROOT}/packages/${f}`).join('\n') + '\n');
    const r = spawnSync(process.execPath, [PARTIAL, from, out, list, ROOT], { encoding: 'utf8' });
    expect([r.status, r.stderr, r.stdout]).toEqual([0, '', '  packages/d/src/d.test.ts\n  packages/e/test/e.test.ts\n']);
    const s = spawnSync(process.execPath, [SCRIPT, out, ROOT], { encoding: 'utf8' });
    const got = s.stdout.trimEnd().split('\n');
    expect(got).toContain('broken suite: packages/c/src/c.test.ts: ● Test suite failed to run');
    expect(got).toContain('skipped: packages/b/src/b.test.ts: b later [skipped: no qemu]');
    // (scripts/test adds the stop itself, once: "3 passed, 3 failed")
    expect(got.at(-1)).toBe('3 passed, 2 failed, 1 skipped');
  });

  test('only passing files: success, no failure of its own (the stop is counted by scripts/test); no file ended: no result written', () => {
    const from = join(dir, 'ok.partial.jsonl');
    writeFileSync(from, JSON.stringify(suite('packages/a/src/a.test.ts', 1, 10, [t('x')])) + '\n');
    expect(spawnSync(process.execPath, [PARTIAL, from, join(dir, 'ok.json')], { encoding: 'utf8' }).status).toBe(0);
    expect(spawnSync(process.execPath, [SCRIPT, join(dir, 'ok.json'), ROOT], { encoding: 'utf8' }).stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 0 failed, 0 skipped');
    writeFileSync(join(dir, 'cut.partial.jsonl'), '{"name":"/repo/packages/a/src/a.test.ts","sta');
    for (const from of ['no-such-file', 'cut.partial.jsonl']) {
      expect(spawnSync(process.execPath, [PARTIAL, join(dir, from), join(dir, `${from}.json`)], { encoding: 'utf8' }).status).toBe(0);
      expect(existsSync(join(dir, `${from}.json`))).toBe(false);
    }
  });
});

describe('scripts/test-merge.mjs: the projects\' results as one', () => {
  const MERGE = join(REPO, 'scripts/test-merge.mjs');
  const write = (name: string, testResults: Suite[], top: Record<string, unknown> = {}) => {
    const f = join(dir, name);
    writeFileSync(f, JSON.stringify({ success: true, numRuntimeErrorTestSuites: 0, ...top, testResults }));
    return f;
  };
  test('two results merged in order, summarized as one; a missing or empty one left out', () => {
    const fast = write('m-fast.json', [suite('packages/a/src/a.test.ts', 1, 10, [t('a one'), t('a two', 'failed')])], { success: false });
    const qemu = write('m-qemu.json', [suite('packages/q/test/q.qemu.test.ts', 20, 10, [t('q one'), t('q later', 'pending')])], { numRuntimeErrorTestSuites: 1 });
    writeFileSync(join(dir, 'm-empty.json'), '');
    const out = join(dir, 'm-out.json');
    const r = spawnSync(process.execPath, [MERGE, out, fast, join(dir, 'm-none.json'), join(dir, 'm-empty.json'), qemu], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const merged = JSON.parse(readFileSync(out, 'utf8')) as { success: boolean; numRuntimeErrorTestSuites: number; testResults: { name: string }[] };
    expect([merged.success, merged.numRuntimeErrorTestSuites, merged.testResults.map((x) => x.name)]).toEqual([false, 1, ['/repo/packages/a/src/a.test.ts', '/repo/packages/q/test/q.qemu.test.ts']]);
    expect(spawnSync(process.execPath, [SCRIPT, out, ROOT], { encoding: 'utf8' }).stdout.trimEnd().split('\n').at(-1)).toBe('2 passed, 1 failed, 1 skipped');
  });
  test('a result cut short (jest stopped as it wrote it) is named and left out, status 3, the other kept; none at all: no result written', () => {
    const fast = write('c-fast.json', [suite('packages/a/src/a.test.ts', 1, 10, [t('a one')])]);
    const cut = join(dir, 'c-qemu.json');
    writeFileSync(cut, readFileSync(fast, 'utf8').slice(0, 30));
    const other = join(dir, 'c-other.json');
    writeFileSync(other, '{"numPassedTests": 3}');
    const out = join(dir, 'c-out.json');
    const r = spawnSync(process.execPath, [MERGE, out, fast, cut, other], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`^scripts/test: ${cut} is no jest result: not JSON \\(.+\\); its tests are not counted, and one failure\n`));
    expect(r.stderr).toContain(`scripts/test: ${other} is no jest result: JSON without a testResults list; its tests are not counted, and one failure`);
    expect(spawnSync(process.execPath, [SCRIPT, out, ROOT], { encoding: 'utf8' }).stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 0 failed, 0 skipped');
    const none = join(dir, 'c-none.json');
    expect(spawnSync(process.execPath, [MERGE, none, cut], { encoding: 'utf8' }).status).toBe(3);
    expect(spawnSync(process.execPath, [MERGE, none, join(dir, 'no-such.json')], { encoding: 'utf8' }).status).toBe(0);
    expect(existsSync(none)).toBe(false);
  });
});
