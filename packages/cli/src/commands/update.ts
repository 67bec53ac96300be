import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BundleCache, Store, resolveModel, type Resolution } from '@edgeimage/store';
import { createUpdate, readUpdate, releaseUpdate, sniffUpdateFrom, trustedSigningKeys, verifierFromPem, verifiersFromAssertions, UpdateError, type UpdateFrom, type UpdateVerifier } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import { describePointer, pointerJson, POINTER_FORMAT_HELP } from './channel.js';
import { resolveProgress } from '../progress.js';
import { bootSignersOf } from './boot-signers.js';
import { cleanOnInterrupt, keyringOption, openKeyring, parseTime, passphrase, readAssertions, type Context } from './common.js';
import { resolveOptions, trustedFrom, type TrustArgs } from './resolve.js';
import { updateConfigOf, updateOptions, type UpdateArgs, type UpdateOptionsHelp } from './update-options.js';

const FORMAT = [
  'An update is a plain tar: edgeimage-update/manifest (text: edgeimage-update: 1, brand-id, model, revision, sign-key-sha3-384,',
  'then "file: SHA256 SIZE PATH" for every file of the new slot, sorted), edgeimage-update/manifest.sig (RSA PKCS#1 v1.5',
  'SHA-256 of the manifest: openssl dgst -sha256 -verify PUB.pem -signature manifest.sig manifest) and',
  'edgeimage-update/slot/PATH for each file the old system lacks (all of them without --from). The device takes the',
  'other files from its running slot, checks every digest, and writes the inactive slot.',
].join(' ');

const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;

type ReleaseArgs = TrustArgs & UpdateArgs & { bootKeys?: string; model: string; store: string; cache?: string; allowUnpinned: boolean; at?: string; concurrency: number; key: string; pointerKey: string; keyring?: string; channel: string; from?: number[]; expires: string; rollout: number; json?: boolean };

