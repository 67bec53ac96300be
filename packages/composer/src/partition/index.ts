/**
 * Partition tables written and read by edgeimage's own code, without root and without external
 * tools: GPT (protective MBR, primary and backup headers and arrays, CRC32s) and DOS MBR.
 *
 * ```ts
 * import { writeGpt, readPartitionTable, deterministicGuid, GPT_TYPES } from './partition/index.js';
 * ```
 *
 * Errors are the composer's `ComposeError` (`../errors.ts`); the partition table writer and
 * reader use these codes:
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_DISK_SIZE` | the disk size is not a positive multiple of 512 or too small for the table |
 * | `ERR_DISK_SIZE_MISMATCH` | the image file's size differs from the disk size of the spec |
 * | `ERR_SECTOR_SIZE` | a sector size other than 512 bytes |
 * | `ERR_PARTITION_RANGE` | a partition's start/end are not integers or end before they start |
 * | `ERR_PARTITION_ALIGNMENT` | an MBR partition's start or size is not a multiple of 512 |
 * | `ERR_PARTITION_OUTSIDE_DISK` | a partition lies (partly) outside the usable area of the disk |
 * | `ERR_PARTITION_OVERLAP` | two partitions share sectors |
 * | `ERR_PARTITION_TOO_MANY` | more than 128 (GPT) or 4 (MBR) partitions |
 * | `ERR_PARTITION_NAME_TOO_LONG` | a GPT name longer than 36 UTF-16 code units |
 * | `ERR_PARTITION_NAME_INVALID` | a GPT name containing a NUL character |
 * | `ERR_PARTITION_TYPE` | an unusable partition type (zero GUID, MBR type 0, extended or 0xEE) |
 * | `ERR_PARTITION_ATTRIBUTES` | GPT attributes outside 0 … 2⁶⁴−1 |
 * | `ERR_GUID_INVALID` | text that is not a GUID |
 * | `ERR_GUID_DUPLICATE` | the same GUID used twice among the disk and partition GUIDs |
 * | `ERR_MBR_DISK_ID` | an MBR disk identifier outside 0 … 0xFFFFFFFF |
 * | `ERR_BOOT_CODE_TOO_LARGE` | boot code longer than the 440 bytes before the disk signature |
 * | `ERR_IMAGE_OPEN` | the image file cannot be opened |
 * | `ERR_PARTITION_TABLE_NOT_FOUND` | no GPT and no MBR on the image |
 * | `ERR_PARTITION_TABLE_CORRUPT` | a GPT whose primary and backup headers are both unusable |
 */
export { ComposeError } from '../errors.js';
export { crc32, crc32Table } from './crc32.js';
export { deterministicGuid, guidFromBytes, guidToBytes, isGuid, normalizeGuid, GPT_TYPES, ZERO_GUID } from './guid.js';
export {
  writeGpt,
  planGpt,
  gptGeometry,
  GPT_ENTRY_COUNT,
  GPT_ENTRY_SIZE,
  GPT_HEADER_SIZE,
  GPT_NAME_MAX,
  SECTOR_SIZE,
  type GptSpec,
  type GptPartitionSpec,
  type GptGeometry,
} from './gpt.js';
export { writeMbr, planMbr, MBR_MAX_PARTITIONS, type MbrSpec, type MbrPartitionSpec } from './mbr.js';
export { readPartitionTable, type PartitionTable, type PartitionInfo } from './read.js';
export { findPartition } from './find.js';
export type { PlannedWrite } from './lib/io.js';
export { BOOT_CODE_SIZE } from './lib/sector0.js';
