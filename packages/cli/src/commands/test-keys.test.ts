/**
 * `build` warns loudly when a grade signed or secured model verifies only through the example
 * (test-only) root of signing-keys.example/, whose private keys are public.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Assertion, assembleAs, decodeStream, modelType, PrivateKey, signAssertion } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { makeChain, newKey } from '@edgeimage/testkit/signing-chain';
import { testKeysWarning } from './build.js';

const EXAMPLE = fileURLToPath(new URL('../../../../signing-keys.example/', import.meta.url));
const example = (file: string) => decodeStream(readFileSync(`${EXAMPLE}${file}`), { file })[0]!;
const exampleTrusted = () => [example('root.account-key'), example('example-root.account'), example('store.account-key'), example('example-store.account')];

const modelHeaders = (brand: string, grade: string) => ({
  type: 'model', 'authority-id': brand, series: '16', 'brand-id': brand, model: 'kiosk', architecture: 'amd64', base: 'core22', grade,
  snaps: [{ name: 'pc', type: 'gadget', id: 'P'.repeat(32) }, { name: 'pc-kernel', type: 'kernel', id: 'K'.repeat(32) }], timestamp: '2026-03-01T00:00:00Z',
});

const resolutionOf = (model: Assertion, chain: Assertion[]): Resolution => ({ model: assembleAs(modelType, model), bundles: [], assertions: [model, ...chain], downloaded: 0, at: new Date('2026-06-01T00:00:00Z'), validationSets: {}, recordSequences: async () => {} });

describe('the test-keys warning of build', () => {
  const brand = () => PrivateKey.fromPem(readFileSync(`${EXAMPLE}brand.key`, 'utf8'));
  const brandChain = () => [example('brand.account-key'), example('example-brand.account')];

  test.each(['signed', 'secured'])('a grade %s model of the example root gets it, naming the model', (grade) => {
    const model = signAssertion(modelHeaders('example-brand', grade), undefined, brand());
    const w = testKeysWarning(resolutionOf(model, brandChain()), exampleTrusted());
    expect(w).toMatch(/WARNING: TEST KEYS\. Model example-brand\/kiosk \(grade \w+\) verifies only through the example root/);
    expect(w).toContain('The image manifest and `edgeimage inspect` say "test keys".');
  });

  test('a dangerous model of the example root, or a signed model of an own root, gets none', async () => {
    const dangerous = signAssertion(modelHeaders('example-brand', 'dangerous'), undefined, brand());
    expect(testKeysWarning(resolutionOf(dangerous, brandChain()), exampleTrusted())).toBeUndefined();
    const chain = await makeChain('acme-root');
    const key = await newKey();
    const own = chain.sign(modelHeaders('acme', 'signed'), key);
    expect(testKeysWarning(resolutionOf(own, [chain.account('acme'), chain.accountKey(key, 'acme')]), chain.anchors)).toBeUndefined();
  });
});
