import { type Assertion } from '@edgeimage/assertions';
import { fetchPointer, formatExpires, parseChannelPointer, readChannelIndex, resignChannel, trustedSigningKeys, verifyChannelPointer, PointerError, type ChannelPointer } from '@edgeimage/composer';
import { checkChannel, Store } from '@edgeimage/store';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import { cleanOnInterrupt, keyringOption, openKeyring, parseTime, passphrase, readAssertions, type Context } from './common.js';
import { parseDuration } from './update.js';

export const POINTER_FORMAT_HELP = [
  'The channel pointer is a small text of "key: value" lines, signed by a detached RSA SHA-256 signature (POINTER.sig) that',
  'the device checks with openssl dgst -sha256 -verify over its exact bytes: edgeimage-pointer: 1, brand-id, model, channel,',
  'revision, sequence (one higher on every release or re-sign), expires (UTC, RFC 3339, to the second), rollout (0-100), sign-key-sha3-384, then "update: FROM SHA256 SIZE PATH"',
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
    `sequence: ${p.sequence}`,
    `expires: ${formatExpires(p.expires)} (${inText})`,
    `rollout: ${p.rollout} %`,
    `sign-key-sha3-384: ${p['sign-key-sha3-384']}`,
    'updates:',
    ...p.updates.map((u) => `  ${(u.from === 'full' ? 'full' : `from ${u.from}`).padEnd(10)} ${String(u.size).padStart(11)}  ${u.sha256}  ${u.path}`),
  ];
}

export function pointerJson(p: ChannelPointer, file: string, history?: number[]) {
  return { pointer: file, 'brand-id': p['brand-id'], model: p.model, channel: p.channel, revision: p.revision, sequence: p.sequence, expires: formatExpires(p.expires), rollout: p.rollout, 'sign-key-sha3-384': p['sign-key-sha3-384'], updates: p.updates, ...(history ? { history } : {}) };
}

type ShowArgs = { store: string; channel: string; model?: string; trusted?: string | string[]; at?: string; installedRevision?: number; lastSequence?: number; json?: boolean };
type ResignArgs = { store: string; channel: string; model?: string; trusted?: string | string[]; at?: string; key: string; keyring?: string; expires: string; rollout?: number; json?: boolean };

export function channelCommand(ctx: Context) {
  return {
    command: 'channel <command>',
    describe: "read and renew a store's channels: the signed pointers devices follow (written by update release, renewed by channel resign)",
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
              .option('last-sequence', { type: 'number', describe: 'refuse a pointer with a lower sequence (a replay of an older pointer), as a device that last accepted this sequence does' })
              .option('json', { type: 'boolean', describe: 'print the verified pointer as JSON' })
              .example('$0 channel show ./store stable --trusted root.account-key --trusted example-root.account', '')
              .example('$0 channel show http://127.0.0.1:8080/store latest/edge --model acme/edge-pc --trusted root.account-key --trusted example-root.account --json', '')
              .epilog(
                `${POINTER_FORMAT_HELP}\n\nThe pointer is refused (exit 1) when it is malformed [ERR_POINTER_MALFORMED], expired [ERR_POINTER_EXPIRED], signed by a key that is not a trusted pointer-only account-key of its brand [ERR_POINTER_KEY_NOT_ALLOWED], when its signature does not verify [ERR_POINTER_SIGNATURE], or with --installed-revision when it points lower or --last-sequence when its sequence is lower (a replay of an older pointer) [ERR_POINTER_ROLLBACK]. The pointer key's account-key and the brand's account are read from the store (update release publishes them) when --trusted does not give them; they must chain to a --trusted root.`,
              ),
          (a) => show(ctx, a as unknown as ShowArgs),
        )
        .command(
          'resign <store> <channel>',
          "re-sign a channel's head with the pointer key: the same revision and updates, a new expiry and rollout, the next sequence (no new model revision, no model key)",
          (c) =>
            keyringOption(c)
              .positional('store', { type: 'string', demandOption: true, describe: 'store URL: a directory (or file://) or oci://HOST:PORT/NAMESPACE' })
              .positional('channel', { type: 'string', demandOption: true, describe: 'track/risk[/branch] (stable = latest/stable)' })
              .option('key', { type: 'string', demandOption: true, describe: 'name of the pointer key in the keyring: a key of the brand whose account-key is pointer-only' })
              .option('model', { type: 'string', describe: 'BRAND/MODEL, when more than one model follows the channel in this store' })
              .option('trusted', { type: 'string', describe: "trust anchors: the root's account-key and account (and, if not in the store, the brand's account and pointer account-keys); repeatable" })
              .option('expires', { type: 'string', default: '7d', describe: 'how long devices accept the new pointer: N followed by s, m, h or d (at most 365d)' })
              .option('rollout', { type: 'number', describe: 'percentage of devices (0-100) that take the revision (default: the current pointer\'s)' })
              .option('at', { type: 'string', describe: 'the time of the re-signing (key validity and the expiry) instead of now; the expiry stays within 365 days of the real clock' })
              .option('json', { type: 'boolean', describe: 'print the new pointer as JSON' })
              .example('$0 channel resign ./store stable --key pointer --trusted root.account-key --trusted acme-root.account', 'renew the pointer for seven more days')
              .example('$0 channel resign oci://127.0.0.1:5000/acme stable --key pointer --trusted root.assert --rollout 100', 'a rollout from 0 % to 100 %')
              .epilog(
                `${POINTER_FORMAT_HELP}\n\nThe current pointer is verified first (signature, key, brand, model and channel, as channel show; an expired one is accepted: renewing it is the point) and refused otherwise. The new pointer names the same revision and updates, with the sequence one higher, so a device that has accepted it refuses the old one. Only the pointer, its signature and the last entry of the history are written. The passphrase of an encrypted key comes from $EDGEIMAGE_KEY_PASSPHRASE.`,
              ),
          (a) => cleanOnInterrupt(() => resign(ctx, a as unknown as ResignArgs)),
        )
        .demandCommand(1, 'name a channel command: show or resign')
        .epilog(POINTER_FORMAT_HELP),
    handler: () => {},
  };
}

