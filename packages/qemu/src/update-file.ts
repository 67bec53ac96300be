import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { BootTestError } from './errors.js';

/**
 * An update file (`edgeimage update create`): a tar holding `edgeimage-update/manifest`,
 * `edgeimage-update/manifest.sig` and `edgeimage-update/slot/<path>` for the files the old
 * system does not have. The harness reads it only to report what it carries and, for tests, to
 * make tampered copies.
 */

export interface TarEntry {
  name: string;
  /** The entry's type flag ('0' or '\0' for a regular file, '5' a folder, …). */
  type: string;
  size: number;
  /** Byte offset of the entry's data in the file. */
  offset: number;
}

const octal = (b: Buffer, start: number, len: number): number => {
  const s = b.subarray(start, start + len).toString('latin1').replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
};
const field = (b: Buffer, start: number, len: number): string => b.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');

/** The entries of a ustar/pax tar (pax `path` records and GNU long names honoured). */
export function tarEntries(file: string): TarEntry[] {
  const data = readFileSync(file);
  const out: TarEntry[] = [];
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= data.length) {
    const h = data.subarray(pos, pos + 512);
    if (h.every((x) => x === 0)) break;
    const sum = octal(h, 148, 8);
    let check = 0;
    for (let i = 0; i < 512; i++) check += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== check) throw new BootTestError('ERR_UPDATE_FILE', `${file}: not a tar file (bad header checksum at byte ${pos})`, { file, offset: pos });
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? field(h, 345, 155) : '';
    let name = prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    const offset = pos + 512;
    pos = offset + Math.ceil(size / 512) * 512;
    if (type === 'x' || type === 'L') {
      const body = data.subarray(offset, offset + size).toString('utf8');
      if (type === 'L') longName = body.replace(/\0.*$/s, '');
      else {
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body);
        if (m) longName = m[1];
      }
      continue;
    }
    if (type === 'g') continue;
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    out.push({ name, type, size, offset });
  }
  return out;
}

export interface UpdateManifest {
  brandId?: string;
  model?: string;
  revision?: number;
  /** `file:` lines: every file of the new slot. */
  files: number;
  /** Files carried under edgeimage-update/slot/. */
  carried: string[];
}

const MANIFEST = 'edgeimage-update/manifest';
const SLOT = 'edgeimage-update/slot/';

/** What an update file carries (its manifest's headers), for the report. ERR_UPDATE_FILE when it is no update. */
export function readUpdateManifest(file: string): UpdateManifest {
  const entries = tarEntries(file);
  const m = entries.find((e) => e.name === MANIFEST);
  if (!m) throw new BootTestError('ERR_UPDATE_FILE', `${file}: no ${MANIFEST} in it: not an update made by edgeimage update create`, { file });
  const fd = openSync(file, 'r');
  let text: string;
  try {
    const b = Buffer.alloc(m.size);
    readSync(fd, b, 0, m.size, m.offset);
    text = b.toString('utf8');
  } finally {
    closeSync(fd);
  }
  const header = (k: string) => new RegExp(`^${k}: *(.*)$`, 'm').exec(text)?.[1]?.trim();
  const rev = header('revision');
  return {
    brandId: header('brand-id'),
    model: header('model'),
    revision: rev !== undefined && /^\d+$/.test(rev) ? Number(rev) : undefined,
    files: (text.match(/^file: /gm) ?? []).length,
    carried: entries.filter((e) => e.name.startsWith(SLOT) && (e.type === '0' || e.type === '\0') && e.size > 0).map((e) => e.name.slice(SLOT.length)),
  };
}

/**
 * A tampered copy of an update, for tests: one byte of the largest carried slot file flipped
 * (`slot-file`: the signature still verifies, the file's digest does not) or one byte of the
 * manifest changed (`manifest`: the signature does not verify). The tar stays well formed.
 * Returns the path inside the tar that was changed.
 */
export function tamperUpdate(src: string, dst: string, what: 'slot-file' | 'manifest'): string {
  const entries = tarEntries(src);
  const data = readFileSync(src);
  let target: TarEntry | undefined;
  let at: number;
  if (what === 'manifest') {
    target = entries.find((e) => e.name === MANIFEST);
    if (!target) throw new BootTestError('ERR_UPDATE_FILE', `${src}: no ${MANIFEST}`, { file: src });
    // a hex digit of the first file digest: the manifest still parses, its bytes differ
    const text = data.subarray(target.offset, target.offset + target.size).toString('latin1');
    const m = /^file: ([0-9a-f])/m.exec(text);
    at = target.offset + (m ? m.index + 6 : target.size - 2);
    data[at] = m ? (m[1] === '0' ? 0x31 : 0x30) : data[at]! ^ 0x01;
  } else {
    target = entries.filter((e) => e.name.startsWith(SLOT) && (e.type === '0' || e.type === '\0') && e.size > 0).sort((x, y) => y.size - x.size)[0];
    if (!target) throw new BootTestError('ERR_UPDATE_FILE', `${src}: carries no slot file to tamper with`, { file: src });
    at = target.offset + Math.floor(target.size / 2);
    data[at] = data[at]! ^ 0x01;
  }
  writeFileSync(dst, data);
  return target.name;
}
