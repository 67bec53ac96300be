/**
 * A slot's pointer trust store (`trust-pointer/KEYID.pem`): the brand's pointer-only keys that may
 * sign the pointers of this model and channel, valid at build time; kept apart from trust/ (the
 * update keys) both ways, and listed in the slot manifest only when there is one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, POINTER_ONLY_CONSTRAINTS, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { newKey } from '@edgeimage/testkit/signing-chain';
import { listFiles } from '@edgeimage/testkit/image-read';
import { stageSystem } from './slot.js';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';

let world: ImageWorld;
let resolution: Resolution;

beforeAll(async () => {
  world = await makeImageWorld();
  resolution = await world.resolve(await world.model({ revision: 3 }));
}, SLOW);

afterAll(() => world?.cleanup());

const slotManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;

/** A format-1 account-key vouched for by the root, with these constraints (as roles.test.ts makes them). */
function accountKey(key: PrivateKey, opts: { account?: string; name: string; constraints?: readonly { headers: Record<string, string> }[]; since?: string; until?: string }): Assertion {
  const { headers, body } = accountKeyHeaders(key.publicKey, {
    accountId: opts.account ?? 'acme',
    authorityId: world.chain.anchors[0]!.header('account-id')!,
    since: new Date(opts.since ?? '2026-01-01T00:00:00Z'),
    ...(opts.until ? { until: new Date(opts.until) } : {}),
    name: opts.name,
  });
  return world.chain.sign({ ...headers, format: '1', ...(opts.constraints ? { constraints: opts.constraints.map((c) => ({ headers: { ...c.headers } })) } : {}) }, world.chain.rootKey, body);
}

async function stage(extra: Assertion[], opts: { trusted?: Assertion[]; updateChannel?: string } = {}) {
  const r: Resolution = { ...resolution, assertions: [...resolution.assertions, ...extra] };
  const dir = join(world.tempDir('slot-'), 'slot');
  const staged = await stageSystem({ resolution: r, trusted: opts.trusted ?? world.trusted, dir, ...(opts.updateChannel ? { updateChannel: opts.updateChannel } : {}) });
  return { dir, staged };
}

const pointerFile = (k: PrivateKey) => `trust-pointer/${k.publicKey.id}.pem`;

test("a pointer-only key of the brand lands in trust-pointer/ under its full id, never in trust/; the model key never in trust-pointer/", async () => {
  const pk = await newKey();
  const { dir, staged } = await stage([accountKey(pk, { name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS })]);
  expect(pk.publicKey.id).toHaveLength(64);
  expect(staged.pointerTrustStore).toEqual([pointerFile(pk)]);
  expect(readdirSync(join(dir, 'trust-pointer'))).toEqual([`${pk.publicKey.id}.pem`]);
  expect(readFileSync(join(dir, pointerFile(pk)), 'utf8')).toBe(pk.publicKey.toPem());
  expect(slotManifest(dir)['pointer-trust-store']).toEqual([pointerFile(pk)]);
  // trust/ holds the model key alone, as before.
  const trust = [`trust/acme-${world.brandKey.publicKey.id.slice(0, 12)}.pem`];
  expect(staged.trustStore).toEqual(trust);
  expect(readdirSync(join(dir, 'trust')).map((f) => `trust/${f}`)).toEqual(trust);
  for (const f of readdirSync(join(dir, 'trust'))) expect(readFileSync(join(dir, 'trust', f), 'utf8')).not.toBe(pk.publicKey.toPem());
  expect(existsSync(join(dir, 'trust-pointer', `${world.brandKey.publicKey.id}.pem`))).toBe(false);
}, SLOW);

test('a pointer-only key among the trusted assertions counts too; given twice, it is written once', async () => {
  const pk = await newKey();
  const a = accountKey(pk, { name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS });
  const { staged } = await stage([a], { trusted: [...world.trusted, a] });
  expect(staged.pointerTrustStore).toEqual([pointerFile(pk)]);
}, SLOW);

test("left out: another brand's pointer key, one whose constraints exclude this model or channel, one not valid at build time, a key that also signs models", async () => {
  const [other, kiosks, beta, expired, mixed, good] = await Promise.all([newKey(), newKey(), newKey(), newKey(), newKey(), newKey()]);
  const model = resolution.model.model;
  const keys = [
    accountKey(other, { account: 'globex', name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS }),
    accountKey(kiosks, { name: 'kiosks', constraints: [{ headers: { type: 'channel-pointer', model: 'kiosk-.*' } }] }),
    accountKey(beta, { name: 'beta', constraints: [{ headers: { type: 'channel-pointer', channel: 'latest/beta' } }] }),
    accountKey(expired, { name: 'old', constraints: POINTER_ONLY_CONSTRAINTS, until: '2026-05-01T00:00:00Z' }),
    accountKey(mixed, { name: 'mixed', constraints: [{ headers: { type: 'channel-pointer' } }, { headers: { type: 'model', model } }] }),
    accountKey(good, { name: 'robots', constraints: [{ headers: { type: 'channel-pointer', model: `${model}|other`, channel: 'latest/stable' } }] }),
  ];
  const { dir, staged } = await stage(keys);
  expect(staged.pointerTrustStore).toEqual([pointerFile(good)]);
  expect(listFiles(join(dir, 'trust-pointer'))).toEqual([`${good.publicKey.id}.pem`]);
  // The key that may sign models too is an update key (its constraints admit this model), not a pointer key.
  expect(staged.trustStore).toContain(`trust/acme-${mixed.publicKey.id.slice(0, 12)}.pem`);
  // The channel the device follows decides: built for latest/beta, the beta key is in and the stable one out.
  const forBeta = await stage(keys, { updateChannel: 'latest/beta' });
  expect(forBeta.staged.pointerTrustStore).toEqual([pointerFile(beta)]);
}, SLOW);

test('no pointer key: no trust-pointer/ and no "pointer-trust-store" in the slot manifest (its bytes as before)', async () => {
  const { dir, staged } = await stage([]);
  expect(staged.pointerTrustStore).toEqual([]);
  expect(existsSync(join(dir, 'trust-pointer'))).toBe(false);
  expect(Object.keys(slotManifest(dir))).not.toContain('pointer-trust-store');
}, SLOW);

test('the same inputs, the same bytes: manifest.json and every trust-pointer/ file', async () => {
  const [p1, p2, p3] = await Promise.all([newKey(), newKey(), newKey()]);
  const keys = [p1, p2, p3].map((k, i) => accountKey(k, { name: `pointer-${i}`, constraints: POINTER_ONLY_CONSTRAINTS }));
  const a = await stage(keys);
  // In another order: the store's listing is sorted, not the order the build found the keys in.
  const b = await stage([...keys].reverse());
  expect(a.staged.pointerTrustStore).toEqual([p1, p2, p3].map(pointerFile).sort());
  expect(b.staged.pointerTrustStore).toEqual(a.staged.pointerTrustStore);
  expect(readFileSync(join(b.dir, 'manifest.json'))).toEqual(readFileSync(join(a.dir, 'manifest.json')));
  for (const f of a.staged.pointerTrustStore) expect(readFileSync(join(b.dir, f))).toEqual(readFileSync(join(a.dir, f)));
}, SLOW);
