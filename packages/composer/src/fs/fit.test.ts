import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { smallestFit } from './fit.js';
import { buildVfat } from './vfat.js';

const MiB = 1 << 20;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-fit-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('smallestFit', () => {
  test('finds the smallest whole MiB that fits, from a size that does not', async () => {
    const tried: number[] = [];
    const size = await smallestFit({ what: 'ext4 filesystem "system-a"', filesystem: 'ext4', payload: 1, tooSmall: 8 * MiB, limit: 1 << 24, fits: async (mib) => (tried.push(mib), mib >= 37) });
    expect(size).toBe(37 * MiB);
    // Doubling, then halving the gap: a handful of probes, not one per MiB.
    expect(tried.length).toBeLessThan(12);
  });

  test('content no size holds is ERR_FS_NO_FIT, naming the filesystem, the payload and the largest size tried', async () => {
    const tried: number[] = [];
    const e = await smallestFit({ what: 'vfat filesystem "system-boot"', filesystem: 'vfat', structure: 'system-boot', payload: 12345, tooSmall: 4 * MiB, limit: 64, fits: async (mib) => (tried.push(mib), false) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ComposeError);
    expect((e as ComposeError).code).toBe('ERR_FS_NO_FIT');
    expect((e as Error).message).toBe('vfat filesystem "system-boot": the content (12345 bytes) fits in no vfat filesystem of any size: the largest tried, 67108864 bytes (64 MiB), does not hold it either');
    expect((e as ComposeError).context).toEqual({ filesystem: 'vfat', structure: 'system-boot', payload: 12345, largestTried: 64 * MiB });
    expect(Math.max(...tried)).toBe(64);
  });
});

describe('buildVfat: a FAT16 root directory too full for any size', () => {
  test('is ERR_FS_NO_FIT naming the structure, the payload and the largest size tried (not an internal error), and leaves no output', async () => {
    const d = tempDir();
    const src = join(d, 'src');
    mkdirSync(src);
    // FAT16's root directory holds 512 entries whatever the size; 600 long names need far more.
    for (let i = 0; i < 600; i++) writeFileSync(join(src, `a file with a long name ${i}.txt`), 'x');
    const output = join(d, 'boot.img');
    const e = await buildVfat({ sourceDir: src, output, size: 64 * MiB, label: 'system-boot', name: 'system-boot', volumeId: 1, fatBits: 16, timestamp: new Date('2024-03-01T12:34:00Z') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ComposeError);
    expect((e as ComposeError).code).toBe('ERR_FS_NO_FIT');
    expect((e as Error).message).toMatch(/^vfat filesystem "system-boot" .*: the content \(600 bytes\) fits in no vfat filesystem of any size: the largest tried, \d+ bytes \(\d+ MiB\), does not hold it either; its root directory needs \d+ entries, and FAT16's holds 512 at any size$/);
    expect((e as ComposeError).context).toMatchObject({ filesystem: 'vfat', structure: 'system-boot', payload: 600 });
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(d)).toEqual(['src']);
  }, 120_000);
});
