/**
 * `edgeimage update release` and `edgeimage channel show`, in-process (main), with real
 * signatures, a real directory store (and the real OCI registry helper, through the composer's
 * releaseUpdate): the full update and deltas published, the pointer verified as a device will
 * (openssl over its exact bytes), the history, each refusal of `channel show`, and a failed
 * release that leaves the old pointer in place.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, decodeStream, encodeStream, Keyring, POINTER_ONLY_CONSTRAINTS, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { fetchPointer, releaseUpdate, trustedSigningKeys, verifyChannelPointer, type ChannelHistory } from '@edgeimage/composer';
import { DirBackend, Store } from '@edgeimage/store';
import { APP, appTree } from '@edgeimage/testkit/image-bundles';
import { AT } from '@edgeimage/testkit/store-world';
import { sh } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { newKey, SINCE } from '@edgeimage/testkit/signing-chain';
import { run } from '@edgeimage/testkit/cli-run';
import { describeWithRegistry, useRegistry } from '@edgeimage/testkit/oci-registry';
import { refusal } from '@edgeimage/testkit/refusals';

let world: ImageWorld;
let keyring: string;
let pointerKey: PrivateKey;
let pointerAccountKey: Assertion;
let models: { model: string; trustArgs: string[] }[];
/** Root anchors only: the brand's account and the pointer key's account-key come from the store. */
let rootArgs: string[];
let pointerPem: string;

const BASE = 'channels/acme.edge-pc.latest+stable';
const POINTER = `${BASE}.pointer`;

beforeAll(async () => {
  world = await makeImageWorld();
  keyring = world.tempDir('keys-');
  pointerKey = await newKey();
  const ring = new Keyring(keyring);
  ring.import('brand', world.brandKey);
  ring.import('pointer', pointerKey);
  const { headers, body } = accountKeyHeaders(pointerKey.publicKey, { accountId: 'acme', authorityId: world.chain.anchors[0]!.header('account-id')!, since: SINCE, name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS });
  pointerAccountKey = world.chain.sign(headers, world.chain.rootKey, body);
  // Three revisions; the app changes from 1 to 2, so a delta from 1 carries the app only.
  models = [];
  for (const revision of [1, 2, 3]) {
    if (revision === 2) await world.publish(APP, appTree(APP, 30_000));
    const f = world.files(await world.model({ revision }), `edge-pc-${revision}.model`);
    // The model stream carries the pointer key's account-key, as the brand hands it over.
    writeFileSync(f.model, encodeStream([...decodeStream(readFileSync(f.model), { file: f.model }), pointerAccountKey].map((a) => a.encode())));
    models.push(f);
  }
  const dir = world.tempDir('pub-');
  const rootFile = join(dir, 'root.assert');
  writeFileSync(rootFile, encodeStream(world.chain.anchors.map((a) => a.encode())));
  rootArgs = ['--trusted', rootFile];
  pointerPem = join(dir, 'pointer.pem');
  writeFileSync(pointerPem, pointerKey.publicKey.toPem());
}, SLOW);

afterAll(() => world?.cleanup());

const at = AT.toISOString();
const releaseArgs = (revision: number, ...more: string[]) => ['update', 'release', models[revision - 1]!.model, '--store', world.storeDir, ...models[revision - 1]!.trustArgs, '--at', at, '--cache', join(world.dir, 'cli-cache'), '--keyring', keyring, ...(more.includes('--key') ? [] : ['--key', 'brand']), '--channel', 'stable', ...more];
const show = (...more: string[]) => run(['channel', 'show', world.storeDir, 'stable', ...rootArgs, ...(more.includes('--at') ? [] : ['--at', at]), ...more]);
const stored = (path: string) => readFileSync(join(world.storeDir, path));
const history = () => JSON.parse(stored(`${BASE}.history.json`).toString()) as ChannelHistory;

