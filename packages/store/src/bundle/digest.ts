import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { encodeDigest } from '@edgeimage/assertions';

/** A file's identity as a snap-revision assertion states it. */
export interface FileDigest {
  /** SHA3-384 as snapd writes it: base64url without padding, 64 characters. */
  sha3_384: string;
  /** Bytes read, which are exactly the bytes hashed. */
  size: number;
}

/**
 * SHA3-384 and size of a file, streamed (constant memory, whatever the file's size). The size is
 * counted from the bytes hashed, not taken from stat, so the two always describe the same bytes.
 *
 * @example
 * const { sha3_384, size } = await fileDigest('hello-kiosk_1.0_all.snap');
 * // sha3_384: 'b9Ea…' (64 characters), size: 16384
 */
export async function fileDigest(file: string): Promise<FileDigest> {
  const hash = createHash('sha3-384');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const b = chunk as Buffer;
    hash.update(b);
    size += b.length;
  }
  return { sha3_384: encodeDigest(hash.digest()), size };
}
