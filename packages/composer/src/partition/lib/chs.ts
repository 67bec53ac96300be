/**
 * Cylinder-head-sector addresses for MBR entries, with the geometry every modern tool assumes
 * (255 heads, 63 sectors per track). Addresses beyond cylinder 1023 cannot be expressed; callers
 * pass the filler the convention wants (`FE FF FF` for DOS partitions in LBA mode, `FF FF FF` for
 * the protective MBR, as the UEFI specification says).
 */
const HEADS = 255;
const SECTORS = 63;

/** The three CHS bytes (head, sector | cylinder high bits, cylinder low bits) of `lba`. */
export function chsBytes(lba: number, overflow: readonly [number, number, number]): [number, number, number] {
  const cylinder = Math.floor(lba / (HEADS * SECTORS));
  if (cylinder > 1023) return [...overflow];
  const head = Math.floor(lba / SECTORS) % HEADS;
  const sector = (lba % SECTORS) + 1;
  return [head, (sector & 0x3f) | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

export const CHS_LBA_MODE = [0xfe, 0xff, 0xff] as const;
export const CHS_UNREPRESENTABLE = [0xff, 0xff, 0xff] as const;
