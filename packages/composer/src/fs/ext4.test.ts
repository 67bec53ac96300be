import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { buildExt4, type Ext4Options } from './ext4.js';
import { runTool } from './tool.js';
import { callAsUser, chownTree, cleanUp, fsModule, hasSetpriv, isRoot, makeTree, MiB, NOBODY, run, runBytes, SAMPLE_TREE, sha256File, tempDir, TIMESTAMP } from '@edgeimage/testkit/fs-trees';
import { firstMissing, missingRoot, requires } from '@edgeimage/testkit/skips';

const UUID = '0b3a5a6e-7e22-4f52-9f3e-0a8a1c2b3d4e';
const SEED = '5d5e6f70-1111-4222-8333-944455556666';

const opts = (sourceDir: string, output: string, extra: Partial<Ext4Options> = {}): Ext4Options => ({
  sourceDir, output, size: 32 * MiB, label: 'system-a', uuid: UUID, hashSeed: SEED, timestamp: TIMESTAMP, ...extra,
});

const treeWithLink = { ...SAMPLE_TREE, 'boot/vmlinuz.link': { symlink: 'vmlinuz' }, 'long/link': { symlink: `${'x'.repeat(80)}/target` } };

/** These tests run real host tools: allow for a slow machine. */
const SLOW = 60_000;

afterAll(cleanUp);

