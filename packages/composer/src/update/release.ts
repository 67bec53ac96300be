import { createHash, verify } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PublicKey, type Assertion, type PrivateKey, type SigningKey } from '@edgeimage/assertions';
import { checkChannel, type Resolution, type Store } from '@edgeimage/store';
import { inProgress } from '../compose/compose.js';
import { deviceTrustKeys } from '../compose/slot.js';
import type { BootSigners } from '../verified/payload.js';
import { CHANNEL_INDEX, fetchPointer, HISTORY_KEEP, historyPath, pointerPath, pointerSigPath, readChannelIndex, readHistory, updatePath, type ChannelHistory, type ChannelRelease } from './channel.js';
import { UPDATE_CONF, resolveUpdateConfig, type UpdateConfig } from './conf.js';
import { createUpdate, type BaseSystem } from './create.js';
import { PointerError } from './errors.js';
import { readUpdateLayout } from './info.js';
import { MANIFEST_ENTRY, parseUpdateManifest, type SlotFile } from './manifest.js';
import { encodeChannelPointer, formatExpires, parseChannelPointer, type ChannelPointer, type PointerUpdate } from './pointer.js';
import { pointerKeyProblem, signChannelPointer, verifyChannelPointer } from './pointer-verify.js';
import { readTar, readTarEntry } from './tar.js';

/** A pointer's default lifetime: a device refuses it seven days after the release. */
export const DEFAULT_POINTER_LIFETIME_MS = 7 * 24 * 3600 * 1000;
/** The longest lifetime a pointer may be given: a frozen channel goes unnoticed for that long. */
export const MAX_POINTER_LIFETIME_MS = 365 * 24 * 3600 * 1000;

export interface ReleaseOptions {
  store: Store;
  /** The new system, resolved as for `build`. */
  resolution: Resolution;
  trusted: Assertion[];
  /** Signs the updates' manifests: an account-key of the brand that devices trust (the model key). */
  key: PrivateKey;
  keyName?: string;
  /** Signs the pointer: an account-key of the brand constrained to sign pointers only. */
  pointerKey: PrivateKey;
  pointerKeyName?: string;
  /** The trusted account-keys the pointer key is looked up in (see `trustedSigningKeys`). */
  pointerKeys: readonly SigningKey[];
  channel: string;
  /** Revisions to make deltas from; default: the revisions in the channel's history. */
  from?: number[];
  /** Lifetime of the pointer in milliseconds (default seven days). */
  lifetimeMs?: number;
  /** Percentage of devices that take it (default 100). */
  rollout?: number;
  /** The time of the release (default now). */
  now?: Date;
  bootSigners?: BootSigners;
  /**
   * The device polls a store for updates: each update's slot gets update.conf, as `build
   * --update-url` writes it. Its channel defaults to `channel` (a device that follows the channel
   * released to keeps following it). Without it the updates carry no update.conf (a warning says
   * so when the channel's previous full update carried one); their pointer trust store follows
   * `channel` all the same.
   */
  updates?: UpdateConfig;
  /** A warning is one line, for the publisher: the release goes on. */
  onEvent?: (e: { kind: 'stage' | 'warning'; what: string }) => void;
}

export interface ReleaseResult {
  pointer: ChannelPointer;
  /** Store names of the pointer and its signature. */
  pointerPath: string;
  signaturePath: string;
  history: ChannelHistory;
}

const sha256File = async (file: string) => {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
};

/**
 * Releases a new model revision to a channel of a store: the full update and a delta from each
 * earlier revision (`from`, or those in the channel's history) are made with `createUpdate` and
 * stored under `updates/`, then the signed, expiring pointer naming them becomes the channel's
 * head and the release is appended to its history. Nothing is written to the store before every
 * check has passed and every update is made; the pointer is written after the updates it names,
 * so a failed release leaves the old pointer in place (a signature written before a failed pointer
 * write is put back).
 *
 * ```ts
 * const r = await releaseUpdate({ store, resolution, trusted, key: brandKey, pointerKey, pointerKeys, channel: 'stable' });
 * r.pointer.updates; // [{ from: 'full', … }, { from: 1, … }]
 * ```
 */
