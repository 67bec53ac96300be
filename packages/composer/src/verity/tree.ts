import { hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { ComposeError } from '../errors.js';

/**
 * dm-verity's format 1 with the parameters every edgeimage tree uses: sha256, 4096-byte data and
 * hash blocks. The device opens a bundle with exactly these (and the root hash, salt and data
 * blocks from its signed boot payload), so they are constants, not options.
 */
export const VERITY_HASH_ALGORITHM = 'sha256';
export const VERITY_BLOCK_SIZE = 4096;
const DIGEST_BYTES = 32;
/** The largest bundle a tree is computed for: its tree (1/128 of it) is built in memory. */
export const MAX_VERITY_DATA_BYTES = 16 * 1024 ** 3;
/** Bytes read (and hashed) per batch: large reads keep the per-call cost of the file system low. */
const BATCH_BYTES = 4 << 20;

/** What the kernel's dm-verity target needs besides the two files (the `dmsetup` table's fields). */
export interface VerityParams {
  /** dm-verity's hash format (1: the salt comes first, hash blocks are zero-padded). */
  version: 1;
  hashAlgorithm: typeof VERITY_HASH_ALGORITHM;
  dataBlockSize: typeof VERITY_BLOCK_SIZE;
  hashBlockSize: typeof VERITY_BLOCK_SIZE;
  dataBlocks: number;
  /** Hex. */
  salt: string;
  /** Hex. */
  rootHash: string;
}

export interface VerityTree {
  /**
   * The hash device's bytes, laid out as `veritysetup format --no-superblock` writes them: the
   * level nearest the root first. No superblock, so every parameter the kernel uses comes from
   * the signed payload and none from this unsigned file (with a superblock, veritysetup would
   * read the salt and block counts from the slot). Empty for a single data block: the root hash
   * is then the block's own hash, as in veritysetup and the kernel (zero levels).
   */
  tree: Buffer;
  params: VerityParams;
}

/** Hash blocks per level, the level hashing the data first, as the kernel and veritysetup count them. */
export function verityLevelBlocks(dataBlocks: number): number[] {
  const perBlock = VERITY_BLOCK_SIZE / DIGEST_BYTES;
  const levels: number[] = [];
  // The kernel: levels grow while (dataBlocks - 1) >> (7 × levels) is not 0, so one block has none.
  for (let n = dataBlocks; n > 1; ) {
    n = Math.ceil(n / perBlock);
    levels.push(n);
  }
  return levels;
}

/** The size of the tree of `dataBlocks` blocks. */
export const verityTreeBytes = (dataBlocks: number): number => verityLevelBlocks(dataBlocks).reduce((a, n) => a + n, 0) * VERITY_BLOCK_SIZE;

/**
 * Computes the dm-verity hash tree of `file` with `salt`. The file must be exactly `size` bytes
 * (the signed size of a bundle), a whole number of 4096-byte blocks and at most
 * {@link MAX_VERITY_DATA_BYTES}. Nothing is written: the caller decides where the tree goes.
 * Errors name the file as `what` (say `bundle hello revision 3 (/cache/bundles/….snap)`).
 *
 * ```ts
 * const { tree, params } = await computeVerityTree('base_3.snap', salt, 4337664);
 * params.rootHash; // what `veritysetup format --no-superblock --salt=…` prints
 * ```
 */
export async function computeVerityTree(file: string, salt: Buffer, size: number, what = file): Promise<VerityTree> {
  checkVeritySize(file, size, what);
  const dataBlocks = size / VERITY_BLOCK_SIZE;
  const levels = verityLevelBlocks(dataBlocks);
  // The first level takes the data blocks' digests directly (zero-padded to whole hash blocks).
  const first = Buffer.alloc(Math.max(levels[0] ?? 0, 1) * VERITY_BLOCK_SIZE);
  await hashFileBlocks(file, size, salt, first, what);
  if (dataBlocks === 1) {
    return { tree: Buffer.alloc(0), params: paramsOf(dataBlocks, salt, first.subarray(0, DIGEST_BYTES)) };
  }
  const built = [first];
  for (let i = 1; i < levels.length; i++) {
    const next = Buffer.alloc(levels[i]! * VERITY_BLOCK_SIZE);
    hashBlocks(built[i - 1]!, salt, next);
    built.push(next);
  }
  const root = hash(VERITY_HASH_ALGORITHM, Buffer.concat([salt, built[built.length - 1]!]), 'buffer');
  return { tree: Buffer.concat(built.reverse()), params: paramsOf(dataBlocks, salt, root) };
}

/** The bounds of a file dm-verity can cover. */
export function checkVeritySize(file: string, size: number, what = file): void {
  // The device reads the bundle through a loop device, which the kernel sizes in whole 4096-byte
  // blocks of dm-verity: a last partial block would be outside the verified device (veritysetup
  // silently leaves it out), so the squashfs would read past what is verified. Padding the file
  // would change its signed sha3-384. mksquashfs pads to 4 KiB (and `pack` never passes -nopad).
  if (size <= 0 || size % VERITY_BLOCK_SIZE !== 0) {
    throw new ComposeError('ERR_VERITY_SIZE', `${what}: ${size} bytes is not a whole number of ${VERITY_BLOCK_SIZE}-byte blocks (${size % VERITY_BLOCK_SIZE} bytes over): dm-verity cannot cover its last partial block on the device; a bundle made by mksquashfs without -nopad is padded to 4 KiB`, { file, size, blockSize: VERITY_BLOCK_SIZE });
  }
  if (size > MAX_VERITY_DATA_BYTES) {
    throw new ComposeError('ERR_VERITY_TOO_LARGE', `${what}: ${size} bytes is more than the ${MAX_VERITY_DATA_BYTES} bytes a bundle's hash tree is computed for`, { file, size, max: MAX_VERITY_DATA_BYTES });
  }
}

function paramsOf(dataBlocks: number, salt: Buffer, root: Buffer): VerityParams {
  return { version: 1, hashAlgorithm: VERITY_HASH_ALGORITHM, dataBlockSize: VERITY_BLOCK_SIZE, hashBlockSize: VERITY_BLOCK_SIZE, dataBlocks, salt: salt.toString('hex'), rootHash: root.toString('hex') };
}

/**
 * sha256(salt ‖ block) of each 4096-byte block of `data`, written one after another into `out`.
 * One `crypto.hash` call per block over a reused salt ‖ block buffer: a 4 KiB copy costs less
 * than the two extra calls into OpenSSL of a copied, salted Hash (about 12 % faster here).
 */
function hashBlocks(data: Buffer, salt: Buffer, out: Buffer, at = 0): void {
  const input = Buffer.allocUnsafe(salt.length + VERITY_BLOCK_SIZE);
  salt.copy(input, 0);
  for (let o = 0, i = at; o < data.length; o += VERITY_BLOCK_SIZE, i += DIGEST_BYTES) {
    data.copy(input, salt.length, o, o + VERITY_BLOCK_SIZE);
    hash(VERITY_HASH_ALGORITHM, input, 'buffer').copy(out, i);
  }
}

/**
 * Hashes the file's blocks into `out`, reading a batch while the previous one is hashed (reads
 * run on libuv's pool, hashing on this thread). A file that is not `size` bytes when read (cut
 * short, grown, unreadable) is refused: its tree would not be the tree of the signed bundle.
 */
async function hashFileBlocks(file: string, size: number, salt: Buffer, out: Buffer, what: string): Promise<void> {
  const refuse = (found: string) => new ComposeError('ERR_VERITY_READ', `${what}: cannot compute its hash tree: expected ${size} bytes (its signed size), ${found}`, { file, expected: size });
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw refuse(`cannot open it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw refuse('it is not a regular file');
    if (st.size !== size) throw refuse(`found ${st.size} bytes`);
    const bufs = [Buffer.allocUnsafe(Math.min(BATCH_BYTES, size)), Buffer.allocUnsafe(Math.min(BATCH_BYTES, size))];
    const readAt = async (pos: number, buf: Buffer) => {
      const want = Math.min(buf.length, size - pos);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) throw refuse(`it ended after ${pos + got} bytes`);
        got += bytesRead;
      }
      return buf.subarray(0, want);
    };
    let pending = readAt(0, bufs[0]!);
    for (let pos = 0, n = 0; pos < size; n++) {
      const chunk = await pending;
      const next = pos + chunk.length;
      if (next < size) pending = readAt(next, bufs[(n + 1) % 2]!);
      hashBlocks(chunk, salt, out, (pos / VERITY_BLOCK_SIZE) * DIGEST_BYTES);
      pos = next;
    }
    // Grown while it was read: the bytes hashed are not the whole of what the slot would get.
    if ((await fh.stat()).size !== size) throw refuse(`it changed size while it was read`);
  } catch (e) {
    if (e instanceof ComposeError) throw e;
    throw refuse(`cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    await fh.close();
  }
}
