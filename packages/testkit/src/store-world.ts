import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Assertion, type Headers, type PrivateKey, snapIdFor } from '@edgeimage/assertions';
import { pack, Store } from '@edgeimage/store';
import { writeTree, type Entry } from './bundle-trees.js';
import { makeChain, newKey, type TestChain } from './signing-chain.js';

export const STORE_ID = 'acme-store';
export const BRAND = 'acme';
export const AT = new Date('2026-06-01T00:00:00Z');

export interface BundleSpec {
  name: string;
  type: string;
  arch: string;
  /** Extra bytes of content, so downloads are big enough to cut in the middle. */
  payload?: number;
}

export const SNAPS: BundleSpec[] = [
  { name: 'pc', type: 'gadget', arch: 'amd64' },
  { name: 'pc-kernel', type: 'kernel', arch: 'amd64', payload: 600_000 },
  { name: 'tiny-base', type: 'base', arch: 'amd64' },
  { name: 'hello', type: 'app', arch: 'all', payload: 200_000 },
];

/** Incompressible but deterministic bytes (squashfs compresses; the cut must land mid-file). */
function noise(n: number, seed: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 64 < n; i++) out.push(createHash('sha512').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

export function bundleTree(s: BundleSpec): Record<string, Entry> {
  const tree: Record<string, Entry> = {
    'meta/snap.yaml': `name: ${s.name}\nversion: '1.0'\ntype: ${s.type}\narchitectures: [${s.arch}]\n`,
  };
  if (s.payload) tree['payload.bin'] = noise(s.payload, s.name);
  return tree;
}

/**
 * A complete private world for resolver tests, with real keys, real bundles and a directory store:
 * a root of trust, a brand (signs models and validation-sets) and a store (signs declarations and
 * revisions), every snap of SNAPS published to `latest/stable`, and the validation-set `acme/world`
 * pinning revision 1 of each, published to the store.
 */
export interface World {
  dir: string;
  storeDir: string;
  chain: TestChain;
  brandKey: PrivateKey;
  storeKey: PrivateKey;
  store: Store;
  /** root account-key + account, store account-key + account. */
  trusted: Assertion[];
  /** Brand account and account-key: what travels with a model. */
  brandAssertions: Assertion[];
  model(extra?: Headers, snaps?: Headers[]): Assertion;
  validationSet(revisions: Record<string, number | undefined>, extra?: Headers): Assertion;
  snapId(name: string): string;
  publish(spec: BundleSpec, channel?: string): Promise<number>;
  cleanup(): void;
}

/**
 * The trust side of a test world: a root, a brand and a store key, an initialised directory store
 * at `storeDir` holding the store's account, the anchors `resolve --trusted` needs, and the brand's
 * account and account-key that travel with a model. Shared by every package's test worlds.
 */
export async function makeTrustedStore(storeDir: string) {
  const chain = await makeChain('acme-root');
  const [brandKey, storeKey] = await Promise.all([newKey(), newKey()]);
  const store = await Store.init(storeDir, { authorityId: STORE_ID, key: storeKey, keyName: 'store' });
  const storeAccount = chain.account(STORE_ID);
  const trusted = [...chain.anchors, chain.accountKey(storeKey, STORE_ID, { name: 'store' }), storeAccount];
  const brandAssertions = [chain.account(BRAND), chain.accountKey(brandKey, BRAND, { name: 'models' })];
  await store.publishAssertion(storeAccount);
  return { chain, brandKey, storeKey, store, trusted, brandAssertions };
}

export async function makeWorld(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-resolve-'));
  const storeDir = join(dir, 'store');
  const { chain, brandKey, storeKey, store, trusted, brandAssertions } = await makeTrustedStore(storeDir);

  const snapId = (name: string) => snapIdFor(STORE_ID, name);
  const publish = async (spec: BundleSpec, channel = 'stable') => {
    const tree = writeTree(join(dir, 'trees', `${spec.name}-${spec.arch}-${Math.random().toString(36).slice(2)}`), bundleTree(spec));
    mkdirSync(join(dir, 'packed'), { recursive: true });
    const packed = await pack(tree, { output: join(dir, 'packed') + '/' });
    return (await store.publish(packed.path, { channel, key: storeKey })).revision;
  };
  for (const s of SNAPS) await publish(s);

  const validationSet = (revisions: Record<string, number | undefined>, extra: Headers = {}) =>
    chain.sign(
      {
        type: 'validation-set',
        'authority-id': BRAND,
        'account-id': BRAND,
        series: '16',
        name: 'world',
        sequence: '1',
        snaps: Object.entries(revisions).map(([name, revision]) => ({ name, id: snapId(name), presence: 'required', ...(revision ? { revision: String(revision) } : {}) })),
        timestamp: '2026-03-01T00:00:00Z',
        ...extra,
      },
      brandKey,
    );
  await store.publishAssertion(validationSet(Object.fromEntries(SNAPS.map((s) => [s.name, 1]))));

  const model = (extra: Headers = {}, snaps?: Headers[]) =>
    chain.sign(
      {
        type: 'model',
        'authority-id': BRAND,
        series: '16',
        'brand-id': BRAND,
        model: 'kiosk',
        architecture: 'amd64',
        base: 'tiny-base',
        grade: 'signed',
        snaps: snaps ?? SNAPS.map((s) => ({ name: s.name, id: snapId(s.name), type: s.type, 'default-channel': 'latest/stable' })),
        'validation-sets': [{ 'account-id': BRAND, name: 'world', mode: 'enforce' }],
        timestamp: '2026-03-01T00:00:00Z',
        ...extra,
      },
      brandKey,
    );

  return { dir, storeDir, chain, brandKey, storeKey, store, trusted, brandAssertions, model, validationSet, snapId, publish, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
