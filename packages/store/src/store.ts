import { readdir } from 'node:fs/promises';
import {
  ACCOUNT_ID,
  SNAP_ID,
  assembleAssertion,
  assertionType,
  decodeStream,
  isValidSnapName,
  primaryKeyValue,
  refOf,
  signAssertion,
  snapIdFor,
  type Assertion,
  type PrivateKey,
} from '@edgeimage/assertions';
import type { StoreBackend } from './backends/backend.js';
import { DirBackend } from './backends/dir.js';
import { openBackend } from './backends/open.js';
import { readBundleInfo } from './bundle/inspect.js';
import { StoreError } from './errors.js';
import {
  STORE_FORMAT,
  assertionPath,
  bundlePath,
  channelTag,
  normaliseChannel,
  snapIndexPath,
  storeIndexPath,
  storeMetaPath,
  type RevisionEntry,
  type SnapIndex,
  type StoreIndex,
  type StoreMeta,
} from './layout.js';

export interface PublishResult {
  name: string;
  snapId: string;
  revision: number;
  sha3_384: string;
  size: number;
  architectures: string[];
  type: string;
  /** Assertions written: the snap-declaration (on first publish) and the snap-revision. */
  assertions: Assertion[];
}

/** store.json as written by `Store.init`: `key-name` is the key's name in the publisher's keyring. */
export type StoreMetaFile = StoreMeta & { 'key-name'?: string };

const RISKS = ['stable', 'candidate', 'beta', 'edge'];
const TRACK = /^[a-zA-Z0-9](?:[_.-]?[a-zA-Z0-9])*$/;
const BRANCH = /^[a-zA-Z0-9](?:[_.-]?[a-zA-Z0-9])*$/;

/**
 * A channel in its full form, `track/risk[/branch]`: `stable` → `latest/stable`, `22` →
 * `22/stable`, `edge/fix-1` → `latest/edge/fix-1`, as snapd reads them. Throws ERR_STORE_CHANNEL.
 *
 * ```ts
 * checkChannel('stable'); // 'latest/stable'
 * ```
 */
export function checkChannel(channel: string): string {
  const full = normaliseChannel(channel);
  const [track, risk, branch, ...rest] = full.split('/');
  const bad = (why: string) =>
    new StoreError('ERR_STORE_CHANNEL', `invalid channel ${JSON.stringify(channel)}: ${why}; expected track/risk[/branch] with risk one of ${RISKS.join('|')} (e.g. stable, latest/edge, 22/candidate)`, { channel });
  if (rest.length > 0) throw bad('too many parts');
  if (!track || track.length > 28 || !TRACK.test(track)) throw bad(`track ${JSON.stringify(track ?? '')} is not a track name`);
  if (!risk || !RISKS.includes(risk)) throw bad(`risk ${JSON.stringify(risk ?? '')} is not a risk`);
  if (branch !== undefined && (branch.length > 128 || !BRANCH.test(branch))) throw bad(`branch ${JSON.stringify(branch)} is not a branch name`);
  return full;
}

/**
 * Where an assertion lives in a store: `assertions/TYPE/KEY.assert`, KEY being its primary-key
 * values in the type's order, optional ones (snap-revision `provenance`) with their defaults.
 */
export function assertionPathOf(a: Assertion): string {
  const t = assertionType(a.type);
  if (!t) throw new StoreError('ERR_STORE_ASSERTION_TYPE', `cannot store a ${JSON.stringify(a.type)} assertion: unknown assertion type`, { type: a.type });
  return assertionPath(a.type, t.primaryKey.map((k) => primaryKeyValue(t, a, k) ?? ''));
}

function parseJson<T>(bytes: Buffer, where: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (e) {
    throw new StoreError('ERR_STORE_CORRUPT', `${where}: not valid JSON (${(e as Error).message})`, { file: where });
  }
}

const json = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);

