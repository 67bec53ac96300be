/**
 * dm-verity hash trees of bundles, on the build host: computed by our own code (format 1,
 * sha256, 4096-byte blocks, no superblock; byte for byte what `veritysetup format
 * --no-superblock` writes), kept in the bundle cache, placed in each slot next to its bundle.
 */
export { computeVerityTree, treeMatches, checkVeritySize, verityLevelBlocks, verityTreeBytes, VERITY_BLOCK_SIZE, VERITY_HASH_ALGORITHM, MAX_VERITY_DATA_BYTES, type VerityParams, type VerityTree } from './tree.js';
export { bundleVerity, veritySalt, verityEntryPaths, type VerityBundle } from './cache.js';
export { placeBundleVerity, verityManifestEntry, type BundleVerityEntry } from './place.js';
