import { ComposeError } from '../errors.js';
import { crc32 } from './crc32.js';
import { guidFromBytes, ZERO_GUID } from './guid.js';
import { readAt, withImage } from './lib/io.js';
import { BOOT_CODE_SIZE, MBR_ENTRIES_OFFSET } from './lib/sector0.js';

const SECTOR_SIZE = 512;
/** A bound on the partition array we are willing to read (the usual one is 16 KiB). */
const MAX_ARRAY_BYTES = 4 * 2 ** 20;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

/** One partition as found on the disk. Offsets and sizes are in bytes. */
export interface PartitionInfo {
  /** 1-based: the GPT array slot or MBR entry, as Linux numbers the partition (`sda3` → 3). */
  index: number;
  start: number;
  size: number;
  /** GPT only, upper case. */
  typeGuid?: string;
  /** MBR only: the type byte. */
  mbrType?: number;
  /** GPT only, upper case. */
  partGuid?: string;
  /** GPT only. */
  name?: string;
  /** GPT only. */
  attributes?: bigint;
  /** MBR only: the active flag. */
  bootable?: boolean;
}

export interface PartitionTable {
  kind: 'gpt' | 'mbr';
  /** GPT only, upper case. */
  diskGuid?: string;
  /** MBR only: the 32-bit disk identifier. */
  diskId?: number;
  sectorSize: 512;
  /** In index order; unused entries are left out. */
  partitions: PartitionInfo[];
  /** What was wrong but could be worked around (a corrupt primary GPT, a missing protective MBR). */
  warnings: string[];
}

interface GptHeader {
  lba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  arrayLba: number;
  entryCount: number;
  entrySize: number;
  arrayCrc: number;
  array: Buffer;
}

type HeaderResult = { ok: true; header: GptHeader } | { ok: false; reason: string };

