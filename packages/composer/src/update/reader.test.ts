/**
 * The host's update reader (readTar, readUpdateLayout, readUpdate) on hostile tars, as the device's
 * edge-update refuses them: entries that alias the manifest (`./`, `//`), absolute or `..` names,
 * trailing slashes, an entry twice, a slot entry the manifest does not list, anything but a
 * regular file (hard and symbolic links, folders, pax and GNU records), bytes after a name's end,
 * another tar dialect, a truncated entry. Each is a typed error naming the entry.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readUpdate, readUpdateLayout } from './info.js';
import { writeTar } from './tar.js';
import { manifestFor, SLOT, ustar, validEntries, type RawEntry } from '@edgeimage/testkit/update-tar';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-update-reader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const write = (tar: Buffer) => {
  const f = join(dir, `u${n++}.update`);
  writeFileSync(f, tar);
  return f;
};
const EVIL = Buffer.from('nobody signed this\n');
const unsigned = manifestFor({ ...SLOT, 'bundles/evil_1.snap': EVIL });

async function codeOf(file: string): Promise<{ code: string; message: string; context: Record<string, unknown> }> {
  try {
    await readUpdate(file);
  } catch (e) {
    const x = e as { code: string; message: string; context: Record<string, unknown> };
    return { code: x.code, message: x.message, context: x.context };
  }
  throw new Error(`${file} was read as a valid update`);
}

test('a valid update made by hand reads: both files carried, nothing else', async () => {
  const u = await readUpdate(write(ustar(validEntries())));
  expect(u.files.map((f) => [f.path, f.included])).toEqual([['bundles/app_1.snap', true], ['model.assert', true]]);
  expect(readUpdateLayout(write(ustar(validEntries()))).manifestBytes).toEqual(manifestFor(SLOT));
});

const hostile: [string, RawEntry[], string, RegExp][] = [
  ['the manifest again under the alias edgeimage-update/./manifest', [...validEntries(), { name: 'edgeimage-update/./manifest', data: unsigned }], 'ERR_UPDATE_ENTRY_NAME', /entry "edgeimage-update\/\.\/manifest" at byte \d+ has an empty or \. component/],
  ['the manifest again under the alias edgeimage-update//manifest', [...validEntries(), { name: 'edgeimage-update//manifest', data: unsigned }], 'ERR_UPDATE_ENTRY_NAME', /entry "edgeimage-update\/\/manifest" .* empty or \. component/],
  ['a trailing /', [...validEntries(), { name: 'edgeimage-update/slot/bundles/', data: EVIL }], 'ERR_UPDATE_ENTRY_NAME', /"edgeimage-update\/slot\/bundles\/" .*trailing \//],
  ['an absolute name', [...validEntries(), { name: '/etc/passwd', data: EVIL }], 'ERR_UPDATE_ENTRY_NAME', /"\/etc\/passwd" at byte \d+ is absolute/],
  ['a .. component', [...validEntries(), { name: 'edgeimage-update/slot/../../x', data: EVIL }], 'ERR_UPDATE_ENTRY_NAME', /contains \.\./],
  ['a name with a space', [...validEntries(), { name: 'edgeimage-update/slot/a b', data: EVIL }], 'ERR_UPDATE_ENTRY_NAME', /has characters outside/],
  ['an entry outside edgeimage-update/slot/', [...validEntries(), { name: 'etc/passwd', data: EVIL }], 'ERR_UPDATE_ENTRY_NAME', /entry etc\/passwd is neither the manifest, its signature nor a file under edgeimage-update\/slot\//],
  ['the signature first', [validEntries()[1]!, validEntries()[0]!], 'ERR_UPDATE_ENTRY_NAME', /expected edgeimage-update\/manifest and edgeimage-update\/manifest\.sig as the first two entries/],
  ['the manifest twice', [...validEntries(), { name: 'edgeimage-update/manifest', data: unsigned }], 'ERR_UPDATE_ENTRY_DUPLICATE', /entry edgeimage-update\/manifest appears twice/],
  ['a slot file twice', [...validEntries(), { name: 'edgeimage-update/slot/model.assert', data: EVIL }], 'ERR_UPDATE_ENTRY_DUPLICATE', /entry edgeimage-update\/slot\/model\.assert appears twice/],
  ['a slot file the manifest does not list', [...validEntries(), { name: 'edgeimage-update/slot/bundles/evil_1.snap', data: EVIL }], 'ERR_UPDATE_ENTRY_UNLISTED', /entry edgeimage-update\/slot\/bundles\/evil_1\.snap is in the update but not in its manifest/],
  ['a hard link', [...validEntries(), { name: 'edgeimage-update/slot/bundles/evil_1.snap', type: '1', link: 'edgeimage-update/manifest' }], 'ERR_UPDATE_ENTRY_TYPE', /is a hard link: an update holds regular files only/],
  ['a symbolic link', [...validEntries(), { name: 'edgeimage-update/slot/bundles/evil_1.snap', type: '2', link: '/etc/shadow' }], 'ERR_UPDATE_ENTRY_TYPE', /is a symbolic link/],
  ['a folder', [...validEntries(), { name: 'edgeimage-update/slot/bundles', type: '5' }], 'ERR_UPDATE_ENTRY_TYPE', /is a folder/],
  ['a pax record renaming the next entry', [...validEntries(), { name: 'PaxHeaders/x', type: 'x', data: Buffer.from('34 path=edgeimage-update/manifest\n') }, { name: 'edgeimage-update/slot/x', data: unsigned }], 'ERR_UPDATE_ENTRY_TYPE', /is a pax record/],
  ['a GNU long name', [...validEntries(), { name: '././@LongLink', type: 'L', data: Buffer.from('edgeimage-update/manifest\0') }], 'ERR_UPDATE_ENTRY_TYPE', /is a GNU long name/],
  ['a name with bytes after its end', [...validEntries(), { name: 'edgeimage-update/slot/model.assert', afterName: 'x', data: EVIL }], 'ERR_UPDATE_FORMAT', /an entry name with bytes after its end/],
  ['an old GNU header', [...validEntries().slice(0, 2), { name: 'edgeimage-update/slot/model.assert', magic: 'ustar  \0', data: SLOT['model.assert'] }], 'ERR_UPDATE_FORMAT', /not a POSIX ustar header/],
];
test.each(hostile)('refused with a typed error: %s', async (_name, entries, code, message) => {
  const r = await codeOf(write(ustar(entries)));
  expect(r.code).toBe(code);
  expect(r.message).toMatch(message);
});

test('an entry cut short by the end of the file: ERR_UPDATE_FORMAT, not a short read', async () => {
  const tar = ustar(validEntries());
  const r = await codeOf(write(tar.subarray(0, 512 * 3 + 100)));
  expect(r.code).toBe('ERR_UPDATE_FORMAT');
  expect(r.message).toMatch(/entry edgeimage-update\/manifest\.sig \(256 bytes\) goes past the end of the file/);
});

test('writeTar refuses a name a plain ustar header cannot hold (it would need a pax record the device refuses); nothing written', async () => {
  const out = join(dir, 'long.tar');
  await expect(writeTar(out, [{ name: `edgeimage-update/slot/${'x'.repeat(120)}`, data: Buffer.from('x') }])).rejects.toMatchObject({ code: 'ERR_UPDATE_PATH' });
  expect(() => readUpdateLayout(out)).toThrow(/ENOENT/);
});
