import { createHash } from 'node:crypto';
import { computeVerityTree, type VerityTree } from './tree.js';

/** The bundle a tree is made for: its file and what its signature says about it. */
export interface VerityBundle {
  /** For messages: the bundle's name and revision, when known. */
  name?: string;
  revision?: number;
  path: string;
  'sha3-384': string;
  size: number;
}

/**
 * The salt of a bundle's tree: sha256 of a fixed label and the bundle's signed sha3-384. dm-verity's
 * salt is public (it is in the kernel's table) and needs no secrecy: it makes one bundle's hashes
 * unlike every other's, so no precomputation serves an attack on many bundles at once. A salt
 * derived from the content does that as well as a random one (two bundles share it only when they
 * are the same bytes), and it keeps the tree and the root hash the same from build to build, which
 * reproducible images and the update's unchanged-file reuse rely on.
 */
export function veritySalt(sha3_384: string): Buffer {
  return createHash('sha256').update('edgeimage dm-verity salt 1\0').update(sha3_384).digest();
}

/**
 * The tree of a bundle, computed from the bundle file's bytes every time. No cached tree is used:
 * a tree kept next to a cached bundle would be checked only against its own root hash, never
 * against the bundle, so whoever can write the cache could plant the tree of other data of the same
 * size, and its root hash would go into the signed slot (a review found exactly that). Computing
 * costs ~1 ms per MB (sha256, 1.1-1.2 GB/s here), small beside the rest of a build.
 *
 * ```ts
 * const { tree, params } = await bundleVerity(resolution.bundles[0]);
 * ```
 */
export async function bundleVerity(b: VerityBundle): Promise<VerityTree> {
  const what = b.name === undefined ? b.path : `bundle ${b.name} revision ${b.revision} (${b.path})`;
  return computeVerityTree(b.path, veritySalt(b['sha3-384']), b.size, what);
}
