/**
 * The modules the reference boards need at boot (Debian 6.1 builds them as modules; their
 * dependencies come from modules.dep). Everything the initramfs mounts: the virtio disk, ext4
 * slots and data, FAT system-boot (with the code pages Debian's default iocharset needs), the
 * squashfs bundles on loop devices; overlay for device tools; and the watchdog QEMU emulates
 * (i6300esb, a PCI device on both machines).
 */
export const BOARD_MODULES: Readonly<Record<string, readonly string[]>> = {
  amd64: [
    'virtio_pci', 'virtio_blk', 'crc32c_generic', 'crc32c-intel', 'ext4', 'squashfs', 'loop',
    'vfat', 'nls_cp437', 'nls_ascii', 'overlay', 'i6300esb',
  ],
  arm64: [
    'virtio_pci', 'virtio_mmio', 'virtio_blk', 'crc32c_generic', 'ext4', 'squashfs', 'loop',
    'vfat', 'nls_cp437', 'nls_ascii', 'overlay', 'i6300esb',
  ],
};
