import { refOf } from '@edgeimage/assertions';
import { Store, StoreError, normaliseChannel, type SnapIndex } from '@edgeimage/store';
import type { Argv } from 'yargs';
import { UsageError, printJson } from '../output.js';
import { keyringOption, openKeyring, passphrase, readAssertions, type Context } from './common.js';

const STORE_DESCRIBE = 'the store: a directory (or file:// URL), http(s):// (read-only) or oci://host:port/namespace';

function storePositional<T>(y: Argv<T>) {
  return y.positional('store', { type: 'string', demandOption: true, describe: STORE_DESCRIBE });
}

/** `store list --json`: one object per snap, as documented in the README. */
function listJson(snaps: SnapIndex[]) {
  return snaps.map((s) => ({
    name: s.name,
    'snap-id': s['snap-id'],
    type: s.type,
    revisions: s.revisions.map((r) => ({ revision: r.revision, 'sha3-384': r['sha3-384'], size: r.size, architectures: r.architectures })),
    channels: s.channels,
  }));
}

function listText(store: Store, snaps: SnapIndex[]): string {
  if (snaps.length === 0) return `no snaps in ${store.url} (publish one with "edgeimage store publish")`;
  const out: string[] = [];
  for (const s of snaps) {
    out.push(`${s.name}  snap-id ${s['snap-id']}  type ${s.type}  publisher ${s.publisher}`);
    for (const r of [...s.revisions].sort((a, b) => a.revision - b.revision)) {
      out.push(`  revision ${String(r.revision).padEnd(4)} ${r.version.padEnd(12)} ${r.architectures.join(',').padEnd(14)} ${String(r.size).padStart(10)} bytes  sha3-384 ${r['sha3-384']}`);
    }
    for (const [channel, arches] of Object.entries(s.channels).sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`  ${channel.padEnd(24)} ${Object.entries(arches).map(([arch, rev]) => `${arch}=${rev}`).join(' ')}`);
    }
  }
  return out.join('\n');
}

