#!/usr/bin/env node
// The end of scripts/test: reads jest's --json result and prints the tests that needed a second
// attempt, each skipped test with its reason (its name carries it), the wall time of each jest
// project and the slowest test files, and last, alone, "N passed, N failed, N skipped" (CI reads it).
//   node scripts/test-summary.mjs .test-results/jest.json [REPO_ROOT] [--filtered=PATTERN]
// Exits 0; the exit status of the run is jest's.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Files the `qemu` jest project runs (jest.config.js); every other test file is `fast`. */
export const projectOf = (file) => (/\.qemu\.test\.[mc]?[jt]s$/.test(file) ? 'qemu' : 'fast');

const SLOWEST = 10;

/** 75000 → "1m15.0s", 8300 → "8.3s". */
export function duration(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${(s - m * 60).toFixed(1).padStart(4, '0')}s`;
}

/**
 * The summary's lines for a jest JSON result (`root`: paths are printed relative to it).
 * `pattern`: the run's name pattern (-t), when it had one: jest then reports every test it did not
 * match as pending too. Those (by jest's own rule: the full name against the pattern as a
 * case-insensitive regular expression) are counted as not run; a pending test that matches is a
 * skipped one. A run with a pattern that ran no test fails: a renamed test must not read as green.
 */
export function summarize(result, root = process.cwd(), pattern = undefined) {
  let matches = () => true;
  if (pattern !== undefined) {
    try {
      const re = new RegExp(pattern, 'i');
      matches = (name) => re.test(name);
    } catch {
      // jest would have refused it too; then nothing is counted as filtered out.
    }
  }
  const lines = [];
  const suites = result.testResults ?? [];
  const file = (s) => relative(root, s.name);

  // QEMU tests get a second attempt (jest.qemu-setup.js): name each one that needed it.
  for (const s of suites) {
    for (const a of s.assertionResults) {
      if ((a.invocations ?? 1) > 1) lines.push(`retried (${a.status} on attempt ${a.invocations}): ${a.fullName} — first error: ${String((a.retryReasons ?? [])[0] ?? '').split('\n')[0]}`);
    }
  }

  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let filteredOut = 0;
  const skippedLines = [];
  for (const s of suites) {
    let failedHere = 0;
    for (const a of s.assertionResults) {
      if (a.status === 'passed') passed++;
      else if (a.status === 'failed') failedHere++;
      else if (pattern !== undefined && !matches(a.fullName)) filteredOut++;
      else {
        // pending (test.skip, describe.skip), todo, disabled: not run, and said so.
        skipped++;
        skippedLines.push(`skipped: ${file(s)}: ${a.fullName}`);
      }
    }
    // A suite that failed without a failing test did not load, or a hook of it threw: one failure.
    if (s.status === 'failed' && failedHere === 0) {
      failedHere = 1;
      lines.push(`broken suite: ${file(s)}: ${String(s.message ?? '').trim().split('\n').find((l) => l.trim()) ?? 'failed'}`);
    }
    failed += failedHere;
  }

  const projects = new Map();
  for (const s of suites) {
    if (!(s.startTime > 0 && s.endTime >= s.startTime)) continue;
    const name = projectOf(s.name);
    const p = projects.get(name) ?? { files: 0, start: Infinity, end: 0, busy: 0 };
    p.files++;
    p.start = Math.min(p.start, s.startTime);
    p.end = Math.max(p.end, s.endTime);
    p.busy += s.endTime - s.startTime;
    projects.set(name, p);
  }
  for (const [name, p] of [...projects].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`project ${name}: ${p.files} files, wall ${duration(p.end - p.start)} (first start to last end), ${duration(p.busy)} summed over files`);
  }
  const timed = suites.filter((s) => s.startTime > 0 && s.endTime >= s.startTime).sort((a, b) => b.endTime - b.startTime - (a.endTime - a.startTime) || a.name.localeCompare(b.name));
  if (timed.length > 0) {
    lines.push(`slowest ${Math.min(SLOWEST, timed.length)} test files:`);
    for (const s of timed.slice(0, SLOWEST)) lines.push(`  ${duration(s.endTime - s.startTime).padStart(9)}  ${projectOf(s.name).padEnd(4)}  ${file(s)}`);
  }

  lines.push(...skippedLines);
  if (filteredOut > 0) lines.push(`${filteredOut} tests not matching the name pattern (-t) were not run`);
  // jest's own verdict, when it failed without a failing test here (a global setup or teardown that
  // threw, a runtime error outside the suites, an open-handle crash): never a clean line.
  if (failed === 0 && (result.success === false || (result.numRuntimeErrorTestSuites ?? 0) > 0)) {
    failed = 1;
    lines.push('jest reported a failure outside the tests (success false or a runtime error): counted as one failure');
  }
  if (pattern !== undefined && passed + failed === 0) {
    failed = 1;
    lines.push(`no test matched the name pattern ${JSON.stringify(pattern)} and ran: counted as one failure`);
  }
  lines.push(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  return lines;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const pattern = args.find((a) => a.startsWith('--filtered='))?.slice('--filtered='.length);
  const [jsonFile, root] = args.filter((a) => !a.startsWith('--filtered='));
  if (!jsonFile) {
    process.stderr.write('usage: test-summary.mjs JEST_JSON [REPO_ROOT] [--filtered=PATTERN]\n');
    process.exit(2);
  }
  for (const l of summarize(JSON.parse(readFileSync(jsonFile, 'utf8')), root ?? process.cwd(), pattern)) console.log(l);
}
