/**
 * Filesystems built in their place in a disk image (buildExt4/buildVfat with `offset`) are the
 * same bytes as built in a file of their own, and nothing outside their range is written.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { buildExt4 } from './ext4.js';
import { buildVfat } from './vfat.js';
import { slice } from '@edgeimage/testkit/image-read';

const MiB = 1 << 20;
const TIMESTAMP = new Date('2024-03-01T12:34:00Z');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setUp(): { d: string; src: string; disk: string } {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-in-place-test-'));
  dirs.push(d);
  const src = join(d, 'src');
  mkdirSync(join(src, 'boot'), { recursive: true });
  writeFileSync(join(src, 'boot', 'kernel.img'), Buffer.alloc(300_000, 7));
  writeFileSync(join(src, 'README.txt'), 'in place\n');
  // Larger than 512 MiB past the offset: mkfs.fat 4.2 would pick FAT32 by the file's size.
  const disk = join(d, 'disk.img');
  closeSync(openSync(disk, 'w'));
  truncateSync(disk, 600 * MiB);
  return { d, src, disk };
}

const isZero = (b: Buffer) => b.every((x) => x === 0);

describe('building in place at an offset of a disk image', () => {
  test('vfat (FAT size left to mkfs.vfat): the same bytes as a file of its own; nothing written outside its range', async () => {
    const { d, src, disk } = setUp();
    const o = { sourceDir: src, size: 64 * MiB, label: 'system-boot', volumeId: 0x1e2d3c4b, timestamp: TIMESTAMP, hiddenSectors: 2048 };
    await buildVfat({ ...o, output: join(d, 'own.img') });
    await buildVfat({ ...o, output: disk, offset: MiB });
    expect(slice(disk, MiB, 64 * MiB).equals(slice(join(d, 'own.img'), 0, 64 * MiB))).toBe(true);
    expect(isZero(slice(disk, 0, MiB))).toBe(true);
    expect(isZero(slice(disk, 65 * MiB, 8 * MiB))).toBe(true);
  }, 60_000);

  test('ext4: the same bytes as a file of its own; nothing written outside its range', async () => {
    const { d, src, disk } = setUp();
    const o = { sourceDir: src, size: 32 * MiB, label: 'system-a', uuid: '0b3a5a6e-7e22-4f52-9f3e-0a8a1c2b3d4e', hashSeed: '5d5e6f70-1111-4222-8333-944455556666', timestamp: TIMESTAMP };
    await buildExt4({ ...o, output: join(d, 'own.img') });
    await buildExt4({ ...o, output: disk, offset: 3 * MiB });
    expect(slice(disk, 3 * MiB, 32 * MiB).equals(slice(join(d, 'own.img'), 0, 32 * MiB))).toBe(true);
    expect(isZero(slice(disk, 0, 3 * MiB))).toBe(true);
    expect(isZero(slice(disk, 35 * MiB, 8 * MiB))).toBe(true);
  }, 60_000);

  test('a range past the end of the image is ERR_IMAGE_RANGE, and the image is left as it was', async () => {
    const { src, disk } = setUp();
    const e = await buildExt4({ sourceDir: src, output: disk, offset: 590 * MiB, size: 32 * MiB, uuid: '0b3a5a6e-7e22-4f52-9f3e-0a8a1c2b3d4e', hashSeed: '5d5e6f70-1111-4222-8333-944455556666', timestamp: TIMESTAMP }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ComposeError);
    expect((e as ComposeError).code).toBe('ERR_IMAGE_RANGE');
    expect((e as Error).message).toMatch(/33554432 bytes at offset 618659840 would end at 652214272, past the end of the 629145600-byte image/);
    expect(isZero(slice(disk, 580 * MiB, 20 * MiB))).toBe(true);
  }, 60_000);
});
