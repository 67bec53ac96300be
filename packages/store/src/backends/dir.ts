import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open as openFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StoreError } from '../errors.js';
import type { StoreBackend } from './backend.js';

// A leading '-' is allowed: base64url digests (snap-revision keys) start with one 1 time in 64.
// A leading '.' is not, which keeps out '.', '..' and hidden files.
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._+-]*$/;

/**
 * Checks a store file name (see `layout.ts`): '/'-separated segments of URL-, file- and tag-safe
 * characters, none of them `.` or `..`, so no name can leave the store.
 *
 * ```ts
 * checkStorePath('snaps/hello/1.snap'); // ok
 * checkStorePath('../etc/passwd');      // throws ERR_STORE_PATH
 * ```
 */
export function checkStorePath(path: string): void {
  const segments = path.split('/');
  if (!path || segments.some((s) => !SEGMENT.test(s))) {
    throw new StoreError('ERR_STORE_PATH', `invalid store file name ${JSON.stringify(path)}: expected '/'-separated names of letters, digits, '.', '_', '+' and '-'`, { path });
  }
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A name next to `file` for writing before the rename: hidden, unique per process and call. */
function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * A store in a local directory: a path or a `file://` URL. Reads and writes; every write goes to a
 * temporary file in the same directory and is renamed into place, so a reader (or a web server
 * serving the directory) sees the old file or the new one, never half of one.
 *
 * ```ts
 * const b = new DirBackend('./my-store');
 * await b.write('store.json', Buffer.from('{}'));
 * const { stream } = await b.open('snaps/hello/1.snap', 4096); // from byte 4096
 * ```
 */
export class DirBackend implements StoreBackend {
  readonly writable = true;
  /** The store's directory, absolute. */
  readonly root: string;

  constructor(readonly url: string) {
    try {
      this.root = url.startsWith('file:') ? fileURLToPath(url) : resolve(url);
    } catch (e) {
      throw new StoreError('ERR_STORE_URL', `invalid store URL ${JSON.stringify(url)}: ${(e as Error).message}`, { url });
    }
  }

  /** The file on disk for a store name. */
  filePath(path: string): string {
    checkStorePath(path);
    return join(this.root, ...path.split('/'));
  }

  async read(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.filePath(path));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    await this.replace(path, (tmp) => writeFile(tmp, data, { flag: 'wx', mode: 0o644 }));
  }

  async writeFile(path: string, file: string): Promise<void> {
    await this.replace(path, async (tmp) => {
      try {
        await copyFile(file, tmp);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' && !existsSync(file)) throw new StoreError('ERR_STORE_NO_FILE', `cannot store ${file}: no such file`, { file });
        throw e;
      }
    });
  }

  private async replace(path: string, fill: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.filePath(path);
    await mkdir(dirname(target), { recursive: true });
    const tmp = tempNameFor(target);
    try {
      await fill(tmp);
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async open(path: string, offset = 0): Promise<{ stream: Readable; size?: number }> {
    const file = this.filePath(path);
    let handle;
    try {
      handle = await openFile(file, 'r');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') throw e;
      if (!existsSync(this.root)) {
        throw new StoreError('ERR_STORE_NOT_FOUND', `store directory ${this.root} does not exist`, { url: this.url, path });
      }
      throw new StoreError('ERR_STORE_NOT_FOUND', `${path} is not in the store at ${this.root}`, { url: this.url, path });
    }
    const { size } = await handle.stat();
    if (offset < 0 || offset > size) {
      await handle.close();
      throw new StoreError('ERR_STORE_RANGE', `cannot read ${path} from byte ${offset}: the file has ${size} bytes`, { url: this.url, path, offset, size });
    }
    // The stream owns the handle and closes it at the end or on destroy.
    return { stream: handle.createReadStream({ start: offset }), size: size - offset };
  }

  /** A path when the store was given as a path, a file:// URL when it was given as one. */
  locate(path: string): string {
    const file = this.filePath(path);
    return this.url.startsWith('file:') ? pathToFileURL(file).href : file;
  }
}
