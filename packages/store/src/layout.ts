/**
 * The files of a store (the same names on every backend):
 *
 *   store.json                               {"format": 1, "authority-id": ID, "key-id": KEYID, "key-name": NAME}
 *   index.json                               {"snaps": [NAME...]} — what `store list` enumerates
 *   snaps/NAME/index.json                    SnapIndex: snap-id, type, revisions, channel map
 *   snaps/NAME/REVISION.snap                 the bundle file of a revision, exactly as published
 *   assertions/TYPE/KEY.assert               one assertion per file, KEY = its primary key values
 *                                            joined with '.', in the type's primary-key order
 *
 * Every name is made of characters valid in a URL path, a file name and an OCI tag.
 */
export const STORE_FORMAT = 1;

export const storeMetaPath = 'store.json';
export const storeIndexPath = 'index.json';
export const snapIndexPath = (name: string) => `snaps/${name}/index.json`;
export const bundlePath = (name: string, revision: number) => `snaps/${name}/${revision}.snap`;
export function assertionPath(type: string, primaryKey: readonly string[]): string {
  return `assertions/${type}/${primaryKey.join('.')}.assert`;
}

export interface StoreMeta {
  format: number;
  'authority-id': string;
  /** The store's signing key id (sign-key-sha3-384 of its snap-declarations and snap-revisions). */
  'key-id': string;
  /** The name of that key in the publisher's keyring (not secret: it only names the key file). */
  'key-name'?: string;
}

export interface StoreIndex {
  snaps: string[];
}

export interface RevisionEntry {
  revision: number;
  'sha3-384': string;
  size: number;
  architectures: string[];
  version: string;
}

/** One snap in a store: its revisions and its channel map (channel → architecture → revision). */
export interface SnapIndex {
  name: string;
  'snap-id': string;
  type: string;
  publisher: string;
  revisions: RevisionEntry[];
  channels: Record<string, Record<string, number>>;
}

/** snapd's channel normalisation: `stable` is `latest/stable`; a bare track gets `/stable`. */
export function normaliseChannel(channel: string): string {
  const risks = ['stable', 'candidate', 'beta', 'edge'];
  const parts = channel.split('/');
  if (parts.length === 1) return risks.includes(parts[0]!) ? `latest/${parts[0]}` : `${parts[0]}/stable`;
  if (parts.length === 2 && !risks.includes(parts[1]!) && risks.includes(parts[0]!)) return `latest/${channel}`;
  return channel;
}

/** A channel as an OCI tag: `latest/stable` + amd64 → `latest_stable_amd64`. */
export function channelTag(channel: string, arch: string): string {
  return `${normaliseChannel(channel)}/${arch}`.replace(/[^A-Za-z0-9_.-]/g, '_');
}
