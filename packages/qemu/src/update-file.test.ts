/**
 * The harness's update reader is the composer's (the device's rules): a hostile tar is
 * ERR_UPDATE_FILE carrying the reader's own code; and the aliased-manifest copy the refuse
 * scenario boots with is the signed update plus an unsigned manifest named edgeimage-update/./manifest.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootTestError } from './errors.js';
import { readUpdateManifest, tamperUpdate, tarEntries } from './update-file.js';
import { thrownBy } from '@edgeimage/testkit/refusals';

let tmp: string;
let update: string;
const MANIFEST = ['edgeimage-update: 1', 'brand-id: acme', 'model: kiosk', 'revision: 7', `sign-key-sha3-384: ${'k'.repeat(64)}`, 'file: 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6 bin/app', ''].join('\n');

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'edgeimage-update-file-'));
  const tree = join(tmp, 'tree');
  mkdirSync(join(tree, 'edgeimage-update/slot/bin'), { recursive: true });
  writeFileSync(join(tree, 'edgeimage-update/manifest'), MANIFEST);
  writeFileSync(join(tree, 'edgeimage-update/manifest.sig'), Buffer.alloc(256, 7));
  writeFileSync(join(tree, 'edgeimage-update/slot/bin/app'), 'hello\n');
  update = join(tmp, 'u.update');
  execFileSync('tar', ['--format=ustar', '-cf', update, '-C', tree, 'edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/app']);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const refusal = (f: () => unknown): BootTestError => thrownBy(f, BootTestError);

test('the aliased-manifest copy: the signed update unchanged, then an unsigned manifest under edgeimage-update/./manifest; both readers refuse it by name', () => {
  const out = join(tmp, 'aliased.update');
  expect(tamperUpdate(update, out, 'aliased-manifest')).toBe('edgeimage-update/./manifest');
  const original = readFileSync(update);
  const aliased = readFileSync(out);
  // what GNU tar wrote, up to the end of its last entry, is kept byte for byte
  const end = 512 * 2 + 512 + 512 + 512 + 512;
  expect(aliased.subarray(0, end).equals(original.subarray(0, end))).toBe(true);
  const listing = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).trim().split('\n');
  expect(listing).toEqual(['edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/app', 'edgeimage-update/./manifest']);
  const unsigned = execFileSync('tar', ['-xOf', out, 'edgeimage-update/./manifest'], { encoding: 'utf8' });
  expect(unsigned).not.toBe(MANIFEST);
  expect(unsigned.length).toBe(MANIFEST.length);
  for (const read of [() => tarEntries(out), () => readUpdateManifest(out)]) {
    const e = refusal(read);
    expect(e).toBeInstanceOf(BootTestError);
    expect(e.code).toBe('ERR_UPDATE_FILE');
    expect(e.context).toMatchObject({ cause: 'ERR_UPDATE_ENTRY_NAME', entry: 'edgeimage-update/./manifest' });
    expect(e.message).toMatch(/entry "edgeimage-update\/\.\/manifest" at byte \d+ has an empty or \. component .*\[ERR_UPDATE_ENTRY_NAME\]/);
  }
});

test('a hard link, a duplicate and an unlisted file: ERR_UPDATE_FILE with the reader code', () => {
  const tree = join(tmp, 'tree');
  // GNU tar writes the hard link when the same file is given twice under two names
  execFileSync('ln', ['-f', join(tree, 'edgeimage-update/slot/bin/app'), join(tree, 'edgeimage-update/slot/bin/app2')]);
  const hard = join(tmp, 'hard.update');
  execFileSync('tar', ['--format=ustar', '-cf', hard, '-C', tree, 'edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/app', 'edgeimage-update/slot/bin/app2']);
  expect(refusal(() => tarEntries(hard)).context).toMatchObject({ cause: 'ERR_UPDATE_ENTRY_TYPE', entry: 'edgeimage-update/slot/bin/app2' });
  const dup = join(tmp, 'dup.update');
  execFileSync('tar', ['--format=ustar', '--hard-dereference', '-cf', dup, '-C', tree, 'edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/app', 'edgeimage-update/slot/bin/app']);
  expect(refusal(() => readUpdateManifest(dup)).context).toMatchObject({ cause: 'ERR_UPDATE_ENTRY_DUPLICATE' });
  writeFileSync(join(tree, 'edgeimage-update/slot/bin/other'), 'x');
  const unlisted = join(tmp, 'unlisted.update');
  execFileSync('tar', ['--format=ustar', '-cf', unlisted, '-C', tree, 'edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/other']);
  expect(refusal(() => readUpdateManifest(unlisted)).context).toMatchObject({ cause: 'ERR_UPDATE_ENTRY_UNLISTED', entry: 'edgeimage-update/slot/bin/other' });
  expect(readUpdateManifest(update)).toEqual({ brandId: 'acme', model: 'kiosk', revision: 7, files: 1, carried: ['bin/app'] });
});

test('read as a hostile update (the refuse scenario), the aliased copy is described from its signed manifest, with the reader refusal; a file that starts with no manifest is still ERR_UPDATE_FILE', () => {
  const out = join(tmp, 'aliased2.update');
  tamperUpdate(update, out, 'aliased-manifest');
  const m = readUpdateManifest(out, { hostile: true });
  expect(m).toMatchObject({ brandId: 'acme', model: 'kiosk', revision: 7, files: 1 });
  expect(m.refused).toMatch(/edgeimage-update\/\.\/manifest.*\[ERR_UPDATE_ENTRY_NAME\]$/);
  expect(readUpdateManifest(update, { hostile: true }).refused).toBeUndefined();
  const notTar = join(tmp, 'not-a-tar');
  writeFileSync(notTar, 'x'.repeat(1024));
  expect(refusal(() => readUpdateManifest(notTar, { hostile: true })).code).toBe('ERR_UPDATE_FILE');
});
