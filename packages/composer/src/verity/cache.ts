import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { BundleCache } from '@edgeimage/store';
import { computeVerityTree, treeMatches, verityTreeBytes, VERITY_BLOCK_SIZE, VERITY_HASH_ALGORITHM, type VerityParams, type VerityTree } from './tree.js';

/** The bundle a tree is made for: its file and what its signature says about it. */
export interface VerityBundle {
  /** For messages: the bundle's name and revision, when known. */
  name?: string;
  revision?: number;
  path: string;
  'sha3-384': string;
  size: number;
}

/** A cache entry's parameters file is a few hundred bytes; anything much larger is not one. */
const MAX_PARAMS_BYTES = 4096;

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
 * The tree of a bundle, from the bundle cache when it holds one. A bundle in the content-addressed
 * cache (`DIR/bundles/<sha3-384>.snap`) gets its tree computed once, kept next to it as
 * `<sha3-384>.verity` with its parameters in `<sha3-384>.verity.json`; each is written under a
 * temporary name in `DIR/tmp/` (removed by the cache's `prepare` if the writer dies) and renamed,
 * the parameters last, so an entry is whole or absent. A hit is re-checked (parameters against
 * the bundle, the tree against its root hash) and recomputed when it fails. A bundle outside the
 * cache (a local `--snap`) gets its tree computed each time.
 *
 * ```ts
 * const { tree, params, cached } = await bundleVerity(resolution.bundles[0]);
 * ```
 */
export async function bundleVerity(b: VerityBundle): Promise<VerityTree & { cached: boolean }> {
  const salt = veritySalt(b['sha3-384']);
  const what = b.name === undefined ? b.path : `bundle ${b.name} revision ${b.revision} (${b.path})`;
  const cache = cacheOf(b);
  if (!cache) return { ...(await computeVerityTree(b.path, salt, b.size, what)), cached: false };
  const { tree: treePath, params: paramsPath } = verityEntryPaths(b);
  const hit = readEntry(treePath, paramsPath, b, salt);
  if (hit) return { ...hit, cached: true };
  const made = await computeVerityTree(b.path, salt, b.size, what);
  const tmpTree = `${cache.tempPath(b['sha3-384'])}.verity`;
  const tmpParams = `${cache.tempPath(b['sha3-384'])}.verity.json`;
  try {
    mkdirSync(cache.tmpDir, { recursive: true });
    writeFileSync(tmpTree, made.tree);
    writeFileSync(tmpParams, `${JSON.stringify({ 'sha3-384': b['sha3-384'], size: b.size, ...made.params }, null, 2)}\n`);
    renameSync(tmpTree, treePath);
    renameSync(tmpParams, paramsPath);
  } catch {
    // The cache only saves time: a cache this process cannot write (another user's, a full disk)
    // costs a recomputation next time, not the build. The tree in hand is complete either way.
  } finally {
    rmSync(tmpTree, { force: true });
    rmSync(tmpParams, { force: true });
  }
  return { ...made, cached: false };
}

/** Where the cache keeps the tree of a cached bundle and its parameters. */
export function verityEntryPaths(b: Pick<VerityBundle, 'path' | 'sha3-384'>): { tree: string; params: string } {
  const dir = dirname(b.path);
  return { tree: `${dir}/${b['sha3-384']}.verity`, params: `${dir}/${b['sha3-384']}.verity.json` };
}

/** The bundle cache holding `b` under its digest, or undefined for a file elsewhere. */
function cacheOf(b: VerityBundle): BundleCache | undefined {
  if (basename(dirname(b.path)) !== 'bundles') return undefined;
  const cache = new BundleCache(dirname(dirname(b.path)));
  return cache.pathOf(b['sha3-384']) === b.path ? cache : undefined;
}

/** A cache entry that is whole and right for `b`, or undefined (absent, partial, stale, damaged). */
function readEntry(treePath: string, paramsPath: string, b: VerityBundle, salt: Buffer): VerityTree | undefined {
  try {
    const p = lstatSync(paramsPath);
    const t = lstatSync(treePath);
    const dataBlocks = b.size / VERITY_BLOCK_SIZE;
    // A one-block tree is empty: nothing but the data checks its root hash, so it is recomputed.
    if (dataBlocks === 1) return undefined;
    if (!p.isFile() || p.size > MAX_PARAMS_BYTES || !t.isFile() || !Number.isSafeInteger(dataBlocks) || t.size !== verityTreeBytes(dataBlocks)) return undefined;
    const stored = JSON.parse(readFileSync(paramsPath, 'utf8')) as Record<string, unknown>;
    const params: VerityParams = { version: 1, hashAlgorithm: VERITY_HASH_ALGORITHM, dataBlockSize: VERITY_BLOCK_SIZE, hashBlockSize: VERITY_BLOCK_SIZE, dataBlocks, salt: salt.toString('hex'), rootHash: String(stored['rootHash']) };
    const expected: Record<string, unknown> = { 'sha3-384': b['sha3-384'], size: b.size, ...params };
    if (Object.keys(expected).some((k) => stored[k] !== expected[k]) || !/^[0-9a-f]{64}$/.test(params.rootHash)) return undefined;
    const tree = readFileSync(treePath);
    return treeMatches(tree, params) ? { tree, params } : undefined;
  } catch {
    return undefined;
  }
}
