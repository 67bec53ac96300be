import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeimageError } from '@edgeimage/assertions';
import { SnapYamlError, StoreError } from '../errors.js';
import { readBundleInfo, readSnapYaml } from './inspect.js';
import { pack } from './pack.js';
import { helloTree, inDir, opensslSha3_384, useTempDirs, withEnv, writeTree, type Entry } from '@edgeimage/testkit/bundle-trees';

const tempDir = useTempDirs();

/** A squashfs made with plain mksquashfs, as `snap pack` makes one (no fixed times, no padding). */
function squash(entries: Record<string, Entry>, name = 'raw.snap'): string {
  const src = writeTree(join(tempDir(), 'tree'), entries);
  const file = join(tempDir(), name);
  execFileSync('mksquashfs', [src, file, '-noappend', '-comp', 'xz', '-no-fragments', '-no-progress', '-quiet', '-all-root', '-no-xattrs']);
  return file;
}

async function readError(file: string): Promise<StoreError> {
  try {
    await readSnapYaml(file);
  } catch (e) {
    // A missing host tool is @edgeimage/host-tools' error, of the same base class.
    if (e instanceof EdgeimageError) return e as StoreError;
    throw e;
  }
  throw new Error('readSnapYaml succeeded');
}

describe('readBundleInfo', () => {
  it('reads back what pack wrote: snap.yaml fields, size and the sha3-384 openssl computes', async () => {
    const packed = await pack(writeTree(join(tempDir(), 'hello-kiosk'), helloTree()), { output: tempDir() });
    const info = await readBundleInfo(packed.path);
    expect(info).toEqual({ path: packed.path, size: packed.size, sha3_384: packed.sha3_384, snap: packed.snap });
    expect(info.sha3_384).toBe(opensslSha3_384(packed.path));
    expect(info.size).toBe(readFileSync(packed.path).length);
    expect(info.snap.apps['hello-kiosk']).toEqual({ command: 'bin/hello-kiosk', daemon: 'simple', 'restart-condition': 'always' });
  });

  it('reads a snap built the way snapd builds one (not padded, current times)', async () => {
    const file = squash({ 'meta/snap.yaml': 'name: hello-world\nversion: 6.4\narchitectures: [ all ]\napps:\n  hello-world:\n    command: bin/echo\n', 'bin/echo': 'x' });
    const info = await readBundleInfo(file);
    expect(info.snap).toMatchObject({ name: 'hello-world', version: '6.4', type: 'app' });
    expect(info.sha3_384).toBe(opensslSha3_384(file));
  });

  it('returns an absolute path for a relative file name, even one that starts with a dash', async () => {
    const file = squash({ 'meta/snap.yaml': "name: dash\nversion: '1'\n" }, '-x.snap');
    const info = await inDir(join(file, '..'), () => readBundleInfo('-x.snap'));
    expect(info.path).toBe(file);
    expect(info.snap.name).toBe('dash');
  });
});

describe('readSnapYaml: invalid bundles (ERR_BUNDLE_INVALID, naming the file)', () => {
  it('a file that is not a squashfs image', async () => {
    const f = join(tempDir(), 'notes.snap');
    writeFileSync(f, 'name: hello\nversion: 1\n'.repeat(1000));
    const e = await readError(f);
    expect(e.code).toBe('ERR_BUNDLE_INVALID');
    expect(e.message).toBe(`${f}: not a valid bundle: not a squashfs image (no squashfs superblock)`);
    expect(e.context['file']).toBe(f);
  });

  it('an empty file', async () => {
    const f = join(tempDir(), 'empty.snap');
    writeFileSync(f, '');
    expect((await readError(f)).code).toBe('ERR_BUNDLE_INVALID');
  });

  it('a squashfs without meta/snap.yaml', async () => {
    const f = squash({ 'bin/x': 'x', 'meta/gadget.yaml': 'volumes: {}\n' });
    const e = await readError(f);
    expect(e.code).toBe('ERR_BUNDLE_INVALID');
    expect(e.message).toBe(`${f}: not a valid bundle: it has no meta/snap.yaml`);
  });

  it('a squashfs whose meta/snap.yaml is a directory', async () => {
    const f = squash({ 'meta/snap.yaml/x': 'x' });
    expect((await readError(f)).message).toBe(`${f}: not a valid bundle: meta/snap.yaml is a directory`);
  });

  it('a squashfs whose meta/snap.yaml is a link pointing outside the image', async () => {
    const f = squash({ 'meta/snap.yaml': { symlink: '/etc/hostname' } });
    expect((await readError(f)).message).toBe(`${f}: not a valid bundle: meta/snap.yaml is a symbolic link that does not resolve inside the bundle`);
  });

  it('a bundle cut short says so', async () => {
    // Random bytes do not compress: the image is larger than the padding minimum.
    const packed = await pack(writeTree(join(tempDir(), 'big'), { ...helloTree(), 'data/blob': randomBytes(300_000) }), { output: tempDir() });
    const cut = join(tempDir(), 'cut.snap');
    writeFileSync(cut, readFileSync(packed.path).subarray(0, packed.size - 4096 * 10));
    const e = await readError(cut);
    expect(e.code).toBe('ERR_BUNDLE_INVALID');
    expect(e.message).toMatch(new RegExp(`^${cut}: not a valid bundle: cut short: the squashfs image is \\d+ bytes, the file ${packed.size - 40960}$`));
  });

  it('a directory', async () => {
    const d = tempDir();
    expect((await readError(d)).message).toBe(`${d}: not a valid bundle: not a regular file`);
  });

  it('a missing file is ENOENT with its path', async () => {
    const f = join(tempDir(), 'missing.snap');
    await expect(readSnapYaml(f)).rejects.toMatchObject({ code: 'ENOENT', path: f });
  });

  it('an invalid snap.yaml inside is ERR_SNAP_YAML naming FILE:meta/snap.yaml:LINE:COL', async () => {
    const f = squash({ 'meta/snap.yaml': "name: hello\nversion: '1'\narchitectures: [x86_64]\n" });
    const e = await readError(f);
    expect(e).toBeInstanceOf(SnapYamlError);
    expect(e.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:meta/snap\\.yaml:3:17: architectures\\.0: unknown architecture "x86_64"`));
  });

  it('a missing unsquashfs is ERR_HOST_TOOL naming squashfs-tools', async () => {
    const f = squash({ 'meta/snap.yaml': "name: hello\nversion: '1'\n" });
    const empty = join(tempDir(), 'bin');
    mkdirSync(empty);
    const e = await withEnv({ PATH: empty }, () => readError(f));
    expect(e.code).toBe('ERR_HOST_TOOL');
    expect(e.message).toContain('unsquashfs is not installed');
    expect(e.message).toContain('squashfs-tools');
  });
});
