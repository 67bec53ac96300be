import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { ComposeError } from '../errors.js';
import { runTool } from '../fs/tool.js';

/**
 * What the manifest's sha256s are of:
 * - `full`: sha256 of every byte (of the image, of each filesystem): `sha256sum` agrees. Costs a
 *   hash of the whole image; holes are hashed as zeros from memory, never read.
 * - `mapped`: {@link MAPPED_DIGEST}: only the blocks holding data count, so only what the image
 *   file maps is read (as bmaptool does); holes are never read.
 * - `none`: no digests (as genimage).
 */
export type DigestMode = 'full' | 'mapped' | 'none';

/**
 * The manifest's name for the `mapped` digest: sha256 over, for each 4 KiB block (counted from
 * the start of the image or of the partition) that holds a non-zero byte, in order, its byte offset
 * as 8 bytes big-endian then its bytes. Zero blocks count as absent whether the file maps them or
 * not, so the digest depends on the content only, never on how a host's filesystem stores it.
 */
export const MAPPED_DIGEST = 'sha256-nonzero-4k-blocks';

const BLOCK = 4096;
const CHUNK = 4 << 20;
const ZERO = Buffer.alloc(BLOCK);

/** A byte range `[start, end)`. */
type Range = [number, number];

/**
 * The digests of an image and of ranges of it (its filesystems), reading only the ranges the
 * file maps (`dataRanges`): of every byte (`full`) or of the non-zero blocks (`mapped`).
 */
export async function digestImage(image: string, size: number, parts: Range[], mode: 'full' | 'mapped'): Promise<{ image: string; parts: string[] }> {
  const mapped = await dataRanges(image, size);
  if (mode === 'full') {
    // The filesystems cover most of the image: hashing them next to the whole image would hash it
    // twice on one core. A worker hashes them on another while this thread hashes the image.
    const others = parts.length ? hashInWorker(image, parts, mapped) : Promise.resolve([]);
    let whole: string;
    try {
      whole = hashRanges(fs, crypto, image, [[0, size]], mapped)[0]!;
    } catch (e) {
      await others.catch(() => undefined);
      throw shortImage(image, size, e);
    }
    return { image: whole, parts: await others.catch((e: unknown) => Promise.reject(shortImage(image, size, e))) };
  }
  const fd = fs.openSync(image, 'r');
  try {
    return { image: nonZeroDigest(fd, mapped, 0, size), parts: parts.map(([a, b]) => nonZeroDigest(fd, mapped, a, b)) };
  } finally {
    fs.closeSync(fd);
  }
}

const shortImage = (image: string, size: number, e: unknown) => new ComposeError('ERR_IMAGE_RANGE', `${image}: cannot read the ${size}-byte image for its digests: ${(e as Error).message}`, { image, size });

/**
 * sha256 of every byte of each range of `file`, in one pass; a hole (outside `mapped`) is hashed
 * as the zeros it reads as, from memory, without reading it. Self-contained, as its source also
 * runs in a worker (hashInWorker): everything it uses comes in as an argument.
 */
function hashRanges(fsm: typeof fs, cryptom: typeof crypto, file: string, ranges: Range[], mapped: Range[]): string[] {
  const chunkSize = 4 << 20;
  const zeros = Buffer.alloc(chunkSize);
  const buf = Buffer.allocUnsafe(chunkSize);
  const hs = ranges.map(() => cryptom.createHash('sha256'));
  const end = Math.max(0, ...ranges.map((r) => r[1]));
  const fd = fsm.openSync(file, 'r');
  try {
    let next = 0;
    let pos = Math.min(end, ...ranges.map((r) => r[0]));
    while (pos < end) {
      // Between ranges nothing is hashed: skip to the next one.
      if (!ranges.some(([a, b]) => a <= pos && pos < b)) {
        pos = Math.min(end, ...ranges.map((r) => r[0]).filter((a) => a > pos));
        continue;
      }
      while (next < mapped.length && mapped[next]![1] <= pos) next++;
      const m = mapped[next];
      const inData = m !== undefined && m[0] <= pos;
      // Up to the end of this data range or this hole, and of the range being hashed, a chunk at most.
      const stop = Math.min(inData ? m[1] : (m?.[0] ?? end), ...ranges.map(([a, b]) => (a > pos ? a : b > pos ? b : end)));
      const want = Math.min(chunkSize, stop - pos);
      let chunk: Buffer;
      if (inData) {
        const n = fsm.readSync(fd, buf, 0, want, pos);
        if (n <= 0) throw new Error(`it ends at ${pos} bytes`);
        chunk = buf.subarray(0, n);
      } else chunk = zeros.subarray(0, want);
      for (const [i, [a, b]] of ranges.entries()) {
        const from = Math.max(a, pos);
        const to = Math.min(b, pos + chunk.length);
        if (from < to) hs[i]!.update(chunk.subarray(from - pos, to - pos));
      }
      pos += chunk.length;
    }
  } finally {
    fsm.closeSync(fd);
  }
  return hs.map((h) => h.digest('hex'));
}

