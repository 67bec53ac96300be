/**
 * What a slot's device trust store holds (the keys the device accepts updates from) and how a
 * slot says that its model verifies only through the example (test-only) root.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accountKeyHeaders, type Assertion, decodeStream, PrivateKey, signAssertion } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { newKey } from '@edgeimage/testkit/signing-chain';
import { inspectImage } from '../inspect/inspect.js';
import { stageSystem } from './slot.js';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';

const EXAMPLE = fileURLToPath(new URL('../../../../signing-keys.example/', import.meta.url));
const example = (file: string) => decodeStream(readFileSync(`${EXAMPLE}${file}`), { file })[0]!;

let world: ImageWorld;
let resolution: Resolution;

beforeAll(async () => {
  world = await makeImageWorld();
  resolution = await world.resolve(await world.model({ revision: 3 }));
}, SLOW);

afterAll(() => world?.cleanup());

const slotManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;

test("holds only the brand's keys valid at build time: no root, no store, no expired or future brand key", async () => {
  const [expired, future] = await Promise.all([newKey(), newKey()]);
  const old = world.chain.accountKey(expired, 'acme', { name: 'old', since: new Date('2026-01-01T00:00:00Z'), until: new Date('2026-05-01T00:00:00Z') });
  const next = world.chain.accountKey(future, 'acme', { name: 'next', since: new Date('2026-09-01T00:00:00Z') });
  const r: Resolution = { ...resolution, assertions: [...resolution.assertions, old, next] };
  const dir = join(world.tempDir('slot-'), 'slot');
  const staged = await stageSystem({ resolution: r, trusted: world.trusted, dir });
  const want = [`trust/acme-${world.brandKey.publicKey.id.slice(0, 12)}.pem`];
  expect(staged.trustStore).toEqual(want);
  expect(readdirSync(join(dir, 'trust')).map((f) => `trust/${f}`)).toEqual(want);
  expect(slotManifest(dir)['trust-store']).toEqual(want);
  expect(readFileSync(join(dir, want[0]!), 'utf8')).toBe(world.brandKey.publicKey.toPem());
  // The anchors still travel with the slot's assertions; they are just not update keys.
  expect(slotManifest(dir)['test-keys']).toBeUndefined();
}, SLOW);

test("leaves out a brand key whose constraints do not admit this model; keeps one whose constraints do", async () => {
  const [kiosks, robots] = await Promise.all([newKey(), newKey()]);
  const model = resolution.model.model;
  // The shape roles.test.ts uses: a format-1 account-key vouched for by the root, with constraints.
  const constrained = (key: PrivateKey, name: string, modelPattern: string) => {
    const { headers, body } = accountKeyHeaders(key.publicKey, { accountId: 'acme', authorityId: world.chain.anchors[0]!.header('account-id')!, since: new Date('2026-01-01T00:00:00Z'), name });
    return world.chain.sign({ ...headers, format: '1', constraints: [{ headers: { type: 'model', model: modelPattern } }] }, world.chain.rootKey, body);
  };
  const r: Resolution = { ...resolution, assertions: [...resolution.assertions, constrained(kiosks, 'kiosks', 'kiosk-.*'), constrained(robots, 'robots', `${model}|other`)] };
  const dir = join(world.tempDir('slot-'), 'slot');
  const staged = await stageSystem({ resolution: r, trusted: world.trusted, dir });
  const want = [world.brandKey, robots].map((k) => `trust/acme-${k.publicKey.id.slice(0, 12)}.pem`).sort();
  expect(staged.trustStore).toEqual(want);
  expect(readdirSync(join(dir, 'trust')).map((f) => `trust/${f}`).sort()).toEqual(want);
  expect(slotManifest(dir)['trust-store']).toEqual(want);
  expect(staged.trustStore.join(' ')).not.toContain(kiosks.publicKey.id.slice(0, 12));
}, SLOW);

test('a model that verifies only through the example root marks the slot "test-keys"', async () => {
  const brand = PrivateKey.fromPem(readFileSync(`${EXAMPLE}brand.key`, 'utf8'));
  const own = resolution.assertions.find((a) => a.type === 'model')!;
  const headers = { ...own.headers, 'authority-id': 'example-brand', 'brand-id': 'example-brand' } as Record<string, Assertion['headers'][string]>;
  delete headers['sign-key-sha3-384'];
  const model = signAssertion(headers, undefined, brand);
  const r: Resolution = { ...resolution, assertions: [model, example('brand.account-key'), example('example-brand.account'), ...resolution.assertions.filter((a) => a.type !== 'model')] };
  const trusted = [example('root.account-key'), example('example-root.account')];
  const dir = join(world.tempDir('slot-'), 'slot');
  await stageSystem({ resolution: r, trusted, modelAssertion: model, dir });
  expect(slotManifest(dir)['test-keys']).toBe(true);
  // And so do the image manifest and `inspect`, which reads the slot.
  const built = await world.compose(r, { trusted });
  expect(built.manifest['test-keys']).toBe(true);
  expect(JSON.parse(readFileSync(built.manifestPath, 'utf8'))['test-keys']).toBe(true);
  const seen = await inspectImage(built.images[0]!.path);
  expect(seen.slots.find((x) => x.slot === 'a')!['test-keys']).toBe(true);
}, SLOW);

test('an image of an own root is not marked "test-keys"', async () => {
  const built = await world.compose(resolution);
  expect(built.manifest['test-keys']).toBeUndefined();
  expect((await inspectImage(built.images[0]!.path)).slots.find((x) => x.slot === 'a')!['test-keys']).toBeUndefined();
}, SLOW);
