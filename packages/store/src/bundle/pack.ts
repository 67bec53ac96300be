// STUB — to be implemented (bundle helper).
import type { SnapYaml } from './snap-yaml.js';
export interface PackResult {
  path: string;
  size: number;
  sha3_384: string;
  snap: SnapYaml;
}
export async function pack(_dir: string, _opts: { output?: string } = {}): Promise<PackResult> {
  throw new Error('not implemented');
}
