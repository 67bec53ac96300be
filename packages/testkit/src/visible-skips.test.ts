/**
 * A test that cannot run here is skipped through jest (testkit/skips `requires`), never by an
 * early `return` after printing "SKIPPED", which jest counts as a pass: no test file or testkit
 * module of any package does that.
 */
import { readFileSync } from 'node:fs';
import { packageSourceFiles } from './import-boundaries.js';
import { REPO } from './repo.js';

/** A printed skip notice, or an early return guarded by a skip or readiness check. */
const PATTERNS = [/console\.(?:warn|log|info|error)\(\s*[`'"]SKIPP/, /^\s*if \(!?\s*(?:skip|skipped|ready)\w*\(\)\)\s*return\b/];
/** This file: its patterns are the strings it looks for. */
const SELF = 'visible-skips.test.ts';

function earlyReturnSkips(text: string): number[] {
  return text.split('\n').flatMap((l, i) => (PATTERNS.some((re) => re.test(l)) ? [i + 1] : []));
}

test('no test returns early when it cannot run: it is skipped through jest, with the reason in its name', () => {
  const found = packageSourceFiles(REPO)
    .filter((f) => (/\.test\.[mc]?ts$/.test(f) || f.includes('/packages/testkit/')) && !f.endsWith(`/${SELF}`))
    .flatMap((f) => earlyReturnSkips(readFileSync(f, 'utf8')).map((line) => `${f.slice(REPO.length)}:${line}`));
  expect(found).toEqual([]);
});

test('the patterns find the forms the suite used to have, and not a jest skip', () => {
  const text = [
    "    if (typeof k === 'string') { console.warn(`SKIPPED: ${k}`); return; }",
    '    if (skip()) return;',
    '    if (!ready()) return;',
    "    if (py.error) return console.warn('SKIPPED the XML parse: no python3');",
    "requires(missingQemu).test('boots', () => {});",
    "describe.skip('x [skipped: no qemu]', () => {});",
  ].join('\n');
  expect(earlyReturnSkips(text)).toEqual([1, 2, 3, 4]);
});
