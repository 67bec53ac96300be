/**
 * The directory store of the composer's test world: a root of trust, a brand and a store key
 * (from the resolver's world), and the standard bundles packed from trees and published.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pack, type PackResult } from '@edgeimage/store';
import { writeTree, type Entry } from './bundle-trees.js';
import { abStructures, AGENT, agentTree, APP, appTree, BASE, baseTree, GADGET_GPT, GADGET_MBR, gadgetTree, gadgetYaml, KERNEL, kernelTree } from './image-bundles.js';
import { makeTrustedStore } from './store-world.js';

export interface PublishedBundle {
  name: string;
  type: string;
  revision: number;
  /** The packed file (the same bytes the store holds). */
  file: string;
}

export type ImageStore = Awaited<ReturnType<typeof makeTrustedStore>> & {
  storeDir: string;
  /** The latest publication of each name. */
  bundles: Map<string, PublishedBundle>;
  /** Packs `tree` into a bundle file without publishing it. */
  pack(name: string, tree: Record<string, Entry>): Promise<PackResult>;
  /** Packs `tree` and publishes it (to latest/stable). */
  publish(name: string, tree: Record<string, Entry>): Promise<PublishedBundle>;
};

/** A store in `dir`/store holding the standard bundles; trees and packed files go under `dir` too. */
export async function makeImageStore(dir: string): Promise<ImageStore> {
  const storeDir = join(dir, 'store');
  const trustedStore = await makeTrustedStore(storeDir);
  const { store, storeKey } = trustedStore;
  const bundles = new Map<string, PublishedBundle>();
  let n = 0;
  const packTree = async (name: string, tree: Record<string, Entry>) => {
    const src = writeTree(join(dir, 'trees', `${name}-${++n}`), tree);
    const out = join(dir, 'packed', String(n));
    mkdirSync(out, { recursive: true });
    return pack(src, { output: `${out}/` });
  };
  const publish = async (name: string, tree: Record<string, Entry>) => {
    const packed = await packTree(name, tree);
    const r = await store.publish(packed.path, { channel: 'stable', key: storeKey });
    const b = { name, type: packed.snap.type, revision: r.revision, file: packed.path };
    bundles.set(name, b);
    return b;
  };

  await publish(GADGET_GPT, gadgetTree(GADGET_GPT, gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'))));
  await publish(GADGET_MBR, gadgetTree(GADGET_MBR, gadgetYaml('uboot', 'mbr', 'u-boot', abStructures('mbr'))));
  await publish(KERNEL, kernelTree(KERNEL));
  await publish(BASE, baseTree(BASE));
  await publish(AGENT, agentTree(AGENT));
  await publish(APP, appTree(APP));
  return { ...trustedStore, storeDir, bundles, pack: packTree, publish };
}
