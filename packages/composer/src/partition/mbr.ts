import { ComposeError } from '../errors.js';
import { CHS_LBA_MODE, chsBytes } from './lib/chs.js';
import { applyWrites, withImage, type PlannedWrite } from './lib/io.js';
import { sector0Writes } from './lib/sector0.js';

const SECTOR_SIZE = 512;
/** Primary partitions an MBR holds; edgeimage writes no extended or logical partitions. */
export const MBR_MAX_PARTITIONS = 4;
/** MBR types of extended partitions (CHS, LBA, Linux), which edgeimage does not write. */
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

export interface MbrPartitionSpec {
  /** Offset of the partition in bytes: a multiple of 512. */
  start: number;
  /** Size in bytes: a multiple of 512. */
  size: number;
  /** The MBR type byte: 0x0C (FAT32 LBA), 0x83 (Linux), … */
  type: number;
  /** Sets the active flag (0x80). */
  bootable?: boolean;
}

export interface MbrSpec {
  /** The 32-bit disk identifier (disk signature) at byte 440; Linux's PARTUUID prefix. */
  diskId: number;
  /** At most 4, in entry order: the first is partition 1. */
  partitions: MbrPartitionSpec[];
  /** Size of the disk in bytes; {@link writeMbr} takes the image's size when it is not given. */
  diskSize?: number;
  /** Replaces bytes 0 … 439 of LBA 0 (padded with zeros); without it they are kept. */
  bootCode?: Uint8Array;
}

