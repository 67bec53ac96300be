// STUB — to be implemented (bundle helper).
import type { SnapYaml } from './snap-yaml.js';
export interface BundleInfo {
  path: string;
  size: number;
  sha3_384: string;
  snap: SnapYaml;
}
export async function readBundleInfo(_file: string): Promise<BundleInfo> {
  throw new Error('not implemented');
}
/** meta/snap.yaml of a bundle, read without mounting (unsquashfs -cat). */
export async function readSnapYaml(_file: string): Promise<SnapYaml> {
  throw new Error('not implemented');
}
