import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { DirBackend, checkStorePath } from './dir.js';
import { openBackend } from './open.js';
import { HttpBackend } from './http.js';
import { OciBackend } from './oci.js';

const made: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-dir-backend-test-'));
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const noTemps = (dir: string) => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes('.tmp-'));

describe('DirBackend', () => {
  it('writes files under new folders and reads them back; a missing file reads as undefined', async () => {
    const root = join(tempDir(), 'store');
    const b = new DirBackend(root);
    await b.write('snaps/hello/index.json', Buffer.from('{"a":1}'));
    expect((await b.read('snaps/hello/index.json'))!.toString()).toBe('{"a":1}');
    await b.write('snaps/hello/index.json', Buffer.from('{"a":2}'));
    expect(readFileSync(join(root, 'snaps/hello/index.json'), 'utf8')).toBe('{"a":2}');
    expect(await b.read('snaps/other/index.json')).toBeUndefined();
    expect(await new DirBackend(join(root, 'nowhere')).read('store.json')).toBeUndefined();
    expect(noTemps(root)).toEqual([]);
  });

  it('copies a bundle file into place and opens it from an offset', async () => {
    const dir = tempDir();
    const src = join(dir, 'bundle.snap');
    const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    writeFileSync(src, bytes);
    const b = new DirBackend(join(dir, 'store'));
    await b.writeFile('snaps/hello/1.snap', src);
    const whole = await b.open('snaps/hello/1.snap');
    expect(whole.size).toBe(bytes.length);
    expect((await buffer(whole.stream)).equals(bytes)).toBe(true);
    const tail = await b.open('snaps/hello/1.snap', 70_000);
    expect(tail.size).toBe(30_000);
    expect((await buffer(tail.stream)).equals(bytes.subarray(70_000))).toBe(true);
    const end = await b.open('snaps/hello/1.snap', bytes.length);
    expect((await buffer(end.stream)).length).toBe(0);
    expect(noTemps(join(dir, 'store'))).toEqual([]);
  });

  it('leaves no temporary file when a copy fails', async () => {
    const root = join(tempDir(), 'store');
    const b = new DirBackend(root);
    await expect(b.writeFile('snaps/hello/1.snap', join(root, 'no-such.snap'))).rejects.toMatchObject({ code: 'ERR_STORE_NO_FILE' });
    expect(noTemps(root)).toEqual([]);
  });

  it('says which is missing on open: the store directory, or the file in it', async () => {
    const root = join(tempDir(), 'store');
    await expect(new DirBackend(root).open('snaps/hello/1.snap')).rejects.toMatchObject({ code: 'ERR_STORE_NOT_FOUND', message: `store directory ${root} does not exist` });
    const b = new DirBackend(root);
    await b.write('store.json', Buffer.from('{}'));
    await expect(b.open('snaps/hello/1.snap')).rejects.toMatchObject({ code: 'ERR_STORE_NOT_FOUND', message: `snaps/hello/1.snap is not in the store at ${root}` });
    await expect(b.open('store.json', 3)).rejects.toMatchObject({ code: 'ERR_STORE_RANGE', message: 'cannot read store.json from byte 3: the file has 2 bytes' });
  });

  it('refuses names that could leave the store', async () => {
    const b = new DirBackend(tempDir());
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '', 'a/./b', '.hidden']) {
      await expect(b.read(bad)).rejects.toMatchObject({ code: 'ERR_STORE_PATH' });
      await expect(b.write(bad, Buffer.from('x'))).rejects.toMatchObject({ code: 'ERR_STORE_PATH' });
    }
    expect(() => checkStorePath('assertions/snap-revision/abc-_D.global-upload.assert')).not.toThrow();
  });

  it('accepts file:// URLs and locates files in the form it was given', () => {
    const root = tempDir();
    const url = pathToFileURL(root).href;
    const b = new DirBackend(url);
    expect(b.root).toBe(root);
    expect(b.locate('store.json')).toBe(`${url}/store.json`);
    expect(new DirBackend(root).locate('snaps/a/1.snap')).toBe(join(root, 'snaps/a/1.snap'));
  });
});

describe('openBackend', () => {
  it('chooses the backend by the form of the location', () => {
    expect(openBackend('./store')).toBeInstanceOf(DirBackend);
    expect(openBackend('/srv/store')).toBeInstanceOf(DirBackend);
    expect(openBackend('file:///srv/store')).toBeInstanceOf(DirBackend);
    expect(openBackend('http://127.0.0.1:8080/store')).toBeInstanceOf(HttpBackend);
    expect(openBackend('HTTPS://cdn.example.com/store')).toBeInstanceOf(HttpBackend);
    expect(openBackend('oci://127.0.0.1:5000/acme/store')).toBeInstanceOf(OciBackend);
    expect(openBackend('oci+http://registry.local:5000/store')).toBeInstanceOf(OciBackend);
  });

  it('refuses unknown schemes with ERR_STORE_URL', () => {
    expect(() => openBackend('s3://bucket/store')).toThrow(expect.objectContaining({ code: 'ERR_STORE_URL', message: expect.stringContaining('unsupported store URL "s3://bucket/store"') }));
    expect(() => openBackend('')).toThrow(expect.objectContaining({ code: 'ERR_STORE_URL' }));
  });
});