/**
 * A store: bundle files, the assertions that bind them, and a channel map, on any backend (a
 * directory, a static web server, an OCI registry). The files are those of `layout.ts`:
 *
 *   store.json                      format, authority-id, key-id and key-name of the store's key
 *   index.json                      the snap names
 *   snaps/NAME/index.json           snap-id, type, publisher, revisions, channel → arch → revision
 *   snaps/NAME/REVISION.snap        the bundle files, byte for byte as published
 *   assertions/TYPE/KEY.assert      one assertion each (see `assertionPathOf`)
 *
 * What a store must hold for `resolve` to accept its bundles (snapd's trust rules):
 *
 * - For each snap, a snap-declaration (snap-id ↔ name, publisher) and for each revision a
 *   snap-revision (sha3-384 + size ↔ snap-id + revision), both signed by the store's key as its
 *   `authority-id`. `publish` writes them. The store's authority must be *directly trusted* by the
 *   resolver: its `account` and `account-key` (signed by a root the resolver trusts) are passed to
 *   `resolve --trusted`; they may be published to the store too, for reference.
 * - An `account` assertion for every publisher-id / developer-id the declarations and revisions
 *   name (`publish-assertion`). When the publisher is the store's authority, that is the store's
 *   own account.
 * - The validation-sets the models name, and the account and account-key of each set's signer
 *   (unless they travel with the model).
 *
 * One writer at a time: publishing to the same store from two processes at once can lose an
 * index update. Writes are ordered so that a crash leaves no index entry naming a missing file:
 * the bundle, then its assertions, then the snap's index, then the store index.
 *
 * ```ts
 * const store = await Store.init('./store', { authorityId: 'acme-store', key, keyName: 'store' });
 * const r = await store.publish('hello_1.0_amd64.snap', { channel: 'stable', key });
 * await store.release('hello', r.revision, 'latest/candidate');
 * const same = await Store.open('http://127.0.0.1:8080/store'); // the same files, served read-only
 * ```
 */
export class Store {
  private constructor(
    readonly backend: StoreBackend,
    readonly meta: StoreMetaFile,
  ) {}

  get url(): string {
    return this.backend.url;
  }

  /** Opens an existing store: a path or file:// (directory), http(s):// (read-only), oci://host:port/namespace. */
  static async open(url: string | StoreBackend): Promise<Store> {
    const backend = typeof url === 'string' ? openBackend(url) : url;
    const raw = await backend.read(storeMetaPath);
    if (!raw) {
      throw new StoreError('ERR_STORE_NOT_FOUND', `not an edgeimage store: no store.json at ${backend.locate(storeMetaPath)} (create one with "edgeimage store init")`, { url: backend.url });
    }
    const where = backend.locate(storeMetaPath);
    const meta = parseJson<StoreMetaFile>(raw, where);
    if (typeof meta !== 'object' || meta === null || typeof meta.format !== 'number' || typeof meta['authority-id'] !== 'string' || typeof meta['key-id'] !== 'string') {
      throw new StoreError('ERR_STORE_CORRUPT', `${where}: expected {"format": N, "authority-id": ID, "key-id": KEYID, "key-name": NAME}`, { file: where });
    }
    if (meta.format > STORE_FORMAT) {
      throw new StoreError('ERR_STORE_FORMAT', `${where}: store format ${meta.format} is newer than this edgeimage reads (format ${STORE_FORMAT}); upgrade edgeimage`, { file: where, format: meta.format });
    }
    return new Store(backend, meta);
  }

  /**
   * Creates a store signed by `key` as `authorityId`: writes store.json and an empty index. Refuses
   * a location that already holds a store, and a directory that is not empty.
   */
  static async init(url: string | StoreBackend, opts: { authorityId: string; key: PrivateKey; keyName: string }): Promise<Store> {
    const backend = typeof url === 'string' ? openBackend(url) : url;
    if (!backend.writable) throw readOnlyError(backend.url, 'create a store at');
    if (!ACCOUNT_ID.test(opts.authorityId)) {
      throw new StoreError('ERR_STORE_AUTHORITY', `invalid authority-id ${JSON.stringify(opts.authorityId)}: expected an account id (2-28 lower-case letters, digits and dashes)`, { authorityId: opts.authorityId });
    }
    const existing = await backend.read(storeMetaPath);
    if (existing) {
      throw new StoreError('ERR_STORE_EXISTS', `a store already exists at ${backend.url} (${backend.locate(storeMetaPath)}); open it, or init a new store elsewhere`, { url: backend.url });
    }
    if (backend instanceof DirBackend) {
      const entries = await readdir(backend.root).catch(() => []);
      if (entries.length > 0) {
        throw new StoreError('ERR_STORE_EXISTS', `${backend.root} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); a store is created in a new or empty directory`, { url: backend.url });
      }
    }
    const meta: StoreMetaFile = { format: STORE_FORMAT, 'authority-id': opts.authorityId, 'key-id': opts.key.publicKey.id, 'key-name': opts.keyName };
    // store.json first: a store whose init was cut short opens with an empty list (no index.json).
    await backend.write(storeMetaPath, json(meta));
    await backend.write(storeIndexPath, json({ snaps: [] } satisfies StoreIndex));
    return new Store(backend, meta);
  }

