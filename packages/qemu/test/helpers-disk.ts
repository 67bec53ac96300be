/** Facts read from disk image files on the host, for tests that check what a guest or a device tool wrote. */
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