describe('update release and channel show', () => {
  test('release 1: the full update is published, the signed pointer is the head, openssl verifies it, channel show prints it', async () => {
    const r = await run(releaseArgs(1, '--pointer-key', 'pointer'));
    expect(r.err).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^revision: 1$/m);
    expect(r.out).toMatch(/^  full +\d+  [0-9a-f]{64}  updates\/acme\.edge-pc\.1\.full\.update$/m);
    expect(r.out).toMatch(/^history: 1$/m);
    expect(existsSync(join(world.storeDir, 'updates/acme.edge-pc.1.full.update'))).toBe(true);
    const v = sh('openssl', ['dgst', '-sha256', '-verify', pointerPem, '-signature', join(world.storeDir, `${POINTER}.sig`), join(world.storeDir, POINTER)]);
    expect(v.stdout.trim()).toBe('Verified OK');
    expect(stored(POINTER).toString()).toMatch(/^expires: 2026-06-08T00:00:00Z$/m);
    const s = await show();
    expect(s.err).toBe('');
    expect(s.status).toBe(0);
    expect(s.out).toMatch(/^revision: 1$/m);
    expect(s.out).toMatch(/^expires: 2026-06-08T00:00:00Z \(in 7 d 0 h\)$/m);
    expect(s.out).toMatch(/^signature: verified \(pointer-only account-key "pointer" of acme\)$/m);
  }, SLOW);

  test('release 2 without --from: a delta from 1 (the history) next to the full update, the history holds both', async () => {
    const r = await run([...releaseArgs(2), '--expires', '3d', '--rollout', '25', '--json']);
    expect(r.status).toBe(0);
    const p = JSON.parse(r.out) as { revision: number; rollout: number; expires: string; updates: { from: number | 'full'; size: number; path: string; sha256: string }[]; history: number[] };
    expect([p.revision, p.rollout, p.expires, p.history]).toEqual([2, 25, '2026-06-04T00:00:00Z', [1, 2]]);
    expect(p.updates.map((u) => [u.from, u.path])).toEqual([['full', 'updates/acme.edge-pc.2.full.update'], [1, 'updates/acme.edge-pc.2.from-1.update']]);
    const [full, delta] = p.updates;
    expect(delta!.size).toBeLessThan(full!.size);
    expect(stored(delta!.path).length).toBe(delta!.size);
    expect(sh('sha256sum', [join(world.storeDir, delta!.path)]).stdout.split(' ')[0]).toBe(delta!.sha256);
    expect(history().releases.map((x) => [x.revision, x.rollout])).toEqual([[1, 100], [2, 25]]);
    const s = await show('--json');
    expect(s.status).toBe(0);
    expect(JSON.parse(s.out)).toMatchObject({ revision: 2, verified: true, key: { id: pointerKey.publicKey.id, 'account-id': 'acme', name: 'pointer' } });
  }, SLOW);

  test('a failed release (the store refuses an update file) leaves the old pointer and history in place', async () => {
    const before = [stored(POINTER), stored(`${POINTER}.sig`), stored(`${BASE}.history.json`)];
    // A folder where the full update of revision 3 goes: the store's rename onto it fails.
    const blocker = join(world.storeDir, 'updates/acme.edge-pc.3.full.update');
    mkdirSync(join(blocker, 'x'), { recursive: true });
    try {
      const r = await run(releaseArgs(3));
      expect(r.status).toBe(1);
      expect(r.err).toMatch(/edgeimage: error: .*acme\.edge-pc\.3\.full\.update/);
      expect([stored(POINTER), stored(`${POINTER}.sig`), stored(`${BASE}.history.json`)]).toEqual(before);
      expect((await show()).out).toMatch(/^revision: 2$/m);
    } finally {
      rmSync(blocker, { recursive: true, force: true });
    }
  }, SLOW);

  test('refused before anything is written: the pointer signed by the model key, a revision the channel has', async () => {
    const before = stored(POINTER);
    const r = await run(releaseArgs(3, '--pointer-key', 'brand'));
    expect(r.status).toBe(1);
    expect(r.err).toContain(`edgeimage: error: pointer key "brand" (${world.brandKey.publicKey.id}) cannot sign the pointer of acme/edge-pc channel latest/stable: it is an unconstrained key of "acme" (it may sign models)`);
    expect(r.err).toMatch(/\[ERR_POINTER_KEY_NOT_ALLOWED\]$/m);
    // Nor may the pointer key sign the updates: it is no key of the devices' trust store.
    const asUpdateKey = await run(releaseArgs(3, '--key', 'pointer'));
    expect(asUpdateKey.status).toBe(1);
    expect(asUpdateKey.err).toContain(`edgeimage: error: key "pointer" (${pointerKey.publicKey.id}) is not a key of brand acme`);
    expect(asUpdateKey.err).toMatch(/\[ERR_UPDATE_KEY_NOT_BRAND\]$/m);
    const again = await run(releaseArgs(2));
    expect(again.status).toBe(1);
    expect(again.err).toContain('edgeimage: error: acme/edge-pc revision 2: channel latest/stable is at revision 2 already; a release must have a higher revision (devices refuse a lower one) [ERR_RELEASE]');
    expect(existsSync(join(world.storeDir, 'updates/acme.edge-pc.3.full.update'))).toBe(false);
    expect(stored(POINTER)).toEqual(before);
  }, SLOW);

  test('channel show exits 1 naming the failure: expired, rollback, a changed pointer, no trusted root, a malformed pointer', async () => {
    const expired = await show('--at', '2026-06-05T00:00:00Z');
    expect(expired.status).toBe(1);
    expect(expired.err).toMatch(/edgeimage: error: .*\.pointer: expires: expected a time after 2026-06-05T00:00:00Z \(now\), found 2026-06-04T00:00:00Z: the pointer has expired .*\[ERR_POINTER_EXPIRED\]/);
    const rollback = await show('--installed-revision', '3');
    expect([rollback.status, /\[(\w+)\]/.exec(rollback.err)?.[1]]).toEqual([1, 'ERR_POINTER_ROLLBACK']);
    expect(rollback.err).toContain('revision: expected at least the installed revision 3, found 2');
    const noRoot = await run(['channel', 'show', world.storeDir, 'stable', '--at', at]);
    expect([noRoot.status, /\[(\w+)\]/.exec(noRoot.err)?.[1]]).toEqual([1, 'ERR_POINTER_KEY_NOT_ALLOWED']);
    // A copy of the store with the pointer changed: one byte, then a line the parser refuses.
    const copy = world.tempDir('copy-');
    cpSync(world.storeDir, copy, { recursive: true });
    const text = stored(POINTER).toString();
    writeFileSync(join(copy, POINTER), text.replace('rollout: 25', 'rollout: 99'));
    const changed = await run(['channel', 'show', copy, 'stable', ...rootArgs, '--at', at]);
    expect([changed.status, /\[(\w+)\]/.exec(changed.err)?.[1]]).toEqual([1, 'ERR_POINTER_SIGNATURE']);
    writeFileSync(join(copy, POINTER), text.replace(/^(update: full [0-9a-f]+ \d+ ).*$/m, '$1updates/../../etc/shadow'));
    const malformed = await run(['channel', 'show', copy, 'stable', ...rootArgs, '--at', at]);
    expect(malformed.status).toBe(1);
    expect(malformed.err).toMatch(/\.pointer: line 10: update: expected a canonical store path, found "updates\/\.\.\/\.\.\/etc\/shadow", which contains \.\. \[ERR_POINTER_MALFORMED\]/);
  }, SLOW);

  test('usage errors (exit 2): --expires without a unit, --rollout over 100', async () => {
    const e = await run(releaseArgs(3, '--expires', '7'));
    expect([e.status, e.err]).toEqual([2, 'edgeimage: --expires: expected a duration such as 7d, 36h, 90m or 3600s, found "7"\nRun with --help for usage.\n']);
    const r = await run(releaseArgs(3, '--rollout', '101'));
    expect([r.status, r.err]).toEqual([2, 'edgeimage: --rollout: expected a whole percentage from 0 to 100, found 101\nRun with --help for usage.\n']);
  });

  // L6: a revision that is not a number must not silently skip the anti-rollback check.
  test('channel show --installed-revision abc (or --last-sequence -1) is a usage error, not a skipped check', async () => {
    const r = await show('--installed-revision', 'abc');
    expect([r.status, r.err]).toEqual([2, 'edgeimage: --installed-revision: expected a whole number, 0 or more, found "NaN"\nRun with --help for usage.\n']);
    const s = await show('--last-sequence', '-1');
    expect([s.status, s.err]).toEqual([2, 'edgeimage: --last-sequence: expected a whole number, 0 or more, found "-1"\nRun with --help for usage.\n']);
  });

  // H1 and M1: the head is re-signed without a new model revision (rollout 0 % then 100 %, an
  // expired head renewed), and a device that has seen the newer pointer refuses the older one.
  test('channel resign: the same revision and updates, a new rollout and expiry, the next sequence; the older pointer replayed is refused', async () => {
    const resign = (...more: string[]) => run(['channel', 'resign', world.storeDir, 'stable', '--key', 'pointer', '--keyring', keyring, ...rootArgs, ...(more.includes('--at') ? [] : ['--at', at]), ...more]);
    const before = { pointer: stored(POINTER), sig: stored(`${POINTER}.sig`), history: history() };
    const old = verifyChannelPointer({ bytes: before.pointer, signature: before.sig, file: POINTER }, trustedSigningKeys(world.chain.anchors, [world.chain.account('acme'), pointerAccountKey], AT), { now: AT }).pointer;
    expect([old.revision, old.rollout]).toEqual([2, 25]);

    const halt = await resign('--rollout', '0', '--expires', '3d');
    expect(halt.err).toBe('');
    expect(halt.status).toBe(0);
    expect(halt.out).toMatch(/^revision: 2$/m);
    expect(halt.out).toMatch(/^rollout: 0 %$/m);
    expect(halt.out).toContain(`re-signed with pointer key "pointer" (${pointerKey.publicKey.id}): sequence ${old.sequence} -> ${old.sequence + 1}, expires 2026-06-04T00:00:00Z -> 2026-06-04T00:00:00Z, rollout 25 % -> 0 %`);
    const v = sh('openssl', ['dgst', '-sha256', '-verify', pointerPem, '-signature', join(world.storeDir, `${POINTER}.sig`), join(world.storeDir, POINTER)]);
    expect(v.stdout.trim()).toBe('Verified OK');
    // Only the head changed: the same revision and updates, and the history's last entry updated in place.
    const text = stored(POINTER).toString();
    expect(text.replace(/^(sequence|rollout): .*\n/gm, '')).toBe(before.pointer.toString().replace(/^(sequence|rollout): .*\n/gm, ''));
    expect(history().releases.map((x) => [x.revision, x.rollout, x.sequence, x.resigned])).toEqual([[1, 100, 1, undefined], [2, 0, old.sequence + 1, at.replace(/\.000Z$/, 'Z')]]);

    const full = await resign('--rollout', '100', '--json');
    expect(full.status).toBe(0);
    const p = JSON.parse(full.out) as { revision: number; sequence: number; rollout: number; previous: { sequence: number; rollout: number } };
    expect([p.revision, p.sequence, p.rollout, p.previous]).toMatchObject([2, old.sequence + 2, 100, { sequence: old.sequence + 1, rollout: 0 }]);
    expect((await show('--last-sequence', String(p.sequence))).status).toBe(0);

    // A mirror replays the older pointer (rollout 25, still unexpired): it verifies on its own, but
    // not for a device that has accepted the newer one.
    const mirror = world.tempDir('mirror-');
    cpSync(world.storeDir, mirror, { recursive: true });
    writeFileSync(join(mirror, POINTER), before.pointer);
    writeFileSync(join(mirror, `${POINTER}.sig`), before.sig);
    expect((await run(['channel', 'show', mirror, 'stable', ...rootArgs, '--at', at])).status).toBe(0);
    const replay = await run(['channel', 'show', mirror, 'stable', ...rootArgs, '--at', at, '--last-sequence', String(p.sequence)]);
    expect(replay.status).toBe(1);
    expect(replay.err).toContain(`.pointer: sequence: expected at least the sequence ${p.sequence} of the last pointer accepted, found ${old.sequence}: an older pointer is refused (a replay: the channel has been released or re-signed since) [ERR_POINTER_ROLLBACK]`);

    // An expired head is renewed (the point of re-signing), from the time of the re-signing.
    const late = await resign('--at', '2026-06-10T00:00:00Z');
    expect(late.status).toBe(0);
    expect(late.out).toMatch(/^expires: 2026-06-17T00:00:00Z \(in 7 d 0 h\)$/m);
    expect(late.out).toMatch(/^rollout: 100 %$/m);
  }, SLOW);

  test('channel resign refuses a head that does not verify, the model key, and an expiry past 365 days of the real clock; nothing is written', async () => {
    const resignIn = (store: string, ...more: string[]) => run(['channel', 'resign', store, 'stable', '--keyring', keyring, ...rootArgs, ...(more.includes('--at') ? [] : ['--at', at]), ...(more.includes('--key') ? [] : ['--key', 'pointer']), ...more]);
    const copy = world.tempDir('forged-');
    cpSync(world.storeDir, copy, { recursive: true });
    const forged = stored(POINTER).toString().replace(/^rollout: .*$/m, 'rollout: 99');
    writeFileSync(join(copy, POINTER), forged);
    const sig = readFileSync(join(copy, `${POINTER}.sig`));
    const r = await resignIn(copy);
    expect([r.status, /\[(\w+)\]/.exec(r.err)?.[1]]).toEqual([1, 'ERR_POINTER_SIGNATURE']);
    expect([readFileSync(join(copy, POINTER)).toString(), readFileSync(join(copy, `${POINTER}.sig`))]).toEqual([forged, sig]);
    const before = stored(POINTER);
    // The brand's model key, its account-key given (in the model stream): unconstrained, so refused for pointers.
    const byModelKey = await resignIn(world.storeDir, '--key', 'brand', '--trusted', models[2]!.model);
    expect(byModelKey.status).toBe(1);
    expect(byModelKey.err).toContain(`pointer key "brand" (${world.brandKey.publicKey.id}) cannot sign the pointer of acme/edge-pc channel latest/stable: it is an unconstrained key of "acme"`);
    const future = await resignIn(world.storeDir, '--at', '2099-01-01T00:00:00Z', '--expires', '365d');
    expect(future.status).toBe(1);
    expect(future.err).toMatch(/--at 2099-01-01T00:00:00Z: the pointer would expire at 2100-01-01T00:00:00Z, more than 365 days after the real time .* \[ERR_RELEASE\]/);
    expect(stored(POINTER)).toEqual(before);
  }, SLOW);

  test('account-key --pointer-only makes a key whose constraints are channel-pointer only', async () => {
    const out = join(world.tempDir('ak-'), 'p.account-key');
    const r = await run(['account-key', 'pointer', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'brand', '--keyring', keyring, '--pointer-only', '-o', out]);
    expect(r.status).toBe(0);
    expect(r.err).toContain('(channel pointers only)');
    const [a] = decodeStream(readFileSync(out), { file: out });
    expect(a!.headers['constraints']).toEqual([{ headers: { type: 'channel-pointer' } }]);
  });
});