export async function releaseUpdate(opts: ReleaseOptions): Promise<ReleaseResult> {
  const emit = opts.onEvent ?? (() => {});
  const { store, resolution } = opts;
  const m = resolution.model;
  const brand = m.brandId;
  const channel = checkChannel(opts.channel);
  const now = opts.now ?? new Date();
  const rollout = opts.rollout ?? 100;
  const lifetime = opts.lifetimeMs ?? DEFAULT_POINTER_LIFETIME_MS;
  if (!Number.isInteger(rollout) || rollout < 0 || rollout > 100) throw new PointerError('ERR_RELEASE', `--rollout: expected a whole percentage from 0 to 100, found ${rollout}`, { field: 'rollout', found: rollout });
  if (!(lifetime >= 1000 && lifetime <= MAX_POINTER_LIFETIME_MS)) throw new PointerError('ERR_RELEASE', `--expires: expected a lifetime from 1 second to 365 days, found ${lifetime} ms`, { field: 'expires', found: lifetime });
  if (!store.backend.writable) throw new PointerError('ERR_RELEASE', `${store.url}: the store is read-only (an HTTP store); release into its directory or OCI registry`, { store: store.url });
  checkExpiryCap(now, lifetime);
  const conf = opts.updates ? { ...opts.updates, channel: opts.updates.channel ?? channel } : undefined;
  // Checked before any work, as createUpdate would check it for each update.
  if (conf) resolveUpdateConfig(conf);

  // The pointer key first: a wrong key must fail before any work.
  const named = (name: string | undefined, k: PrivateKey) => (name ? `"${name}" (${k.publicKey.id})` : k.publicKey.id);
  const pk = opts.pointerKeys.find((k) => k.id === opts.pointerKey.publicKey.id);
  const problem = pk ? pointerKeyProblem(pk, { 'brand-id': brand, model: m.model, channel }, now) : 'no account-key for it among the trusted assertions, the model stream or the store';
  if (problem) {
    throw new PointerError('ERR_POINTER_KEY_NOT_ALLOWED', `pointer key ${named(opts.pointerKeyName, opts.pointerKey)} cannot sign the pointer of ${brand}/${m.model} channel ${channel}: ${problem}`, { field: 'pointer-key', found: opts.pointerKey.publicKey.id });
  }

  const history = await readHistory(store, brand, m.model, channel);
  // The channel's revision: its history's last release, or its pointer's when that is higher (a
  // release whose history write failed after its pointer was written).
  const head = await store.backend.read(pointerPath(brand, m.model, channel));
  let current = history.releases.at(-1)?.revision;
  let headSequence = 0;
  try {
    if (head) {
      const h = parseChannelPointer(head, store.backend.locate(pointerPath(brand, m.model, channel)));
      current = Math.max(current ?? 0, h.revision);
      headSequence = h.sequence;
    }
  } catch {
    // A malformed head is replaced by this release; the history still bounds the revision.
  }
  const sequence = nextSequence(history, headSequence);
  if (current !== undefined && current >= m.revision) {
    throw new PointerError('ERR_RELEASE', `${brand}/${m.model} revision ${m.revision}: channel ${channel} is at revision ${current} already; a release must have a higher revision (devices refuse a lower one)`, { field: 'revision', expected: `> ${current}`, found: m.revision });
  }
  const fromRevisions = [...new Set(opts.from ?? history.releases.map((r) => r.revision))].filter((r) => opts.from !== undefined || r < m.revision).sort((a, b) => a - b);
  for (const r of fromRevisions) {
    if (!Number.isSafeInteger(r) || r < 0 || r >= m.revision) throw new PointerError('ERR_RELEASE', `--from ${r}: expected a revision lower than the release's ${m.revision}`, { field: 'from', found: r });
  }

  const work = mkdtempSync(join(tmpdir(), 'edgeimage-release-'));
  inProgress.add(work);
  try {
    // The systems the deltas replace: each from the full update of its revision in the store,
    // whose manifest is checked against the keys the new model's devices trust.
    const bases: BaseSystem[] = [];
    // A revision's full update as this channel released it (under a name of the channel's own when another channel's update of that revision had other bytes).
    const fullOf = (r: number) => history.releases.findLast((x) => x.revision === r)?.updates.find((u) => u.from === 'full')?.path ?? updatePath(brand, m.model, r, 'full');
    for (const r of fromRevisions) bases.push(await storedSystem(opts, r, fullOf(r), work));
    if (!conf && current !== undefined) {
      const previous = bases.find((b) => b.revision === current)?.files ?? (await storedFiles(store, fullOf(current), join(work, 'previous-head')));
      if (previous?.some((f) => f.path === UPDATE_CONF)) {
        emit({ kind: 'warning', what: `channel ${channel}: the full update of revision ${current} carries ${UPDATE_CONF}, revision ${m.revision} has none (no --update-url): devices that install it stop polling for updates` });
      }
    }

    const made: { from: number | 'full'; file: string; path: string }[] = [];
    const make = async (base: BaseSystem | undefined) => {
      const from = base ? base.revision : 'full';
      const file = join(work, `${from}.update`);
      emit({ kind: 'stage', what: `making the ${base ? `delta from revision ${from}` : 'full update'} of ${brand}/${m.model} revision ${m.revision}` });
      await createUpdate({ resolution, trusted: opts.trusted, key: opts.key, keyName: opts.keyName, from: base, output: file, bootSigners: opts.bootSigners, ...(conf ? { updates: conf } : { pointerChannel: channel }) });
      made.push({ from, file, path: updatePath(brand, m.model, m.revision, from) });
    };
    await make(undefined);
    for (const b of bases) await make(b);
    const updates: PointerUpdate[] = [];
    // An update's bytes depend on its channel (update.conf, the pointer trust store): when another
    // channel's release names the same file with other bytes (the same revision released there
    // with other update settings), overwriting it would break that channel's pointer. This one
    // gets a name of its own.
    const named = await namedByOtherChannels(store, brand, m.model, channel);
    for (const u of made) {
      const sha256 = await sha256File(u.file);
      const other = named.get(u.path);
      if (other !== undefined && other !== sha256) u.path = updatePath(brand, m.model, m.revision, u.from, channel);
      updates.push({ from: u.from, sha256, size: statSync(u.file).size, path: u.path });
    }

    const pointer: ChannelPointer = {
      'brand-id': brand,
      model: m.model,
      channel,
      revision: m.revision,
      sequence,
      expires: new Date(Math.floor((now.getTime() + lifetime) / 1000) * 1000),
      rollout,
      'sign-key-sha3-384': opts.pointerKey.publicKey.id,
      updates,
    };
    const bytes = encodeChannelPointer(pointer);
    const signature = signChannelPointer(bytes, opts.pointerKey);
    const pPath = pointerPath(brand, m.model, channel);
    const sPath = pointerSigPath(brand, m.model, channel);
    // What a device will do with it, before anything is published.
    verifyChannelPointer({ bytes, signature, file: pPath }, opts.pointerKeys, { now, brandId: brand, model: m.model, channel });

    for (const u of made) {
      emit({ kind: 'stage', what: `publishing ${store.backend.locate(u.path)}` });
      await store.backend.writeFile(u.path, u.file);
    }
    // The pointer key's account-key and the brand's account, so that a reader with only the root
    // can check the pointer (as `channel show` does).
    // One the store has already (the same or a newer revision) is left as it is.
    const account = [...resolution.assertions, ...opts.trusted].find((a) => a.type === 'account' && a.header('account-id') === brand);
    const missing: Assertion[] = [];
    if (account && !(await store.assertion('account', [brand]))) missing.push(account);
    if (!(await store.assertion('account-key', [pk!.id]))) missing.push(pk!.assertion);
    await store.publishAssertions(missing);

    emit({ kind: 'stage', what: `moving channel ${channel} to revision ${m.revision}: ${store.backend.locate(pPath)}` });
    await writeHead(store, pPath, sPath, bytes, signature);

    const release: ChannelRelease = { revision: m.revision, released: formatExpires(now), expires: formatExpires(pointer.expires), rollout, sequence, 'sign-key-sha3-384': pointer['sign-key-sha3-384'], updates };
    const next: ChannelHistory = { ...history, channel, releases: [...history.releases, release].slice(-HISTORY_KEEP) };
    await store.backend.write(historyPath(brand, m.model, channel), Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
    const index = (await readChannelIndex(store)).filter((c) => !(c['brand-id'] === brand && c.model === m.model && c.channel === channel));
    index.push({ 'brand-id': brand, model: m.model, channel, pointer: pPath });
    index.sort((a, b) => pathOrder(a.pointer, b.pointer));
    await store.backend.write(CHANNEL_INDEX, Buffer.from(`${JSON.stringify({ format: 1, channels: index }, null, 2)}\n`));
    return { pointer, pointerPath: pPath, signaturePath: sPath, history: next };
  } finally {
    rmSync(work, { recursive: true, force: true });
    inProgress.delete(work);
  }
}

const pathOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * L1: `now` may be given (`--at`), but the pointer may not outlive the real clock by more than the
 * longest lifetime, or a release "at 2099" would sign a pointer a mirror could replay for decades.
 */
function checkExpiryCap(now: Date, lifetime: number): void {
  const expires = now.getTime() + lifetime;
  const clock = Date.now();
  if (expires > clock + MAX_POINTER_LIFETIME_MS) {
    throw new PointerError(
      'ERR_RELEASE',
      `--at ${formatExpires(now)}: the pointer would expire at ${formatExpires(new Date(expires))}, more than 365 days after the real time ${formatExpires(new Date(clock))}; a pointer's expiry is bounded by the clock, not by --at`,
      { field: 'expires', found: formatExpires(new Date(expires)) },
    );
  }
}

/** The next pointer's sequence: one above the highest of the history's and the current head's. */
function nextSequence(history: ChannelHistory, headSequence: number): number {
  const last = Math.max(headSequence, ...history.releases.map((r) => (Number.isSafeInteger(r.sequence) ? r.sequence! : 0)));
  if (!Number.isSafeInteger(last + 1)) throw new PointerError('ERR_RELEASE', `the channel's sequence ${last} cannot grow any more`, { field: 'sequence', found: last });
  return last + 1;
}

/** The signature, then the pointer; a failed pointer write puts the old signature back. */
async function writeHead(store: Store, pPath: string, sPath: string, bytes: Buffer, signature: Buffer): Promise<void> {
  const oldSig = await store.backend.read(sPath);
  await store.backend.write(sPath, signature);
  try {
    await store.backend.write(pPath, bytes);
  } catch (e) {
    // The old pointer stays; so must the signature that goes with it.
    if (oldSig) await store.backend.write(sPath, oldSig).catch(() => {});
    throw e;
  }
}

export interface ResignOptions {
  store: Store;
  brandId: string;
  model: string;
  channel: string;
  /** Signs the new pointer: a pointer-only account-key of the brand (not necessarily the one that signed the head). */
  pointerKey: PrivateKey;
  pointerKeyName?: string;
  /** The trusted account-keys: the head's signer and the new pointer key are looked up in them. */
  pointerKeys: readonly SigningKey[];
  /** Lifetime of the new pointer in milliseconds (default seven days). */
  lifetimeMs?: number;
  /** Percentage of devices that take the revision (default: the head's). */
  rollout?: number;
  now?: Date;
}

export interface ResignResult extends ReleaseResult {
  /** The head that was re-signed. */
  previous: ChannelPointer;
}

/**
 * Re-signs a channel's head without a new model revision: the current pointer is verified (its
 * signature and key as a device checks them; an expired head is accepted, since renewing it is
 * the point), then the same revision and updates are signed again with a new expiry and rollout
 * and the next sequence. No model key is needed, and nothing but the pointer, its signature and
 * the history's last entry is written. This is how the publisher keeps a channel alive between
 * releases, and moves a rollout from 0 % to 100 %.
 *
 * ```ts
 * const r = await resignChannel({ store, brandId: 'acme', model: 'edge-pc', channel: 'stable', pointerKey, pointerKeys, rollout: 100 });
 * r.pointer.sequence; // r.previous.sequence + 1
 * ```
 */
export async function resignChannel(opts: ResignOptions): Promise<ResignResult> {
  const { store, brandId: brand, model } = opts;
  const channel = checkChannel(opts.channel);
  const now = opts.now ?? new Date();
  const lifetime = opts.lifetimeMs ?? DEFAULT_POINTER_LIFETIME_MS;
  if (opts.rollout !== undefined && (!Number.isInteger(opts.rollout) || opts.rollout < 0 || opts.rollout > 100)) throw new PointerError('ERR_RELEASE', `--rollout: expected a whole percentage from 0 to 100, found ${opts.rollout}`, { field: 'rollout', found: opts.rollout });
  if (!(lifetime >= 1000 && lifetime <= MAX_POINTER_LIFETIME_MS)) throw new PointerError('ERR_RELEASE', `--expires: expected a lifetime from 1 second to 365 days, found ${lifetime} ms`, { field: 'expires', found: lifetime });
  if (!store.backend.writable) throw new PointerError('ERR_RELEASE', `${store.url}: the store is read-only (an HTTP store); re-sign in its directory or OCI registry`, { store: store.url });
  checkExpiryCap(now, lifetime);

  const named = (name: string | undefined, k: PrivateKey) => (name ? `"${name}" (${k.publicKey.id})` : k.publicKey.id);
  const pk = opts.pointerKeys.find((k) => k.id === opts.pointerKey.publicKey.id);
  const problem = pk ? pointerKeyProblem(pk, { 'brand-id': brand, model, channel }, now) : 'no account-key for it among the trusted assertions or the store';
  if (problem) {
    throw new PointerError('ERR_POINTER_KEY_NOT_ALLOWED', `pointer key ${named(opts.pointerKeyName, opts.pointerKey)} cannot sign the pointer of ${brand}/${model} channel ${channel}: ${problem}`, { field: 'pointer-key', found: opts.pointerKey.publicKey.id });
  }

  // The head, verified as a device would (but for its expiry): only a pointer the brand signed is
  // carried forward, never one a store or mirror put there.
  const input = await fetchPointer(store, brand, model, channel);
  const { pointer: previous } = verifyChannelPointer(input, opts.pointerKeys, { now, brandId: brand, model, channel, acceptExpired: true });
  const history = await readHistory(store, brand, model, channel);
  const sequence = nextSequence(history, previous.sequence);
  const pointer: ChannelPointer = {
    ...previous,
    sequence,
    expires: new Date(Math.floor((now.getTime() + lifetime) / 1000) * 1000),
    rollout: opts.rollout ?? previous.rollout,
    'sign-key-sha3-384': opts.pointerKey.publicKey.id,
  };
  const bytes = encodeChannelPointer(pointer);
  const signature = signChannelPointer(bytes, opts.pointerKey);
  const pPath = pointerPath(brand, model, channel);
  const sPath = pointerSigPath(brand, model, channel);
  verifyChannelPointer({ bytes, signature, file: pPath }, opts.pointerKeys, { now, brandId: brand, model, channel, lastAccepted: previous });
  if (!(await store.assertion('account-key', [pk!.id]))) await store.publishAssertions([pk!.assertion]);
  await writeHead(store, pPath, sPath, bytes, signature);

  const entry: ChannelRelease = { revision: pointer.revision, released: formatExpires(now), expires: formatExpires(pointer.expires), rollout: pointer.rollout, sequence, 'sign-key-sha3-384': pointer['sign-key-sha3-384'], updates: pointer.updates };
  const last = history.releases.at(-1);
  const releases = last?.revision === pointer.revision
    ? [...history.releases.slice(0, -1), { ...last, expires: entry.expires, rollout: entry.rollout, sequence, 'sign-key-sha3-384': entry['sign-key-sha3-384'], resigned: formatExpires(now) }]
    : [...history.releases, entry].slice(-HISTORY_KEEP);
  const next: ChannelHistory = { ...history, channel, releases };
  await store.backend.write(historyPath(brand, model, channel), Buffer.from(`${JSON.stringify(next, null, 2)}\n`));
  return { pointer, previous, pointerPath: pPath, signaturePath: sPath, history: next };
}

/**
 * The update files the other channels of this model name (in their histories, which hold every
 * channel's head), with their sha256: what a release may not overwrite with other bytes.
 */
async function namedByOtherChannels(store: Store, brand: string, model: string, channel: string): Promise<Map<string, string>> {
  const named = new Map<string, string>();
  for (const c of await readChannelIndex(store)) {
    if (c['brand-id'] !== brand || c.model !== model || checkChannel(c.channel) === channel) continue;
    for (const r of (await readHistory(store, brand, model, c.channel)).releases) for (const u of r.updates) named.set(u.path, u.sha256);
  }
  return named;
}

/**
 * The files an update in the store lists, from the head of its file alone (the manifest is its
 * first entry; the update may be hundreds of MB). Not verified: for a warning only, so a file that
 * is absent or does not read gives undefined rather than failing the release.
 */
async function storedFiles(store: Store, path: string, tmp: string): Promise<SlotFile[] | undefined> {
  const MAX_MANIFEST = 1 << 20;
  try {
    const { stream } = await store.backend.open(path);
    const chunks: Buffer[] = [];
    let got = 0;
    let need: number | undefined;
    for await (const c of stream) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (need === undefined && got >= 512) {
        const size = parseInt(Buffer.concat(chunks).subarray(124, 136).toString('latin1').replace(/[ \0]/g, ''), 8);
        if (!(size >= 0 && size <= MAX_MANIFEST)) return undefined;
        need = 512 + size;
      }
      if (need !== undefined && got >= need) break;
    }
    stream.destroy();
    writeFileSync(tmp, Buffer.concat(chunks));
    const [entry] = readTar(tmp, { first: 1 });
    if (entry?.name !== MANIFEST_ENTRY) return undefined;
    return parseUpdateManifest(readTarEntry(tmp, entry, MAX_MANIFEST), store.backend.locate(path)).files;
  } catch {
    return undefined;
  }
}