/** {@link hashRanges} on a worker thread (plain JavaScript evaluated there: no module of ours is loaded). */
function hashInWorker(file: string, ranges: Range[], mapped: Range[]): Promise<string[]> {
  const code = `const { parentPort, workerData: w } = require('node:worker_threads');
const hashRanges = ${hashRanges.toString()};
parentPort.postMessage(hashRanges(require('node:fs'), require('node:crypto'), w.file, w.ranges, w.mapped));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { file, ranges, mapped } });
    worker.once('message', (m: string[]) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (c) => (c !== 0 ? reject(new Error(`the digest worker exited with ${c}`)) : undefined));
  });
}

/** {@link MAPPED_DIGEST} of `[start, end)`, reading only where `mapped` says the file has data. */
function nonZeroDigest(fd: number, mapped: Range[], start: number, end: number): string {
  const h = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const head = Buffer.alloc(8);
  let done = start;
  for (const [ma, mb] of mapped) {
    // Widen to whole blocks of this range's grid (a block beyond a mapped range reads zero),
    // never going back over a block the previous range took.
    let a = Math.max(done, start + Math.floor((ma - start) / BLOCK) * BLOCK);
    const b = Math.min(end, start + Math.ceil((mb - start) / BLOCK) * BLOCK);
    done = Math.max(done, b);
    while (a < b) {
      const len = Math.min(CHUNK, b - a);
      const n = readFully(fd, buf, len, a);
      for (let o = 0; o < n; o += BLOCK) {
        const e = Math.min(o + BLOCK, n);
        if (buf.compare(ZERO, 0, e - o, o, e) === 0) continue;
        head.writeBigUInt64BE(BigInt(a + o - start));
        h.update(head);
        h.update(buf.subarray(o, e));
      }
      a += len;
    }
  }
  return h.digest('hex');
}

function readFully(fd: number, buf: Buffer, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  buf.fill(0, got, length);
  return length;
}

/** Longest filefrag output read (extents of a fragmented image: about 100 bytes each). */
const MAX_EXTENTS = 1 << 20;

/**
 * The ranges of `image` that hold data, sorted and merged, from the kernel's extent map (FIEMAP,
 * through e2fsprogs' filefrag: Node has no SEEK_DATA). Where the map cannot be had (a filesystem
 * without FIEMAP), all of the file: slower, same digest.
 */
export async function dataRanges(image: string, size: number): Promise<Range[]> {
  const r = await runTool('filefrag', ['-e', image], { check: false });
  const out = r.stdout.toString('utf8');
  const unit = Number(/\((\d+) blocks? of (\d+) bytes\)/.exec(out)?.[2] ?? NaN);
  // Without its extent table (no FIEMAP: filefrag falls back to FIBMAP and prints no table), all.
  // Data not yet written back is listed too (ext4, xfs and btrfs map delayed allocations).
  if (r.code !== 0 || !Number.isSafeInteger(unit) || unit <= 0 || !/^\s*ext:\s+logical_offset:/m.test(out)) return [[0, size]];
  const ranges: Range[] = [];
  let count = 0;
  for (const m of out.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)) {
    if (++count > MAX_EXTENTS) return [[0, size]];
    const a = Number(m[1]) * unit;
    const b = Math.min(size, (Number(m[2]) + 1) * unit);
    if (a < b) ranges.push([a, b]);
  }
  ranges.sort((x, y) => x[0] - y[0]);
  const merged: Range[] = [];
  for (const x of ranges) {
    const last = merged.at(-1);
    if (last && x[0] <= last[1]) last[1] = Math.max(last[1], x[1]);
    else merged.push([x[0], x[1]]);
  }
  return merged;
}
