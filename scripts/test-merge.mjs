#!/usr/bin/env node
// The projects' jest --json results (fast, qemu) as one, which scripts/test-summary.mjs reads.
//   node scripts/test-merge.mjs OUT_JSON RESULT...
// A RESULT that is missing or empty is left out (a project not run, or one that wrote none: what
// scripts/test counts itself). One that is no jest result (cut short as jest was stopped after
// writing it) is left out and named on stderr, and the exit status is 3: scripts/test counts one
// failure for it and keeps the others' tests. No RESULT to merge: no OUT_JSON, status 0 (or 3).
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One result of several: their files' results in order, a success only when each was one. */
export function mergeResults(parts) {
  return {
    ...parts[0],
    testResults: parts.flatMap((p) => p.testResults),
    success: parts.every((p) => p.success === true),
    numRuntimeErrorTestSuites: parts.reduce((n, p) => n + (p.numRuntimeErrorTestSuites ?? 0), 0),
  };
}

/** The parsed result of `text`, or the reason it is none. */
export function readResult(text) {
  let r;
  try {
    r = JSON.parse(text);
  } catch (e) {
    return { error: `not JSON (${e.message.slice(0, 120)})` };
  }
  if (!r || typeof r !== 'object' || !Array.isArray(r.testResults)) return { error: 'JSON without a testResults list' };
  return { result: r };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [out, ...files] = process.argv.slice(2);
  if (!out) {
    process.stderr.write('usage: test-merge.mjs OUT_JSON RESULT...\n');
    process.exit(2);
  }
  const parts = [];
  let bad = false;
  for (const f of files) {
    if (!existsSync(f) || statSync(f).size === 0) continue;
    const { result, error } = readResult(readFileSync(f, 'utf8'));
    if (result) parts.push(result);
    else {
      bad = true;
      process.stderr.write(`scripts/test: ${f} is no jest result: ${error}; its tests are not counted, and one failure\n`);
    }
  }
  if (parts.length > 0) {
    writeFileSync(`${out}.tmp`, JSON.stringify(mergeResults(parts)));
    renameSync(`${out}.tmp`, out);
  }
  process.exit(bad ? 3 : 0);
}
