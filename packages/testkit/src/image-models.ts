/**
 * Models of the composer's test world: signed by the brand, with a validation-set pinning the
 * published revisions for grades that need one; and the files a user hands to the CLI.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Assertion, encodeStream, type PrivateKey, snapIdFor } from '@edgeimage/assertions';
import type { Store } from '@edgeimage/store';
import { AGENT, APP, BASE, GADGET_GPT, KERNEL } from './image-bundles.js';
import type { PublishedBundle } from './image-store.js';
import type { TestChain } from './signing-chain.js';
import { BRAND, STORE_ID } from './store-world.js';

export const MODEL_TIMESTAMP = '2026-03-01T00:00:00Z';

export interface ModelSpec {
  /** Model name (default `edge-pc`): the image is `<model>.img`. */
  model?: string;
  gadget?: string;
  kernel?: string;
  base?: string;
  /** The device agent (type snapd; default the world's edge-agent); null: a model without one. */
  agent?: string | null;
  apps?: string[];
  architecture?: string;
  grade?: 'signed' | 'dangerous' | 'secured';
  revision?: number;
  timestamp?: string;
}

export const snapId = (name: string) => snapIdFor(STORE_ID, name);

/**
 * Signs models naming gadget, kernel, base, the device agent and apps (default: the standard GPT world). Grade
 * signed/secured models get a validation-set pinning the revisions in `bundles`, published to the store.
 */
export function modelSigner(chain: TestChain, brandKey: PrivateKey, store: Store, bundles: ReadonlyMap<string, PublishedBundle>): (spec?: ModelSpec) => Promise<Assertion> {
  let sets = 0;
  return async (spec: ModelSpec = {}) => {
    const grade = spec.grade ?? 'signed';
    const snaps = [
      { name: spec.gadget ?? GADGET_GPT, type: 'gadget' },
      { name: spec.kernel ?? KERNEL, type: 'kernel' },
      { name: spec.base ?? BASE, type: 'base' },
      ...(spec.agent === null ? [] : [{ name: spec.agent ?? AGENT, type: 'snapd' }]),
      ...(spec.apps ?? [APP]).map((a) => ({ name: a, type: 'app' })),
    ];
    const headers: Record<string, unknown> = {
      type: 'model',
      'authority-id': BRAND,
      series: '16',
      'brand-id': BRAND,
      model: spec.model ?? 'edge-pc',
      architecture: spec.architecture ?? 'amd64',
      base: spec.base ?? BASE,
      grade,
      snaps: snaps.map((s) => ({ name: s.name, id: snapId(s.name), type: s.type, 'default-channel': 'latest/stable' })),
      timestamp: spec.timestamp ?? MODEL_TIMESTAMP,
    };
    if (spec.revision !== undefined) headers['revision'] = String(spec.revision);
    if (grade !== 'dangerous') {
      const name = `set-${++sets}`;
      const vs = chain.sign(
        {
          type: 'validation-set',
          'authority-id': BRAND,
          'account-id': BRAND,
          series: '16',
          name,
          sequence: '1',
          snaps: snaps.map((s) => {
            const b = bundles.get(s.name);
            if (!b) throw new Error(`image world: no bundle ${s.name} published`);
            return { name: s.name, id: snapId(s.name), presence: 'required', revision: String(b.revision) };
          }),
          timestamp: MODEL_TIMESTAMP,
        },
        brandKey,
      );
      await store.publishAssertion(vs);
      headers['validation-sets'] = [{ 'account-id': BRAND, name, mode: 'enforce' }];
    }
    return chain.sign(headers as never, brandKey);
  };
}

/** The model stream a user hands to `build`: brand account, account-key, model. */
export const modelStream = (brandAssertions: readonly Assertion[], m: Assertion): Buffer => encodeStream([...brandAssertions, m].map((a) => a.encode()));

/** Writes the model stream and the trusted assertions as files in `dir`, for the CLI. */
export function modelFiles(dir: string, brandAssertions: readonly Assertion[], trusted: readonly Assertion[], m: Assertion, name = 'model.assert'): { model: string; trusted: string[]; trustArgs: string[] } {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const modelFile = join(dir, name);
  writeFileSync(modelFile, modelStream(brandAssertions, m), { mode: 0o644 });
  const trustedFiles = trusted.map((a, i) => {
    const p = join(dir, `trusted-${i}.assert`);
    writeFileSync(p, encodeStream([a.encode()]), { mode: 0o644 });
    return p;
  });
  return { model: modelFile, trusted: trustedFiles, trustArgs: ['--no-default-trust', ...trustedFiles.flatMap((f) => ['--trusted', f])] };
}
