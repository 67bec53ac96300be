import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { ComposeError } from '../../errors.js';

/** One positional write of a plan: `bytes` at byte `offset` of the image. */
export interface PlannedWrite {
  offset: number;
  bytes: Buffer;
  /** What the bytes are, for dry runs and messages: `primary GPT header (LBA 1)`. */
  what: string;
}

/** Opens `file` (which must exist) and runs `fn` with its descriptor, closing it afterwards. */
export function withImage<T>(file: string, mode: 'r' | 'r+', fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, mode);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ComposeError('ERR_IMAGE_OPEN', `${file}: cannot open the image ${mode === 'r' ? 'for reading' : 'for writing'}: ${err.code === 'ENOENT' ? 'no such file (create it first, e.g. with truncate)' : err.message}`, { file, errno: err.code });
  }
  try {
    return fn(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Writes every planned write at its offset; never truncates or touches other bytes. */
export function applyWrites(fd: number, writes: readonly PlannedWrite[]): void {
  for (const w of writes) {
    let done = 0;
    while (done < w.bytes.length) done += writeSync(fd, w.bytes, done, w.bytes.length - done, w.offset + done);
  }
}

/** Reads `length` bytes at `offset`; bytes past the end of the file read as zeros. */
export function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return b;
}