/** The system of revision `r`: the manifest of its full update in the store, verified. */
async function storedSystem(opts: ReleaseOptions, r: number, path: string, work: string): Promise<BaseSystem> {
  const { store, resolution } = opts;
  const m = resolution.model;
  const where = store.backend.locate(path);
  const file = join(work, `base-${r}.update`);
  let opened;
  try {
    opened = await store.backend.open(path);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_STORE_NOT_FOUND') throw e;
    throw new PointerError('ERR_RELEASE', `--from ${r}: no full update of ${m.brandId}/${m.model} revision ${r} in the store (${where}): deltas are made from a revision released to a channel of this store`, { field: 'from', found: r, file: where });
  }
  await pipeline(opened.stream, createWriteStream(file, { mode: 0o600 }));
  const layout = readUpdateLayout(file);
  const model = resolution.assertions.find((a) => a.type === 'model');
  const keys = model ? deviceTrustKeys(resolution, opts.trusted, model) : [];
  const signer = keys.find((a) => a.header('public-key-sha3-384') === layout.manifest['sign-key-sha3-384']);
  const ok = signer && verify('sha256', layout.manifestBytes, PublicKey.fromAccountKeyBody(signer.body!.toString()).keyObject, layout.signature);
  if (!ok) {
    throw new PointerError('ERR_RELEASE', `${where}: its manifest is not signed by a key the devices of ${m.brandId}/${m.model} trust (it names key ${layout.manifest['sign-key-sha3-384']}): no delta is made from it`, { file: where });
  }
  const man = layout.manifest;
  if (man['brand-id'] !== m.brandId || man.model !== m.model || man.revision !== r) {
    throw new PointerError('ERR_RELEASE', `${where}: expected the full update of ${m.brandId}/${m.model} revision ${r}, found one of ${man['brand-id']}/${man.model} revision ${man.revision}`, { file: where });
  }
  return { source: where, 'brand-id': man['brand-id'], model: man.model, revision: man.revision, files: man.files };
}
