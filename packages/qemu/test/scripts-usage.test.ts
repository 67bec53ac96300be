/**
 * The scenario scripts' usage errors: exit 2 before any build, with a message naming the option,
 * what was expected and what was given.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const script = (name: string, args: string[]) => spawnSync(join(ROOT, 'scripts', name), args, { encoding: 'utf8' });

let empty: string;
beforeAll(() => { empty = mkdtempSync(join(tmpdir(), 'edgeimage-ref-')); });
afterAll(() => rmSync(empty, { recursive: true, force: true }));

test('scenarios --ref of a folder that is not a reference-images output: exit 2, naming the files it expected', () => {
  const r = script('scenarios', ['--ref', empty]);
  expect([r.status, r.stderr.trim()]).toEqual([2, `scenarios: --ref ${empty}: expected the output of scripts/reference-images --out ${empty} (${empty}/store/store.json and ${empty}/models/pc-amd64.validation-set)`]);
});

test('scenarios --build-only without --work: exit 2 (the build would be removed at the end)', () => {
  const r = script('scenarios', ['--build-only']);
  expect([r.status, r.stderr.trim()]).toEqual([2, 'scenarios: --build-only needs --work DIR (else the build is removed at the end)']);
});

test('--help of scenarios and reference-images ends with the header comment (no code lines)', () => {
  for (const [name, last] of [['scenarios', /--build-only \(with --work\)/], ['reference-images', /--store-only stops before the images/]] as const) {
    const r = script(name, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(last);
  }
});
