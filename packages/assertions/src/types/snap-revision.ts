import type { Assertion } from '../assertion.js';
import { HeaderChecks, PROVENANCE } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

/** The provenance of revisions uploaded to the store the usual way (`naming.DefaultProvenance`). */
export const DEFAULT_PROVENANCE = 'global-upload';

/** dm-verity data for the snap (snapd `IntegrityData`), so it can be verified block by block. */
export interface SnapIntegrity {
  type: 'dm-verity';
  version: 1;
  hashAlgorithm: 'sha256';
  dataBlockSize: number;
  hashBlockSize: number;
  /** Hex. */
  digest: string;
  /** Hex. */
  salt: string;
}

export interface SnapRevisionView extends ViewBase {
  /** SHA3-384 of the whole .snap file, unpadded base64url. */
  snapSha3_384: string;
  /** `global-upload` when not written. */
  provenance: string;
  snapId: string;
  /** Bytes. */
  snapSize: number;
  snapRevision: number;
  developerId: string;
  timestamp: Date;
  integrity: SnapIntegrity[];
}

function checkIntegrity(c: HeaderChecks): SnapIntegrity[] {
  return (c.mapList('integrity') ?? []).map((item, i) => {
    const first = c.within('integrity', item, `of entry ${i + 1} in "integrity" header`);
    const type = first.existingString('type');
    if (type !== 'dm-verity') first.failAbout('type', `must be dm-verity, found ${JSON.stringify(type)}`);
    const d = c.within('integrity', item, `of entry ${i + 1} (${type}) in "integrity" header`);
    const version = d.uint('version');
    if (version !== 1) d.failAbout('version', `must be 1, found ${version}`);
    const alg = d.existingString('hash-algorithm');
    if (alg !== 'sha256') d.failAbout('hash-algorithm', `must be sha256, found ${JSON.stringify(alg)}`);
    const dataBlockSize = d.uint('data-block-size');
    const hashBlockSize = d.uint('hash-block-size');
    const hex = (name: string) => {
      const v = d.string(name);
      if (!/^[0-9a-fA-F]{64}$/.test(v)) d.failAbout(name, `must be a sha256 value in hex (64 hex digits), found ${JSON.stringify(v)}`);
      return v;
    };
    return { type: 'dm-verity', version: 1, hashAlgorithm: 'sha256', dataBlockSize, hashBlockSize, digest: hex('digest'), salt: hex('salt') };
  });
}

/** `snap-revision` (snapd snap_asserts.go): ties a .snap file's hash to a snap id and revision. */
export const snapRevisionType: AssertionType<SnapRevisionView> = {
  name: 'snap-revision',
  primaryKey: ['snap-sha3-384', 'provenance'],
  optionalPrimaryKeyDefaults: { provenance: DEFAULT_PROVENANCE },
  maxFormat: 0,
  hasTimestamp: true,
  assemble(a: Assertion): SnapRevisionView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const base = viewBase(c);
    const snapSha3_384 = c.digest('snap-sha3-384');
    const provenance = c.has('provenance') ? c.matching('provenance', PROVENANCE, 'a provenance name (letters, digits and single inner dashes)') : DEFAULT_PROVENANCE;
    const snapId = c.string('snap-id');
    const snapSize = c.uint('snap-size', 64);
    const snapRevision = c.int('snap-revision', { min: 1 });
    const developerId = c.string('developer-id');
    const timestamp = c.date('timestamp');
    const integrity = checkIntegrity(c);
    return { ...base, snapSha3_384, provenance, snapId, snapSize, snapRevision, developerId, timestamp, integrity };
  },
};

registerType(snapRevisionType);
