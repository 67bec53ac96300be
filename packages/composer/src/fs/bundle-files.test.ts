/**
 * What may be copied out of a bundle: regular files (and folders) inside it, of a bounded size.
 * Bundles here are real squashfs files made with mksquashfs, device nodes and pipes included
 * (pseudo definitions: no root needed), and the checks run the real unsquashfs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { extractBundle, listBundle, MAX_BUNDLE_FILE_BYTES, type BundleRef } from './bundle-files.js';
import { listFiles } from '@edgeimage/testkit/image-read';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bundle-files-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A squashfs of `files` (name → content, or a symlink target with `->`), plus mksquashfs pseudo definitions. */
function squash(files: Record<string, string | { symlink: string }>, pseudo: string[] = []): BundleRef {
  const root = join(dir, `tree-${++n}`);
  mkdirSync(join(root, 'meta'), { recursive: true });
  writeFileSync(join(root, 'meta', 'snap.yaml'), 'name: k\nversion: "1"\ntype: kernel\n');
  for (const [name, c] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    if (typeof c === 'string') writeFileSync(join(root, name), c);
    else symlinkSync(c.symlink, join(root, name));
  }
  const path = join(dir, `b-${n}.snap`);
  execFileSync('mksquashfs', [root, path, '-noappend', '-quiet', '-no-progress', '-all-root', ...pseudo.flatMap((p) => ['-p', p])]);
  return { name: `hostile-${n}`, revision: 7, path, type: 'kernel' };
}

async function refused(p: Promise<unknown>): Promise<ComposeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ComposeError);
    return e as ComposeError;
  }
  throw new Error('expected a refusal');
}

const out = () => join(dir, `out-${++n}`);

describe('listBundle', () => {
  test('reads kinds, sizes, symlink targets and names with spaces', async () => {
    const b = squash({ 'a b.txt': 'hello', 'link': { symlink: '/etc/passwd' } }, ['dev c 600 root root 1 3', 'pipe i 600 root root f']);
    const e = await listBundle(b);
    expect(e).toEqual(
      expect.arrayContaining([
        { path: 'a b.txt', kind: 'file', size: 5 },
        { path: 'link', kind: 'symlink', size: 0, target: '/etc/passwd' },
        { path: 'dev', kind: 'char-device', size: 0 },
        { path: 'pipe', kind: 'fifo', size: 0 },
        { path: 'meta', kind: 'directory', size: 0 },
      ]),
    );
  });
});

describe('extractBundle refuses, naming the bundle and the path, and unpacks nothing', () => {
  test('a named file that is a symbolic link to a host file', async () => {
    const b = squash({ 'kernel.img': 'K', 'initrd.img': { symlink: '/etc/shadow' } });
    const d = out();
    const e = await refused(extractBundle(b, d, { files: ['kernel.img', 'initrd.img'] }));
    expect(e.code).toBe('ERR_BUNDLE_FILE');
    expect(e.message).toContain(`kernel bundle ${b.name} revision 7`);
    expect(e.message).toContain('initrd.img is a symbolic link (to "/etc/shadow")');
    expect(e.message).toContain('must be regular files inside it');
    expect(existsSync(d)).toBe(false);
  });

  test.each([
    ['a character device node', 'initrd.img c 600 root root 1 3'],
    ['a block device node', 'initrd.img b 600 root root 8 0'],
    ['a named pipe', 'initrd.img i 600 root root f'],
  ])('a named file that is %s', async (what, pseudo) => {
    const b = squash({ 'kernel.img': 'K' }, [pseudo]);
    const d = out();
    const e = await refused(extractBundle(b, d, { files: ['kernel.img', 'initrd.img'] }));
    expect(e.code).toBe('ERR_BUNDLE_FILE');
    expect(e.message).toContain(`initrd.img is ${what}`);
    expect(existsSync(d)).toBe(false);
  });

  test('a device node anywhere in a bundle unpacked whole (a gadget), symlinks allowed or not', async () => {
    const b = { ...squash({ 'boot-assets/grub.cfg': 'x' }, ['boot-assets/null c 666 root root 1 3']), type: 'gadget' };
    const d = out();
    const e = await refused(extractBundle(b, d, { allowSymlinks: true }));
    expect(e.code).toBe('ERR_BUNDLE_FILE');
    expect(e.message).toContain(`gadget bundle ${b.name} revision 7: boot-assets/null is a character device node`);
    expect(existsSync(d)).toBe(false);
  });

  test('a symbolic link in a whole unpack without allowSymlinks', async () => {
    const b = squash({ 'boot-assets/x': { symlink: 'y' } });
    const e = await refused(extractBundle(b, out()));
    expect(e.code).toBe('ERR_BUNDLE_FILE');
    expect(e.message).toContain('boot-assets/x is a symbolic link');
  });

  test('a file over the size cap (and a bundle that unpacks to more than the total cap)', async () => {
    const b = squash({ 'kernel.img': 'K'.repeat(2000), 'initrd.img': 'I'.repeat(10) });
    const d = out();
    const e = await refused(extractBundle(b, d, { files: ['kernel.img', 'initrd.img'], maxFileBytes: 1000 }));
    expect(e.code).toBe('ERR_BUNDLE_FILE_SIZE');
    expect(e.message).toContain('kernel.img is 2000 bytes, more than the 1000 bytes');
    expect(existsSync(d)).toBe(false);
    const t = await refused(extractBundle(b, d, { maxTotalBytes: 1500 }));
    expect(t.code).toBe('ERR_BUNDLE_FILE_SIZE');
    expect(t.message).toMatch(/unpacks to \d+ bytes, more than the 1500 bytes/);
    expect(existsSync(d)).toBe(false);
  });

  test(`the default cap: a sparse kernel.img of ${MAX_BUNDLE_FILE_BYTES} + 1 bytes is refused from the listing, never unpacked`, async () => {
    const root = join(dir, 'big');
    mkdirSync(root);
    writeFileSync(join(root, 'initrd.img'), 'I');
    writeFileSync(join(root, 'kernel.img'), '');
    truncateSync(join(root, 'kernel.img'), MAX_BUNDLE_FILE_BYTES + 1);
    const path = join(dir, 'big.snap');
    execFileSync('mksquashfs', [root, path, '-noappend', '-quiet', '-no-progress']);
    rmSync(root, { recursive: true });
    const d = out();
    const e = await refused(extractBundle({ name: 'huge', revision: 1, path, type: 'kernel' }, d, { files: ['kernel.img', 'initrd.img'] }));
    expect(e.code).toBe('ERR_BUNDLE_FILE_SIZE');
    expect(e.message).toContain(`kernel bundle huge revision 1: kernel.img is ${MAX_BUNDLE_FILE_BYTES + 1} bytes`);
    expect(existsSync(d)).toBe(false);
  }, 60_000);
});

