/**
 * A complete private world for the composer's integration tests, along the lines of the
 * resolver's `makeWorld`: the store of image-store.ts with its keys and bundles, models signed as
 * image-models.ts does, resolved with `resolveModel` and composed with `composeImage` into
 * temporary folders.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Assertion, PrivateKey } from '@edgeimage/assertions';
import { composeImage, type ComposeOptions, type ComposeResult } from '@edgeimage/composer';
import { BundleCache, resolveModel, type Resolution, type Store } from '@edgeimage/store';
import type { Entry } from './bundle-trees.js';
import { modelFiles, modelSigner, modelStream, snapId, type ModelSpec } from './image-models.js';
import { makeImageStore, type PublishedBundle } from './image-store.js';
import type { TestChain } from './signing-chain.js';
import { AT } from './store-world.js';

/** Real host tools on small images: allow for a slow machine. */
export const SLOW = 120_000;

export interface ImageWorld {
  dir: string;
  storeDir: string;
  store: Store;
  chain: TestChain;
  brandKey: PrivateKey;
  storeKey: PrivateKey;
  /** root account-key + account, store account-key + account. */
  trusted: Assertion[];
  /** Brand account and account-key: what travels with a model. */
  brandAssertions: Assertion[];
  bundles: Map<string, PublishedBundle>;
  snapId(name: string): string;
  /** Packs `tree` into a bundle file without publishing it (a local bundle for `--snap`). */
  pack(name: string, tree: Record<string, Entry>): Promise<string>;
  /** Packs `tree` and publishes it (to latest/stable); the latest publication of a name wins in `bundles`. */
  publish(name: string, tree: Record<string, Entry>): Promise<PublishedBundle>;
  /**
   * Signs a model naming gadget, kernel, base and apps (default: the standard GPT world). Grade
   * signed/secured models get a validation-set pinning the current revisions, published to the store.
   */
  model(spec?: ModelSpec): Promise<Assertion>;
  /** The model stream a user hands to `build`: brand account, account-key, model. */
  modelStream(model: Assertion): Buffer;
  /** Resolves with a fresh cache (or `cache`), at {@link AT}. */
  resolve(model: Assertion, opts?: { cache?: string; localBundles?: string[] }): Promise<Resolution>;
  /** composeImage into a fresh output folder (or `outputDir`). */
  compose(resolution: Resolution, opts?: Partial<ComposeOptions>): Promise<ComposeResult>;
  /** A fresh folder inside the world (removed by cleanup). */
  tempDir(prefix?: string): string;
  /** Writes the model stream and the trusted assertions as files, for the CLI. */
  files(model: Assertion, name?: string): { model: string; trusted: string[]; trustArgs: string[] };
  cleanup(): void;
}

export async function makeImageWorld(): Promise<ImageWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-image-world-'));
  chmodSync(dir, 0o755);
  const s = await makeImageStore(dir);
  const tempDir = (prefix = 'tmp-') => {
    const d = mkdtempSync(join(dir, prefix));
    chmodSync(d, 0o755);
    return d;
  };
  const resolve = (m: Assertion, opts: { cache?: string; localBundles?: string[] } = {}) =>
    resolveModel([...s.brandAssertions, m], { store: s.store, trusted: s.trusted, at: AT, cache: new BundleCache(opts.cache ?? tempDir('cache-')), localBundles: opts.localBundles });
  const compose = (resolution: Resolution, opts: Partial<ComposeOptions> = {}) => composeImage({ resolution, trusted: s.trusted, outputDir: opts.outputDir ?? tempDir('out-'), ...opts });
  return {
    dir,
    storeDir: s.storeDir,
    store: s.store,
    chain: s.chain,
    brandKey: s.brandKey,
    storeKey: s.storeKey,
    trusted: s.trusted,
    brandAssertions: s.brandAssertions,
    bundles: s.bundles,
    snapId,
    pack: async (name, tree) => (await s.pack(name, tree)).path,
    publish: s.publish,
    model: modelSigner(s.chain, s.brandKey, s.store, s.bundles),
    modelStream: (m) => modelStream(s.brandAssertions, m),
    resolve,
    compose,
    tempDir,
    files: (m, name) => modelFiles(join(dir, 'files'), s.brandAssertions, s.trusted, m, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