export function storeCommand(ctx: Context) {
  return {
    command: 'store <command>',
    describe: 'create a store, publish bundles and assertions, release to channels, list',
    builder: (y: Argv) =>
      y
        .command(
          'init <store>',
          'create an empty store that signs as an account with a key of the keyring',
          (c) =>
            keyringOption(storePositional(c))
              .option('key', { type: 'string', demandOption: true, describe: "name of the store's signing key in the keyring" })
              .option('authority-id', { type: 'string', demandOption: true, describe: 'the account the store signs snap-declarations and snap-revisions as' })
              .example('$0 store init ./store --key store --authority-id acme-store', 'a directory store signed by key "store" as acme-store')
              .epilog(
                "Writes store.json (format, authority-id, key-id, key-name) and an empty index. Resolving from the store needs the store's account and account-key, signed by a root the resolver trusts: pass them to `edgeimage resolve --trusted`.",
              ),
          async (a) => {
            const key = openKeyring(a.keyring).load(a.key, passphrase());
            const store = await Store.init(a.store, { authorityId: a.authorityId, key, keyName: a.key });
            ctx.io.out(`created store ${store.url}: signs as ${a.authorityId} with key "${a.key}" (${key.publicKey.id})`);
          },
        )
        .command(
          'publish <store> <file>',
          'publish a bundle as the next revision of its snap and release it to a channel',
          (c) =>
            keyringOption(storePositional(c))
              .positional('file', { type: 'string', demandOption: true, describe: 'the bundle (.snap) file' })
              .option('channel', { type: 'string', demandOption: true, describe: 'channel to release to: track/risk[/branch] (stable = latest/stable)' })
              .option('publisher', { type: 'string', describe: "on first publish: the publisher's account id (default: the store's authority)" })
              .option('snap-id', { type: 'string', describe: 'on first publish: the snap-id to declare (default: derived from the authority and the name)' })
              .option('json', { type: 'boolean', describe: 'print the result as JSON' })
              .example('$0 store publish ./store hello-kiosk_1.0_amd64.snap --channel stable', 'revision 1 (or the next) to latest/stable')
              .example('$0 store publish ./store pc_24_amd64.snap --channel 24/edge --publisher acme', 'declared as published by acme')
              .epilog(
                'Signs with the key named in store.json (key-name), loaded from --keyring; an encrypted key takes its passphrase from $EDGEIMAGE_KEY_PASSPHRASE. On the first publish of a name, writes a signed snap-declaration; every publish writes a signed snap-revision (sha3-384, size, revision). The publisher needs an account assertion in the store (store publish-assertion) for the resolver to accept the snap.',
              ),
          async (a) => {
            const store = await Store.open(a.store);
            const keyName = store.meta['key-name'];
            if (!keyName) {
              throw new StoreError('ERR_STORE_KEY', `${store.url}: store.json names no key-name, so the store's key cannot be found in the keyring`, { url: store.url });
            }
            const key = openKeyring(a.keyring).load(keyName, passphrase());
            const r = await store.publish(a.file, {
              channel: a.channel,
              key,
              ...(a.publisher !== undefined ? { publisher: a.publisher } : {}),
              ...(a.snapId !== undefined ? { snapId: a.snapId } : {}),
            });
            if (a.json) {
              return printJson(ctx.io, { name: r.name, 'snap-id': r.snapId, type: r.type, revision: r.revision, 'sha3-384': r.sha3_384, size: r.size, architectures: r.architectures });
            }
            ctx.io.out(
              [
                `published ${r.name} revision ${r.revision} to ${store.url}`,
                `  snap-id   ${r.snapId}${r.assertions.some((x) => x.type === 'snap-declaration') ? ' (declared now)' : ''}`,
                `  type      ${r.type}`,
                `  size      ${r.size} bytes`,
                `  sha3-384  ${r.sha3_384}`,
                `  released  ${normaliseChannel(a.channel)} for ${r.architectures.join(', ')}`,
              ].join('\n'),
            );
          },
        )
        .command(
          'publish-assertion <store> <file>',
          'store assertions (validation-sets, accounts, account-keys, …) in a store',
          (c) =>
            storePositional(c)
              .positional('file', { type: 'string', demandOption: true, describe: 'a file with one or more assertions' })
              .example('$0 store publish-assertion ./store pc-amd64.validation-set', 'a validation-set the models name')
              .example('$0 store publish-assertion ./store acme.account', "a publisher's account")
              .epilog('Every assertion of the file is checked first, then all are written. A lower revision than the stored one is refused, and so is the same revision with other content; publishing the very same assertion again changes nothing.'),
          async (a) => {
            const assertions = readAssertions(a.file);
            const store = await Store.open(a.store);
            const paths = await store.publishAssertions(assertions);
            ctx.io.out(assertions.map((x, i) => `stored ${refOf(x)}${x.revision ? ` revision ${x.revision}` : ''} → ${store.backend.locate(paths[i]!)}`).join('\n'));
          },
        )
        .command(
          'release <store> <name> <revision> <channel>',
          'point a channel at an existing revision of a snap, for each of its architectures',
          (c) =>
            storePositional(c)
              .positional('name', { type: 'string', demandOption: true, describe: 'snap name' })
              .positional('revision', { type: 'string', demandOption: true, describe: 'an existing revision (a number)' })
              .positional('channel', { type: 'string', demandOption: true, describe: 'track/risk[/branch] (stable = latest/stable)' })
              .example('$0 store release ./store hello-kiosk 2 candidate', 'revision 2 to latest/candidate')
              .example('$0 store release ./store hello-kiosk 1 stable', 'roll latest/stable back to revision 1'),
          async (a) => {
            if (!/^[1-9][0-9]{0,15}$/.test(a.revision)) throw new UsageError(`revision: expected a revision number (1, 2, …), found ${JSON.stringify(a.revision)}`);
            const revision = Number(a.revision);
            const store = await Store.open(a.store);
            const index = await store.release(a.name, revision, a.channel);
            const entry = index.revisions.find((r) => r.revision === revision)!;
            ctx.io.out(`released ${a.name} revision ${revision} to ${normaliseChannel(a.channel)} for ${entry.architectures.join(', ')}`);
          },
        )
        .command(
          'list <store>',
          'list the snaps of a store: revisions and channel map',
          (c) =>
            storePositional(c)
              .option('json', { type: 'boolean', describe: 'print a JSON array: name, snap-id, type, revisions, channels (channel → architecture → revision)' })
              .example('$0 store list ./store', '')
              .example('$0 store list http://127.0.0.1:8080/store --json', 'through a web server serving it'),
          async (a) => {
            const store = await Store.open(a.store);
            const snaps = await store.list();
            if (a.json) return printJson(ctx.io, listJson(snaps));
            ctx.io.out(listText(store, snaps));
          },
        )
        .demandCommand(1, 'name a store command: init, publish, publish-assertion, release or list')
        .example('$0 store init ./store --key store --authority-id acme-store', 'create a store')
        .example('$0 store publish ./store hello-kiosk_1.0_amd64.snap --channel stable', 'publish a bundle')
        .example('$0 store list ./store --json', 'what it holds'),
    handler: () => {},
  };
}