describe('releaseUpdate', () => {
  test('a pointer write that fails after its signature was written puts the old signature back', async () => {
    const before = [stored(POINTER), stored(`${POINTER}.sig`)];
    const dir = new DirBackend(world.storeDir);
    const failing = Object.assign(Object.create(dir) as DirBackend, {
      write: async (path: string, data: Uint8Array) => {
        if (path.endsWith('.pointer')) throw new Error(`injected: cannot write ${path}`);
        return dir.write(path, data);
      },
    });
    const store = await Store.open(failing);
    const resolution = await world.resolve(decodeStream(readFileSync(models[2]!.model), { file: 'm3' }).find((a) => a.type === 'model')!);
    const pointerKeys = trustedSigningKeys(world.trusted, [...world.brandAssertions, pointerAccountKey], AT);
    await expect(releaseUpdate({ store, resolution, trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'stable', now: AT })).rejects.toThrow(/injected: cannot write channels\/acme\.edge-pc\.latest\+stable\.pointer/);
    expect([stored(POINTER), stored(`${POINTER}.sig`)]).toEqual(before);
    const keys = trustedSigningKeys(world.chain.anchors, [world.chain.account('acme'), pointerAccountKey], AT);
    expect(verifyChannelPointer(await fetchPointer(await Store.open(world.storeDir), 'acme', 'edge-pc', 'stable'), keys, { now: AT }).pointer.revision).toBe(2);
  }, SLOW);

  // L1: --at does not move the bound on a pointer's expiry.
  test('a release "at" a far future time is refused before any work: its pointer would outlive the real clock by more than 365 days', async () => {
    const resolution = await world.resolve(decodeStream(readFileSync(models[2]!.model), { file: 'm3' }).find((a) => a.type === 'model')!);
    const far = new Date('2099-01-01T00:00:00Z');
    const pointerKeys = trustedSigningKeys(world.trusted, [...world.brandAssertions, pointerAccountKey], far);
    const stages: string[] = [];
    const e = await refusal(releaseUpdate({ store: await Store.open(world.storeDir), resolution, trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'stable', lifetimeMs: 365 * 86_400_000, now: far, onEvent: (x) => stages.push(x.what) }));
    expect(e.code).toBe('ERR_RELEASE');
    expect(e.message).toMatch(/^--at 2099-01-01T00:00:00Z: the pointer would expire at 2100-01-01T00:00:00Z, more than 365 days after the real time /);
    expect(stages).toEqual([]);
  }, SLOW);

  // M5: a delta's base is the full update in the store only when the devices' keys signed it and
  // it is that brand, model and revision.
  test('a delta base whose manifest signature does not verify, or that is another revision, is refused before any update is made', async () => {
    const resolution = await world.resolve(decodeStream(readFileSync(models[2]!.model), { file: 'm3' }).find((a) => a.type === 'model')!);
    const pointerKeys = trustedSigningKeys(world.trusted, [...world.brandAssertions, pointerAccountKey], AT);
    const copy = world.tempDir('bases-');
    cpSync(world.storeDir, copy, { recursive: true });
    const base1 = join(copy, 'updates/acme.edge-pc.1.full.update');
    const stages: string[] = [];
    const release = async () => refusal(releaseUpdate({ store: await Store.open(copy), resolution, trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'stable', from: [1], now: AT, onEvent: (x) => stages.push(x.what) }));
    // One byte of revision 1's manifest.sig changed (in the tar, the data after its 512-byte header).
    const tar = readFileSync(base1);
    const header = tar.indexOf('edgeimage-update/manifest.sig\0');
    expect(header % 512).toBe(0);
    tar[header + 512 + 10]! ^= 0xff;
    writeFileSync(base1, tar);
    const unsigned = await release();
    expect(unsigned.code).toBe('ERR_RELEASE');
    expect(unsigned.message).toMatch(/updates\/acme\.edge-pc\.1\.full\.update: its manifest is not signed by a key the devices of acme\/edge-pc trust \(it names key [A-Za-z0-9_-]{64}\): no delta is made from it$/);
    // Revision 2's full update, validly signed, stored under revision 1's name.
    cpSync(join(copy, 'updates/acme.edge-pc.2.full.update'), base1);
    const other = await release();
    expect(other.code).toBe('ERR_RELEASE');
    expect(other.message).toMatch(/updates\/acme\.edge-pc\.1\.full\.update: expected the full update of acme\/edge-pc revision 1, found one of acme\/edge-pc revision 2$/);
    expect(stages).toEqual([]);
  }, SLOW);

  test('a --from revision without a full update in the store is refused, naming it', async () => {
    const resolution = await world.resolve(decodeStream(readFileSync(models[2]!.model), { file: 'm3' }).find((a) => a.type === 'model')!);
    const pointerKeys = trustedSigningKeys(world.trusted, [...world.brandAssertions, pointerAccountKey], AT);
    const e = await refusal(releaseUpdate({ store: await Store.open(world.storeDir), resolution, trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'stable', from: [0], now: AT }));
    expect(e.code).toBe('ERR_RELEASE');
    expect(e.message).toMatch(/^--from 0: no full update of acme\/edge-pc revision 0 in the store \(.*updates\/acme\.edge-pc\.0\.full\.update\)/);
  }, SLOW);
});