/** `7d`, `36h`, `90m`, `3600s` in milliseconds. */
export function parseDuration(value: string, option: string): number {
  const m = /^([1-9]\d{0,6})([smhd])$/.exec(value);
  if (!m) throw new UsageError(`${option}: expected a duration such as 7d, 36h, 90m or 3600s, found ${JSON.stringify(value)}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

type CreateArgs = TrustArgs & UpdateArgs & { bootKeys?: string; model: string; store: string; cache?: string; allowUnpinned: boolean; at?: string; concurrency: number; key: string; keyring?: string; from?: string; output: string; json?: boolean };

const CREATE_UPDATE_HELP: UpdateOptionsHelp = {
  target: "the update's slot gets update.conf (as build writes it), listed in the manifest like every slot file. Without it the new slot has none, and a device that installs it stops polling",
  channelDefault: 'stable = latest/stable; the default',
};
const RELEASE_UPDATE_HELP: UpdateOptionsHelp = {
  target: "each update's slot gets update.conf (as build writes it), listed in the manifest like every slot file. Without it the updates carry none, and devices that install them stop polling (a warning says so when the channel's previous release carried one)",
  channelDefault: 'default: --channel, the channel released to, so that a device that follows it keeps following it',
};

export function updateCommand(ctx: Context) {
  return {
    command: 'update <command>',
    describe: 'make, read and release signed update bundles (A/B updates of a device, whole or as a delta; release: into a store, for devices that follow a channel)',
    builder: (y: Argv) =>
      y
        .command(
          'create <model>',
          'resolve a signed model and write its signed update bundle (a tar the device installs into its inactive slot)',
          (c) =>
            updateOptions(keyringOption(resolveOptions(c)), CREATE_UPDATE_HELP)
              .positional('model', { type: 'string', demandOption: true, describe: 'the new model assertion (a stream with its chain is fine), as for build' })
              .option('key', { type: 'string', demandOption: true, describe: "name of the signing key in the keyring: one of the brand's account-keys" })
              .option('from', { type: 'string', describe: 'the system being replaced: its model assertion, or an image built by edgeimage (its active slot); only files it lacks go in' })
              .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the update file (written under a temporary name, then renamed)' })
              .option('json', { type: 'boolean', describe: 'print the summary as JSON' })
              .option('boot-keys', { type: 'string', describe: 'for devices built with build --boot-keys: the keyring whose boot keys sign the new slot\'s boot payload (a unified kernel image or a FIT image), as build does' })
              .example('$0 update create pc-amd64-r4.model --store ./store --key brand -o pc-amd64-r4.update', 'a full update')
              .example('$0 update create pc-amd64-r4.model --store ./store --key brand --from images/pc-amd64.img -o r4.update', 'only the bundles that changed since the image')
              .example('$0 update create r4.model --store ./store --key brand --from r3.model -o r4.update --json', 'a delta against the previous model, summary as JSON')
              .epilog(`${FORMAT}\n\nThe key must be an account-key of the model's brand; --from must be the same brand and model at a lower revision. The passphrase of an encrypted key comes from $EDGEIMAGE_KEY_PASSPHRASE.`),
          (a) => cleanOnInterrupt(() => create(ctx, a as unknown as CreateArgs)),
        )
        .command(
          'info <file>',
          'show an update bundle: its model, its files (included or taken from the running slot) and whether its signature verifies',
          (c) =>
            c
              .positional('file', { type: 'string', demandOption: true, describe: 'the update file' })
              .option('trusted', { type: 'string', describe: 'account-key assertion file(s) to check the signature with; repeatable' })
              .option('pubkey', { type: 'string', describe: 'a PEM public key to check the signature with (as in a device trust store); repeatable' })
              .option('json', { type: 'boolean', describe: 'print as JSON' })
              .example('$0 update info r4.update --trusted brand.account-key', 'check it with the brand key')
              .example('$0 update info r4.update --pubkey brand.pub.pem --json', '')
              .epilog(`${FORMAT}\n\nWithout --trusted or --pubkey the signature is not checked. A bad signature exits 1.`),
          (a) => info(ctx, a),
        )
        .command(
          'release <model>',
          "make a new model revision's updates, publish them into a store and move a channel to it with a signed, expiring pointer",
          (c) =>
            updateOptions(keyringOption(resolveOptions(c)), RELEASE_UPDATE_HELP)
              .positional('model', { type: 'string', demandOption: true, describe: 'the new model assertion (a stream with its chain is fine), as for build' })
              .option('channel', { type: 'string', demandOption: true, describe: 'the channel the devices follow: track/risk[/branch] (stable = latest/stable)' })
              .option('key', { type: 'string', demandOption: true, describe: "signs the updates: one of the brand's account-keys that devices trust (the model key)" })
              .option('pointer-key', { type: 'string', default: 'pointer', describe: "signs the pointer: a key of the brand whose account-key is pointer-only (account-key --pointer-only); its account-key comes from --trusted, the model stream or the store" })
              .option('from', { type: 'number', array: true, describe: 'make a delta from this revision (its full update must be in the store); repeatable; default: every revision in the channel\'s history' })
              .option('expires', { type: 'string', default: '7d', describe: 'how long devices accept the pointer: N followed by s, m, h or d (at most 365d, and within 365 days of the real clock with --at); re-sign before then with channel resign' })
              .option('rollout', { type: 'number', default: 100, describe: 'percentage of devices (0-100) that take the revision' })
              .option('boot-keys', { type: 'string', describe: "for devices built with build --boot-keys: the keyring whose boot keys sign the new slot's boot payload" })
              .option('json', { type: 'boolean', describe: 'print the pointer as JSON' })
              .example('$0 update release r2.model --store ./store --channel stable --key brand --pointer-key pointer', 'full update + deltas from the revisions in the channel\'s history')
              .example('$0 update release r3.model --store oci://127.0.0.1:5000/acme --channel stable --key brand --from 1 --from 2 --expires 3d --rollout 10', 'deltas from revisions 1 and 2, a 10 % rollout, a pointer that expires in 3 days')
              .epilog(
                `${POINTER_FORMAT_HELP}\n\nThe updates go to updates/BRAND.MODEL.REV.full.update and updates/BRAND.MODEL.REV.from-OLD.update, then the pointer and its signature to channels/BRAND.MODEL.TRACK+RISK.pointer(.sig) (on a directory store each file is written under a temporary name and renamed), then the release is appended to channels/BRAND.MODEL.TRACK+RISK.history.json. A release that fails leaves the channel's pointer as it was. --at sets the time of the release (key validity and the pointer's expiry). The passphrase of an encrypted key comes from $EDGEIMAGE_KEY_PASSPHRASE.`,
              ),
          (a) => cleanOnInterrupt(() => release(ctx, a as unknown as ReleaseArgs)),
        )
        .demandCommand(1, 'name an update command: create, info or release')
        .example('$0 update create r4.model --store ./store --key brand --from images/pc-amd64.img -o r4.update', 'a delta update')
        .example('$0 update info r4.update --trusted brand.account-key', 'what is in it')
        .example('$0 update release r4.model --store ./store --channel stable --key brand --pointer-key pointer', 'publish it and move channel stable to it')
        .epilog(FORMAT),
    handler: () => {},
  };
}

