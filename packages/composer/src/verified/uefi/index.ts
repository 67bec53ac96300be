/**
 * The UEFI half of verified boot: unified kernel images (systemd-stub + kernel + initrd +
 * cmdline), Authenticode signatures for Secure Boot, and a GRUB that checks each UKI's detached
 * OpenPGP signature with the same db key before the firmware checks its Authenticode signature.
 *
 * Error codes (ComposeError):
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_PE_FORMAT` | a stub or image that is not a PE/COFF file we can read safely (the field is named) |
 * | `ERR_PE_SIGNED` | signPe was given an image that carries a certificate table already |
 * | `ERR_UKI_STUB` | a stub for another machine, one that is a UKI already, or without room for four section headers |
 * | `ERR_UKI_INPUT` | an empty kernel or initrd, a cmdline or os-release that is empty, too long or holds NUL |
 * | `ERR_UKI_TOO_LARGE` | a UKI over the 32-bit PE/COFF limits |
 * | `ERR_SIGNER_KEY` | a signing key that is not private RSA, or does not match its certificate |
 * | `ERR_SIGNER_CERT` | a certificate that cannot be read |
 * | `ERR_GRUB_FORMAT` | a GRUB format other than x86_64-efi or arm64-efi |
 * | `ERR_GRUB_MODULES` | a module folder without moddep.lst, kernel.img or a named module |
 */
export { buildUki, type UkiInputs } from './uki.js';
export { signPe, peSignatures, authenticodeDigest, type PeSigner } from './authenticode.js';
export { parsePe, type PeHeaders, type PeSection } from './pe.js';
export { grubPublicKey, grubSignature } from './grub-pgp.js';
export { buildSignedGrub, grubModuleSubset, GRUB_VERIFIED_MODULES, type GrubEfiFormat, type SignedGrubOptions } from './grub-image.js';
