import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { TarArchive } from 'archiver';
import { UpdateError } from './errors.js';
import { slotPathProblem } from './manifest.js';

export type TarSource = { name: string; data: Buffer } | { name: string; file: string };

/**
 * Writes a plain ustar archive of `entries`, in the order given, that busybox `tar -x` reads:
 * no folder entries, every entry mode 0644, uid/gid 0, no user or group names, mtime 0 — the
 * same entries give the same bytes. Files are streamed, never read whole into memory.
 */
export async function writeTar(output: string, entries: readonly TarSource[]): Promise<void> {
  // The device reads plain ustar headers only: a name must fit the name field, or split at a /
  // into prefix and name (what archiver does), never need a pax record.
  for (const e of entries) {
    const fits = Buffer.byteLength(e.name) <= 100 || [...e.name.matchAll(/\//g)].some((m) => m.index! <= 155 && Buffer.byteLength(e.name) - m.index! - 1 <= 100 && m.index! > 0);
    if (!fits) throw new UpdateError('ERR_UPDATE_PATH', `update entry ${e.name} is too long for a plain ustar header (a name of up to 100 bytes after a prefix of up to 155)`, { path: e.name });
  }
  // Stat before the output exists: a missing file fails here, not half-way through the tar.
  const sized = entries.map((e) => ('data' in e ? e : { ...e, stats: statSync(e.file) }));
  const archive = new TarArchive();
  const out = createWriteStream(output, { flags: 'wx', mode: 0o644 });
  let fail!: (e: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    fail = (e) => {
      archive.abort();
      out.destroy();
      reject(e);
    };
    out.on('close', resolve);
    out.on('error', fail);
    archive.on('error', fail);
    // archiver reports some failures as warnings and carries on: a tar missing a file the
    // manifest promises must not be written.
    archive.on('warning', fail);
  });
  archive.pipe(out);
  for (const e of sized) {
    // archiver would otherwise take the file's own mtime and mode (and the clock for buffers).
    const data = { name: e.name, date: new Date(0), mode: 0o644 };
    if ('data' in e) {
      archive.append(e.data, data);
      continue;
    }
    // Not archive.file(): it stats files concurrently and appends them in the order the stats
    // finish. A stream with its stats goes through the ordered queue; opened only when read.
    // archiver pipes it without watching for errors, so a read error would hang the archive.
    const source = Readable.from(chunks(e.file)).on('error', fail);
    archive.append(source, { ...data, stats: e.stats });
  }
  await Promise.all([archive.finalize(), done]);
}

async function* chunks(file: string): AsyncGenerator<Buffer> {
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) yield c as Buffer;
}

export interface TarEntry {
  name: string;
  size: number;
  /** Where the entry's bytes start in the archive. */
  offset: number;
  /** An update holds regular files only. */
  type: 'file';
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
}

const BLOCK = 512;
const TYPE_NAMES: Record<string, string> = { '1': 'a hard link', '2': 'a symbolic link', '3': 'a character device', '4': 'a block device', '5': 'a folder', '6': 'a FIFO', x: 'a pax record', g: 'a pax global record', L: 'a GNU long name', K: 'a GNU long link name' };

/**
 * The entries of an update tar, read as the device reads them (edge-update parses the same
 * headers): POSIX ustar headers with valid checksums, regular files only (no links, folders, pax
 * or GNU records: what renames or aliases an entry is refused, not followed), names in canonical
 * form and NUL-padded, every entry whole. Ends at the first zero block or at the end of the file
 * (or after `first` entries: what comes after them is not read).
 */
export function readTar(file: string, opts: { first?: number } = {}): TarEntry[] {
  const fd = openSync(file, 'r');
  try {
    const total = fstatSync(fd).size;
    const entries: TarEntry[] = [];
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    const fail = (why: string): never => {
      throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: not a valid update tar at byte ${pos}: ${why}`, { file, offset: pos });
    };
    for (;;) {
      if (opts.first !== undefined && entries.length >= opts.first) return entries;
      const n = readSync(fd, header, 0, BLOCK, pos);
      if (n === 0) return entries; // tolerated, as by tar: no end-of-archive blocks
      if (n < BLOCK) fail('truncated header');
      if (header.every((b) => b === 0)) return entries;
      const oct = (at: number, len: number, what: string) => {
        // digits, space/NUL padded on either side, as the device's parser reads them
        const s = header.subarray(at, at + len).toString('latin1');
        const m = /^[ \0]*([0-7]{1,12})[ \0]*$/.exec(s);
        if (!m) fail(`${what} ${JSON.stringify(s)} is not an octal number`);
        return parseInt(m![1]!, 8);
      };
      const sum = oct(148, 8, 'checksum');
      let actual = 0;
      for (let i = 0; i < BLOCK; i++) actual += i >= 148 && i < 156 ? 32 : header[i]!;
      if (sum !== actual) fail('header checksum mismatch');
      if (header.subarray(257, 265).toString('latin1') !== 'ustar\u000000') fail('not a POSIX ustar header');
      const size = oct(124, 12, 'size');
      const flag = String.fromCharCode(header[156]!);
      const field = (at: number, len: number): string => {
        const raw = header.subarray(at, at + len);
        const end = raw.indexOf(0);
        if (end >= 0 && raw.subarray(end).some((b) => b !== 0)) fail(`an entry name with bytes after its end (${JSON.stringify(raw.toString('latin1'))})`);
        return raw.subarray(0, end < 0 ? len : end).toString('latin1');
      };
      const prefix = field(345, 155);
      const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
      const entryError = (code: string, why: string, ctx: Record<string, unknown> = {}): never => {
        throw new UpdateError(code, `${file}: entry ${JSON.stringify(name)} at byte ${pos} ${why}`, { file, offset: pos, entry: name, ...ctx });
      };
      if (flag !== '0' && flag !== '\0') entryError('ERR_UPDATE_ENTRY_TYPE', `is ${TYPE_NAMES[flag] ?? `of tar type ${JSON.stringify(flag)}`}: an update holds regular files only`, { type: flag });
      const bad = slotPathProblem(name);
      if (bad) entryError('ERR_UPDATE_ENTRY_NAME', `${bad}: entry names are in canonical form, else one could stand for another`);
      const dataOffset = pos + BLOCK;
      if (dataOffset + size > total) fail(`entry ${name} (${size} bytes) goes past the end of the file (${total} bytes)`);
      entries.push({ name, size, offset: dataOffset, type: 'file', mode: oct(100, 8, 'mode'), mtime: oct(136, 12, 'mtime'), uid: oct(108, 8, 'uid'), gid: oct(116, 8, 'gid') });
      pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    closeSync(fd);
  }
}

/** The bytes of one entry (small entries only: the manifest and its signature). */
export function readTarEntry(file: string, e: TarEntry, limit = 64 << 20): Buffer {
  if (e.size > limit) throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: entry ${e.name} is ${e.size} bytes, more than the ${limit} expected`, { file, entry: e.name });
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(e.size);
    let got = 0;
    while (got < e.size) {
      const n = readSync(fd, b, got, e.size - got, e.offset + got);
      if (n === 0) throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: entry ${e.name} is truncated`, { file, entry: e.name });
      got += n;
    }
    return b;
  } finally {
    closeSync(fd);
  }
}