function u64(b: Buffer, offset: number): number {
  const v = b.readBigUInt64LE(offset);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Reads and checks the GPT header at `lba` and its partition array. */
function readGptHeader(fd: number, lba: number, sectors: number): HeaderResult {
  if (lba < 1 || lba >= sectors) return { ok: false, reason: `LBA ${lba} is outside the ${sectors}-sector image` };
  const s = readAt(fd, lba * SECTOR_SIZE, SECTOR_SIZE);
  if (s.toString('latin1', 0, 8) !== 'EFI PART') return { ok: false, reason: 'no "EFI PART" signature' };
  const headerSize = s.readUInt32LE(12);
  if (headerSize < 92 || headerSize > SECTOR_SIZE) return { ok: false, reason: `header size ${headerSize} is not within 92 … ${SECTOR_SIZE}` };
  const copy = Buffer.from(s.subarray(0, headerSize));
  const stored = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  const actual = crc32(copy);
  if (actual !== stored) return { ok: false, reason: `header CRC32 is 0x${hex8(stored)} but the header's bytes give 0x${hex8(actual)}` };
  const myLba = u64(s, 24);
  if (myLba !== lba) return { ok: false, reason: `the header says it is at LBA ${myLba}` };
  const entryCount = s.readUInt32LE(80);
  const entrySize = s.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 8 !== 0) return { ok: false, reason: `partition entry size ${entrySize} is not a multiple of 8 of at least 128` };
  const arrayBytes = entryCount * entrySize;
  if (arrayBytes > MAX_ARRAY_BYTES) return { ok: false, reason: `partition array of ${entryCount} × ${entrySize} bytes is implausibly large` };
  const arrayLba = u64(s, 72);
  if (arrayLba < 1 || arrayLba + Math.ceil(arrayBytes / SECTOR_SIZE) > sectors) return { ok: false, reason: `partition array at LBA ${arrayLba} does not fit in the image` };
  const array = readAt(fd, arrayLba * SECTOR_SIZE, arrayBytes);
  const arrayCrc = s.readUInt32LE(88);
  const arrayActual = crc32(array);
  if (arrayActual !== arrayCrc) return { ok: false, reason: `partition array CRC32 is 0x${hex8(arrayCrc)} in the header but the array at LBA ${arrayLba} gives 0x${hex8(arrayActual)}` };
  return {
    ok: true,
    header: {
      lba,
      alternateLba: u64(s, 32),
      firstUsableLba: u64(s, 40),
      lastUsableLba: u64(s, 48),
      diskGuid: guidFromBytes(s, 56),
      arrayLba,
      entryCount,
      entrySize,
      arrayCrc,
      array,
    },
  };
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function readGpt(fd: number, fileSize: number, file: string, protective: boolean): PartitionTable {
  const warnings: string[] = [];
  const sectors = Math.floor(fileSize / SECTOR_SIZE);
  const lastLba = sectors - 1;
  const primary = readGptHeader(fd, 1, sectors);
  let header: GptHeader;
  if (primary.ok) {
    header = primary.header;
    const backup = readGptHeader(fd, header.alternateLba, sectors);
    if (!backup.ok) {
      warnings.push(`backup GPT header at LBA ${header.alternateLba} is unusable (${backup.reason}); the primary is intact`);
    } else if (backup.header.arrayCrc !== header.arrayCrc || backup.header.diskGuid !== header.diskGuid) {
      warnings.push(`backup GPT at LBA ${header.alternateLba} differs from the primary; using the primary`);
    }
    if (header.alternateLba !== lastLba) {
      warnings.push(`the backup GPT header is at LBA ${header.alternateLba}, not in the image's last sector ${lastLba} (was the image resized?)`);
    }
  } else {
    const backup = readGptHeader(fd, lastLba, sectors);
    if (!backup.ok) {
      throw new ComposeError(
        'ERR_PARTITION_TABLE_CORRUPT',
        `${file}: both GPT headers are unusable: primary at LBA 1 (${primary.reason}), backup at LBA ${lastLba} (${backup.reason})`,
        { file, primary: primary.reason, backup: backup.reason },
      );
    }
    warnings.push(`primary GPT header at LBA 1 is corrupt (${primary.reason}); using the backup GPT header at LBA ${lastLba}`);
    header = backup.header;
  }
  if (!protective) warnings.push('LBA 0 has no protective MBR (no partition of type 0xEE); some firmware and tools will not see the GPT');

  const partitions: PartitionInfo[] = [];
  for (let i = 0; i < header.entryCount; i++) {
    const e = header.array.subarray(i * header.entrySize, (i + 1) * header.entrySize);
    const typeGuid = guidFromBytes(e, 0);
    if (typeGuid === ZERO_GUID) continue;
    const first = u64(e, 32);
    const last = u64(e, 40);
    const raw = e.toString('utf16le', 56, 128);
    const nul = raw.indexOf('\0');
    const p: PartitionInfo = {
      index: i + 1,
      start: first * SECTOR_SIZE,
      size: last >= first ? (last - first + 1) * SECTOR_SIZE : 0,
      typeGuid,
      partGuid: guidFromBytes(e, 16),
      name: nul < 0 ? raw : raw.slice(0, nul),
      attributes: e.readBigUInt64LE(48),
    };
    if (last < first) warnings.push(`partition ${p.index}: last sector ${last} is before its first sector ${first}`);
    else if (first < header.firstUsableLba || last > header.lastUsableLba) {
      warnings.push(`partition ${p.index}: sectors ${first} … ${last} lie outside the usable area ${header.firstUsableLba} … ${header.lastUsableLba}`);
    }
    partitions.push(p);
  }
  checkInsideFile(partitions, fileSize, warnings);
  return { kind: 'gpt', diskGuid: header.diskGuid, sectorSize: SECTOR_SIZE, partitions, warnings };
}

function checkInsideFile(partitions: PartitionInfo[], fileSize: number, warnings: string[]): void {
  for (const p of partitions) {
    if (p.start + p.size > fileSize) warnings.push(`partition ${p.index} ends at byte ${p.start + p.size}, beyond the end of the ${fileSize}-byte image (truncated image?)`);
  }
}

function readMbr(sector0: Buffer, fileSize: number): PartitionTable {
  const warnings: string[] = [];
  const partitions: PartitionInfo[] = [];
  for (let i = 0; i < 4; i++) {
    const e = sector0.subarray(MBR_ENTRIES_OFFSET + 16 * i, MBR_ENTRIES_OFFSET + 16 * (i + 1));
    const type = e.readUInt8(4);
    if (type === 0) continue;
    const firstLba = e.readUInt32LE(8);
    const sectors = e.readUInt32LE(12);
    const p: PartitionInfo = { index: i + 1, start: firstLba * SECTOR_SIZE, size: sectors * SECTOR_SIZE, mbrType: type, bootable: e.readUInt8(0) === 0x80 };
    if (EXTENDED_TYPES.has(type)) warnings.push(`partition ${p.index} is an extended partition (type 0x${type.toString(16)}); the logical partitions inside it are not read`);
    if (sectors === 0) warnings.push(`partition ${p.index} has type 0x${type.toString(16)} but no sectors`);
    partitions.push(p);
  }
  checkInsideFile(partitions, fileSize, warnings);
  return { kind: 'mbr', diskId: sector0.readUInt32LE(BOOT_CODE_SIZE), sectorSize: SECTOR_SIZE, partitions, warnings };
}

/**
 * Reads the partition table of an image file without root: a GPT (headers and partition array
 * checked against their CRC32s; when the primary header or its array is corrupt, the backup at
 * the end of the disk is used and a warning says so) or else a DOS MBR (primary partitions only).
 *
 * ```ts
 * const table = readPartitionTable('images/pc-amd64.img');
 * const slotA = table.partitions.find((p) => p.name === 'system-a');
 * for (const w of table.warnings) console.warn(w);
 * ```
 * @throws ComposeError `ERR_IMAGE_OPEN`, `ERR_PARTITION_TABLE_NOT_FOUND`, `ERR_PARTITION_TABLE_CORRUPT`, `ERR_SECTOR_SIZE`
 */
export function readPartitionTable(file: string): PartitionTable {
  return withImage(file, 'r', (fd, size) => {
    const sector0 = readAt(fd, 0, SECTOR_SIZE);
    const sector1 = readAt(fd, SECTOR_SIZE, SECTOR_SIZE);
    const signed = sector0.readUInt16LE(510) === 0xaa55;
    const entries = [0, 1, 2, 3].map((i) => sector0.subarray(MBR_ENTRIES_OFFSET + 16 * i, MBR_ENTRIES_OFFSET + 16 * (i + 1)));
    const protective = signed && entries.some((e) => e.readUInt8(4) === 0xee);
    if (protective || sector1.toString('latin1', 0, 8) === 'EFI PART') return readGpt(fd, size, file, protective);
    if (readAt(fd, 4096, 8).toString('latin1') === 'EFI PART') {
      throw new ComposeError('ERR_SECTOR_SIZE', `${file}: the GPT is laid out for 4096-byte sectors; edgeimage reads 512-byte sector images only`, { file, sectorSize: 4096 });
    }
    if (!signed) {
      throw new ComposeError('ERR_PARTITION_TABLE_NOT_FOUND', `${file}: no partition table (no GPT header at LBA 1 and no 0x55AA boot signature in LBA 0)`, { file });
    }
    const bad = entries.findIndex((e) => (e.readUInt8(0) & 0x7f) !== 0);
    if (bad >= 0) {
      throw new ComposeError(
        'ERR_PARTITION_TABLE_NOT_FOUND',
        `${file}: LBA 0 ends in 0x55AA but entry ${bad + 1} of its partition table has an invalid status byte 0x${entries[bad]!.readUInt8(0).toString(16)} — a filesystem without a partition table?`,
        { file },
      );
    }
    const empty = entries.every((e) => e.readUInt8(4) === 0);
    if (empty && (sector0.toString('latin1', 0x36, 0x39) === 'FAT' || sector0.toString('latin1', 0x52, 0x57) === 'FAT32')) {
      throw new ComposeError('ERR_PARTITION_TABLE_NOT_FOUND', `${file}: no partition table: LBA 0 is the boot sector of a FAT filesystem that fills the whole image`, { file });
    }
    return readMbr(sector0, size);
  });
}