  /**
   * Publishes a bundle file as the next revision of its snap and releases it to `channel` for each
   * of its architectures. On the first publish of a name, declares the snap: its snap-id is
   * `snapId`, else derived from the store's authority and the name (`snapIdFor`). `key` must be
   * the store's key; `publisher` (default: the store's authority) is the snap's publisher-id and
   * the revision's developer-id.
   */
  async publish(file: string, opts: { channel: string; key: PrivateKey; publisher?: string; snapId?: string }): Promise<PublishResult> {
    this.requireWritable();
    const channel = checkChannel(opts.channel);
    this.requireStoreKey(opts.key);
    if (opts.publisher !== undefined && !ACCOUNT_ID.test(opts.publisher)) {
      throw new StoreError('ERR_STORE_PUBLISHER', `invalid publisher ${JSON.stringify(opts.publisher)}: expected an account id`, { publisher: opts.publisher });
    }
    if (opts.snapId !== undefined && !SNAP_ID.test(opts.snapId)) {
      throw new StoreError('ERR_STORE_SNAP_ID', `invalid snap-id ${JSON.stringify(opts.snapId)}: expected 32 letters and digits`, { snapId: opts.snapId });
    }
    const info = await readBundleInfo(file);
    const { name, type, version } = info.snap;
    const architectures = [...info.snap.architectures].sort();
    checkSnapName(name);
    const authority = this.meta['authority-id'];
    const signed: Assertion[] = [];

    const existing = await this.snapIndex(name);
    let index: SnapIndex;
    let declaration: Assertion | undefined;
    if (existing) {
      const where = `snap ${name} (snap-id ${existing['snap-id']}) in ${this.url}`;
      if (opts.snapId !== undefined && opts.snapId !== existing['snap-id']) {
        throw new StoreError('ERR_STORE_SNAP_ID', `${where}: --snap-id ${opts.snapId} differs from the snap-id it was declared with`, { snap: name, expected: existing['snap-id'], actual: opts.snapId });
      }
      if (opts.publisher !== undefined && opts.publisher !== existing.publisher) {
        throw new StoreError('ERR_STORE_PUBLISHER', `${where}: publisher ${opts.publisher} differs from its declared publisher ${existing.publisher}`, { snap: name, expected: existing.publisher, actual: opts.publisher });
      }
      if (type !== existing.type) {
        throw new StoreError('ERR_STORE_SNAP_TYPE', `${file}: ${where} is of type ${existing.type}, but this bundle is of type ${type}`, { snap: name, expected: existing.type, actual: type });
      }
      const same = existing.revisions.find((r) => r['sha3-384'] === info.sha3_384);
      if (same) {
        throw new StoreError('ERR_STORE_DUPLICATE', `${file} is already revision ${same.revision} of ${name}; release that revision instead ("edgeimage store release STORE ${name} ${same.revision} CHANNEL")`, { snap: name, revision: same.revision });
      }
      index = { ...existing, revisions: [...existing.revisions], channels: { ...existing.channels } };
    } else {
      const snapId = opts.snapId ?? snapIdFor(authority, name);
      const taken = await this.assertion('snap-declaration', ['16', snapId]);
      if (taken && taken.header('snap-name') !== name) {
        throw new StoreError('ERR_STORE_SNAP_ID', `snap-id ${snapId} is already declared for snap ${taken.header('snap-name')} in ${this.url}`, { snap: name, snapId });
      }
      const publisher = opts.publisher ?? authority;
      declaration = signAssertion(
        { type: 'snap-declaration', 'authority-id': authority, series: '16', 'snap-id': snapId, 'snap-name': name, 'publisher-id': publisher },
        undefined,
        opts.key,
      );
      index = { name, 'snap-id': snapId, type, publisher, revisions: [], channels: {} };
    }

    const revision = Math.max(0, ...index.revisions.map((r) => r.revision)) + 1;
    const revisionAssertion = signAssertion(
      {
        type: 'snap-revision',
        'authority-id': authority,
        'snap-sha3-384': info.sha3_384,
        'snap-id': index['snap-id'],
        'snap-size': String(info.size),
        'snap-revision': String(revision),
        'developer-id': index.publisher,
      },
      undefined,
      opts.key,
    );

    // The files an index entry will name come first; the indexes last.
    await this.backend.writeFile(bundlePath(name, revision), file);
    if (declaration) {
      await this.backend.write(assertionPathOf(declaration), declaration.encode());
      signed.push(declaration);
    }
    await this.backend.write(assertionPathOf(revisionAssertion), revisionAssertion.encode());
    signed.push(revisionAssertion);

    const entry: RevisionEntry = { revision, 'sha3-384': info.sha3_384, size: info.size, architectures, version };
    index.revisions.push(entry);
    index.channels[channel] = { ...index.channels[channel], ...Object.fromEntries(architectures.map((a) => [a, revision])) };
    await this.backend.write(snapIndexPath(name), json(index));
    if (!existing) {
      const names = await this.names();
      if (!names.includes(name)) await this.backend.write(storeIndexPath, json({ snaps: [...names, name].sort() } satisfies StoreIndex));
    }
    await this.tagChannel(name, channel, architectures, revision);
    return { name, snapId: index['snap-id'], revision, sha3_384: info.sha3_384, size: info.size, architectures, type, assertions: signed };
  }

