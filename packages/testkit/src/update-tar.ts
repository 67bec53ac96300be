/**
 * Update tars written header by header, for tests of the readers: the hostile entries (aliases,
 * duplicates, links, pax and GNU records, bytes after a name's end) that archiver and GNU tar
 * normalise or will not write, next to the valid layout update create writes.
 */
import { createHash } from 'node:crypto';
import { encodeUpdateManifest, type SlotFile } from '@edgeimage/composer';

export interface RawEntry {
  name: string;
  data?: Buffer;
  /** The type flag; '0' (a regular file) when not given. */
  type?: string;
  link?: string;
  /** The bytes at 257..264; POSIX ustar when not given. */
  magic?: string;
  /** Written after the name's NUL, inside the name field. */
  afterName?: string;
}

export function ustarHeader(e: RawEntry, size = e.data?.length ?? 0): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'latin1');
  if (e.afterName) h.write(e.afterName, Math.min(e.name.length + 1, 99), 'latin1');
  for (const [at, len, v] of [[100, 8, 0o644], [108, 8, 0], [116, 8, 0], [124, 12, size], [136, 12, 0]] as const) h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, at, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.link) h.write(e.link, 157, 100, 'latin1');
  h.write(e.magic ?? 'ustar\u000000', 257, 'latin1');
  h.write(`${h.reduce((n, b) => n + b, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** The archive: each header, its data padded to 512 bytes, then the two zero blocks. */
export function ustar(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(ustarHeader(e), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const KEY_ID = 'A'.repeat(32) + '_-'.repeat(16);
export const SLOT = { 'model.assert': Buffer.from('type: model\n'), 'bundles/app_1.snap': Buffer.from('an app\n') } as const;

/** A manifest listing `files` (path → bytes), sorted as update create writes it. */
export function manifestFor(files: Record<string, Buffer>): Buffer {
  const list: SlotFile[] = Object.entries(files).map(([path, data]) => ({ path, sha256: sha(data), size: data.length }));
  return encodeUpdateManifest({ 'brand-id': 'acme', model: 'edge-pc', revision: 2, 'sign-key-sha3-384': KEY_ID, files: list });
}

/** The entries of a valid update of SLOT (the signature is 256 bytes of nothing: readers check it only given keys). */
export function validEntries(): RawEntry[] {
  return [
    { name: 'edgeimage-update/manifest', data: manifestFor(SLOT) },
    { name: 'edgeimage-update/manifest.sig', data: Buffer.alloc(256, 7) },
    ...Object.entries(SLOT).map(([path, data]) => ({ name: `edgeimage-update/slot/${path}`, data })),
  ];
}
