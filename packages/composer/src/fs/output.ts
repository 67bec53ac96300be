import { open, rm, stat } from 'node:fs/promises';
import { ComposeError } from '../errors.js';

/**
 * Creates `output` (it must not exist) as a sparse file of exactly `size` bytes: every byte reads
 * as zero, which the builders rely on (`mke2fs -E assume_storage_prezeroed=1`).
 */
export async function createOutput(output: string, size: number, what: string): Promise<void> {
  let fh;
  try {
    fh = await open(output, 'wx', 0o644);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') throw new ComposeError('ERR_FS_OUTPUT_EXISTS', `${what}: the output file exists already; builders write a new file only`, { output });
    throw new ComposeError('ERR_IMAGE_OPEN', `${what}: cannot create the output file: ${e.message}`, { output });
  }
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

/**
 * Readies where a builder writes: a new file of exactly `size` bytes ({@link createOutput}) or,
 * with `offset`, the range `[offset, offset + size)` of an existing file (the disk image, a fresh
 * sparse file that reads zero there), so the filesystem is built in its place and never copied.
 */
export async function prepareOutput(output: string, size: number, offset: number | undefined, what: string): Promise<void> {
  if (offset === undefined) return createOutput(output, size, what);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % 512 !== 0) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: offset ${offset} is not a non-negative multiple of 512 bytes`, { offset });
  }
  let have: number;
  try {
    have = (await stat(output)).size;
  } catch (err) {
    throw new ComposeError('ERR_IMAGE_OPEN', `${what}: cannot open the image to build in: ${(err as Error).message}`, { output });
  }
  if (have < offset + size) {
    throw new ComposeError('ERR_IMAGE_RANGE', `${what}: ${size} bytes at offset ${offset} would end at ${offset + size}, past the end of the ${have}-byte image`, { output, offset, size, imageSize: have });
  }
}

/**
 * Undoes {@link prepareOutput} after a failure: a builder's own file is removed; a range of an
 * image is left to the image's owner, which removes the whole temporary image.
 */
export async function discardOutput(output: string, offset: number | undefined): Promise<void> {
  if (offset === undefined) await removeQuietly(output);
}

/** Removes a half-built output; never throws (the original error is what matters). */
export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/** Validates a structure size: a positive multiple of 512 bytes. */
export function checkSize(size: number, min: number, what: string): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: size ${size} is not a positive multiple of 512 bytes`, { size });
  }
  if (size < min) throw new ComposeError('ERR_FS_TOO_SMALL', `${what}: ${size} bytes is too small for any filesystem of this kind; it needs at least ${min} bytes`, { size, needed: min });
}
