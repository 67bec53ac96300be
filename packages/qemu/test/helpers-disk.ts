/** Facts read from disk image files on the host, for tests that check what a guest or a device tool wrote. */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';

/** The size in bytes of the ext4 at byte `offset` of `image`, from its superblock (block count at byte 4, log2(block size / 1024) at byte 24). */
export function ext4Bytes(image: string, offset: number): number {
  const sb = Buffer.alloc(32);
  const fd = openSync(image, 'r');
  try {
    readSync(fd, sb, 0, 32, offset + 1024);
  } finally {
    closeSync(fd);
  }
  return sb.readUInt32LE(4) * (1024 << sb.readUInt32LE(24));
}

/**
 * Partition `n`'s PARTUUID as Linux spells it (what `edgeimage.bootpart=` carries), from the
 * host's sfdisk reading of the table: GPT, the partition's unique GUID; MBR, `<disk id>-<number>`
 * in hex; lower case.
 */
export function partUuid(disk: string, n: number): string {
  const t = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })).partitiontable as { label: string; id: string; partitions: { uuid?: string }[] };
  if (t.label === 'gpt') return String(t.partitions[n - 1]!.uuid).toLowerCase();
  return `${t.id.replace(/^0x/, '').padStart(8, '0')}-${n.toString(16).padStart(2, '0')}`.toLowerCase();
}

/**
 * Whether the FAT at byte `offset` of `image` is marked dirty: Linux sets the flag (bit 0 of the
 * boot sector's state byte: 0x41 on FAT32, 0x25 on FAT12/16) while the volume is mounted
 * read-write and clears it when it is remounted read-only or unmounted.
 */
export function fatDirty(image: string, offset: number): boolean {
  const bs = Buffer.alloc(512);
  const fd = openSync(image, 'r');
  try {
    readSync(fd, bs, 0, 512, offset);
  } finally {
    closeSync(fd);
  }
  const fat32 = bs.toString('latin1', 82, 87) === 'FAT32';
  return (bs.readUInt8(fat32 ? 0x41 : 0x25) & 1) === 1;
}
