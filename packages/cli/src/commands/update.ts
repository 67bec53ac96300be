import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BundleCache, Store, resolveModel, type Resolution } from '@edgeimage/store';
import { createUpdate, readUpdate, sniffUpdateFrom, verifierFromPem, verifiersFromAssertions, UpdateError, type UpdateFrom, type UpdateVerifier } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { resolveProgress } from '../progress.js';
import { bootSignersOf } from './boot-signers.js';
import { cleanOnInterrupt, keyringOption, openKeyring, parseTime, passphrase, readAssertions, type Context } from './common.js';
import { resolveOptions, trustedFrom, type TrustArgs } from './resolve.js';

const FORMAT = [
  'An update is a plain tar: edgeimage-update/manifest (text: edgeimage-update: 1, brand-id, model, revision, sign-key-sha3-384,',
  'then "file: SHA256 SIZE PATH" for every file of the new slot, sorted), edgeimage-update/manifest.sig (RSA PKCS#1 v1.5',
  'SHA-256 of the manifest: openssl dgst -sha256 -verify PUB.pem -signature manifest.sig manifest) and',
  'edgeimage-update/slot/PATH for each file the old system lacks (all of them without --from). The device takes the',
  'other files from its running slot, checks every digest, and writes the inactive slot.',
].join(' ');

const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;

type CreateArgs = TrustArgs & { bootKeys?: string; model: string; store: string; cache?: string; allowUnpinned: boolean; at?: string; concurrency: number; key: string; keyring?: string; from?: string; output: string; json?: boolean };

export function updateCommand(ctx: Context) {
  return {
    command: 'update <command>',
    describe: 'make and read signed update bundles (A/B updates of a device, whole or as a delta)',
    builder: (y: Argv) =>
      y
        .command(
          'create <model>',
          'resolve a signed model and write its signed update bundle (a tar the device installs into its inactive slot)',
          (c) =>
            keyringOption(resolveOptions(c))
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
        .demandCommand(1, 'name an update command: create or info')
        .example('$0 update create r4.model --store ./store --key brand --from images/pc-amd64.img -o r4.update', 'a delta update')
        .example('$0 update info r4.update --trusted brand.account-key', 'what is in it')
        .epilog(FORMAT),
    handler: () => {},
  };
}

async function create(ctx: Context, a: CreateArgs): Promise<void> {
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
    const r = await createUpdate({ resolution, trusted, key, keyName: a.key, from, bootSigners, output: resolve(a.output), onEvent: (e) => ctx.io.err(e.what) });
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