describe('extractBundle with `files`: each named file is a regular file, and that is all it unpacks', () => {
  // The review's attack: kernel.img a folder holding a 3 GiB sparse file, a link to a host file
  // and a device node. The listing of a requested folder is all it holds: unpacking it would
  // write 3 GiB, the link and the node whatever the caps said.
  test('a kernel.img that is a folder of a 3 GiB sparse file, a link to /etc/shadow and a device node', async () => {
    const root = join(dir, 'folder-kernel');
    mkdirSync(join(root, 'kernel.img'), { recursive: true });
    writeFileSync(join(root, 'initrd.img'), 'I');
    writeFileSync(join(root, 'kernel.img', 'big'), '');
    truncateSync(join(root, 'kernel.img', 'big'), 3 * 1024 * 1024 * 1024);
    symlinkSync('/etc/shadow', join(root, 'kernel.img', 'evil'));
    const path = join(dir, 'folder-kernel.snap');
    execFileSync('mksquashfs', [root, path, '-noappend', '-quiet', '-no-progress', '-all-root', '-p', 'kernel.img/null c 666 root root 1 3']);
    rmSync(root, { recursive: true });
    const b: BundleRef = { name: 'folder-kernel', revision: 4, path, type: 'kernel' };
    const d = out();
    const e = await refused(extractBundle(b, d, { files: ['kernel.img', 'initrd.img'], maxTotalBytes: 1024 }));
    expect(e.code).toBe('ERR_BUNDLE_FILE');
    expect(e.message).toContain('kernel bundle folder-kernel revision 4: kernel.img is a directory, not a regular file');
    expect(existsSync(d)).toBe(false);
    // With the default caps too (3 GiB is under the 4 GiB total).
    const e2 = await refused(extractBundle(b, d, { files: ['kernel.img'] }));
    expect(e2.code).toBe('ERR_BUNDLE_FILE');
    expect(existsSync(d)).toBe(false);
  }, 60_000);

  test('the total cap counts every named file (each under the file cap)', async () => {
    const b = squash({ 'kernel.img': 'K'.repeat(800), 'initrd.img': 'I'.repeat(800) });
    const d = out();
    const e = await refused(extractBundle(b, d, { files: ['kernel.img', 'initrd.img'], maxFileBytes: 1000, maxTotalBytes: 1500 }));
    expect(e.code).toBe('ERR_BUNDLE_FILE_SIZE');
    expect(e.message).toContain(`kernel bundle ${b.name} revision 7 unpacks to 1600 bytes, more than the 1500 bytes`);
    expect(existsSync(d)).toBe(false);
  });

  test('a named file in a folder unpacks with only the folders leading to it', async () => {
    const b = squash({ 'boot/x': 'X', 'boot/y': 'Y' });
    const d = out();
    await extractBundle(b, d, { files: ['boot/x'] });
    expect(listFiles(d)).toEqual(['boot', 'boot/x']);
  });
});

describe('extractBundle unpacks what is allowed', () => {
  test('regular named files; a whole bundle with symlinks when allowed', async () => {
    const b = squash({ 'kernel.img': 'K', 'initrd.img': 'I', 'boot/x': { symlink: '../kernel.img' } });
    const d = out();
    await extractBundle(b, d, { files: ['kernel.img', 'initrd.img'] });
    expect(listFiles(d)).toEqual(['initrd.img', 'kernel.img']);
    const whole = out();
    await extractBundle(b, whole, { allowSymlinks: true });
    expect(listFiles(whole)).toEqual(['boot', 'boot/x', 'initrd.img', 'kernel.img', 'meta', 'meta/snap.yaml']);
  });
});
