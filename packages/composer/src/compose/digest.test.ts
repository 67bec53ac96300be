/**
 * The manifest's digests: full (sha256 of every byte), mapped (sha256-nonzero-4k-blocks: only
 * what the image file maps is read) and none, on crafted sparse files and on a composed image.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dataRanges, digestImage, MAPPED_DIGEST } from './digest.js';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';

const BLOCK = 4096;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-digest-test-'));
  dirs.push(d);
  return d;
};

/** The mapped digest computed the slow, obvious way: every block of the bytes, read from a buffer. */
function reference(bytes: Buffer): string {
  const h = createHash('sha256');
  for (let o = 0; o < bytes.length; o += BLOCK) {
    const block = bytes.subarray(o, Math.min(o + BLOCK, bytes.length));
    if (block.every((b) => b === 0)) continue;
    const head = Buffer.alloc(8);
    head.writeBigUInt64BE(BigInt(o));
    h.update(head).update(block);
  }
  return h.digest('hex');
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A 64 MiB sparse file with data here and there, and one written block of zeros (mapped, yet zero). */
function sparseFile(dir: string): string {
  const f = join(dir, 'sparse.img');
  truncateSync(openAndClose(f), 64 << 20);
  const fd = openSync(f, 'r+');
  const put = (at: number, b: Buffer) => writeSync(fd, b, 0, b.length, at);
  put(0, Buffer.from('the first sector'));
  put(3 * 512, Buffer.alloc(700, 0xab)); // inside the first block, crossing no block edge
  put(5 * BLOCK - 10, Buffer.alloc(30, 0xcd)); // across a block edge
  put(9 * BLOCK, Buffer.alloc(BLOCK, 0)); // mapped zeros
  put(40 << 20, Buffer.alloc(3 << 20, 0x11));
  put((64 << 20) - 5, Buffer.from('tail!'));
  closeSync(fd);
  return f;
}
const openAndClose = (f: string) => {
  closeSync(openSync(f, 'w'));
  return f;
};

afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('digestImage', () => {
  test('mapped: equals the digest of every non-zero block, for the file and for ranges off the 4 KiB grid; full: sha256 of the bytes', async () => {
    const f = sparseFile(tempDir());
    const bytes = readFileSync(f);
    const size = bytes.length;
    const parts: [number, number][] = [[3 * 512, 20 * BLOCK + 512], [39 << 20, 64 << 20]];
    const mapped = await digestImage(f, size, parts, 'mapped');
    expect(mapped.image).toBe(reference(bytes));
    expect(mapped.parts).toEqual(parts.map(([a, b]) => reference(bytes.subarray(a, b))));
    const full = await digestImage(f, size, parts, 'full');
    expect(full.image).toBe(sha256(bytes));
    expect(full.parts).toEqual(parts.map(([a, b]) => sha256(bytes.subarray(a, b))));
  });

  test('mapped: the same content gives the same digest however the file is mapped (sparse, or every block written)', async () => {
    const d = tempDir();
    const f = sparseFile(d);
    const dense = join(d, 'dense.img');
    expect(spawnSync('cp', ['--sparse=never', f, dense]).status).toBe(0);
    // The sparse file maps a few ranges; the dense one all of it.
    expect((await dataRanges(f, statSync(f).size)).reduce((n, [a, b]) => n + b - a, 0)).toBeLessThan(8 << 20);
    expect(await dataRanges(dense, statSync(dense).size)).toEqual([[0, 64 << 20]]);
    const size = statSync(f).size;
    expect((await digestImage(dense, size, [], 'mapped')).image).toBe((await digestImage(f, size, [], 'mapped')).image);
  });

  test('a file of holes only has the digest of nothing', async () => {
    const f = join(tempDir(), 'holes.img');
    truncateSync(openAndClose(f), 8 << 20);
    expect((await digestImage(f, 8 << 20, [[0, 8 << 20]], 'mapped')).parts).toEqual([sha256(Buffer.alloc(0))]);
  });
});

describe('composeImage digests', () => {
  let world: ImageWorld;
  beforeAll(async () => {
    world = await makeImageWorld();
  }, SLOW);
  afterAll(() => world?.cleanup());

  test("mapped, the default: the manifest and the result say so, and the sha256s are the mapped digests of the image and of each filesystem's bytes", async () => {
    const r = await world.compose(await world.resolve(await world.model({ revision: 3 })), { outputDir: world.tempDir('out-') });
    const image = readFileSync(r.images[0]!.path);
    expect(r.manifest.digest).toBe(MAPPED_DIGEST);
    expect(r.images[0]!.digest).toBe(MAPPED_DIGEST);
    expect(r.images[0]!.sha256).toBe(reference(image));
    expect(r.manifest.outputs).toEqual([{ format: 'raw', path: 'edge-pc.img', sha256: reference(image) }]);
    for (const p of r.manifest.partitions) expect(p.sha256).toBe(reference(image.subarray(p.offset, p.offset + p.size)));
  }, SLOW);

  test('none: no sha256 in the manifest or the result; the image is the same bytes as with them', async () => {
    const resolution = await world.resolve(await world.model({ revision: 3 }));
    const none = await world.compose(resolution, { outputDir: world.tempDir('out-'), digests: 'none' });
    const full = await world.compose(resolution, { outputDir: world.tempDir('out-'), digests: 'full' });
    expect(none.images[0]!.sha256).toBeUndefined();
    expect(full.images[0]!.digest).toBeUndefined();
    expect(none.manifest.digest).toBeUndefined();
    expect(none.manifest.partitions.every((p) => p.sha256 === undefined)).toBe(true);
    expect(none.manifest.outputs).toEqual([{ format: 'raw', path: 'edge-pc.img' }]);
    expect(sha256(readFileSync(none.images[0]!.path))).toBe(full.images[0]!.sha256);
    expect(full.manifest.digest).toBeUndefined();
  }, SLOW);
});
