/**
 * dm-verity hash trees of bundles, on the build host: computed by our own code (format 1,
 * sha256, 4096-byte blocks, no superblock; byte for byte what `veritysetup format
 * --no-superblock` writes) from each bundle's bytes at every build, placed in each slot next to its bundle.
 */
export { computeVerityTree, checkVeritySize, verityLevelBlocks, verityTreeBytes, VERITY_BLOCK_SIZE, VERITY_HASH_ALGORITHM, MAX_VERITY_DATA_BYTES, type VerityParams, type VerityTree } from './tree.js';
export { bundleVerity, veritySalt, type VerityBundle } from './bundle.js';
export { placeBundleVerity, verityManifestEntry, type BundleVerityEntry } from './place.js';
