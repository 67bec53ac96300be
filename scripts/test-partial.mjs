#!/usr/bin/env node
// What a jest project that did not write its --json result (stopped at its time limit, or
// crashed) still ran: the lines of scripts/jest-partial-reporter.mjs, one per test file that
// ended, made into a jest --json result, and the project's files that did not end.
//   node scripts/test-partial.mjs PARTIAL_JSONL OUT_JSON [LIST_OF_FILES ROOT]
// writes OUT_JSON (not when no file ended) and prints each file of LIST_OF_FILES (jest --listTests: absolute paths) that
// has no line, relative to ROOT, indented by two spaces.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The result of the files that ended. A line that is no whole JSON object of a file (the last
 * one, cut short as jest was killed) is left out. `success`: theirs alone — the stop or the crash
 * is a failure scripts/test counts itself, not a second one here.
 */
export function partialResult(text) {
  const testResults = [];
  for (const line of text.split('\n')) {
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue;
    }
    if (r && typeof r.name === 'string' && Array.isArray(r.assertionResults)) testResults.push(r);
  }
  return { success: testResults.every((r) => r.status !== 'failed'), testResults };
}

/** The files of `all` (one absolute path a line) that have no result, relative to `root`, sorted. */
export function unfinished(all, result, root) {
  const ended = new Set(result.testResults.map((r) => r.name));
  return all.split('\n').filter((f) => f.startsWith('/') && !ended.has(f)).map((f) => relative(root, f)).sort();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [from, to, list, root] = process.argv.slice(2);
  if (!from || !to) {
    process.stderr.write('usage: test-partial.mjs PARTIAL_JSONL OUT_JSON [LIST_OF_FILES ROOT]\n');
    process.exit(2);
  }
  const result = partialResult(existsSync(from) ? readFileSync(from, 'utf8') : '');
  // (no file ended: no result at all, rather than an empty one — a run with a name pattern would
  // count an empty one as "no test matched" on top of the failure scripts/test counts)
  if (result.testResults.length > 0) writeFileSync(to, JSON.stringify(result));
  if (list) for (const f of unfinished(readFileSync(list, 'utf8'), result, root ?? process.cwd())) console.log(`  ${f}`);
}
