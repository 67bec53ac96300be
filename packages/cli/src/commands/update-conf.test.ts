/**
 * `update create` and `update release` with `--update-url …`: the update's slot carries the same
 * update.conf as `build` writes (in the manifest with its digest, in a delta only when it changed),
 * its pointer trust store follows the update's channel (release: the channel released to, unless
 * --update-channel says otherwise), the options are refused as build refuses them, and a release
 * that drops the update.conf its channel's previous release carried says so.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, decodeStream, encodeStream, Keyring, POINTER_ONLY_CONSTRAINTS, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { abStructures, APP, appTree, gadgetTree, gadgetYaml } from '@edgeimage/testkit/image-bundles';
import { AT } from '@edgeimage/testkit/store-world';
import { sh } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { newKey, SINCE } from '@edgeimage/testkit/signing-chain';
import { run } from '@edgeimage/testkit/cli-run';

let world: ImageWorld;
let keyring: string;
/** Signs the pointers of every channel (the release's --pointer-key). */
let pointerKey: PrivateKey;
/** Pointer-only keys constrained to one channel each. */
let betaKey: PrivateKey;
let stableKey: PrivateKey;
let models: { model: string; trustArgs: string[] }[];
let image1: string;

/** A pointer-only account-key of acme vouched for by the root; `channel` constrains it to one channel. */
function pointerAccountKey(key: PrivateKey, name: string, channel?: string): Assertion {
  const { headers, body } = accountKeyHeaders(key.publicKey, { accountId: 'acme', authorityId: world.chain.anchors[0]!.header('account-id')!, since: SINCE, name, ...(channel ? {} : { constraints: POINTER_ONLY_CONSTRAINTS }) });
  return world.chain.sign(channel ? { ...headers, format: '1', constraints: [{ headers: { type: 'channel-pointer', channel } }] } : headers, world.chain.rootKey, body);
}

beforeAll(async () => {
  world = await makeImageWorld();
  keyring = world.tempDir('keys-');
  [pointerKey, betaKey, stableKey] = await Promise.all([newKey(), newKey(), newKey()]);
  const ring = new Keyring(keyring);
  ring.import('brand', world.brandKey);
  ring.import('pointer', pointerKey);
  const keys = [pointerAccountKey(pointerKey, 'pointer'), pointerAccountKey(betaKey, 'beta', 'latest/beta'), pointerAccountKey(stableKey, 'stable', 'latest/stable')];
  models = [];
  for (const revision of [1, 2, 3, 4]) {
    if (revision === 2) await world.publish(APP, appTree(APP, 30_000));
    const f = world.files(await world.model({ revision }), `edge-pc-${revision}.model`);
    // The model stream carries the pointer keys' account-keys, as the brand hands them over.
    writeFileSync(f.model, encodeStream([...decodeStream(readFileSync(f.model), { file: f.model }), ...keys].map((a) => a.encode())));
    models.push(f);
  }
  image1 = world.tempDir('img-');
  const b = await run(['build', models[0]!.model, '--store', world.storeDir, ...models[0]!.trustArgs, '--at', AT.toISOString(), '--cache', join(world.dir, 'cli-cache'), '-o', image1, '--update-url', 'http://10.0.2.2:8080/store', '--update-channel', 'beta']);
  expect(b.status).toBe(0);
}, SLOW);

afterAll(() => world?.cleanup());

const common = (revision: number) => [models[revision - 1]!.model, '--store', world.storeDir, ...models[revision - 1]!.trustArgs, '--at', AT.toISOString(), '--cache', join(world.dir, 'cli-cache'), '--keyring', keyring, '--key', 'brand'];
const createArgs = (revision: number, out: string, ...more: string[]) => ['update', 'create', ...common(revision), '-o', out, ...more];
const releaseArgs = (revision: number, channel: string, ...more: string[]) => ['update', 'release', ...common(revision), '--pointer-key', 'pointer', '--channel', channel, ...more];

