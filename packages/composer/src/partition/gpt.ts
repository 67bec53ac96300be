import { ComposeError } from '../errors.js';
import { crc32 } from './crc32.js';
import { guidToBytes, normalizeGuid, ZERO_GUID } from './guid.js';
import { CHS_UNREPRESENTABLE, chsBytes } from './lib/chs.js';
import { applyWrites, withImage, type PlannedWrite } from './lib/io.js';
import { sector0Writes } from './lib/sector0.js';

export const SECTOR_SIZE = 512;
/** Entries in the partition array edgeimage writes (the UEFI minimum array, 16 KiB). */
export const GPT_ENTRY_COUNT = 128;
export const GPT_ENTRY_SIZE = 128;
export const GPT_HEADER_SIZE = 92;
/** The longest partition name GPT can hold, in UTF-16 code units. */
export const GPT_NAME_MAX = 36;
const ARRAY_SECTORS = (GPT_ENTRY_COUNT * GPT_ENTRY_SIZE) / SECTOR_SIZE; // 32

export interface GptPartitionSpec {
  /** First sector of the partition. */
  firstLba: number;
  /** Last sector of the partition (inclusive, as GPT stores it). */
  lastLba: number;
  typeGuid: string;
  partGuid: string;
  /** At most 36 UTF-16 code units; stored UTF-16LE. */
  name: string;
  /** The 64 attribute bits (bit 0 required, bit 2 legacy BIOS bootable, 48 … 63 type-specific). */
  attributes?: bigint;
}

export interface GptSpec {
  /** Size of the whole disk in bytes: a multiple of 512; the image file must have this size. */
  diskSize: number;
  sectorSize?: 512;
  diskGuid: string;
  /** In array order: the first is partition 1. */
  partitions: GptPartitionSpec[];
  /**
   * Replaces bytes 0 … 439 of LBA 0 (padded with zeros). Without it those bytes are kept, so
   * boot code written there before (a gadget's `mbr.img`) survives.
   */
  bootCode?: Uint8Array;
}

/** Where the GPT structures of a disk of `diskSize` bytes go, in sectors. */
export interface GptGeometry {
  sectors: number;
  primaryHeaderLba: 1;
  primaryArrayLba: 2;
  firstUsableLba: number;
  lastUsableLba: number;
  backupArrayLba: number;
  backupHeaderLba: number;
}

/**
 * The sectors GPT reserves on a disk of `diskSize` bytes, and the usable range between them.
 *
 * ```ts
 * gptGeometry(64 * 2 ** 20); // { sectors: 131072, firstUsableLba: 34, lastUsableLba: 131038, … }
 * ```
 * @throws ComposeError `ERR_DISK_SIZE`
 */
export function gptGeometry(diskSize: number, where = 'GPT'): GptGeometry {
  if (!Number.isSafeInteger(diskSize) || diskSize <= 0 || diskSize % SECTOR_SIZE !== 0) {
    throw new ComposeError('ERR_DISK_SIZE', `${where}: disk size ${diskSize} is not a positive multiple of ${SECTOR_SIZE} bytes`, { diskSize });
  }
  const sectors = diskSize / SECTOR_SIZE;
  const firstUsableLba = 2 + ARRAY_SECTORS;
  const lastUsableLba = sectors - 2 - ARRAY_SECTORS;
  if (lastUsableLba < firstUsableLba) {
    const min = (2 * (1 + ARRAY_SECTORS) + 2) * SECTOR_SIZE;
    throw new ComposeError('ERR_DISK_SIZE', `${where}: disk size ${diskSize} bytes is too small for a GPT (at least ${min} bytes)`, { diskSize, min });
  }
  return { sectors, primaryHeaderLba: 1, primaryArrayLba: 2, firstUsableLba, lastUsableLba, backupArrayLba: sectors - 1 - ARRAY_SECTORS, backupHeaderLba: sectors - 1 };
}

function label(i: number, name: string): string {
  return `partition ${i + 1}${name ? ` (${name})` : ''}`;
}

