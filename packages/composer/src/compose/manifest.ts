import { MAPPED_DIGEST } from './digest.js';
import type { ImagePlan, PlannedStructure, VolumePlan } from './plan.js';

/** A partition as the manifest records it: the plan's fields for it, and its digest. */
export type PartitionManifest = Pick<PlannedStructure, 'name' | 'role' | 'index' | 'offset' | 'size' | 'type' | 'guid' | 'filesystem' | 'label'> & {
  /**
   * sha256 of the filesystem's bytes as written; absent when the build computed no digests. Of
   * every byte unless the manifest's `digest` says otherwise.
   */
  sha256?: string;
};

export interface ImageManifest {
  format: 1;
  model: ImagePlan['model'];
  volume: string;
  schema: string;
  size: number;
  'disk-guid'?: string;
  'disk-id'?: string;
  partitions: PartitionManifest[];
  bundles: ImagePlan['bundles'];
  'boot-environment': Record<string, string>;
  'trust-store': string[];
  outputs: { format: string; path: string; sha256?: string }[];
  /**
   * Present when the raw image's and the partitions' sha256s are not of every byte (the default):
   * `sha256-nonzero-4k-blocks` (compose/digest.ts, MAPPED_DIGEST): only the blocks holding data,
   * each with its offset. A compressed output's sha256 is always of every byte of its file.
   */
  digest?: typeof MAPPED_DIGEST;
  /** Present when the model verifies only through the example root, whose private key is public. */
  'test-keys'?: true;
  /** A verified image (build --boot-keys): its chain, the slots' payload files and the signing certificate. */
  'verified-boot'?: ImagePlan['verified-boot'];
}

/**
 * The manifest of one image: its plan, with the digests the writer computed (by structure index
 * in the plan, and by output path).
 */
export function manifestOf(plan: ImagePlan, v: VolumePlan, digests: { structures: Map<number, string>; outputs: Map<string, string> }, mapped = false): ImageManifest {
  return {
    format: 1,
    model: plan.model,
    volume: v.volume,
    schema: v.schema,
    size: v.size,
    ...(v.diskGuid ? { 'disk-guid': v.diskGuid } : {}),
    ...(v.diskId !== undefined ? { 'disk-id': v.diskId.toString(16).padStart(8, '0') } : {}),
    partitions: v.structures.map((s, i) => ({
      name: s.name,
      role: s.role,
      index: s.index,
      offset: s.offset,
      size: s.size,
      type: s.type,
      guid: s.guid,
      filesystem: s.filesystem,
      label: s.label,
      sha256: digests.structures.get(i),
    })),
    bundles: plan.bundles,
    'boot-environment': v.ab ? plan['boot-environment'] : {},
    'trust-store': v.ab ? plan['trust-store'] : [],
    outputs: v.outputs.filter((o) => o.format !== 'manifest').map((o) => {
      const sha = digests.outputs.get(o.path);
      return { format: o.format, path: basename(o.path), ...(sha ? { sha256: sha } : {}) };
    }),
    ...(mapped ? { digest: MAPPED_DIGEST } : {}),
    ...(plan['test-keys'] ? { 'test-keys': true as const } : {}),
    ...(v.ab && plan['verified-boot'] ? { 'verified-boot': plan['verified-boot'] } : {}),
  };
}

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);