describe('buildExt4', () => {
  test('builds the same bytes twice, passes e2fsck, and reads back with debugfs', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), treeWithLink);
    await buildExt4(opts(src, join(d, '1.img')));
    await buildExt4(opts(src, join(d, '2.img')));
    expect(statSync(join(d, '1.img')).size).toBe(32 * MiB);
    expect(sha256File(join(d, '1.img'))).toBe(sha256File(join(d, '2.img')));

    const fsck = run('e2fsck', ['-fn', join(d, '1.img')]);
    expect(fsck.stderr).not.toMatch(/error|corrupt/i);
    expect(fsck.status).toBe(0);
    expect(runBytes('debugfs', ['-R', 'cat /boot/vmlinuz', join(d, '1.img')])).toEqual(Buffer.from(SAMPLE_TREE['boot/vmlinuz'] as Buffer));
    expect(runBytes('debugfs', ['-R', 'cat "/models/long name with spaces.assert"', join(d, '1.img')]).toString()).toBe('type: model\n');

    const sb = run('dumpe2fs', ['-h', join(d, '1.img')]).stdout;
    expect(sb).toMatch(new RegExp(`Filesystem UUID:\\s+${UUID}`));
    expect(sb).toMatch(new RegExp(`Directory Hash Seed:\\s+${SEED}`));
    expect(sb).toMatch(/Filesystem volume name:\s+system-a/);
    expect(sb).not.toMatch(/has_journal/);
    expect(sb).toMatch(/Filesystem created:\s+Fri Mar  1 12:34:56 2024/);
  }, SLOW);

  test('gives every inode uid 0, gid 0, a normalised mode and the fixed time', async () => {
    const d = tempDir();
    // Modes as a umask of 002 makes them, and a source time far from the build's.
    const src = makeTree(join(d, 'src'), treeWithLink, { fileMode: 0o664, dirMode: 0o775, mtime: new Date('2001-01-01T00:00:00Z') });
    if (isRoot) chownTree(src, 1234, 5678); // else: owned by the (non-root) user running the tests
    const img = join(d, 'fs.img');
    await buildExt4(opts(src, img));
    const stat = (p: string) => run('debugfs', ['-R', `stat "${p}"`, img]).stdout;
    const t = Math.floor(TIMESTAMP.getTime() / 1000).toString(16);
    for (const [p, mode] of [['/', '0755'], ['/boot', '0755'], ['/boot/vmlinuz', '0644'], ['/bin/tool', '0755'], ['/boot/vmlinuz.link', '0777'], ['/long/link', '0777'], ['/lost+found', '0700'], ['/data/empty-dir', '0755']] as const) {
      const s = stat(p);
      expect(s).toMatch(/User:\s+0\s+Group:\s+0\s/);
      expect(s).toMatch(new RegExp(`Mode:\\s+${mode}\\s`));
      for (const f of ['ctime', 'atime', 'mtime', 'crtime']) expect(s).toMatch(new RegExp(`${f}: 0x${t}:00000000`));
    }
    expect(run('debugfs', ['-R', 'stat /boot/vmlinuz.link', img]).stdout).toMatch(/Fast link dest: "vmlinuz"/);
  }, SLOW);

  requires(firstMissing(missingRoot('a build as another user'), hasSetpriv ? undefined : 'setpriv is not installed')).test('a build by an unprivileged user (setpriv) gives the bytes of a build by root', async () => {
    const d = tempDir();
    // root's tree: root-owned, 0644/0755, created in one order.
    const rootSrc = makeTree(join(d, 'root-src'), treeWithLink);
    // nobody's tree: nobody-owned, umask 002 modes, other times, created in the reverse order,
    // with an extended attribute.
    const userSrc = makeTree(join(d, 'user-src'), treeWithLink, { reverse: true, fileMode: 0o664, dirMode: 0o775, mtime: new Date('2010-05-05T05:05:05Z') });
    run('setfattr', ['-n', 'user.leak', '-v', 'build-host', join(userSrc, 'README.txt')]);
    chownTree(userSrc, NOBODY, NOBODY);
    const out = join(d, 'out');
    makeTree(out, {});
    chownTree(out, NOBODY, NOBODY);

    await buildExt4(opts(rootSrc, join(d, 'root.img')));
    const args = { ...opts(userSrc, join(out, 'user.img')), timestamp: TIMESTAMP.toISOString() };
    await callAsUser(NOBODY, NOBODY, fsModule('ext4.ts'), 'buildExt4', [args]);
    expect(statSync(join(out, 'user.img')).uid).toBe(NOBODY);
    expect(sha256File(join(out, 'user.img'))).toBe(sha256File(join(d, 'root.img')));
  }, SLOW);

  test('a sparse and a dense copy of the same file give the same bytes (zero blocks become holes)', async () => {
    const d = tempDir();
    const content = Buffer.concat([Buffer.alloc(10_000, 7), Buffer.alloc(MiB), Buffer.alloc(5000, 9)]);
    const dense = makeTree(join(d, 'dense'), { f: content });
    const sparse = makeTree(join(d, 'sparse'), {});
    expect(run('cp', ['--sparse=always', join(dense, 'f'), join(sparse, 'f')]).status).toBe(0);
    expect(statSync(join(sparse, 'f')).blocks).toBeLessThan(statSync(join(dense, 'f')).blocks);
    await buildExt4(opts(dense, join(d, 'dense.img')));
    await buildExt4(opts(sparse, join(d, 'sparse.img')));
    expect(sha256File(join(d, 'dense.img'))).toBe(sha256File(join(d, 'sparse.img')));
    expect(runBytes('debugfs', ['-R', 'cat /f', join(d, 'dense.img')])).toEqual(content);
  }, SLOW);

  test('keeps a journal when asked (system-data)', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), {});
    await buildExt4(opts(src, join(d, 'data.img'), { journal: true, label: 'system-data' }));
    expect(run('dumpe2fs', ['-h', join(d, 'data.img')]).stdout).toMatch(/features:.*has_journal/);
    expect(run('e2fsck', ['-fn', join(d, 'data.img')]).status).toBe(0);
  }, SLOW);

  test('keeps its output sparse: an empty 1 GiB filesystem allocates a few MiB', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), { 'a': 'x' });
    await buildExt4(opts(src, join(d, 'big.img'), { size: 1024 * MiB }));
    expect(statSync(join(d, 'big.img')).blocks * 512).toBeLessThan(8 * MiB);
    expect(run('dumpe2fs', [join(d, 'big.img')]).stdout).toMatch(/Group 1: .*ITABLE_ZEROED/);
  }, SLOW);

  test('refuses content larger than the structure, naming it and the size it needs', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), { 'big.bin': Buffer.alloc(3 * MiB, 1), 'small.bin': Buffer.alloc(700 * 1024, 2) });
    const err = await buildExt4(opts(src, join(d, 'small.img'), { size: 2 * MiB, label: 'system-a', name: 'slot-a' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect(err).toMatchObject({ code: 'ERR_FS_TOO_SMALL' });
    const e = err as ComposeError;
    expect(e.message).toMatch(/"slot-a"/);
    expect(e.message).toMatch(/needs about \d+ bytes \(\d+ MiB\)/);
    const needed = e.context.needed as number;
    expect(needed).toBeGreaterThan(2 * MiB);
    expect(existsSync(join(d, 'small.img'))).toBe(false);
    // The size it names is enough.
    await buildExt4(opts(src, join(d, 'fits.img'), { size: needed }));
  }, SLOW);

  test('refuses a structure that mke2fs runs out of inodes for', async () => {
    const d = tempDir();
    const spec: Record<string, string> = {};
    for (let i = 0; i < 300; i++) spec[`f${i}`] = '';
    const src = makeTree(join(d, 'src'), spec);
    // 1 MiB at 16 KiB per inode: 64 inodes.
    const err = await buildExt4(opts(src, join(d, 'few.img'), { size: MiB })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_FS_TOO_SMALL' });
    expect((err as ComposeError).message).toMatch(/300 inodes/);
    await buildExt4(opts(src, join(d, 'enough.img'), { size: (err as ComposeError).context.needed as number }));
  }, SLOW);

  test('refuses a journal on a filesystem too small for one', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), {});
    await expect(buildExt4(opts(src, join(d, 'j.img'), { size: 4 * MiB, journal: true }))).rejects.toMatchObject({ code: 'ERR_FS_TOO_SMALL' });
  }, SLOW);

  test('refuses a label over 16 bytes, a bad UUID, an existing output, a missing source', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), { a: 'a' });
    await expect(buildExt4(opts(src, join(d, 'l.img'), { label: 'seventeen-chars-x' }))).rejects.toMatchObject({ code: 'ERR_FS_LABEL' });
    expect(existsSync(join(d, 'l.img'))).toBe(false);
    await buildExt4(opts(src, join(d, 'l16.img'), { label: 'sixteen-chars-xx' }));
    await expect(buildExt4(opts(src, join(d, 'u.img'), { uuid: 'not-a-uuid' }))).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS' });
    await expect(buildExt4(opts(src, join(d, 'l16.img')))).rejects.toMatchObject({ code: 'ERR_FS_OUTPUT_EXISTS' });
    await expect(buildExt4(opts(join(d, 'nope'), join(d, 'n.img')))).rejects.toMatchObject({ code: 'ERR_FS_SOURCE' });
    await expect(buildExt4(opts(src, join(d, 't.img'), { timestamp: new Date('2040-01-01T00:00:00Z') }))).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS' });
  }, SLOW);
});

describe('runTool', () => {
  test('names the Debian package of a missing host tool', async () => {
    const path = process.env.PATH;
    process.env.PATH = tempDir();
    try {
      await expect(runTool('mdir', ['-V'])).rejects.toMatchObject({ code: 'ERR_HOST_TOOL', context: { tool: 'mdir', package: 'mtools' } });
    } finally {
      process.env.PATH = path;
    }
  }, SLOW);
});
