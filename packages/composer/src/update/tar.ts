import { closeSync, createReadStream, createWriteStream, openSync, readSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { TarArchive } from 'archiver';
import { UpdateError } from './errors.js';

export type TarSource = { name: string; data: Buffer } | { name: string; file: string };

/**
 * Writes a plain ustar archive of `entries`, in the order given, that busybox `tar -x` reads:
 * no folder entries, every entry mode 0644, uid/gid 0, no user or group names, mtime 0 — the
 * same entries give the same bytes. Files are streamed, never read whole into memory.
 */
export async function writeTar(output: string, entries: readonly TarSource[]): Promise<void> {
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
  type: 'file' | 'directory';
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
}

const BLOCK = 512;

/**
 * The entries of a ustar archive (regular files and folders; pax path records are honoured).
 * Links and devices are refused: nothing in an update is one.
 */
export function readTar(file: string): TarEntry[] {
  const fd = openSync(file, 'r');
  try {
    const entries: TarEntry[] = [];
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let paxPath: string | undefined;
    const fail = (why: string): never => {
      throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: not a valid update tar at byte ${pos}: ${why}`, { file, offset: pos });
    };
    for (;;) {
      const n = readSync(fd, header, 0, BLOCK, pos);
      if (n === 0) return entries; // tolerated: no end-of-archive blocks
      if (n < BLOCK) fail('truncated header');
      if (header.every((b) => b === 0)) return entries;
      const str = (at: number, len: number) => header.subarray(at, at + len).toString('latin1').replace(/\0.*$/s, '');
      const oct = (at: number, len: number, what: string) => {
        const s = str(at, len).trim();
        if (!/^[0-7]+$/.test(s)) fail(`${what} ${JSON.stringify(s)} is not an octal number`);
        return parseInt(s, 8);
      };
      const sum = oct(148, 8, 'checksum');
      let actual = 0;
      for (let i = 0; i < BLOCK; i++) actual += i >= 148 && i < 156 ? 32 : header[i]!;
      if (sum !== actual) fail('header checksum mismatch');
      const size = oct(124, 12, 'size');
      const flag = String.fromCharCode(header[156]!);
      const prefix = str(345, 155);
      const name = paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
      const dataOffset = pos + BLOCK;
      pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      if (flag === 'x') {
        const rec = Buffer.alloc(size);
        readSync(fd, rec, 0, size, dataOffset);
        paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(rec.toString('utf8'))?.[1];
        continue;
      }
      if (flag === 'g') continue;
      paxPath = undefined;
      if (flag !== '0' && flag !== '\0' && flag !== '5') fail(`entry ${name} is of type ${JSON.stringify(flag)}: only files and folders are expected`);
      entries.push({ name, size, offset: dataOffset, type: flag === '5' ? 'directory' : 'file', mode: oct(100, 8, 'mode'), mtime: oct(136, 12, 'mtime'), uid: oct(108, 8, 'uid'), gid: oct(116, 8, 'gid') });
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
