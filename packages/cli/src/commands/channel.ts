import { type Assertion } from '@edgeimage/assertions';
import { fetchPointer, formatExpires, parseChannelPointer, readChannelIndex, trustedSigningKeys, verifyChannelPointer, PointerError, type ChannelPointer } from '@edgeimage/composer';
import { checkChannel, Store } from '@edgeimage/store';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import { parseTime, readAssertions, type Context } from './common.js';

export const POINTER_FORMAT_HELP = [
  'The channel pointer is a small text of "key: value" lines, signed by a detached RSA SHA-256 signature (POINTER.sig) that',
  'the device checks with openssl dgst -sha256 -verify over its exact bytes: edgeimage-pointer: 1, brand-id, model, channel,',
  'revision, expires (UTC, RFC 3339, to the second), rollout (0-100), sign-key-sha3-384, then "update: FROM SHA256 SIZE PATH"',
  'for each update (FROM "full" for the full update, else the installed revision a delta applies to; PATH relative to the',
  "store). It is signed by a brand key whose account-key is constrained to sign pointers only (account-key --pointer-only).",
].join(' ');

/** The pointer as lines for a terminal. */
export function describePointer(p: ChannelPointer, file: string, now: Date): string[] {
  const left = p.expires.getTime() - now.getTime();
  const inText = left > 0 ? `in ${Math.floor(left / 86_400_000)} d ${Math.floor((left % 86_400_000) / 3_600_000)} h` : 'EXPIRED';
  return [
    `pointer: ${file}`,
    `brand-id: ${p['brand-id']}`,
    `model: ${p.model}`,
    `channel: ${p.channel}`,
    `revision: ${p.revision}`,
    `expires: ${formatExpires(p.expires)} (${inText})`,
    `rollout: ${p.rollout} %`,
    `sign-key-sha3-384: ${p['sign-key-sha3-384']}`,
    'updates:',
    ...p.updates.map((u) => `  ${(u.from === 'full' ? 'full' : `from ${u.from}`).padEnd(10)} ${String(u.size).padStart(11)}  ${u.sha256}  ${u.path}`),
  ];
}

export function pointerJson(p: ChannelPointer, file: string, history?: number[]) {
  return { pointer: file, 'brand-id': p['brand-id'], model: p.model, channel: p.channel, revision: p.revision, expires: formatExpires(p.expires), rollout: p.rollout, 'sign-key-sha3-384': p['sign-key-sha3-384'], updates: p.updates, ...(history ? { history } : {}) };
}

type ShowArgs = { store: string; channel: string; model?: string; trusted?: string | string[]; at?: string; installedRevision?: number; json?: boolean };

export function channelCommand(ctx: Context) {
  return {
    command: 'channel <command>',
    describe: "read a store's channels: the signed pointers devices follow (written by update release)",
    builder: (y: Argv) =>
      y
        .command(
          'show <store> <channel>',
          "fetch a channel's pointer from a store, verify it as a device does and print it; exit 1 naming the failure when it does not verify",
          (c) =>
            c
              .positional('store', { type: 'string', demandOption: true, describe: 'store URL: a directory (or file://), http(s)://, or oci://HOST:PORT/NAMESPACE' })
              .positional('channel', { type: 'string', demandOption: true, describe: 'track/risk[/branch] (stable = latest/stable)' })
              .option('model', { type: 'string', describe: 'BRAND/MODEL, when more than one model follows the channel in this store' })
              .option('trusted', { type: 'string', describe: "trust anchors: the root's account-key and account (and, if not in the store, the brand's account and pointer account-key); repeatable" })
              .option('at', { type: 'string', describe: 'check expiry and key validity at this RFC 3339 time instead of now' })
              .option('installed-revision', { type: 'number', describe: 'refuse a pointer to a lower revision (anti-rollback), as a device running this revision does' })
              .option('json', { type: 'boolean', describe: 'print the verified pointer as JSON' })
              .example('$0 channel show ./store stable --trusted root.account-key --trusted example-root.account', '')
              .example('$0 channel show http://127.0.0.1:8080/store latest/edge --model acme/edge-pc --trusted root.account-key --trusted example-root.account --json', '')
              .epilog(
                `${POINTER_FORMAT_HELP}\n\nThe pointer is refused (exit 1) when it is malformed [ERR_POINTER_MALFORMED], expired [ERR_POINTER_EXPIRED], signed by a key that is not a trusted pointer-only account-key of its brand [ERR_POINTER_KEY_NOT_ALLOWED], when its signature does not verify [ERR_POINTER_SIGNATURE], or with --installed-revision when it points lower [ERR_POINTER_ROLLBACK]. The pointer key's account-key and the brand's account are read from the store (update release publishes them) when --trusted does not give them; they must chain to a --trusted root.`,
              ),
          (a) => show(ctx, a as unknown as ShowArgs),
        )
        .demandCommand(1, 'name a channel command: show')
        .epilog(POINTER_FORMAT_HELP),
    handler: () => {},
  };
}

async function show(ctx: Context, a: ShowArgs): Promise<void> {
  const now = parseTime(a.at, '--at') ?? new Date();
  const channel = checkChannel(a.channel);
  const anchors: Assertion[] = [a.trusted ?? []].flat().flatMap(readAssertions);
  const store = await Store.open(a.store);
  let brand: string;
  let model: string;
  if (a.model) {
    const m = /^([^/]+)\/([^/]+)$/.exec(a.model);
    if (!m) throw new UsageError(`--model: expected BRAND/MODEL, found ${JSON.stringify(a.model)}`);
    [brand, model] = [m[1]!, m[2]!];
  } else {
    const found = (await readChannelIndex(store)).filter((c) => c.channel === channel);
    if (found.length === 0) throw new PointerError('ERR_POINTER_NOT_FOUND', `${store.url}: no model follows channel ${channel} in this store (release one with "edgeimage update release")`, { store: store.url, channel });
    if (found.length > 1) throw new UsageError(`channel ${channel} of ${store.url} is followed by ${found.map((c) => `${c['brand-id']}/${c.model}`).join(', ')}: name one with --model BRAND/MODEL`);
    [brand, model] = [found[0]!['brand-id'], found[0]!.model];
  }
  const input = await fetchPointer(store, brand, model, channel);
  // The key the pointer names, from the store, verified through the chain to --trusted. A pointer
  // that does not parse is refused by verifyChannelPointer below, with its line.
  let keyId: string | undefined;
  try {
    keyId = parseChannelPointer(input.bytes, input.file)['sign-key-sha3-384'];
  } catch {
    keyId = undefined;
  }
  const fromStore = [await store.assertion('account', [brand]), keyId ? await store.assertion('account-key', [keyId]) : undefined].filter((x): x is Assertion => x !== undefined);
  const keys = trustedSigningKeys(anchors, fromStore, now);
  const { pointer, key } = verifyChannelPointer(input, keys, { now, brandId: brand, model, channel, installedRevision: a.installedRevision });
  if (a.json) return printJson(ctx.io, { ...pointerJson(pointer, input.file), verified: true, key: { id: key.id, 'account-id': key.accountId, name: key.name ?? null } });
  for (const line of describePointer(pointer, input.file, now)) ctx.io.out(line);
  ctx.io.out(`signature: verified (pointer-only account-key${key.name ? ` "${key.name}"` : ''} of ${key.accountId})`);
}
