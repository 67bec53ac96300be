import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyIntoImage, writeAt } from './copy.js';
import { buildExt4 } from './ext4.js';
import { cleanUp, makeTree, MiB, SAMPLE_TREE, sha256, sha256File, sparseFile, tempDir, TIMESTAMP } from '@edgeimage/testkit/fs-trees';
import { slice } from '@edgeimage/testkit/image-read';

/** These tests run real host tools: allow for a slow machine. */
const SLOW = 60_000;

afterAll(cleanUp);


describe('copyIntoImage', () => {
  test('copies a mostly empty ext4 into a sparse image without allocating its holes', async () => {
    const d = tempDir();
    const src = makeTree(join(d, 'src'), SAMPLE_TREE);
    const fs = join(d, 'slot.img');
    await buildExt4({ sourceDir: src, output: fs, size: 128 * MiB, uuid: '0b3a5a6e-7e22-4f52-9f3e-0a8a1c2b3d4e', hashSeed: '5d5e6f70-1111-4222-8333-944455556666', timestamp: TIMESTAMP });
    const image = sparseFile(join(d, 'disk.img'), 512 * MiB);
    const offset = 3 * MiB;
    await copyIntoImage(image, offset, fs);

    const st = statSync(image);
    expect(st.size).toBe(512 * MiB);
    // The filesystem itself allocates ~1.5 MiB; the image gets no more than that.
    expect(st.blocks * 512).toBeLessThanOrEqual(statSync(fs).blocks * 512 + 64 * 1024);
    expect(st.blocks * 512).toBeLessThan(4 * MiB);
    expect(sha256(slice(image, offset, 128 * MiB))).toBe(sha256File(fs));
    // What lies around it is untouched zeros.
    expect(slice(image, 0, offset).equals(Buffer.alloc(offset))).toBe(true);
    expect(slice(image, offset + 128 * MiB, MiB).equals(Buffer.alloc(MiB))).toBe(true);
  }, SLOW);

  test('writes exact bytes: zero blocks over old data are written, unaligned ends are kept', async () => {
    const d = tempDir();
    const image = join(d, 'disk.img');
    const old = randomBytes(8 * MiB);
    writeFileSync(image, old);
    // Data, a zero run across the 4 MiB chunk boundary, data, an unaligned tail.
    const source = Buffer.concat([randomBytes(5000), Buffer.alloc(5 * MiB + 8192), randomBytes(10_001)]);
    const file = join(d, 'blob.bin');
    writeFileSync(file, source);
    const offset = 12_345;
    await copyIntoImage(image, offset, file);
    const now = readFileSync(image);
    expect(now.length).toBe(old.length);
    expect(now.subarray(offset, offset + source.length).equals(source)).toBe(true);
    expect(now.subarray(0, offset).equals(old.subarray(0, offset))).toBe(true);
    expect(now.subarray(offset + source.length).equals(old.subarray(offset + source.length))).toBe(true);
  }, SLOW);

  test('never truncates or extends the image', async () => {
    const d = tempDir();
    const image = sparseFile(join(d, 'disk.img'), 4 * MiB);
    const file = join(d, 'blob.bin');
    writeFileSync(file, randomBytes(MiB));
    await copyIntoImage(image, 3 * MiB, file);
    expect(statSync(image).size).toBe(4 * MiB);
    await expect(copyIntoImage(image, 3 * MiB + 1, file)).rejects.toMatchObject({ code: 'ERR_IMAGE_RANGE' });
    await expect(copyIntoImage(image, -1, file)).rejects.toMatchObject({ code: 'ERR_IMAGE_RANGE' });
    await expect(copyIntoImage(join(d, 'missing.img'), 0, file)).rejects.toMatchObject({ code: 'ERR_IMAGE_OPEN' });
    expect(statSync(image).size).toBe(4 * MiB);
  }, SLOW);
});

describe('writeAt', () => {
  test('writes bytes in place at an offset', async () => {
    const d = tempDir();
    const image = sparseFile(join(d, 'disk.img'), MiB);
    const lba = Buffer.from([0x00, 0x08, 0x00, 0x00]);
    await writeAt(image, 92, lba);
    await writeAt(image, MiB - 3, Buffer.from('end'));
    const now = readFileSync(image);
    expect(now.length).toBe(MiB);
    expect(now.subarray(92, 96)).toEqual(lba);
    expect(now.subarray(MiB - 3).toString()).toBe('end');
    expect(now.subarray(0, 92).equals(Buffer.alloc(92))).toBe(true);
    await expect(writeAt(image, MiB - 2, Buffer.from('end'))).rejects.toMatchObject({ code: 'ERR_IMAGE_RANGE' });
  }, SLOW);
});
