/** Facts read from disk image files on the host, for tests that check what a guest or a device tool wrote. */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';

/** The 1024-byte superblock of the ext4 at byte `offset` of `image` (it starts 1024 bytes in). */
function ext4Superblock(image: string, offset: number): Buffer {
  const sb = Buffer.alloc(1024);
  const fd = openSync(image, 'r');
  try {
    readSync(fd, sb, 0, 1024, offset + 1024);
  } finally {
    closeSync(fd);
  }
  return sb;
}

/** The size in bytes of the ext4 at byte `offset` of `image`, from its superblock (block count at byte 4, log2(block size / 1024) at byte 24). */
export function ext4Bytes(image: string, offset: number): number {
  const sb = ext4Superblock(image, offset);
  return sb.readUInt32LE(4) * (1024 << sb.readUInt32LE(24));
}

/** The volume name of the ext4 at byte `offset` of `image` (empty when there is no ext4 there). */
export function ext4Label(image: string, offset: number): string {
  const sb = ext4Superblock(image, offset);
  if (sb.readUInt16LE(0x38) !== 0xef53) return '';
  const name = sb.subarray(0x78, 0x88);
  const end = name.indexOf(0);
  return name.subarray(0, end < 0 ? 16 : end).toString('latin1');
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
