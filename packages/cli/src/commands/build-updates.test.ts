/**
 * `edgeimage build --update-url …`: the options checked before any work (a usage error naming the
 * option, what was expected and what was found), update.conf in both slots of the image, the
 * gadget's `edgeimage-updates:` defaults under the options, and a bad gadget value refused at its
 * line.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, encodeStream, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { newKey } from '@edgeimage/testkit/signing-chain';
import type { ImageManifest } from '@edgeimage/composer';
import { abStructures, gadgetTree, gadgetYaml } from '@edgeimage/testkit/image-bundles';
import { AT } from '@edgeimage/testkit/store-world';
import { ext4Cat, ext4Ls, listFiles } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { run } from '@edgeimage/testkit/cli-run';

let world: ImageWorld;
let model: Assertion;
let files: { model: string; trusted: string[]; trustArgs: string[] };

beforeAll(async () => {
  world = await makeImageWorld();
  model = await world.model({ revision: 3 });
  files = world.files(model);
}, SLOW);

afterAll(() => world?.cleanup());

const buildArgs = (modelFile: string, out: string) => ['build', modelFile, '--store', world.storeDir, ...files.trustArgs, '--at', AT.toISOString(), '--cache', join(world.dir, 'cli-cache'), '-o', out];

/** A format-1 account-key of acme vouched for by the root, signing channel pointers of `channel` only. */
function pointerKey(key: PrivateKey, name: string, channel: string): Assertion {
  const { headers, body } = accountKeyHeaders(key.publicKey, { accountId: 'acme', authorityId: world.chain.anchors[0]!.header('account-id')!, since: new Date('2026-01-01T00:00:00Z'), name });
  return world.chain.sign({ ...headers, format: '1', constraints: [{ headers: { type: 'channel-pointer', channel } }] }, world.chain.rootKey, body);
}

/** update.conf of each slot of the built image, by role (undefined when the slot has none). */
function slotConfs(out: string, name: string): Record<string, string | undefined> {
  const m = JSON.parse(readFileSync(join(out, `${name}.img.manifest.json`), 'utf8')) as ImageManifest;
  const slots = m.partitions.filter((p) => p.role === 'system-a' || p.role === 'system-b');
  expect(slots).toHaveLength(2);
  return Object.fromEntries(slots.map((p) => [p.role, ext4Cat(join(out, `${name}.img`), p.offset, '/update.conf')?.toString('latin1')]));
}