  /**
   * Stores an assertion (validation-set, account, account-key, …) at its place in the store and
   * returns that path. A lower revision than the stored one is refused, and so is the same revision
   * with other content (ERR_REVISION_NOT_NEWER); the very same assertion again is a no-op. The
   * signature is not checked here: the resolver checks every assertion through its chain.
   */
  async publishAssertion(a: Assertion): Promise<string> {
    return (await this.publishAssertions([a]))[0]!;
  }

  /** `publishAssertion` for several, all checked before any is written. Returns their paths. */
  async publishAssertions(list: readonly Assertion[]): Promise<string[]> {
    this.requireWritable();
    const planned: { path: string; assertion: Assertion; unchanged: boolean }[] = [];
    for (const a of list) {
      const path = assertionPathOf(a);
      assembleAssertion(a);
      const earlier = planned.find((p) => p.path === path)?.assertion;
      const stored = earlier ?? (await this.readAssertion(path));
      let unchanged = false;
      if (stored) {
        const ref = refOf(a);
        if (a.revision < stored.revision) {
          throw new StoreError('ERR_REVISION_NOT_NEWER', `${ref}: revision ${a.revision} is older than revision ${stored.revision} in the store at ${this.url}`, { assertion: ref, current: stored.revision, offered: a.revision });
        }
        if (a.revision === stored.revision) {
          if (!a.encode().equals(stored.encode())) {
            throw new StoreError('ERR_REVISION_NOT_NEWER', `${ref}: revision ${a.revision} is already in the store at ${this.url} with other content; publish it with a higher revision`, { assertion: ref, current: stored.revision, offered: a.revision });
          }
          unchanged = true;
        }
      }
      planned.push({ path, assertion: a, unchanged });
    }
    for (const p of planned) if (!p.unchanged) await this.backend.write(p.path, p.assertion.encode());
    return planned.map((p) => p.path);
  }

