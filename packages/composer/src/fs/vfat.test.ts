import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { buildVfat, fatLabel, readGeometry, type VfatOptions } from './vfat.js';
import { callAsUser, chownTree, cleanUp, fsModule, hasSetpriv, makeTree, MiB, NOBODY, run, runBytes, SAMPLE_TREE, sha256File, tempDir, TIMESTAMP } from '@edgeimage/testkit/fs-trees';
import { firstMissing, missingRoot, requires } from '@edgeimage/testkit/skips';

const opts = (sourceDir: string, output: string, extra: Partial<VfatOptions> = {}): VfatOptions => ({
  sourceDir, output, size: 40 * MiB, label: 'system-boot', volumeId: 0x1e2d3c4b, fatBits: 32, timestamp: TIMESTAMP, ...extra,
});

/** These tests run real host tools: allow for a slow machine. */
const SLOW = 60_000;

afterAll(cleanUp);

describe('buildVfat', () => {
  test('builds the same bytes twice, passes fsck.vfat, and reads back with mtools', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), SAMPLE_TREE);
    await buildVfat(opts(src, join(d, '1.img')));
    await buildVfat(opts(src, join(d, '2.img')));
    const img = join(d, '1.img');
    expect(readFileSync(img).length).toBe(40 * MiB);
    expect(sha256File(img)).toBe(sha256File(join(d, '2.img')));

    const fsck = run('fsck.vfat', ['-n', img]);
    expect(fsck.status).toBe(0);
    expect(fsck.stdout).not.toMatch(/differ|invalid|corrupt/i);
    expect(runBytes('mtype', ['-i', img, '::/boot/vmlinuz'])).toEqual(SAMPLE_TREE['boot/vmlinuz']);
    expect(runBytes('mtype', ['-i', img, '::/models/ünïcödé.txt']).toString()).toBe('utf-8 name\n');
    expect(runBytes('mtype', ['-i', img, '::/models/long name with spaces.assert']).toString()).toBe('type: model\n');
    expect(run('mdir', ['-i', img, '::/data']).stdout).toMatch(/<DIR>.*empty-dir/);

    // Every entry carries the fixed time; the boot sector the volume id and the upper-cased label.
    const listing = run('mdir', ['-i', img, '-/', '::/']).stdout;
    const dates = listing.split('\n').filter((l) => /\d{4}-\d\d-\d\d/.test(l));
    expect(dates.length).toBeGreaterThan(8);
    for (const l of dates) expect(l).toMatch(/2024-03-01\s+12:34/);
    const boot = readFileSync(img).subarray(0, 512);
    expect(boot.readUInt32LE(67)).toBe(0x1e2d3c4b);
    expect(boot.subarray(71, 82).toString('latin1')).toBe('SYSTEM-BOOT');
    expect(readFileSync(img).subarray(6 * 512 + 67, 6 * 512 + 71).readUInt32LE(0)).toBe(0x1e2d3c4b);
    expect(run('mlabel', ['-i', img, '-s', '::']).stdout).toMatch(/SYSTEM-BOOT/);
  }, SLOW);

  test('does not depend on the order the source tree was created in', async () => {
    const d = tempDir();
    const a = makeTree(join(d, 'a'), SAMPLE_TREE);
    const b = makeTree(join(d, 'b'), SAMPLE_TREE, { reverse: true, mtime: new Date('2003-03-03T03:03:03Z') });
    await buildVfat(opts(a, join(d, 'a.img')));
    await buildVfat(opts(b, join(d, 'b.img')));
    expect(sha256File(join(d, 'a.img'))).toBe(sha256File(join(d, 'b.img')));
  }, SLOW);

  requires(firstMissing(missingRoot('a build as another user'), hasSetpriv ? undefined : 'setpriv is not installed')).test('a build by an unprivileged user (setpriv) gives the bytes of a build by root', async () => {
    const d = tempDir();
    const rootSrc = makeTree(join(d, 'root-src'), SAMPLE_TREE);
    const userSrc = makeTree(join(d, 'user-src'), SAMPLE_TREE, { reverse: true, fileMode: 0o664, dirMode: 0o775, mtime: new Date('2010-05-05T05:05:05Z') });
    chownTree(userSrc, NOBODY, NOBODY);
    const out = makeTree(join(d, 'out'), {});
    chownTree(out, NOBODY, NOBODY);
    await buildVfat(opts(rootSrc, join(d, 'root.img')));
    await callAsUser(NOBODY, NOBODY, fsModule('vfat.ts'), 'buildVfat', [{ ...opts(userSrc, join(out, 'user.img')), timestamp: TIMESTAMP.toISOString() }]);
    expect(sha256File(join(out, 'user.img'))).toBe(sha256File(join(d, 'root.img')));
  }, SLOW);

  test('builds FAT16 or FAT32 as asked, or lets mkfs.vfat choose', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), { 'a.txt': 'a' });
    await buildVfat(opts(src, join(d, '16.img'), { fatBits: 16 }));
    await buildVfat(opts(src, join(d, '32.img'), { fatBits: 32 }));
    await buildVfat(opts(src, join(d, 'auto.img'), { fatBits: undefined, size: 4 * MiB, label: undefined }));
    expect((await readGeometry(join(d, '16.img'))).fatBits).toBe(16);
    expect((await readGeometry(join(d, '32.img'))).fatBits).toBe(32);
    expect((await readGeometry(join(d, 'auto.img'))).fatBits).toBe(12);
    expect(run('fsck.vfat', ['-n', join(d, 'auto.img')]).status).toBe(0);
    expect(run('mlabel', ['-i', join(d, 'auto.img'), '-s', '::']).stdout).toMatch(/no label/i);
  }, SLOW);

  test('label rules: upper-cased as FAT stores it, at most 11 characters, no forbidden characters', async () => {
    expect(fatLabel('system-boot')).toBe('SYSTEM-BOOT');
    expect(fatLabel('Edge Boot')).toBe('EDGE BOOT');
    for (const bad of ['system-boot1', '', 'a.b', 'a+b', 'ä', ' lead', 'a:b']) {
      expect(() => fatLabel(bad)).toThrow(expect.objectContaining({ code: 'ERR_FS_LABEL' }));
    }
    const d = tempDir();
    const src = makeTree(join(d, 'src'), {});
    await expect(buildVfat(opts(src, join(d, 'x.img'), { label: 'twelve-chars' }))).rejects.toMatchObject({ code: 'ERR_FS_LABEL' });
    expect(existsSync(join(d, 'x.img'))).toBe(false);
  }, SLOW);

  test('refuses content larger than the structure, naming it and the size it needs', async () => {
    const d = tempDir();
    const spec: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) spec[`blob${i}.bin`] = Buffer.alloc(MiB, i + 1);
    const src = makeTree(join(d, 'src'), spec);
    const err = await buildVfat(opts(src, join(d, 'small.img'), { size: 4 * MiB, fatBits: undefined, label: 'BOOT' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect(err).toMatchObject({ code: 'ERR_FS_TOO_SMALL' });
    expect((err as ComposeError).message).toMatch(/"BOOT".*needs about \d+ bytes \(\d+ MiB\)/);
    expect(existsSync(join(d, 'small.img'))).toBe(false);
    const needed = (err as ComposeError).context.needed as number;
    await buildVfat(opts(src, join(d, 'fits.img'), { size: needed, fatBits: undefined, label: 'BOOT' }));
  }, SLOW);

  test('turns mcopy\'s "Disk full" (directory entries, not data) into ERR_FS_TOO_SMALL', async () => {
    const d = tempDir();
    const spec: Record<string, string> = {};
    // FAT12 with 512 root entries: 600 long names need over 1000.
    for (let i = 0; i < 600; i++) spec[`a-rather-long-file-name-${i}.txt`] = '';
    const src = makeTree(join(d, 'src'), spec);
    const err = await buildVfat(opts(src, join(d, 'r.img'), { size: 2 * MiB, fatBits: undefined })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_FS_TOO_SMALL' });
    expect((err as ComposeError).message).toMatch(/root directory needs \d+ entries/);
  }, SLOW);

  test('refuses symlinks, names FAT cannot hold, and names that differ only in case', async () => {
    const d = tempDir();
    const cases: [Record<string, string | { symlink: string }>, string][] = [
      [{ a: 'a', 'b': { symlink: 'a' } }, 'ERR_FS_UNSUPPORTED_FILE'],
      [{ 'a:b': 'x' }, 'ERR_FS_UNSUPPORTED_NAME'],
      [{ 'dot.': 'x' }, 'ERR_FS_UNSUPPORTED_NAME'],
      [{ 'dir/Grub.cfg': 'x', 'dir/grub.CFG': 'y' }, 'ERR_FS_NAME_CLASH'],
    ];
    for (const [i, [spec, code]] of cases.entries()) {
      const src = makeTree(join(d, `src${i}`), spec);
      await expect(buildVfat(opts(src, join(d, `${i}.img`)))).rejects.toMatchObject({ code });
      expect(existsSync(join(d, `${i}.img`))).toBe(false);
    }
  }, SLOW);

  test('refuses a bad volume id, size or timestamp', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), {});
    await expect(buildVfat(opts(src, join(d, 'a.img'), { volumeId: 2 ** 32 }))).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS' });
    await expect(buildVfat(opts(src, join(d, 'b.img'), { size: 1000 }))).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS' });
    await expect(buildVfat(opts(src, join(d, 'c.img'), { timestamp: new Date('1975-01-01T00:00:00Z') }))).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS' });
  }, SLOW);
});
