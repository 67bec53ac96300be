/**
 * @edgeimage/composer — turns a resolved model into a bootable A/B disk image: partition tables,
 * filesystems built from directories, slot population, the redundant boot environment, outputs.
 */
export { ComposeError } from './errors.js';
export { composeImage, removeInProgress, inProgress, sha256File, type ComposeOptions, type ComposeResult, type ImageManifest, type PartitionManifest, type OutputFormat, type ComposeEvent, MAPPED_DIGEST, type DigestMode } from './compose/compose.js';
export { planImage, type ImagePlan, type VolumePlan, type PlannedStructure, type PlannedFile, type PlannedFilesystem, type PlannedOutput, type PlanOptions } from './compose/plan.js';
export { ImageIdentity } from './compose/identity.js';
export * from './partition/index.js';
export * from './fs/index.js';
export * from './bootenv/index.js';
export { inspectImage, sniffFilesystem, readExt4File, findRolePartition, bootPartitionOffset, type ImageInspection, type SlotInfo, type FilesystemInfo } from './inspect/inspect.js';
export * from './initramfs/index.js';
export * from './update/index.js';
export * from './verity/index.js';
export * from './verified/uefi/index.js';
export * from './verified/uboot/index.js';
export { verifiedInitrd, verifiedInitrdPart, type VerifiedInitrdOptions } from './verified/initrd.js';
export { stageSlotPayload, verifiedBootKind, UKI_FILE, UKI_SIG_FILE, FIT_FILE, PAYLOAD_SIG_FILE, PAYLOAD_KEY_FILE, type BootSigners, type VerifiedBootKind } from './verified/payload.js';
export { stageVerifiedSystemBoot, QEMU_ARM64_UBOOT, type FactoryFiles } from './verified/system-boot.js';
