import { readFileSync, writeFileSync } from 'node:fs';
import { EdgeimageError } from '@edgeimage/assertions';
import { parseUpdateManifest, readTar, readTarEntry, readUpdateLayout } from '@edgeimage/composer';
import { BootTestError } from './errors.js';

/**
 * An update file (`edgeimage update create`): a tar holding `edgeimage-update/manifest`,
 * `edgeimage-update/manifest.sig` and `edgeimage-update/slot/<path>` for the files the old
 * system does not have. The harness reads it only to report what it carries and, for tests, to
 * make tampered copies. It is read by the composer's reader, the one that checks an update as the
 * device does (canonical names, each once, listed by the manifest, regular files only).
 */

export interface TarEntry {
  name: string;
  /** The entry's type flag: '0', a regular file (the reader refuses every other kind). */
  type: string;
  size: number;
  /** Byte offset of the entry's data in the file. */
  offset: number;
}

/** ERR_UPDATE_FILE, with the reader's own code (`context.cause`, e.g. ERR_UPDATE_ENTRY_NAME) and message. */
function asUpdateFileError(file: string, e: unknown): never {
  if (e instanceof EdgeimageError) throw new BootTestError('ERR_UPDATE_FILE', `${file}: not an update edge-update would read: ${e.message.replace(`${file}: `, '')} [${e.code}]`, { file, cause: e.code, ...e.context });
  throw e;
}

/** The entries of an update tar (regular files in canonical form; anything else is ERR_UPDATE_FILE). */
export function tarEntries(file: string): TarEntry[] {
  try {
    return readTar(file).map((e) => ({ name: e.name, type: '0', size: e.size, offset: e.offset }));
  } catch (e) {
    return asUpdateFileError(file, e);
  }
}

export interface UpdateManifest {
  /** Read as a hostile update (the refuse scenario): why the reader refuses it, as the device should ("… [ERR_UPDATE_…]"). */
  refused?: string;
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

/**
 * What an update file carries (its manifest's headers), for the report. ERR_UPDATE_FILE when it is
 * no update. `hostile`: an update made for the device to refuse (the refuse scenario) may break
 * the rules after its first entry; it is described from that entry, its manifest, with the
 * reader's refusal in `refused` (still ERR_UPDATE_FILE when even the first entry is no manifest).
 */
export function readUpdateManifest(file: string, opts: { hostile?: boolean } = {}): UpdateManifest {
  let layout: ReturnType<typeof readUpdateLayout>;
  try {
    layout = readUpdateLayout(file);
  } catch (e) {
    if (!opts.hostile || !(e instanceof EdgeimageError)) return asUpdateFileError(file, e);
    return { ...hostileManifest(file, e), refused: `${e.message} [${e.code}]` };
  }
  const m = layout.manifest;
  return {
    brandId: m['brand-id'],
    model: m.model,
    revision: m.revision,
    files: m.files.length,
    carried: [...layout.carried].filter(([, e]) => e.size > 0).map(([path]) => path),
  };
}

/** The headers of the manifest an update that the reader refuses (`why`) starts with, if it starts with one. */
function hostileManifest(file: string, why: EdgeimageError): Omit<UpdateManifest, 'refused'> {
  let first: ReturnType<typeof readTar>[number] | undefined;
  try {
    first = readTar(file, { first: 1 })[0];
  } catch {
    first = undefined;
  }
  if (first?.name !== MANIFEST) return asUpdateFileError(file, why);
  const text = readTarEntry(file, first, 1 << 20).toString('utf8');
  try {
    const m = parseUpdateManifest(Buffer.from(text), `${file}:${MANIFEST}`);
    return { brandId: m['brand-id'], model: m.model, revision: m.revision, files: m.files.length, carried: [] };
  } catch {
    return { files: 0, carried: [] };
  }
}

/** A plain ustar header of a regular file (mode 0644, owner 0, mtime 0), written by hand: no tar tool writes a name such as edgeimage-update/./manifest as given. */
function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  if (h.write(name, 0, 100, 'latin1') !== name.length) throw new BootTestError('ERR_UPDATE_FILE', `tar entry name ${name} is longer than 100 bytes`, { name });
  for (const [at, len, v] of [[100, 8, 0o644], [108, 8, 0], [116, 8, 0], [124, 12, size], [136, 12, 0]] as const) h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, at, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  h.write(`${h.reduce((n, b) => n + b, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/**
 * A tampered copy of an update, for tests: one byte of the largest carried slot file flipped
 * (`slot-file`: the signature still verifies, the file's digest does not), one byte of the
 * manifest changed (`manifest`: the signature does not verify), or the signed update followed by
 * an unsigned manifest (one digest digit changed) under the alias `edgeimage-update/./manifest`
 * (`aliased-manifest`: a tar tool would extract it over the verified manifest; the device refuses
 * the name). The tar stays well formed. Returns the path inside the tar that was changed or added.
 */
export function tamperUpdate(src: string, dst: string, what: 'slot-file' | 'manifest' | 'aliased-manifest'): string {
  const entries = tarEntries(src);
  const data = readFileSync(src);
  let target: TarEntry | undefined;
  let at: number;
  if (what === 'manifest' || what === 'aliased-manifest') {
    target = entries.find((e) => e.name === MANIFEST);
    if (!target) throw new BootTestError('ERR_UPDATE_FILE', `${src}: no ${MANIFEST}`, { file: src });
    // a hex digit of the first file digest: the manifest still parses, its bytes differ
    const text = data.subarray(target.offset, target.offset + target.size).toString('latin1');
    const m = /^file: ([0-9a-f])/m.exec(text);
    if (what === 'aliased-manifest') {
      const unsigned = Buffer.from(data.subarray(target.offset, target.offset + target.size));
      if (m) unsigned[m.index + 6] = m[1] === '0' ? 0x31 : 0x30;
      const last = entries.at(-1)!;
      const end = last.offset + Math.ceil(last.size / 512) * 512;
      const alias = 'edgeimage-update/./manifest';
      writeFileSync(dst, Buffer.concat([data.subarray(0, end), ustarHeader(alias, unsigned.length), unsigned, Buffer.alloc((512 - (unsigned.length % 512)) % 512), Buffer.alloc(1024)]));
      return alias;
    }
    at = target.offset + (m ? m.index + 6 : target.size - 2);
    data[at] = m ? (m[1] === '0' ? 0x31 : 0x30) : data[at]! ^ 0x01;
  } else {
    target = entries.filter((e) => e.name.startsWith(SLOT) && e.size > 0).sort((x, y) => y.size - x.size)[0];
    if (!target) throw new BootTestError('ERR_UPDATE_FILE', `${src}: carries no slot file to tamper with`, { file: src });
    at = target.offset + Math.floor(target.size / 2);
    data[at] = data[at]! ^ 0x01;
  }
  writeFileSync(dst, data);
  return target.name;
}
