/**
 * The modules the reference boards need at boot (Debian 6.1 builds them as modules; their
 * dependencies come from modules.dep). Everything the initramfs mounts: the virtio disk, ext4
 * slots and data, FAT system-boot (with the code pages Debian's default iocharset needs), the
 * squashfs bundles on loop devices; overlay for device tools; the watchdog QEMU emulates
 * (i6300esb, a PCI device on both machines); dm-verity, through which a verified slot's bundles
 * are opened (modules.dep adds dm-mod, dm-bufio, reed_solomon, and dax on arm64; loaded on every
 * boot, they cost nothing unused); and efivarfs, where /init reads the SecureBoot variable (loaded
 * only on UEFI boots: it refuses to load without EFI runtime services); and virtio_net (with
 * net_failover and failover, about 100 KiB), the NIC QEMU gives a machine booted with forwarded
 * ports (boot-test --forward): loaded before the base is mounted, so a base needs no module of its own for it.
 */
export const BOARD_MODULES: Readonly<Record<string, readonly string[]>> = {
  amd64: [
    'virtio_pci', 'virtio_blk', 'crc32c_generic', 'crc32c-intel', 'ext4', 'squashfs', 'loop',
    'vfat', 'nls_cp437', 'nls_ascii', 'overlay', 'i6300esb', 'dm-verity', 'efivarfs', 'virtio_net',
  ],
  arm64: [
    'virtio_pci', 'virtio_mmio', 'virtio_blk', 'crc32c_generic', 'ext4', 'squashfs', 'loop',
    'vfat', 'nls_cp437', 'nls_ascii', 'overlay', 'i6300esb', 'dm-verity', 'efivarfs', 'virtio_net',
  ],
};
