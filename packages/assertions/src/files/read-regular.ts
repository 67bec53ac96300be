import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Why a file could not be read as a small regular file: each caller words it as its own error. */
export type RegularFileProblem =
  | { kind: 'missing' }
  | { kind: 'link' }
  | { kind: 'unopenable'; code: string }
  | { kind: 'not-regular' }
  | { kind: 'too-large'; size: number };

/**
 * The bytes of a regular file of at most `max` bytes, read once: opened without following a last
 * link and without blocking (a FIFO or a device swapped in must neither hang the open nor be read
 * for ever), checked with fstat to be a regular file of at most `max` bytes, then read with one
 * byte to spare, so a file that grows after the fstat is refused, not read on. Anything else goes to
 * `fail`, which returns the caller's typed error to throw.
 *
 * ```ts
 * const pem = readRegularFile(path, 64 * 1024, (p) => new MyError('ERR_X', `${path}: ${p.kind}`));
 * ```
 */
export function readRegularFile(path: string, max: number, fail: (problem: RegularFileProblem) => Error): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw fail(code === 'ENOENT' ? { kind: 'missing' } : code === 'ELOOP' ? { kind: 'link' } : { kind: 'unopenable', code });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail({ kind: 'not-regular' });
    if (st.size > max) throw fail({ kind: 'too-large', size: st.size });
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > max) throw fail({ kind: 'too-large', size: n });
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