function validate(spec: MbrSpec, where: string): void {
  if (!Number.isInteger(spec.diskId) || spec.diskId < 0 || spec.diskId > 0xffff_ffff) {
    throw new ComposeError('ERR_MBR_DISK_ID', `${where}: MBR disk identifier ${spec.diskId} is not a 32-bit unsigned number`, { diskId: spec.diskId });
  }
  const parts = spec.partitions;
  if (parts.length > MBR_MAX_PARTITIONS) {
    throw new ComposeError(
      'ERR_PARTITION_TOO_MANY',
      `${where}: ${parts.length} partitions, but an MBR (DOS) table holds at most ${MBR_MAX_PARTITIONS} primary partitions; extended and logical partitions are not supported by edgeimage — use the gpt schema or at most ${MBR_MAX_PARTITIONS} partitions`,
      { count: parts.length, max: MBR_MAX_PARTITIONS, schema: 'mbr' },
    );
  }
  const diskSize = spec.diskSize;
  if (diskSize !== undefined && (!Number.isSafeInteger(diskSize) || diskSize <= 0 || diskSize % SECTOR_SIZE !== 0)) {
    throw new ComposeError('ERR_DISK_SIZE', `${where}: disk size ${diskSize} is not a positive multiple of ${SECTOR_SIZE} bytes`, { diskSize });
  }
  parts.forEach((p, i) => {
    const what = `${where}: partition ${i + 1}`;
    const ctx = { index: i + 1, start: p.start, size: p.size };
    if (!Number.isSafeInteger(p.start) || !Number.isSafeInteger(p.size) || p.size <= 0 || p.start < 0) {
      throw new ComposeError('ERR_PARTITION_RANGE', `${what}: start ${p.start} and size ${p.size} must be integers, the size positive`, ctx);
    }
    if (p.start % SECTOR_SIZE !== 0 || p.size % SECTOR_SIZE !== 0) {
      throw new ComposeError('ERR_PARTITION_ALIGNMENT', `${what}: start ${p.start} and size ${p.size} must be multiples of ${SECTOR_SIZE} bytes`, ctx);
    }
    const end = p.start + p.size;
    if (p.start < SECTOR_SIZE || (diskSize !== undefined && end > diskSize)) {
      throw new ComposeError(
        'ERR_PARTITION_OUTSIDE_DISK',
        `${what}: bytes ${p.start} … ${end - 1} lie outside the usable area 512 … ${diskSize === undefined ? '' : diskSize - 1} (LBA 0 holds the partition table${diskSize === undefined ? '' : `; the disk is ${diskSize} bytes`})`,
        { ...ctx, diskSize },
      );
    }
    if (p.start / SECTOR_SIZE > 0xffff_ffff || p.size / SECTOR_SIZE > 0xffff_ffff) {
      throw new ComposeError('ERR_PARTITION_OUTSIDE_DISK', `${what}: start or size beyond 2 TiB cannot be expressed in an MBR's 32-bit sector fields; use the gpt schema`, ctx);
    }
    if (!Number.isInteger(p.type) || p.type < 1 || p.type > 0xff) {
      throw new ComposeError('ERR_PARTITION_TYPE', `${what}: MBR type ${p.type} is not a byte in 0x01 … 0xFF (0 marks an unused entry)`, { ...ctx, type: p.type });
    }
    if (EXTENDED_TYPES.has(p.type)) {
      throw new ComposeError('ERR_PARTITION_TYPE', `${what}: type 0x${hex(p.type)} is an extended partition; extended and logical partitions are not supported by edgeimage`, { ...ctx, type: p.type });
    }
    if (p.type === 0xee) {
      throw new ComposeError('ERR_PARTITION_TYPE', `${what}: type 0xEE is GPT's protective partition; write a GPT instead`, { ...ctx, type: p.type });
    }
  });
  for (let i = 0; i < parts.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = parts[j]!;
      const b = parts[i]!;
      if (b.start < a.start + a.size && a.start < b.start + b.size) {
        throw new ComposeError(
          'ERR_PARTITION_OVERLAP',
          `${where}: partition ${i + 1} (bytes ${b.start} … ${b.start + b.size - 1}) overlaps partition ${j + 1} (bytes ${a.start} … ${a.start + a.size - 1})`,
          { index: i + 1, otherIndex: j + 1 },
        );
      }
    }
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Validates `spec` and computes the bytes of LBA 0 for a DOS partition table, without touching
 * any file.
 *
 * ```ts
 * planMbr({ diskId: 0x12345678, partitions: [{ start: 1 << 20, size: 64 << 20, type: 0x0c, bootable: true }] });
 * ```
 * @throws ComposeError with the codes listed in `errors.ts`
 */
export function planMbr(spec: MbrSpec, where = 'MBR'): PlannedWrite[] {
  validate(spec, where);
  const entries = Buffer.alloc(64);
  spec.partitions.forEach((p, i) => {
    const e = entries.subarray(i * 16, i * 16 + 16);
    const first = p.start / SECTOR_SIZE;
    const sectors = p.size / SECTOR_SIZE;
    e.writeUInt8(p.bootable ? 0x80 : 0x00, 0);
    Buffer.from(chsBytes(first, CHS_LBA_MODE)).copy(e, 1);
    e.writeUInt8(p.type, 4);
    Buffer.from(chsBytes(first + sectors - 1, CHS_LBA_MODE)).copy(e, 5);
    e.writeUInt32LE(first, 8);
    e.writeUInt32LE(sectors, 12);
  });
  return sector0Writes(spec.diskId, entries, spec.bootCode, where, 'MBR (LBA 0)');
}

/**
 * Writes a DOS (MBR) partition table into the existing image `file`: the disk identifier, up to
 * four primary partitions (LBA fields, and CHS fields with `FE FF FF` where a sector is beyond
 * CHS reach) and the 0x55AA signature — bytes 440 … 511 of LBA 0 and nothing else. Bytes
 * 0 … 439 (boot code) are kept unless `spec.bootCode` is given, and everything from byte 512 on
 * (a bootloader at a fixed offset, filesystems) is never touched. Nothing is written if the spec
 * is invalid.
 *
 * ```ts
 * writeMbr('disk.img', { diskId: 0x2a2a2a2a, partitions: [
 *   { start: 1 << 20, size: 64 << 20, type: 0x0c, bootable: true },
 *   { start: 65 << 20, size: 512 << 20, type: 0x83 },
 * ] });
 * ```
 * @throws ComposeError (`ERR_DISK_SIZE_MISMATCH`, `ERR_IMAGE_OPEN`, and the codes of {@link planMbr})
 */
export function writeMbr(file: string, spec: MbrSpec): void {
  validate(spec, file); // before opening: bad input writes nothing and needs no file
  withImage(file, 'r+', (fd, size) => {
    if (spec.diskSize !== undefined && spec.diskSize !== size) {
      throw new ComposeError('ERR_DISK_SIZE_MISMATCH', `${file}: the image is ${size} bytes but the MBR spec describes a ${spec.diskSize}-byte disk`, { file, size, diskSize: spec.diskSize });
    }
    applyWrites(fd, planMbr({ ...spec, diskSize: size }, file));
  });
}