/** Checks the spec as a whole; returns the geometry and the normalised GUIDs. */
function validate(spec: GptSpec, where: string): { geo: GptGeometry; diskGuid: string } {
  if (spec.sectorSize !== undefined && spec.sectorSize !== SECTOR_SIZE) {
    throw new ComposeError('ERR_SECTOR_SIZE', `${where}: sector size ${String(spec.sectorSize)} is not supported; edgeimage writes 512-byte sectors only`, { sectorSize: spec.sectorSize });
  }
  const geo = gptGeometry(spec.diskSize, where);
  const diskGuid = normalizeGuid(spec.diskGuid, `${where}: disk GUID`);
  const parts = spec.partitions;
  if (parts.length > GPT_ENTRY_COUNT) {
    throw new ComposeError('ERR_PARTITION_TOO_MANY', `${where}: ${parts.length} partitions; a GPT partition array holds at most ${GPT_ENTRY_COUNT}`, { count: parts.length, max: GPT_ENTRY_COUNT, schema: 'gpt' });
  }
  const seen = new Map<string, string>([[diskGuid, 'the disk GUID']]);
  parts.forEach((p, i) => {
    const what = `${where}: ${label(i, p.name)}`;
    const ctx = { index: i + 1, name: p.name };
    if (!Number.isSafeInteger(p.firstLba) || !Number.isSafeInteger(p.lastLba) || p.lastLba < p.firstLba) {
      throw new ComposeError('ERR_PARTITION_RANGE', `${what}: sectors ${p.firstLba} … ${p.lastLba} are not a range (integers, first ≤ last)`, { ...ctx, firstLba: p.firstLba, lastLba: p.lastLba });
    }
    if (p.firstLba < geo.firstUsableLba || p.lastLba > geo.lastUsableLba) {
      throw new ComposeError(
        'ERR_PARTITION_OUTSIDE_DISK',
        `${what}: sectors ${p.firstLba} … ${p.lastLba} lie outside the usable area ${geo.firstUsableLba} … ${geo.lastUsableLba} of a ${spec.diskSize}-byte disk (GPT keeps sectors 0 … ${geo.firstUsableLba - 1} and the last ${geo.sectors - geo.lastUsableLba - 1})`,
        { ...ctx, firstLba: p.firstLba, lastLba: p.lastLba, firstUsableLba: geo.firstUsableLba, lastUsableLba: geo.lastUsableLba },
      );
    }
    const units = p.name.length; // JS strings are UTF-16 code units, as GPT names are
    if (units > GPT_NAME_MAX) {
      throw new ComposeError('ERR_PARTITION_NAME_TOO_LONG', `${what}: name is ${units} UTF-16 code units long; GPT names hold at most ${GPT_NAME_MAX}`, { ...ctx, length: units, max: GPT_NAME_MAX });
    }
    if (p.name.includes('\0')) {
      throw new ComposeError('ERR_PARTITION_NAME_INVALID', `${what}: name contains a NUL character, which would end it early`, ctx);
    }
    const type = normalizeGuid(p.typeGuid, `${what}: type GUID`);
    if (type === ZERO_GUID) {
      throw new ComposeError('ERR_PARTITION_TYPE', `${what}: the all-zero type GUID marks an unused entry; give the partition a type`, ctx);
    }
    const guid = normalizeGuid(p.partGuid, `${what}: partition GUID`);
    const other = seen.get(guid);
    if (other !== undefined || guid === ZERO_GUID) {
      throw new ComposeError('ERR_GUID_DUPLICATE', `${what}: partition GUID ${guid} ${other !== undefined ? `is also ${other}` : 'is all zeros'}; partition GUIDs must be unique`, { ...ctx, guid });
    }
    seen.set(guid, `the GUID of ${label(i, p.name)}`);
    if (p.attributes !== undefined && (typeof p.attributes !== 'bigint' || p.attributes < 0n || p.attributes > 0xffff_ffff_ffff_ffffn)) {
      throw new ComposeError('ERR_PARTITION_ATTRIBUTES', `${what}: attributes ${String(p.attributes)} are not a 64-bit unsigned value`, { ...ctx, attributes: String(p.attributes) });
    }
  });
  for (let i = 0; i < parts.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = parts[j]!;
      const b = parts[i]!;
      if (b.firstLba <= a.lastLba && a.firstLba <= b.lastLba) {
        throw new ComposeError(
          'ERR_PARTITION_OVERLAP',
          `${where}: ${label(i, b.name)} (sectors ${b.firstLba} … ${b.lastLba}) overlaps ${label(j, a.name)} (sectors ${a.firstLba} … ${a.lastLba})`,
          { index: i + 1, name: b.name, otherIndex: j + 1, otherName: a.name },
        );
      }
    }
  }
  return { geo, diskGuid };
}

function encodeArray(spec: GptSpec): Buffer {
  const array = Buffer.alloc(GPT_ENTRY_COUNT * GPT_ENTRY_SIZE);
  spec.partitions.forEach((p, i) => {
    const e = array.subarray(i * GPT_ENTRY_SIZE, (i + 1) * GPT_ENTRY_SIZE);
    guidToBytes(p.typeGuid).copy(e, 0);
    guidToBytes(p.partGuid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.firstLba), 32);
    e.writeBigUInt64LE(BigInt(p.lastLba), 40);
    e.writeBigUInt64LE(p.attributes ?? 0n, 48);
    e.write(p.name, 56, 2 * GPT_NAME_MAX, 'utf16le');
  });
  return array;
}