  /** Points `channel` at `revision` of snap `name`, for each architecture of that revision. */
  async release(name: string, revision: number, channel: string): Promise<SnapIndex> {
    this.requireWritable();
    const full = checkChannel(channel);
    const index = await this.snapIndex(name);
    if (!index) {
      const names = await this.names();
      throw new StoreError('ERR_STORE_NO_SNAP', `no snap ${name} in the store at ${this.url} (snaps there: ${names.length ? names.join(', ') : 'none'})`, { snap: name });
    }
    const entry = index.revisions.find((r) => r.revision === revision);
    if (!entry) {
      const have = index.revisions.map((r) => r.revision).sort((x, y) => x - y);
      throw new StoreError('ERR_STORE_NO_REVISION', `snap ${name} has no revision ${revision} in the store at ${this.url} (revisions: ${have.join(', ') || 'none'})`, { snap: name, revision, revisions: have });
    }
    const updated: SnapIndex = { ...index, channels: { ...index.channels, [full]: { ...index.channels[full], ...Object.fromEntries(entry.architectures.map((a) => [a, revision])) } } };
    await this.backend.write(snapIndexPath(name), json(updated));
    await this.tagChannel(name, full, entry.architectures, revision);
    return updated;
  }

  /** Every snap of the store, by name. */
  async list(): Promise<SnapIndex[]> {
    const out: SnapIndex[] = [];
    for (const name of await this.names()) {
      const index = await this.snapIndex(name);
      if (index) out.push(index);
    }
    return out;
  }

  async snapIndex(name: string): Promise<SnapIndex | undefined> {
    checkSnapName(name);
    const raw = await this.backend.read(snapIndexPath(name));
    return raw ? parseJson<SnapIndex>(raw, this.backend.locate(snapIndexPath(name))) : undefined;
  }

  /**
   * The assertion of `type` with this primary key (values in the type's primary-key order), or
   * undefined. Trailing optional primary-key values may be left out (snap-revision `provenance`).
   */
  async assertion(type: string, primaryKey: readonly string[]): Promise<Assertion | undefined> {
    const t = assertionType(type);
    if (!t) throw new StoreError('ERR_STORE_ASSERTION_TYPE', `unknown assertion type ${JSON.stringify(type)}`, { type });
    const values = t.primaryKey.map((k, i) => primaryKey[i] ?? t.optionalPrimaryKeyDefaults?.[k]);
    if (values.some((v) => v === undefined) || primaryKey.length > t.primaryKey.length) {
      throw new StoreError('ERR_STORE_ASSERTION_KEY', `a ${type} assertion is found by ${t.primaryKey.join(', ')}; got ${JSON.stringify(primaryKey)}`, { type });
    }
    return this.readAssertion(assertionPath(type, values as string[]));
  }

  private async readAssertion(path: string): Promise<Assertion | undefined> {
    const raw = await this.backend.read(path);
    if (!raw) return undefined;
    const [a] = decodeStream(raw, { file: this.backend.locate(path) });
    return a;
  }

  private async names(): Promise<string[]> {
    const raw = await this.backend.read(storeIndexPath);
    if (!raw) return [];
    const index = parseJson<StoreIndex>(raw, this.backend.locate(storeIndexPath));
    return Array.isArray(index.snaps) ? index.snaps : [];
  }

  private async tagChannel(name: string, channel: string, architectures: readonly string[], revision: number): Promise<void> {
    if (!this.backend.tagChannel) return;
    for (const arch of architectures) await this.backend.tagChannel(name, channelTag(channel, arch), bundlePath(name, revision));
  }

  private requireWritable(): void {
    if (!this.backend.writable) throw readOnlyError(this.url, 'publish to');
  }

  private requireStoreKey(key: PrivateKey): void {
    if (key.publicKey.id === this.meta['key-id']) return;
    const name = this.meta['key-name'] ? ` (key-name "${this.meta['key-name']}")` : '';
    throw new StoreError(
      'ERR_STORE_KEY',
      `key ${key.publicKey.id} is not the key of the store at ${this.url}: the store signs as ${this.meta['authority-id']} with key ${this.meta['key-id']}${name}`,
      { url: this.url, expected: this.meta['key-id'], actual: key.publicKey.id },
    );
  }
}

function readOnlyError(url: string, what: string): StoreError {
  return new StoreError('ERR_STORE_READ_ONLY', `cannot ${what} ${url}: HTTP stores are read-only; publish to the directory or OCI store that this URL serves`, { url });
}

function checkSnapName(name: string): void {
  if (!isValidSnapName(name)) throw new StoreError('ERR_STORE_SNAP_NAME', `invalid snap name ${JSON.stringify(name)}`, { snap: name });
}
