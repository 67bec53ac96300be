import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyIntoImage } from '../fs/copy.js';
import { buildVfat } from '../fs/vfat.js';
import { cleanUp, makeTree, MiB, run, runBytes, sha256File, sparseFile, tempDir, TIMESTAMP } from '@edgeimage/testkit/fs-trees';
import { decodeGrubEnv, encodeGrubEnv, ENV_FILES, ENV_WRITE_STEPS, initialEnv, type EnvWriteStep } from './env.js';
import { readImageEnv, readImageEnvFiles, writeImageEnv, writeImageFile } from './image.js';
import { writeEnvTree } from './tree.js';

/** These tests run real host tools: allow for a slow machine. */
const SLOW = 60_000;

afterAll(cleanUp);

const OFFSET = 2 * MiB;

/** A 64 MiB sparse disk with a 40 MiB FAT32 system-boot at 2 MiB holding the initial environment. */
async function diskWithEnv(): Promise<{ disk: string; dir: string; fs: string }> {
  const dir = tempDir();
  const stage = makeTree(join(dir, 'stage'), { 'EFI/BOOT/grub.cfg': 'set timeout=0\n' });
  writeEnvTree(stage, initialEnv());
  const fs = join(dir, 'boot.img');
  await buildVfat({ sourceDir: stage, output: fs, size: 40 * MiB, label: 'system-boot', volumeId: 0xabcdef01, fatBits: 32, timestamp: TIMESTAMP });
  const disk = sparseFile(join(dir, 'disk.img'), 64 * MiB);
  await copyIntoImage(disk, OFFSET, fs);
  return { disk, dir, fs };
}

/** fsck.vfat of the partition, cut out of the disk. */
function fsckPartition(disk: string, dir: string): number | null {
  const part = join(dir, 'part.img');
  writeFileSync(part, readFileSync(disk).subarray(OFFSET, OFFSET + 40 * MiB));
  return run('fsck.vfat', ['-n', part]).status;
}