const conf = (channel: string, more = 'interval: 21600\njitter: 600\nwindow: -\nmode: auto\n') => `edgeimage-update-conf: 1\nurl: http://10.0.2.2:8080/store\nchannel: ${channel}\n${more}`;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An update file as the device unpacks it: its manifest's file lines by path, and the slot files it carries. */
function unpack(file: string): { listed: Map<string, string>; carried: (path: string) => Buffer | undefined } {
  const x = world.tempDir('x-');
  expect(sh('busybox', ['tar', '-xf', file, '-C', x]).status).toBe(0);
  const listed = new Map<string, string>();
  for (const m of readFileSync(join(x, 'edgeimage-update/manifest'), 'utf8').matchAll(/^file: ([0-9a-f]{64}) \d+ (\S+)$/gm)) listed.set(m[2]!, m[1]!);
  return { listed, carried: (path) => (existsSync(join(x, 'edgeimage-update/slot', path)) ? readFileSync(join(x, 'edgeimage-update/slot', path)) : undefined) };
}

const pointerFiles = (listed: Map<string, string>) => [...listed.keys()].filter((p) => p.startsWith('trust-pointer/')).sort();

describe('update create', () => {
  test('--update-url: update.conf in the manifest with its digest, its exact bytes in the update; the pointer keys of its channel only; without it, no update.conf', async () => {
    const dir = world.tempDir('u-');
    const r = await run(createArgs(2, join(dir, 'a.update'), '--update-url', 'http://10.0.2.2:8080/store/', '--update-channel', 'beta', '--update-window', '22:00-02:00', '--update-download-only'));
    expect(r.err).not.toMatch(/error/);
    expect(r.status).toBe(0);
    const want = conf('latest/beta', 'interval: 21600\njitter: 600\nwindow: 22:00-02:00\nmode: download-only\n');
    const a = unpack(join(dir, 'a.update'));
    expect(a.listed.get('update.conf')).toBe(sha256(want));
    expect(a.carried('update.conf')?.toString('latin1')).toBe(want);
    // A key that may sign beta pointers, and not the one constrained to stable.
    expect(pointerFiles(a.listed)).toEqual([`trust-pointer/${betaKey.publicKey.id}.pem`, `trust-pointer/${pointerKey.publicKey.id}.pem`].sort());
    expect(a.carried(`trust-pointer/${betaKey.publicKey.id}.pem`)?.toString()).toBe(betaKey.publicKey.toPem());

    const none = await run(createArgs(2, join(dir, 'b.update')));
    expect(none.status).toBe(0);
    const b = unpack(join(dir, 'b.update'));
    expect(b.listed.has('update.conf')).toBe(false);
    expect(b.carried('update.conf')).toBeUndefined();
  }, SLOW);

  test("the gadget's edgeimage-updates: defaults under the options, as build takes them", async () => {
    const yaml = `${gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'))}edgeimage-updates:\n  interval: 3600\n  jitter: 60\n  window: 01:00-03:00\n  mode: download-only\n`;
    await world.publish('upd-pc', gadgetTree('upd-pc', yaml));
    const f = world.files(await world.model({ gadget: 'upd-pc', revision: 5 }), 'upd-pc.model');
    const out = join(world.tempDir('u-'), 'g.update');
    const r = await run(['update', 'create', f.model, '--store', world.storeDir, ...f.trustArgs, '--at', AT.toISOString(), '--cache', join(world.dir, 'cli-cache'), '--keyring', keyring, '--key', 'brand', '-o', out, '--update-url', 'http://10.0.2.2:8080/store', '--update-jitter', '5']);
    expect(r.status).toBe(0);
    expect(unpack(out).carried('update.conf')?.toString('latin1')).toBe(conf('latest/stable', 'interval: 3600\njitter: 5\nwindow: 01:00-03:00\nmode: download-only\n'));
  }, SLOW);

  test('a delta: update.conf is carried when the running slot lacks it or has another, not when it has the same', async () => {
    const dir = world.tempDir('u-');
    const opts = ['--update-url', 'http://10.0.2.2:8080/store', '--update-channel', 'beta'];
    // The image of revision 1 was built with these very options: its update.conf stays.
    const same = await run(createArgs(2, join(dir, 'same.update'), '--from', join(image1, 'edge-pc.img'), ...opts));
    expect(same.status).toBe(0);
    const s = unpack(join(dir, 'same.update'));
    expect(s.listed.get('update.conf')).toBe(sha256(conf('latest/beta')));
    expect(s.carried('update.conf')).toBeUndefined();
    expect(s.carried(`trust-pointer/${betaKey.publicKey.id}.pem`)).toBeUndefined();
    // Another channel: another update.conf, carried.
    const other = await run(createArgs(2, join(dir, 'other.update'), '--from', join(image1, 'edge-pc.img'), '--update-url', 'http://10.0.2.2:8080/store', '--update-channel', 'edge'));
    expect(other.status).toBe(0);
    expect(unpack(join(dir, 'other.update')).carried('update.conf')?.toString('latin1')).toBe(conf('latest/edge'));
    // From a model: the channel its image was built for is not known, so update.conf and trust-pointer/ are carried.
    const fromModel = await run(createArgs(2, join(dir, 'model.update'), '--from', models[0]!.model, ...opts));
    expect(fromModel.status).toBe(0);
    const m = unpack(join(dir, 'model.update'));
    expect(m.carried('update.conf')?.toString('latin1')).toBe(conf('latest/beta'));
    expect(m.carried(`trust-pointer/${betaKey.publicKey.id}.pem`)?.toString()).toBe(betaKey.publicKey.toPem());
    // Even a key its model's slot would have had: the device's image may predate pointer trust stores.
    expect(m.carried(`trust-pointer/${pointerKey.publicKey.id}.pem`)?.toString()).toBe(pointerKey.publicKey.toPem());
  }, SLOW);
});

