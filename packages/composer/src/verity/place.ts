import { writeFileSync } from 'node:fs';
import { bundleVerity, type VerityBundle } from './bundle.js';
import type { VerityParams } from './tree.js';

/**
 * A bundle's verity parameters as the slot's and the image's manifests carry them: the tree's
 * file in the slot and every field of the device's `dmsetup` table but the two devices.
 */
export interface BundleVerityEntry {
  /** The tree, relative to the slot root: the bundle's file with `.verity` appended. */
  file: string;
  version: 1;
  'hash-algorithm': VerityParams['hashAlgorithm'];
  'data-block-size': VerityParams['dataBlockSize'];
  'hash-block-size': VerityParams['hashBlockSize'];
  'data-blocks': number;
  salt: string;
  'root-hash': string;
}

export function verityManifestEntry(params: VerityParams, file: string): BundleVerityEntry {
  return { file, version: params.version, 'hash-algorithm': params.hashAlgorithm, 'data-block-size': params.dataBlockSize, 'hash-block-size': params.hashBlockSize, 'data-blocks': params.dataBlocks, salt: params.salt, 'root-hash': params.rootHash };
}

/**
 * Writes the tree of bundle `b` to `dest` and returns its
 * manifest entry, naming it `slotFile` (the tree's path in the slot). `dest` is inside a staging
 * folder that is renamed or removed as a whole, so a plain write is atomic enough.
 *
 * ```ts
 * const v = await placeBundleVerity(bundle, 'work/slot/bundles/base_3.snap.verity', 'bundles/base_3.snap.verity');
 * v['root-hash']; // 64 hex digits
 * ```
 */
export async function placeBundleVerity(b: VerityBundle, dest: string, slotFile: string): Promise<BundleVerityEntry> {
  const { tree, params } = await bundleVerity(b);
  writeFileSync(dest, tree);
  return verityManifestEntry(params, slotFile);
}