const counter = (v: number | undefined, option: string) => {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new UsageError(`${option}: expected a whole number, 0 or more, found ${JSON.stringify(String(v))}`);
  return v;
};

/** The brand and model following the channel: --model, else the only one in the store's index. */
async function whichModel(store: Store, channel: string, given: string | undefined): Promise<[string, string]> {
  let brand: string;
  let model: string;
  if (given) {
    const m = /^([^/]+)\/([^/]+)$/.exec(given);
    if (!m) throw new UsageError(`--model: expected BRAND/MODEL, found ${JSON.stringify(given)}`);
    [brand, model] = [m[1]!, m[2]!];
  } else {
    const found = (await readChannelIndex(store)).filter((c) => c.channel === channel);
    if (found.length === 0) throw new PointerError('ERR_POINTER_NOT_FOUND', `${store.url}: no model follows channel ${channel} in this store (release one with "edgeimage update release")`, { store: store.url, channel });
    if (found.length > 1) throw new UsageError(`channel ${channel} of ${store.url} is followed by ${found.map((c) => `${c['brand-id']}/${c.model}`).join(', ')}: name one with --model BRAND/MODEL`);
    [brand, model] = [found[0]!['brand-id'], found[0]!.model];
  }
  return [brand, model];
}

/** The account-key a pointer names, if it parses (a pointer that does not is refused by verifyChannelPointer, with its line). */
function namedKey(bytes: Buffer, file: string): string | undefined {
  try {
    return parseChannelPointer(bytes, file)['sign-key-sha3-384'];
  } catch {
    return undefined;
  }
}

async function resign(ctx: Context, a: ResignArgs): Promise<void> {
  const lifetimeMs = parseDuration(a.expires, '--expires');
  if (a.rollout !== undefined && (!Number.isInteger(a.rollout) || a.rollout < 0 || a.rollout > 100)) throw new UsageError(`--rollout: expected a whole percentage from 0 to 100, found ${a.rollout}`);
  const pointerKey = openKeyring(a.keyring).load(a.key, passphrase());
  const now = parseTime(a.at, '--at') ?? new Date();
  const channel = checkChannel(a.channel);
  const anchors: Assertion[] = [a.trusted ?? []].flat().flatMap(readAssertions);
  const store = await Store.open(a.store);
  const [brand, model] = await whichModel(store, channel, a.model);
  const input = await fetchPointer(store, brand, model, channel);
  const ids = [namedKey(input.bytes, input.file), pointerKey.publicKey.id].filter((x): x is string => x !== undefined);
  const fromStore = [await store.assertion('account', [brand]), ...(await Promise.all(ids.map((id) => store.assertion('account-key', [id]))))].filter((x): x is Assertion => x !== undefined);
  const pointerKeys = trustedSigningKeys(anchors, fromStore, now);
  const r = await resignChannel({ store, brandId: brand, model, channel, pointerKey, pointerKeyName: a.key, pointerKeys, lifetimeMs, rollout: a.rollout, now });
  const file = store.backend.locate(r.pointerPath);
  if (a.json) return printJson(ctx.io, { ...pointerJson(r.pointer, file), previous: { sequence: r.previous.sequence, expires: formatExpires(r.previous.expires), rollout: r.previous.rollout } });
  for (const line of describePointer(r.pointer, file, now)) ctx.io.out(line);
  ctx.io.out(`re-signed with pointer key "${a.key}" (${pointerKey.publicKey.id}): sequence ${r.previous.sequence} -> ${r.pointer.sequence}, expires ${formatExpires(r.previous.expires)} -> ${formatExpires(r.pointer.expires)}, rollout ${r.previous.rollout} % -> ${r.pointer.rollout} %`);
}

async function show(ctx: Context, a: ShowArgs): Promise<void> {
  const now = parseTime(a.at, '--at') ?? new Date();
  const installedRevision = counter(a.installedRevision, '--installed-revision');
  const lastSequence = counter(a.lastSequence, '--last-sequence');
  const channel = checkChannel(a.channel);
  const anchors: Assertion[] = [a.trusted ?? []].flat().flatMap(readAssertions);
  const store = await Store.open(a.store);
  const [brand, model] = await whichModel(store, channel, a.model);
  const input = await fetchPointer(store, brand, model, channel);
  const keyId = namedKey(input.bytes, input.file);
  const fromStore = [await store.assertion('account', [brand]), keyId ? await store.assertion('account-key', [keyId]) : undefined].filter((x): x is Assertion => x !== undefined);
  const keys = trustedSigningKeys(anchors, fromStore, now);
  const { pointer, key } = verifyChannelPointer(input, keys, { now, brandId: brand, model, channel, installedRevision, lastAccepted: lastSequence === undefined ? undefined : { revision: 0, sequence: lastSequence } });
  if (a.json) return printJson(ctx.io, { ...pointerJson(pointer, input.file), verified: true, key: { id: key.id, 'account-id': key.accountId, name: key.name ?? null } });
  for (const line of describePointer(pointer, input.file, now)) ctx.io.out(line);
  ctx.io.out(`signature: verified (pointer-only account-key${key.name ? ` "${key.name}"` : ''} of ${key.accountId})`);
}