describe('the same usage errors as build: exit 2 before any work, naming the option', () => {
  const cases: [string[], string][] = [
    [['--update-url', 'ftp://10.0.2.2/store'], '--update-url: expected an http:// or https:// URL (the store\'s base, as `update release --store` serves it), found "ftp://10.0.2.2/store"'],
    [['--update-url', 'http://h/s', '--update-window', '25:00-01:00'], '--update-window: expected "-" (any time) or HH:MM-HH:MM in UTC (00:00 to 23:59, e.g. 02:00-05:00 or 23:00-01:00), found "25:00-01:00" (not a time of day)'],
    [['--update-url', 'http://h/s', '--update-interval', '5'], '--update-interval: expected an interval of 10..2592000 seconds, found 5'],
    [['--update-url', 'http://h/s', '--update-jitter', '100000'], '--update-jitter: expected a jitter of 0..86400 seconds, found 100000'],
    [['--update-url', 'http://h/s', '--update-channel', 'latest/nightly'], '--update-channel: expected TRACK/RISK (e.g. latest/stable) or a risk (stable, candidate, beta, edge), found "latest/nightly"'],
    [['--update-interval', '3600'], '--update-interval: expected together with --update-url (the store the device polls), found it alone'],
  ];
  const missing = (name: string) => join(world.dir, name);
  test.each(cases)('build, update create and update release: %j', async (opts, message) => {
    const out = join(world.tempDir('out-'), 'x');
    // No model file, store or keyring: the options are refused before any is read.
    const runs = [
      await run(['build', missing('no.model'), '--store', missing('no-store'), '-o', out, ...opts]),
      await run(['update', 'create', missing('no.model'), '--store', missing('no-store'), '--keyring', missing('no-keys'), '--key', 'brand', '-o', out, ...opts]),
      await run(['update', 'release', missing('no.model'), '--store', missing('no-store'), '--keyring', missing('no-keys'), '--key', 'brand', '--channel', 'stable', ...opts]),
    ];
    for (const r of runs) expect([r.status, r.err]).toEqual([2, `edgeimage: ${message}\nRun with --help for usage.\n`]);
    expect(existsSync(out)).toBe(false);
  });

  test('update release to a branch with --update-url and no --update-channel: the device cannot follow a branch', async () => {
    const r = await run(['update', 'release', missing('no.model'), '--store', missing('no-store'), '--keyring', missing('no-keys'), '--key', 'brand', '--channel', 'stable/hotfix-1', '--update-url', 'http://h/s']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('edgeimage: --update-channel: (absent: --channel stable/hotfix-1 is its default) expected TRACK/RISK without a branch');
  });

  test('--help of update release says --update-channel defaults to --channel', async () => {
    const r = await run(['update', 'release', '--help']);
    expect(r.out.replace(/\s+/g, ' ')).toMatch(/--update-channel .*default: --channel, the channel released to/);
  });
});

describe('update release', () => {
  test('to channel beta without --update-channel: update.conf says latest/beta; trust-pointer/ holds the keys for beta, not the one for stable', async () => {
    const r = await run(releaseArgs(1, 'beta', '--update-url', 'http://10.0.2.2:8080/store'));
    expect(r.err).not.toMatch(/error|warning/);
    expect(r.status).toBe(0);
    const u = unpack(join(world.storeDir, 'updates/acme.edge-pc.1.full.update'));
    expect(u.carried('update.conf')?.toString('latin1')).toBe(conf('latest/beta'));
    expect(u.listed.get('update.conf')).toBe(sha256(conf('latest/beta')));
    expect(pointerFiles(u.listed)).toEqual([`trust-pointer/${betaKey.publicKey.id}.pem`, `trust-pointer/${pointerKey.publicKey.id}.pem`].sort());
  }, SLOW);

  test('without --update-url after a release that carried update.conf: one warning line, and the update has no update.conf; its trust-pointer/ still follows the channel', async () => {
    const r = await run(releaseArgs(2, 'beta'));
    expect(r.status).toBe(0);
    const warnings = r.err.split('\n').filter((l) => /warning/.test(l));
    expect(warnings).toEqual(['edgeimage: warning: channel latest/beta: the full update of revision 1 carries update.conf, revision 2 has none (no --update-url): devices that install it stop polling for updates']);
    const full = unpack(join(world.storeDir, 'updates/acme.edge-pc.2.full.update'));
    expect(full.listed.has('update.conf')).toBe(false);
    expect(pointerFiles(full.listed)).toEqual([`trust-pointer/${betaKey.publicKey.id}.pem`, `trust-pointer/${pointerKey.publicKey.id}.pem`].sort());
    // After a release without it, nothing is dropped any more: no warning.
    const again = await run(releaseArgs(3, 'beta'));
    expect(again.status).toBe(0);
    expect(again.err).not.toMatch(/warning/);
  }, SLOW);

  test('the warning when the previous release is not a delta base (--from an older one): read from its full update in the store', async () => {
    expect((await run(releaseArgs(1, 'edge', '--update-url', 'http://10.0.2.2:8080/store'))).status).toBe(0);
    expect((await run(releaseArgs(2, 'edge', '--update-url', 'http://10.0.2.2:8080/store'))).status).toBe(0);
    const r = await run(releaseArgs(4, 'edge', '--from', '1'));
    expect(r.status).toBe(0);
    expect(r.err).toContain('edgeimage: warning: channel latest/edge: the full update of revision 2 carries update.conf, revision 4 has none');
    // The delta from 1 (which had one) carries no update.conf: the manifest does not list it.
    expect(unpack(join(world.storeDir, 'updates/acme.edge-pc.4.from-1.update')).listed.has('update.conf')).toBe(false);
  }, SLOW);

  test('the same revision released to another channel with other update settings: a file of its own, the first channel\'s update untouched', async () => {
    const full = (channel: string) => /^update: full ([0-9a-f]{64}) \d+ (\S+)$/m.exec(readFileSync(join(world.storeDir, `channels/acme.edge-pc.${channel}.pointer`), 'utf8'))!.slice(1, 3) as [string, string];
    const [betaSha, betaPath] = full('latest+beta');
    expect(betaPath).toBe('updates/acme.edge-pc.3.full.update');
    const r = await run(releaseArgs(3, 'candidate', '--update-url', 'http://10.0.2.2:8080/store'));
    expect(r.status).toBe(0);
    const [candidateSha, candidatePath] = full('latest+candidate');
    expect(candidatePath).toBe('updates/acme.edge-pc.3.full.latest+candidate.update');
    expect(sha256(readFileSync(join(world.storeDir, candidatePath)))).toBe(candidateSha);
    expect(unpack(join(world.storeDir, candidatePath)).carried('update.conf')?.toString('latin1')).toBe(conf('latest/candidate'));
    // What beta's pointer names is still there, byte for byte.
    expect(sha256(readFileSync(join(world.storeDir, betaPath)))).toBe(betaSha);
    // A delta of candidate's next release starts from candidate's own full update of revision 3.
    const next = await run(releaseArgs(4, 'candidate', '--update-url', 'http://10.0.2.2:8080/store', '--json'));
    expect(next.status).toBe(0);
    const delta = unpack(join(world.storeDir, (JSON.parse(next.out) as { updates: { from: number | 'full'; path: string }[] }).updates.find((u) => u.from === 3)!.path));
    expect(delta.listed.get('update.conf')).toBe(sha256(conf('latest/candidate')));
    expect(delta.carried('update.conf')).toBeUndefined();
  }, SLOW);
});
