import { createHash } from 'node:crypto';
import { ComposeError } from '../errors.js';

/**
 * GUIDs as text (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`) and as GPT stores them: 16 bytes,
 * the first three fields little-endian, the last two big-endian ("mixed-endian").
 */

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The all-zero GUID: in a GPT partition entry's type, it marks the entry unused. */
export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

/** Partition type GUIDs edgeimage's gadgets use most. */
export const GPT_TYPES = {
  /** EFI System Partition. */
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  /** Linux filesystem data. */
  linuxFilesystem: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  /** BIOS boot partition (GRUB's core.img on GPT disks booted by BIOS). */
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  /** Microsoft basic data (FAT partitions that other systems should see). */
  microsoftBasicData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
} as const;

/** True when `text` is a GUID in its 8-4-4-4-12 hex form (either case). */
export function isGuid(text: string): boolean {
  return GUID_RE.test(text);
}

/**
 * The canonical upper-case form of a GUID, as sfdisk and sgdisk print it.
 *
 * ```ts
 * normalizeGuid('c12a7328-f81f-11d2-ba4b-00a0c93ec93b'); // 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'
 * ```
 * @throws ComposeError `ERR_GUID_INVALID` when `text` is not a GUID
 */
export function normalizeGuid(text: string, what = 'GUID'): string {
  if (!isGuid(text)) {
    throw new ComposeError('ERR_GUID_INVALID', `${what} ${JSON.stringify(text)} is not a GUID (expected 8-4-4-4-12 hex digits, e.g. C12A7328-F81F-11D2-BA4B-00A0C93EC93B)`, { guid: text, what });
  }
  return text.toUpperCase();
}

/**
 * The 16 bytes GPT stores for a GUID.
 *
 * ```ts
 * guidToBytes('C12A7328-F81F-11D2-BA4B-00A0C93EC93B').toString('hex');
 * // '28732ac11ff8d211ba4b00a0c93ec93b'
 * ```
 * @throws ComposeError `ERR_GUID_INVALID`
 */
export function guidToBytes(text: string): Buffer {
  const hex = normalizeGuid(text).replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  // Swap the first three fields to little-endian; the last eight bytes stay in text order.
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/**
 * The text form (upper case) of a GUID stored GPT-style at `offset` of `bytes`.
 *
 * ```ts
 * guidFromBytes(guidToBytes(GPT_TYPES.esp)); // GPT_TYPES.esp
 * ```
 */
export function guidFromBytes(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 16 > bytes.length) throw new RangeError(`a GUID needs 16 bytes at offset ${offset}; only ${bytes.length} bytes`);
  const b = Buffer.from(bytes.subarray(offset, offset + 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return textOf(b);
}

function textOf(b: Buffer): string {
  const h = b.toString('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * A GUID derived from `parts`: the same parts always give the same GUID, so the same model and
 * gadget structure give the same disk and partition GUIDs on every build.
 *
 * Built like an RFC 4122 version-5 UUID, but with SHA-256: the first 16 bytes of
 * `sha256(len(p1) ‖ p1 ‖ len(p2) ‖ p2 …)` (each part UTF-8, preceded by its byte length as a
 * 32-bit big-endian number, so `('ab','c')` and `('a','bc')` differ), with the version nibble set
 * to 5 and the variant bits to `10`.
 *
 * ```ts
 * deterministicGuid('acme', 'kiosk', 'pc'); // '4A9269D5-7703-50E7-88FF-C1457856FC2A'
 * ```
 */
export function deterministicGuid(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const bytes = Buffer.from(p, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  const b = h.digest().subarray(0, 16);
  b.writeUInt8((b.readUInt8(6) & 0x0f) | 0x50, 6);
  b.writeUInt8((b.readUInt8(8) & 0x3f) | 0x80, 8);
  return textOf(b);
}
