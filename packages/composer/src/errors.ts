import { EdgeimageError } from '@edgeimage/assertions';

/**
 * A composer failure. `code` is stable and is what callers and tests switch on (never the
 * message text); `context` carries what a caller needs to act on it: the file, the structure or
 * label, the sizes involved, the tool and its Debian package.
 *
 * Codes of the filesystem builders (`fs/`) and the boot environment (`bootenv/`):
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_HOST_TOOL` | a host tool is not installed (`context.tool`, `context.package`) |
 * | `ERR_TOOL_FAILED` | a host tool failed for another reason (its stderr is in the message) |
 * | `ERR_FS_OPTIONS` | an invalid builder option (size, UUID, volume id, timestamp, FAT size) |
 * | `ERR_FS_LABEL` | a filesystem label that the filesystem cannot hold |
 * | `ERR_FS_OUTPUT_EXISTS` | the output file of a builder exists already |
 * | `ERR_FS_SOURCE` | the source directory is missing or unreadable |
 * | `ERR_FS_UNSUPPORTED_FILE` | a source entry the filesystem cannot hold (device, socket, FIFO; a symlink on vfat) |
 * | `ERR_FS_UNSUPPORTED_NAME` | a source file name the filesystem or tool cannot hold |
 * | `ERR_FS_NAME_CLASH` | two names in one directory that FAT treats as the same |
 * | `ERR_FS_FILE_TOO_LARGE` | a file over FAT's 4 GiB − 1 limit |
 * | `ERR_FS_TOO_SMALL` | the content does not fit the structure (`context.needed`, `context.size`) |
 * | `ERR_FS_NO_FIT` | no size of the filesystem holds the content (`context.filesystem`, `structure`, `payload`, `largestTried`) |
 * | `ERR_IMAGE_OPEN` | an image file cannot be opened |
 * | `ERR_IMAGE_RANGE` | a write would fall outside the image file |
 * | `ERR_BOOTENV_SIZE` | a boot environment block that is not exactly 1024 bytes |
 * | `ERR_BOOTENV_HEADER` | a block without the `# GRUB Environment Block` header |
 * | `ERR_BOOTENV_FORMAT` | a line in a block that is not `key=value` |
 * | `ERR_BOOTENV_TOO_LARGE` | variables that do not fit in 1024 bytes |
 * | `ERR_BOOTENV_KEY` | a variable name GRUB and U-Boot cannot both use |
 * | `ERR_BOOTENV_VALUE` | a value with a newline, backslash or NUL, or outside an `edge_*` variable's domain |
 * | `ERR_BOOTENV_STATE` | a combination of `edge_*` values the bootloaders cannot act on |
 * | `ERR_BOOTENV_UNREADABLE` | neither copy of the redundant environment is usable |
 * | `ERR_VERITY_SIZE` | a bundle that is not a whole number of 4096-byte blocks: dm-verity cannot cover it (`context.file`, `context.size`) |
 * | `ERR_VERITY_TOO_LARGE` | a bundle larger than the hash trees are computed for (`context.max`) |
 * | `ERR_VERITY_READ` | a bundle that cannot be read whole at its signed size while its hash tree is computed |
 *
 * Verified boot (`verified/`; the UEFI and U-Boot modules list their own in their index.ts):
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_VERIFIED_BOOT_UNSUPPORTED` | boot keys given, but the gadget has no verified-boot/ inputs (or the architecture no chain) |
 * | `ERR_VERIFIED_BOOT_INPUT` | a verified-boot/ input of the gadget is missing, not a regular file or too large |
 * | `ERR_BOOT_KEYS_ROLE` | the gadget's chain needs the db (UEFI) or FIT (U-Boot) signer, which was not given |
 * | `ERR_KERNEL_NO_INITRD` | a verified slot's kernel bundle has no initrd.img (the edgeimage initramfs) |
 * | `ERR_VERIFIED_PAYLOAD` | a field of the signed bundle list (path, grade, root hash, salt, blocks) is not valid |
 * | `ERR_PE_FORMAT`, `ERR_PE_SIGNED`, `ERR_UKI_*`, `ERR_SIGNER_*`, `ERR_GRUB_*` | UKI, Authenticode and GRUB building (verified/uefi) |
 * | `ERR_FIT_*`, `ERR_FDT_FORMAT`, `ERR_UBOOT_*` | FIT, control device tree and environment flash (verified/uboot) |
 */
export class ComposeError extends EdgeimageError {
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}