function encodeHeader(geo: GptGeometry, diskGuid: string, arrayCrc: number, backup: boolean): Buffer {
  const h = Buffer.alloc(SECTOR_SIZE);
  h.write('EFI PART', 0, 'latin1');
  h.writeUInt32LE(0x0001_0000, 8); // revision 1.0
  h.writeUInt32LE(GPT_HEADER_SIZE, 12);
  // 16: header CRC, filled below; 20: reserved
  h.writeBigUInt64LE(BigInt(backup ? geo.backupHeaderLba : geo.primaryHeaderLba), 24);
  h.writeBigUInt64LE(BigInt(backup ? geo.primaryHeaderLba : geo.backupHeaderLba), 32);
  h.writeBigUInt64LE(BigInt(geo.firstUsableLba), 40);
  h.writeBigUInt64LE(BigInt(geo.lastUsableLba), 48);
  guidToBytes(diskGuid).copy(h, 56);
  h.writeBigUInt64LE(BigInt(backup ? geo.backupArrayLba : geo.primaryArrayLba), 72);
  h.writeUInt32LE(GPT_ENTRY_COUNT, 80);
  h.writeUInt32LE(GPT_ENTRY_SIZE, 84);
  h.writeUInt32LE(arrayCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, GPT_HEADER_SIZE)), 16);
  return h;
}

function protectiveEntries(geo: GptGeometry): Buffer {
  const e = Buffer.alloc(64);
  const size = Math.min(geo.sectors - 1, 0xffff_ffff);
  e.writeUInt8(0x00, 0); // not bootable
  Buffer.from(chsBytes(1, CHS_UNREPRESENTABLE)).copy(e, 1); // 00 02 00
  e.writeUInt8(0xee, 4);
  Buffer.from(chsBytes(size, CHS_UNREPRESENTABLE)).copy(e, 5);
  e.writeUInt32LE(1, 8);
  e.writeUInt32LE(size, 12);
  return e;
}

/**
 * Validates `spec` and computes the bytes of a GPT — protective MBR, primary header and array,
 * backup array and header — without touching any file (for dry runs and for {@link writeGpt}).
 *
 * ```ts
 * const writes = planGpt(spec);
 * for (const w of writes) console.log(w.what, w.offset, w.bytes.length);
 * ```
 * @param where names the disk in error messages (the image file)
 * @throws ComposeError with the codes listed in `errors.ts`
 */
export function planGpt(spec: GptSpec, where = 'GPT'): PlannedWrite[] {
  const { geo, diskGuid } = validate(spec, where);
  const array = encodeArray(spec);
  const arrayCrc = crc32(array);
  const at = (lba: number) => lba * SECTOR_SIZE;
  return [
    ...sector0Writes(0, protectiveEntries(geo), spec.bootCode, where, 'protective MBR (LBA 0)'),
    { offset: at(geo.primaryHeaderLba), bytes: encodeHeader(geo, diskGuid, arrayCrc, false), what: `primary GPT header (LBA ${geo.primaryHeaderLba})` },
    { offset: at(geo.primaryArrayLba), bytes: array, what: `primary partition array (LBA ${geo.primaryArrayLba} … ${geo.primaryArrayLba + ARRAY_SECTORS - 1})` },
    { offset: at(geo.backupArrayLba), bytes: array, what: `backup partition array (LBA ${geo.backupArrayLba} … ${geo.backupArrayLba + ARRAY_SECTORS - 1})` },
    { offset: at(geo.backupHeaderLba), bytes: encodeHeader(geo, diskGuid, arrayCrc, true), what: `backup GPT header (LBA ${geo.backupHeaderLba})` },
  ];
}

/**
 * Writes a GPT into the existing image `file`, whose size must be `spec.diskSize`: the
 * protective MBR (bytes 440 … 511 of LBA 0; bytes 0 … 439 are kept unless `spec.bootCode` is
 * given), the primary header at LBA 1 and its array at LBA 2, and the backup array and header
 * at the end of the disk. Only those sectors are written, at their offsets: the file is never
 * truncated and the rest of it (filesystems, bare structures) is left alone. Partition GUIDs,
 * names and attributes are written as given, in the order given. Nothing is written if the spec
 * is invalid.
 *
 * ```ts
 * truncateSync('disk.img', 64 * 2 ** 20);
 * writeGpt('disk.img', {
 *   diskSize: 64 * 2 ** 20,
 *   diskGuid: deterministicGuid('acme', 'kiosk', 'pc'),
 *   partitions: [{ firstLba: 2048, lastLba: 4095, typeGuid: GPT_TYPES.esp,
 *                  partGuid: deterministicGuid('acme', 'kiosk', 'pc', 'system-boot'), name: 'system-boot' }],
 * });
 * ```
 * @throws ComposeError (`ERR_DISK_SIZE_MISMATCH`, `ERR_IMAGE_OPEN`, and the validation codes of {@link planGpt})
 */
export function writeGpt(file: string, spec: GptSpec): void {
  const writes = planGpt(spec, file);
  withImage(file, 'r+', (fd, size) => {
    if (size !== spec.diskSize) {
      throw new ComposeError(
        'ERR_DISK_SIZE_MISMATCH',
        `${file}: the image is ${size} bytes but the GPT describes a ${spec.diskSize}-byte disk; the backup header must be in the image's last sector, so size the image first`,
        { file, size, diskSize: spec.diskSize },
      );
    }
    applyWrites(fd, writes);
  });
}
