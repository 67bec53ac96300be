import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey } from '@edgeimage/assertions';
import { Store } from './store.js';

let dir: string;
let key: PrivateKey;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-store-files-'));
  key = await PrivateKey.generate(2048);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function freshStore(name: string): Promise<string> {
  const root = join(dir, name);
  await Store.init(root, { authorityId: 'acme-store', key, keyName: 'store' });
  return root;
}

test('a store.json that is not JSON is ERR_STORE_CORRUPT, naming the file', async () => {
  const root = await freshStore('broken-json');
  writeFileSync(join(root, 'store.json'), '{"format": 1,');
  await expect(Store.open(root)).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT', message: expect.stringMatching(/store\.json: not valid JSON/) });
});

test('a store of a newer format is refused with what to do', async () => {
  const root = await freshStore('newer');
  const meta = JSON.parse(readFileSync(join(root, 'store.json'), 'utf8'));
  writeFileSync(join(root, 'store.json'), JSON.stringify({ ...meta, format: 99 }));
  await expect(Store.open(root)).rejects.toMatchObject({ code: 'ERR_STORE_FORMAT', message: expect.stringMatching(/store format 99 is newer than this edgeimage reads \(format 1\); upgrade edgeimage/) });
});

test('a snap index that is not JSON is ERR_STORE_CORRUPT when it is read', async () => {
  const root = await freshStore('broken-index');
  writeFileSync(join(root, 'index.json'), 'not json');
  const store = await Store.open(root);
  await expect(store.list()).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT', message: expect.stringMatching(/index\.json: not valid JSON/) });
});