async function create(ctx: Context, a: CreateArgs): Promise<void> {
  const updates = updateConfigOf(a);
  const progress = resolveProgress((line) => ctx.io.err(line));
  try {
    // The key first: a wrong name or passphrase should fail before any download.
    const key = openKeyring(a.keyring).load(a.key, passphrase());
    const trusted = trustedFrom(a);
    const store = await Store.open(a.store);
    const resolveFile = (file: string): Promise<Resolution> =>
      resolveModel(readAssertions(file), { store, trusted, at: parseTime(a.at, '--at'), cache: new BundleCache(a.cache), allowUnpinned: a.allowUnpinned, concurrency: a.concurrency, onEvent: progress.onEvent });
    const resolution = await resolveFile(a.model);
    const bootSigners = a.bootKeys === undefined ? undefined : bootSignersOf(a.bootKeys, resolution.model.brandId);
    let from: UpdateFrom | undefined;
    if (a.from) from = sniffUpdateFrom(a.from) === 'image' ? { image: resolve(a.from) } : { resolution: await resolveFile(a.from), trusted, source: a.from };
    progress.stop();
    const r = await createUpdate({ resolution, trusted, key, keyName: a.key, from, bootSigners, output: resolve(a.output), ...(updates ? { updates } : {}), onEvent: (e) => ctx.io.err(e.what) });
    // Only now that the update file is in place: a refused update records no sequence.
    await resolution.recordSequences();
    if (from && 'resolution' in from) await from.resolution.recordSequences();
    if (a.json) return printJson(ctx.io, { output: r.output, model: r.model, files: r.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size, included: f.included })), bytes: r.bytes, fullBytes: r.fullBytes });
    const inc = r.files.filter((f) => f.included);
    ctx.io.out(`${r.model['brand-id']}/${r.model.model} revision ${r.model.revision}${a.from ? ` (from ${a.from})` : ''}`);
    for (const f of r.files) ctx.io.out(`  ${f.included ? '+' : '='} ${f.path.padEnd(40)} ${String(f.size).padStart(11)}  ${f.sha256}`);
    ctx.io.out(`files: ${r.files.length} in the slot, ${inc.length} in the update (+); the others (=) the device takes from its running slot`);
    ctx.io.out(`bytes: ${r.bytes} in the update (${mib(r.bytes)}), ${r.fullBytes} for a full update (${mib(r.fullBytes)})`);
    ctx.io.out(`signed with key "${a.key}" (${key.publicKey.id})`);
    ctx.io.out(`output: ${r.output}`);
  } finally {
    progress.stop();
  }
}

