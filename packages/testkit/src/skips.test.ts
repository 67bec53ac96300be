/**
 * requires(): a test that cannot run here is reported by jest as skipped, with the reason in its
 * name, and scripts/test's summary counts and names it; an early `return` counts as a pass. Runs a
 * real jest on a small test file that uses it, and the real summary script on jest's result.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';
import { firstMissing, skippedName } from './skips.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-skips-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CASE = `
import { requires } from '@edgeimage/testkit/skips';
const { test: withTool } = requires(undefined);
const { test: withoutTool, describe: describeWithout } = requires('frobnicate is not installed (apt-get install frob)');
withTool('runs when nothing is missing', () => { expect(1).toBe(1); });
withoutTool('needs frobnicate', () => { throw new Error('must not run'); });
describeWithout('a group that needs it', () => {
  test('first', () => { throw new Error('must not run'); });
  test('second', () => { throw new Error('must not run'); });
});
test('an early return passes, which is why it is not used', () => { return; });
`;

test('jest reports the gated tests as skipped with the reason in their names; the summary counts and names them', () => {
  writeFileSync(join(dir, 'gated.case.ts'), CASE);
  const config = {
    rootDir: dir,
    testMatch: ['<rootDir>/*.case.ts'],
    extensionsToTreatAsEsm: ['.ts'],
    transform: { '^.+\\.ts$': [join(REPO, 'node_modules/@swc/jest'), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }] },
    moduleNameMapper: { '^@edgeimage/testkit/([a-z0-9-]+)$': join(REPO, 'packages/testkit/src/$1.ts'), '^(\\.{1,2}/.*)\\.js$': '$1' },
    testEnvironment: 'node',
  };
  writeFileSync(join(dir, 'jest.config.json'), JSON.stringify(config));
  const json = join(dir, 'result.json');
  const jest = spawnSync(process.execPath, [join(REPO, 'node_modules/jest/bin/jest.js'), '--config', join(dir, 'jest.config.json'), '--ci', '--json', '--outputFile', json], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS: '--experimental-vm-modules' },
  });
  expect(jest.status).toBe(0);
  const summary = spawnSync(process.execPath, [join(REPO, 'scripts/test-summary.mjs'), json, dir], { encoding: 'utf8' });
  const lines = summary.stdout.trimEnd().split('\n');
  expect(lines.at(-1)).toBe('2 passed, 0 failed, 3 skipped');
  expect(lines.filter((l) => l.startsWith('skipped: ')).sort()).toEqual([
    'skipped: gated.case.ts: a group that needs it [skipped: frobnicate is not installed (apt-get install frob)] first',
    'skipped: gated.case.ts: a group that needs it [skipped: frobnicate is not installed (apt-get install frob)] second',
    'skipped: gated.case.ts: needs frobnicate [skipped: frobnicate is not installed (apt-get install frob)]',
  ]);
}, 120_000);

test('a reason keeps test.each placeholders intact and fits on one line; the first missing reason wins', () => {
  expect(skippedName('boots %s', 'needs 100% of\n  the disk')).toBe('boots %s [skipped: needs 100%% of the disk]');
  expect(firstMissing(undefined, 'no qemu', 'no root')).toBe('no qemu');
  expect(firstMissing(undefined, undefined)).toBeUndefined();
});
