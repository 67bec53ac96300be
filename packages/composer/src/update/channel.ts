import { checkChannel, type Store } from '@edgeimage/store';
import { PointerError } from './errors.js';
import type { PointerUpdate } from './pointer.js';

/**
 * The files of a channel in a store (the same names on every backend: a directory, which any
 * static web server can serve, or an OCI registry):
 *
 *   updates/BRAND.MODEL.REV.full.update            the full update of revision REV
 *   updates/BRAND.MODEL.REV.from-OLD.update        the delta from revision OLD to REV
 *   channels/BRAND.MODEL.TRACK+RISK[+BRANCH].pointer       the signed pointer: the channel's head
 *   channels/BRAND.MODEL.TRACK+RISK[+BRANCH].pointer.sig   its detached signature
 *   channels/BRAND.MODEL.TRACK+RISK[+BRANCH].history.json  the releases, newest last
 *   channels/index.json                            every channel of the store, for `channel show`
 *
 * Brand ids and model names have no `.` or `+` (snapd's rules), and channel parts no `+`, so no
 * two channels or updates share a name.
 */
const IDENT = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

function ident(what: string, v: string): string {
  if (!IDENT.test(v)) throw new PointerError('ERR_RELEASE', `${what} ${JSON.stringify(v)}: expected letters, digits and dashes (as snapd's account ids and model names), found other characters`, { field: what, found: v });
  return v;
}

/** The store name shared by a channel's files, without extension: `channels/acme.edge-pc.latest+stable`. */
export function channelBase(brandId: string, model: string, channel: string): string {
  return `channels/${ident('brand-id', brandId)}.${ident('model', model)}.${checkChannel(channel).split('/').join('+')}`;
}

export const pointerPath = (brandId: string, model: string, channel: string) => `${channelBase(brandId, model, channel)}.pointer`;
export const pointerSigPath = (brandId: string, model: string, channel: string) => `${pointerPath(brandId, model, channel)}.sig`;
export const historyPath = (brandId: string, model: string, channel: string) => `${channelBase(brandId, model, channel)}.history.json`;
export const CHANNEL_INDEX = 'channels/index.json';

/**
 * Where the update to `revision` from `from` (or the full update) lives in the store. With
 * `channel`: the name of one that differs from another channel's update of the same revision
 * (`updates/BRAND.MODEL.REV.full.TRACK+RISK.update`), since its slot carries its channel's
 * update.conf and pointer trust store.
 */
export function updatePath(brandId: string, model: string, revision: number, from: number | 'full', channel?: string): string {
  const own = channel === undefined ? '' : `.${checkChannel(channel).split('/').join('+')}`;
  return `updates/${ident('brand-id', brandId)}.${ident('model', model)}.${revision}.${from === 'full' ? 'full' : `from-${from}`}${own}.update`;
}

/** One release of a channel, as its history records it. */
export interface ChannelRelease {
  revision: number;
  /** When it was released (RFC 3339, UTC). */
  released: string;
  expires: string;
  rollout: number;
  /** The pointer's sequence (absent in a history written before pointers had one). */
  sequence?: number;
  /** When the pointer was last re-signed (`channel resign`), if it was: expires, rollout, key and sequence are then the re-signed pointer's. */
  resigned?: string;
  'sign-key-sha3-384': string;
  updates: PointerUpdate[];
}

export interface ChannelHistory {
  format: 1;
  'brand-id': string;
  model: string;
  channel: string;
  /** Oldest first; at most HISTORY_KEEP (the revisions deltas are made from by default). */
  releases: ChannelRelease[];
}

/** Releases a history keeps: a release without --from makes deltas from each of them. */
export const HISTORY_KEEP = 8;

export interface ChannelIndexEntry {
  'brand-id': string;
  model: string;
  channel: string;
  pointer: string;
}

function parseJson<T>(raw: Buffer, where: string, ok: (v: unknown) => boolean, expected: string): T {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new PointerError('ERR_RELEASE', `${where}: expected JSON (${expected}), found text that does not parse (${(e as Error).message})`, { file: where });
  }
  if (!ok(v)) throw new PointerError('ERR_RELEASE', `${where}: expected ${expected}`, { file: where });
  return v as T;
}

/** The channel's history in the store, or an empty one. */
export async function readHistory(store: Store, brandId: string, model: string, channel: string): Promise<ChannelHistory> {
  const path = historyPath(brandId, model, channel);
  const raw = await store.backend.read(path);
  const empty: ChannelHistory = { format: 1, 'brand-id': brandId, model, channel: checkChannel(channel), releases: [] };
  if (!raw) return empty;
  return parseJson<ChannelHistory>(raw, store.backend.locate(path), (v) => {
    const h = v as ChannelHistory;
    return typeof h === 'object' && h !== null && h.format === 1 && Array.isArray(h.releases) && h.releases.every((r) => Number.isSafeInteger(r.revision) && Array.isArray(r.updates));
  }, '{"format": 1, "releases": [{"revision": N, "updates": [...]}, ...]}');
}

/** Every channel of the store (`channels/index.json`), or none. */
export async function readChannelIndex(store: Store): Promise<ChannelIndexEntry[]> {
  const raw = await store.backend.read(CHANNEL_INDEX);
  if (!raw) return [];
  return parseJson<{ channels: ChannelIndexEntry[] }>(raw, store.backend.locate(CHANNEL_INDEX), (v) => Array.isArray((v as { channels?: unknown })?.channels), '{"channels": [...]}').channels;
}

/** The pointer of a channel and its signature, exactly as stored (not verified). */
export async function fetchPointer(store: Store, brandId: string, model: string, channel: string): Promise<{ bytes: Buffer; signature: Buffer; file: string; signatureFile: string }> {
  const path = pointerPath(brandId, model, channel);
  const sigPath = pointerSigPath(brandId, model, channel);
  const file = store.backend.locate(path);
  const bytes = await store.backend.read(path);
  if (!bytes) throw new PointerError('ERR_POINTER_NOT_FOUND', `${file}: no pointer for ${brandId}/${model} channel ${checkChannel(channel)} in the store (release one with "edgeimage update release")`, { file });
  const signature = await store.backend.read(sigPath);
  if (!signature) throw new PointerError('ERR_POINTER_NOT_FOUND', `${store.backend.locate(sigPath)}: the pointer has no signature file`, { file: store.backend.locate(sigPath) });
  return { bytes, signature, file, signatureFile: store.backend.locate(sigPath) };
}