describeWithRegistry('releaseUpdate into an OCI registry', () => {
  const registry = useRegistry();
  test('the same layout: updates, pointer, signature and history; the pointer verifies when fetched back', async () => {
    const store = await Store.init(registry().storeUrl('acme/ota'), { authorityId: 'acme-store', key: world.storeKey, keyName: 'store' });
    const pointerKeys = trustedSigningKeys(world.trusted, [...world.brandAssertions, pointerAccountKey], AT);
    const model = (i: number) => decodeStream(readFileSync(models[i]!.model), { file: `m${i}` }).find((a) => a.type === 'model')!;
    await releaseUpdate({ store, resolution: await world.resolve(model(0)), trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'edge', now: AT });
    const r = await releaseUpdate({ store, resolution: await world.resolve(model(1)), trusted: world.trusted, key: world.brandKey, pointerKey, pointerKeys, channel: 'edge', now: AT });
    expect(r.pointer.updates.map((u) => u.path)).toEqual(['updates/acme.edge-pc.2.full.update', 'updates/acme.edge-pc.2.from-1.update']);
    const back = await Store.open(registry().storeUrl('acme/ota'));
    const keys = trustedSigningKeys(world.chain.anchors, [world.chain.account('acme'), (await back.assertion('account-key', [pointerKey.publicKey.id]))!], AT);
    const v = verifyChannelPointer(await fetchPointer(back, 'acme', 'edge-pc', 'edge'), keys, { now: AT, installedRevision: 1 });
    expect(v.pointer.revision).toBe(2);
    const delta = (await back.backend.read(v.pointer.updates[1]!.path))!;
    expect(delta.length).toBe(v.pointer.updates[1]!.size);
    expect(JSON.parse((await back.backend.read('channels/acme.edge-pc.latest+edge.history.json'))!.toString()).releases.map((x: { revision: number }) => x.revision)).toEqual([1, 2]);
  }, SLOW);
});
