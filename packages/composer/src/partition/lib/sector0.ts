import { ComposeError } from '../../errors.js';
import type { PlannedWrite } from './io.js';

/** Bytes 0 … 439 of LBA 0: boot code (a gadget's `mbr.img`), which the table writers keep. */
export const BOOT_CODE_SIZE = 440;
/** Offset of the four 16-byte MBR partition entries. */
export const MBR_ENTRIES_OFFSET = 446;

/**
 * The writes for LBA 0: the disk signature, the four entries and the 0x55AA boot signature
 * (bytes 440 … 511). Bytes 0 … 439 are left as they are on the disk unless `bootCode` is given,
 * in which case they are replaced by it, padded with zeros.
 */
export function sector0Writes(diskSignature: number, entries: Buffer, bootCode: Uint8Array | undefined, where: string, what: string): PlannedWrite[] {
  const tail = Buffer.alloc(512 - BOOT_CODE_SIZE);
  tail.writeUInt32LE(diskSignature >>> 0, 0);
  // 444 … 445 stay zero ("copy protected" marker unused).
  entries.copy(tail, MBR_ENTRIES_OFFSET - BOOT_CODE_SIZE);
  tail.writeUInt8(0x55, 70);
  tail.writeUInt8(0xaa, 71);
  if (bootCode === undefined) return [{ offset: BOOT_CODE_SIZE, bytes: tail, what }];
  if (bootCode.length > BOOT_CODE_SIZE) {
    throw new ComposeError(
      'ERR_BOOT_CODE_TOO_LARGE',
      `${where}: boot code is ${bootCode.length} bytes; only the first ${BOOT_CODE_SIZE} bytes of LBA 0 hold boot code (the rest is the disk signature and the partition table)`,
      { size: bootCode.length, max: BOOT_CODE_SIZE },
    );
  }
  const sector = Buffer.alloc(512);
  Buffer.from(bootCode.buffer, bootCode.byteOffset, bootCode.length).copy(sector, 0);
  tail.copy(sector, BOOT_CODE_SIZE);
  return [{ offset: 0, bytes: sector, what: `${what} with boot code` }];
}