async function info(ctx: Context, a: { file: string; trusted?: string | string[]; pubkey?: string | string[]; json?: boolean }): Promise<void> {
  const verifiers: UpdateVerifier[] = [
    ...[a.trusted ?? []].flat().flatMap((f) => verifiersFromAssertions(readAssertions(f), f)),
    ...[a.pubkey ?? []].flat().map((f) => verifierFromPem(readFileSync(f, 'utf8'), f)),
  ];
  if ([a.trusted ?? []].flat().length && !verifiers.length) throw new UpdateError('ERR_UPDATE_SIGNATURE', `--trusted ${[a.trusted].flat().join(', ')}: no account-key assertion to check the signature with`);
  const u = await readUpdate(a.file, verifiers);
  const m = u.manifest;
  const sig = u.signature;
  if (a.json) {
    printJson(ctx.io, { file: u.file, model: { 'brand-id': m['brand-id'], model: m.model, revision: m.revision }, 'sign-key-sha3-384': m['sign-key-sha3-384'], files: u.files, bytes: u.bytes, fullBytes: u.fullBytes, signature: sig });
  } else {
    ctx.io.out(`update: ${u.file}`);
    ctx.io.out(`brand-id: ${m['brand-id']}\nmodel: ${m.model}\nrevision: ${m.revision}\nsign-key-sha3-384: ${m['sign-key-sha3-384']}`);
    for (const f of u.files) ctx.io.out(`  ${f.included ? '+' : '='} ${f.path.padEnd(40)} ${String(f.size).padStart(11)}  ${f.sha256}`);
    ctx.io.out(`files: ${u.files.length}, ${u.files.filter((f) => f.included).length} included (+), the others (=) from the running slot`);
    ctx.io.out(`bytes: ${u.bytes} included, ${u.fullBytes} in the slot`);
    ctx.io.out(!sig.checked ? 'signature: not checked (give --trusted or --pubkey)' : sig.valid ? `signature: verified (${sig.by})` : 'signature: DOES NOT VERIFY');
  }
  if (sig.checked && !sig.valid) {
    throw new UpdateError('ERR_UPDATE_SIGNATURE', `${a.file}: the manifest signature does not verify with ${verifiers.map((v) => v.name).join(', ')}`, { file: a.file });
  }
}

async function release(ctx: Context, a: ReleaseArgs): Promise<void> {
  const progress = resolveProgress((line) => ctx.io.err(line));
  try {
    const lifetimeMs = parseDuration(a.expires, '--expires');
    if (!Number.isInteger(a.rollout) || a.rollout < 0 || a.rollout > 100) throw new UsageError(`--rollout: expected a whole percentage from 0 to 100, found ${a.rollout}`);
    for (const r of a.from ?? []) if (!Number.isSafeInteger(r) || r < 0) throw new UsageError(`--from: expected a revision number, found ${r}`);
    const updates = updateConfigOf(a, { channel: a.channel, option: '--channel' });
    // The keys first: a wrong name or passphrase should fail before any download.
    const ring = openKeyring(a.keyring);
    const key = ring.load(a.key, passphrase());
    const pointerKey = ring.load(a.pointerKey, passphrase());
    const at = parseTime(a.at, '--at');
    const now = at ?? new Date();
    const trusted = trustedFrom(a);
    const store = await Store.open(a.store);
    const stream = readAssertions(a.model);
    const resolution = await resolveModel(stream, { store, trusted, at, cache: new BundleCache(a.cache), allowUnpinned: a.allowUnpinned, concurrency: a.concurrency, onEvent: progress.onEvent });
    progress.stop();
    const bootSigners = a.bootKeys === undefined ? undefined : bootSignersOf(a.bootKeys, resolution.model.brandId);
    // The pointer key's account-key: given (--trusted, the model stream) or published by an earlier release.
    const published = await store.assertion('account-key', [pointerKey.publicKey.id]);
    const pointerKeys = trustedSigningKeys(trusted, [...stream, ...resolution.assertions, ...(published ? [published] : [])], now);
    const r = await releaseUpdate({
      store, resolution, trusted, key, keyName: a.key, pointerKey, pointerKeyName: a.pointerKey, pointerKeys, channel: a.channel, from: a.from, lifetimeMs, rollout: a.rollout, now, bootSigners, ...(updates ? { updates } : {}),
      onEvent: (e) => ctx.io.err(e.kind === 'warning' ? `edgeimage: warning: ${e.what}` : e.what),
    });
    await resolution.recordSequences();
    const file = store.backend.locate(r.pointerPath);
    if (a.json) return printJson(ctx.io, pointerJson(r.pointer, file, r.history.releases.map((x) => x.revision)));
    for (const line of describePointer(r.pointer, file, now)) ctx.io.out(line);
    ctx.io.out(`history: ${r.history.releases.map((x) => x.revision).join(', ')}`);
    ctx.io.out(`signed with pointer key "${a.pointerKey}" (${pointerKey.publicKey.id}); updates signed with key "${a.key}" (${key.publicKey.id})`);
  } finally {
    progress.stop();
  }
}