describe('bad options: exit 2 before any work, naming the option, what was expected and what was found', () => {
  test.each([
    [['--update-url', 'http://10.0.2.2:8080/my store'], '--update-url: expected a URL of the characters A-Z a-z 0-9 . _ ~ : / ? # @ ! $ & \' ( ) * + , ; = % - (percent-encode others), found "http://10.0.2.2:8080/my store" (it holds " ")'],
    [['--update-url', 'ftp://10.0.2.2/store'], '--update-url: expected an http:// or https:// URL (the store\'s base, as `update release --store` serves it), found "ftp://10.0.2.2/store"'],
    [['--update-url', 'http://h/s', '--update-window', '25:00-01:00'], '--update-window: expected "-" (any time) or HH:MM-HH:MM in UTC (00:00 to 23:59, e.g. 02:00-05:00 or 23:00-01:00), found "25:00-01:00" (not a time of day)'],
    [['--update-url', 'http://h/s', '--update-interval', '5'], '--update-interval: expected an interval of 10..2592000 seconds, found 5'],
    [['--update-url', 'http://h/s', '--update-interval', '1h'], '--update-interval: expected an interval as a whole number of seconds 10..2592000, found "1h"'],
    [['--update-url', 'http://h/s', '--update-jitter', '100000'], '--update-jitter: expected a jitter of 0..86400 seconds, found 100000'],
    [['--update-url', 'http://h/s', '--update-channel', 'latest/nightly'], '--update-channel: expected TRACK/RISK (e.g. latest/stable) or a risk (stable, candidate, beta, edge), found "latest/nightly"'],
    [['--update-url', 'http://h/s', '--update-channel', 'latest/stable/hotfix'], '--update-channel: expected TRACK/RISK without a branch (the device follows a track and a risk), found "latest/stable/hotfix"'],
    [['--update-interval', '3600'], '--update-interval: expected together with --update-url (the store the device polls), found it alone'],
    [['--update-download-only'], '--update-download-only: expected together with --update-url'],
  ])('%j', async (opts, message) => {
    const out = join(world.tempDir('out-'), 'images');
    // No model file and no store: the options are refused before either is read.
    const r = await run(['build', join(world.dir, 'no-such.model'), '--store', join(world.dir, 'no-such-store'), '-o', out, ...opts]);
    expect(r.err).toContain(message);
    expect(r.status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});

describe('update.conf in the image', () => {
  test('with --update-url: the same update.conf in both slots, with the options given and the defaults', async () => {
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--update-url', 'http://10.0.2.2:8080/store/', '--update-channel', 'candidate', '--update-window', '22:00-02:00', '--update-download-only']);
    expect(r.status).toBe(0);
    const want = 'edgeimage-update-conf: 1\nurl: http://10.0.2.2:8080/store\nchannel: latest/candidate\ninterval: 21600\njitter: 600\nwindow: 22:00-02:00\nmode: download-only\n';
    expect(slotConfs(out, 'edge-pc')).toEqual({ 'system-a': want, 'system-b': want });
  }, SLOW);

  test('without --update-url: no update.conf in either slot', async () => {
    const out = world.tempDir('out-');
    expect((await run(buildArgs(files.model, out))).status).toBe(0);
    expect(slotConfs(out, 'edge-pc')).toEqual({ 'system-a': undefined, 'system-b': undefined });
  }, SLOW);

  test('the same options twice: the same image bytes', async () => {
    const [a, b] = [world.tempDir('out-'), world.tempDir('out-')];
    const opts = ['--update-url', 'https://updates.example.com/acme', '--update-interval', '600', '--update-jitter', '0'];
    expect((await run([...buildArgs(files.model, a), ...opts])).status).toBe(0);
    expect((await run([...buildArgs(files.model, b), ...opts])).status).toBe(0);
    expect(readFileSync(join(a, 'edge-pc.img')).equals(readFileSync(join(b, 'edge-pc.img')))).toBe(true);
  }, SLOW);

  test("the gadget's edgeimage-updates: defaults, under the build's options", async () => {
    const yaml = `${gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'))}edgeimage-updates:\n  interval: 3600\n  jitter: 60\n  window: 01:00-03:00\n  mode: download-only\n`;
    await world.publish('upd-pc', gadgetTree('upd-pc', yaml));
    const m = world.files(await world.model({ gadget: 'upd-pc' }), 'upd.assert');
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(m.model, out), '--update-url', 'http://h/s', '--update-jitter', '5']);
    expect(r.status).toBe(0);
    expect(slotConfs(out, 'edge-pc')['system-a']).toBe('edgeimage-update-conf: 1\nurl: http://h/s\nchannel: latest/stable\ninterval: 3600\njitter: 5\nwindow: 01:00-03:00\nmode: download-only\n');
  }, SLOW);

  test('a bad gadget value: an error naming the gadget file, the line and the key, and nothing written', async () => {
    const base = gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'));
    const line = base.split('\n').length + 1;
    await world.publish('badupd-pc', gadgetTree('badupd-pc', `${base}edgeimage-updates:\n  interval: 1\n`));
    const m = world.files(await world.model({ gadget: 'badupd-pc' }), 'badupd.assert');
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(m.model, out), '--update-url', 'http://h/s']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(new RegExp(`badupd-pc_\\d+\\.snap:meta/gadget\\.yaml:${line}:\\d+: edgeimage-updates: interval: expected an interval of 10\\.\\.2592000 seconds, found 1 \\[ERR_GADGET_VALUE\\]`));
    expect(listFiles(out)).toEqual([]);
  }, SLOW);

  test("the model stream's pointer-only key for the channel of --update-channel lands in each slot's trust-pointer/, and the slot manifest lists it", async () => {
    const [beta, stable] = await Promise.all([newKey(), newKey()]);
    const stream = join(world.dir, 'files', 'with-pointer-keys.assert');
    writeFileSync(stream, Buffer.concat([readFileSync(files.model), Buffer.from('\n'), encodeStream([pointerKey(beta, 'beta', 'latest/beta').encode(), pointerKey(stable, 'stable', 'latest/stable').encode()])]));
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(stream, out), '--update-url', 'http://h/s', '--update-channel', 'beta']);
    expect(r.status).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'edge-pc.img.manifest.json'), 'utf8')) as ImageManifest;
    for (const p of m.partitions.filter((x) => x.role === 'system-a' || x.role === 'system-b')) {
      expect(ext4Ls(join(out, 'edge-pc.img'), p.offset, '/trust-pointer')).toEqual([`${beta.publicKey.id}.pem`]);
      expect(ext4Cat(join(out, 'edge-pc.img'), p.offset, `/trust-pointer/${beta.publicKey.id}.pem`)!.toString()).toBe(beta.publicKey.toPem());
      const slot = JSON.parse(ext4Cat(join(out, 'edge-pc.img'), p.offset, '/manifest.json')!.toString()) as Record<string, unknown>;
      expect(slot['pointer-trust-store']).toEqual([`trust-pointer/${beta.publicKey.id}.pem`]);
      expect(ext4Ls(join(out, 'edge-pc.img'), p.offset, '/trust').join(' ')).not.toContain(beta.publicKey.id.slice(0, 12));
    }
  }, SLOW);
});