describe('boot environment on an image', () => {
  test('reads the initial environment from a FAT partition inside a bigger sparse disk', async () => {
    const { disk } = await diskWithEnv();
    expect(await readImageEnv(disk, OFFSET)).toEqual({ vars: initialEnv(), from: 'env1' });
    const files = await readImageEnvFiles(disk, OFFSET);
    expect(decodeGrubEnv(files.lock1!)).toEqual({ editing: '0' });
    expect(decodeGrubEnv(files.lock2!)).toEqual({ editing: '0' });
    expect(files.env2).toEqual(files.env1);
  }, SLOW);

  test('round-trips changes, rewriting the files in the protocol\'s order, and keeps the filesystem clean', async () => {
    const { disk, dir } = await diskWithEnv();
    const steps: EnvWriteStep[] = [];
    const next = await writeImageEnv(disk, OFFSET, { edge_try_slot: 'b', edge_status: 'try' }, { onStep: (s) => void steps.push(s) });
    expect(steps).toEqual(ENV_WRITE_STEPS);
    expect(next).toEqual({ ...initialEnv(), edge_try_slot: 'b', edge_status: 'try' });
    expect(await readImageEnv(disk, OFFSET)).toEqual({ vars: next, from: 'env1' });
    const files = await readImageEnvFiles(disk, OFFSET);
    expect(files.env2).toEqual(files.env1);
    expect(decodeGrubEnv(files.lock1!)).toEqual({ editing: '0' });
    expect(decodeGrubEnv(files.lock2!)).toEqual({ editing: '0' });
    expect(fsckPartition(disk, dir)).toBe(0);
    // GRUB's own tool reads the copy mtools wrote.
    if (run('sh', ['-c', 'command -v grub-editenv']).status === 0) {
      const env1 = join(dir, 'env1');
      writeFileSync(env1, runBytes('mtype', ['-i', `${disk}@@${OFFSET}`, `::/${ENV_FILES.env1}`]));
      expect(run('grub-editenv', [env1, 'list']).stdout).toMatch(/edge_status=try\n/);
    }
  }, SLOW);

  test('a writer interrupted after lock1 editing=1 and half of env1: the reader takes env2', async () => {
    const { disk } = await diskWithEnv();
    const half = Buffer.alloc(1024);
    encodeGrubEnv({ ...initialEnv(), edge_slot: 'b' }).copy(half, 0, 0, 512);
    await writeImageFile(disk, OFFSET, ENV_FILES.lock1, encodeGrubEnv({ editing: '1' }));
    await writeImageFile(disk, OFFSET, ENV_FILES.env1, half);
    const r = await readImageEnv(disk, OFFSET);
    expect(r.from).toBe('env2');
    expect(r.vars).toEqual(initialEnv());
    // Truncated to 512 bytes (the file itself half written): the same.
    await writeImageFile(disk, OFFSET, ENV_FILES.env1, half.subarray(0, 512));
    expect((await readImageEnv(disk, OFFSET)).from).toBe('env2');
    // A later write repairs both copies.
    await writeImageEnv(disk, OFFSET, { edge_failed_slot: 'b' });
    expect(await readImageEnv(disk, OFFSET)).toEqual({ vars: { ...initialEnv(), edge_failed_slot: 'b' }, from: 'env1' });
  }, SLOW);

  test('a writer stopped after any step leaves the old or the new environment, never a broken one', async () => {
    const { disk, dir, fs } = await diskWithEnv();
    const pristine = sha256File(disk);
    for (let stop = 0; stop < ENV_WRITE_STEPS.length; stop++) {
      // Back to the freshly built partition (copyIntoImage rewrites what differs, zeros included).
      await copyIntoImage(disk, OFFSET, fs);
      expect(sha256File(disk)).toBe(pristine);
      const crash = new Error('power cut');
      await expect(writeImageEnv(disk, OFFSET, { edge_slot: 'b' }, { onStep: (_s, i) => { if (i === stop) throw crash; } })).rejects.toBe(crash);
      const r = await readImageEnv(disk, OFFSET);
      // Steps 0 and 1 (lock1=1, env1) done: the old copy env2; from step 2 (lock1=0) on: the new env1.
      expect(r.vars.edge_slot).toBe(stop < 2 ? 'a' : 'b');
      expect(r.from).toBe(stop < 2 ? 'env2' : 'env1');
    }
    expect(fsckPartition(disk, dir)).toBe(0);
  }, SLOW);

  test('refuses bad values and writes nothing', async () => {
    const { disk } = await diskWithEnv();
    const before = sha256File(disk);
    await expect(writeImageEnv(disk, OFFSET, { edge_slot: 'c' })).rejects.toMatchObject({ code: 'ERR_BOOTENV_VALUE' });
    await expect(writeImageEnv(disk, OFFSET, { edge_status: 'try' })).rejects.toMatchObject({ code: 'ERR_BOOTENV_STATE' });
    await expect(writeImageEnv(disk, OFFSET, { note: 'a\nb' })).rejects.toMatchObject({ code: 'ERR_BOOTENV_VALUE' });
    expect(sha256File(disk)).toBe(before);
  }, SLOW);

  test('fails clearly without an environment, at a wrong offset, or for a missing image', async () => {
    const dir = tempDir();
    const fs = join(dir, 'empty.img');
    await buildVfat({ sourceDir: makeTree(join(dir, 'src'), {}), output: fs, size: 8 * MiB, volumeId: 1, timestamp: TIMESTAMP });
    await expect(readImageEnv(fs, 0)).rejects.toMatchObject({ code: 'ERR_BOOTENV_UNREADABLE' });
    await expect(readImageEnv(fs, 512)).rejects.toMatchObject({ code: 'ERR_TOOL_FAILED' });
    await expect(readImageEnv(fs, 64 * MiB)).rejects.toMatchObject({ code: 'ERR_IMAGE_RANGE' });
    await expect(readImageEnv(join(dir, 'nope.img'), 0)).rejects.toMatchObject({ code: 'ERR_IMAGE_OPEN' });
  }, SLOW);

  test('two images built from the same environment are identical', async () => {
    const a = await diskWithEnv();
    const b = await diskWithEnv();
    expect(sha256File(a.disk)).toBe(sha256File(b.disk));
  }, SLOW);
});
