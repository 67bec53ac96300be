import {
  type Assertion,
  EdgeimageError,
  type ModelSnap,
  type ModelView,
  TrustDatabase,
  type ValidationSetView,
  assembleAs,
  assertionType,
  modelType,
  primaryKeyValue,
  refOf,
  validationSetType,
} from '@edgeimage/assertions';
import { readSnapYaml } from '../bundle/inspect.js';
import { fileDigest } from '../bundle/digest.js';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StoreError } from '../errors.js';
import { bundlePath, normaliseChannel, type SnapIndex } from '../layout.js';
import type { Store } from '../store.js';
import { BundleCache } from './cache.js';
import { downloadToCache } from './download.js';
import { defaultRetryPolicy, withRetry, type RetryPolicy } from './retry.js';
import { SequenceRecord } from './sequences.js';

/** One bundle of the resolution manifest (`resolve --json`). */
export interface ResolvedBundle {
  name: string;
  'snap-id': string;
  type: string;
  /** 0 for a local bundle (`--snap`), which nothing signed vouches for. */
  revision: number;
  'sha3-384': string;
  size: number;
  /** Where the bundle file is fetched from. */
  url: string;
  /** Its file in the cache. */
  path: string;
}

export interface Resolution {
  model: ModelView;
  bundles: ResolvedBundle[];
  /** Every assertion the resolution rests on, verified: the model's chain, validation-sets, declarations, revisions. */
  assertions: Assertion[];
  /** How many bundle files were downloaded (0 with a warm cache). */
  downloaded: number;
  /** The time the chain was checked at (now, or `--at`): the build time for key validity. */
  at: Date;
  /** The validation-set sequences this resolution verified (`16/ACCOUNT/NAME` → sequence). */
  validationSets: Readonly<Record<string, number>>;
  /**
   * Records `validationSets` next to the cache, raising (never lowering) the sequences already
   * seen. Call it only once the output built from this resolution is in place: a build refused
   * after its resolve (say by the composer) must leave the record as it was.
   */
  recordSequences(): Promise<void>;
}

export type ResolveEvent =
  | { kind: 'model'; model: string }
  | { kind: 'fetch-assertion'; ref: string }
  | { kind: 'plan'; bundles: { name: string; revision: number; size: number; cached: boolean }[] }
  | { kind: 'download-start'; name: string; size: number }
  | { kind: 'download-progress'; name: string; bytes: number }
  | { kind: 'download-done'; name: string }
  | { kind: 'retry'; what: string; attempt: number; delayMs: number; error: string }
  | { kind: 'cached'; name: string }
  /** A cache entry whose bytes no longer match its signed digest or size: not used, fetched again. */
  | { kind: 'cache-corrupt'; name: string; why: string };

export interface ResolveOptions {
  store: Store;
  /** Trust anchors (root and, for snap-declarations/revisions, the store's account and account-key). */
  trusted: Assertion[];
  at?: Date;
  cache?: BundleCache;
  allowUnpinned?: boolean;
  /** Bundles downloaded at once. Default 4. */
  concurrency?: number;
  retry?: RetryPolicy;
  onEvent?: (e: ResolveEvent) => void;
  /**
   * Local bundle files used instead of the store's, as `ubuntu-image --snap` does; allowed only
   * for models of grade dangerous (nothing signed vouches for them).
   */
  localBundles?: string[];
}

interface Pin {
  revision?: number;
  presence: string;
  set: string;
}

interface Planned {
  snap: ModelSnap;
  index: SnapIndex;
  revision: number;
  sha3_384: string;
  size: number;
  snapId: string;
}

const fail = (code: string, message: string, context: Record<string, unknown> = {}) => new StoreError(code, message, context);

/**
 * Resolves a signed model into verified bundle files in the cache, as snapd would seed it: the
 * model's chain first, then its validation-sets, then per snap the pinned revision (or the
 * default channel's), its snap-declaration and snap-revision, and finally the bundle file,
 * checked against the signed digest and size before it enters the cache.
 *
 * ```ts
 * const store = await Store.open('http://127.0.0.1:8080/store');
 * const r = await resolveModel(decodeStream(bytes, { file }), { store, trusted });
 * r.bundles.map((b) => b.path);
 * // … build the output from r and rename it into place, then:
 * await r.recordSequences();
 * ```
 */
export async function resolveModel(input: Assertion[], opts: ResolveOptions): Promise<Resolution> {
  const emit = opts.onEvent ?? (() => {});
  const policy = opts.retry ?? defaultRetryPolicy();
  const cache = opts.cache ?? new BundleCache();
  const db = new TrustDatabase({ trusted: opts.trusted, at: opts.at });
  const store = opts.store;
  const storeRead = <T>(what: string, fn: () => Promise<T>) =>
    withRetry(what, policy, fn, (e, attempt, delayMs) => emit({ kind: 'retry', what, attempt, delayMs, error: (e as Error).message }));
  // Every assertion taken from the store is the one asked for, or refused.
  const fetchAssertion = async (what: string, type: string, primaryKey: readonly string[]) =>
    askedFor(type, primaryKey, await storeRead(what, () => store.assertion(type, primaryKey)), store.backend.url);

  // Adds an assertion, fetching from the store the account-keys and accounts its chain needs.
  const ensure = async (a: Assertion, depth = 0): Promise<void> => {
    for (;;) {
      try {
        db.add(a);
        return;
      } catch (e) {
        if (!(e instanceof EdgeimageError) || depth > 4) throw e;
        const prereq = await prerequisite(e, a);
        if (!prereq) throw e;
        await ensure(prereq, depth + 1);
      }
    }
  };
  const fetched = new Set<string>();
  const prerequisite = async (e: EdgeimageError, a: Assertion): Promise<Assertion | undefined> => {
    let type: string;
    let key: string[];
    if (e.code === 'ERR_UNKNOWN_KEY') [type, key] = ['account-key', [a.signKeyId]];
    else if (e.code === 'ERR_MISSING_ACCOUNT') {
      const id = a.type === 'account-key' ? a.header('account-id') : a.type === 'snap-declaration' ? a.header('publisher-id') : a.header('developer-id');
      [type, key] = ['account', [id ?? '']];
    } else return undefined;
    const slot = `${type}/${key.join('.')}`;
    if (fetched.has(slot)) return undefined;
    fetched.add(slot);
    emit({ kind: 'fetch-assertion', ref: `${type} ${key.join(' ')}` });
    return fetchAssertion(`fetching ${slot}`, type, key);
  };

  // Declarations and revisions are the store's word: say how to trust it when that is what fails.
  const ensureStoreSigned = async (a: Assertion) => {
    try {
      await ensure(a);
    } catch (e) {
      if (e instanceof EdgeimageError && (e.code === 'ERR_UNKNOWN_KEY' || e.code === 'ERR_NOT_DIRECTLY_TRUSTED')) {
        throw new StoreError(e.code, `${e.message}; a store's snap-declarations and snap-revisions verify only when the store's account and account-key (signed by a trusted root) are given with --trusted`, e.context);
      }
      throw e;
    }
  };

  // 1. The model and the assertions given with it.
  const models = input.filter((a) => a.type === 'model');
  if (models.length !== 1) {
    const file = input[0]?.source.file ?? '<input>';
    throw fail('ERR_MODEL', `${file}: expected exactly one model assertion, found ${models.length}`, { file });
  }
  const modelAssertion = models[0]!;
  for (const a of input.filter((x) => x !== modelAssertion && x.type !== 'validation-set')) {
    try {
      await ensure(a);
    } catch {
      // Judged below only if the model needs it.
    }
  }
  await ensure(modelAssertion);
  const model = assembleAs(modelType, modelAssertion);
  emit({ kind: 'model', model: `${model.brandId}/${model.model}` });
  const arch = model.architecture;
  if (!arch) throw fail('ERR_MODEL', `${refOf(modelAssertion)}: the model names no architecture`);

  // Local bundles replace the store's for their snap, for dangerous models only.
  const local = new Map<string, { file: string; type: string; architectures: string[] }>();
  for (const file of opts.localBundles ?? []) {
    if (model.grade !== 'dangerous') {
      throw fail('ERR_SNAP_NOT_DANGEROUS', `--snap ${file}: local bundles are allowed only for models of grade dangerous, and ${refOf(modelAssertion)} is grade ${model.grade}; publish the bundle to a store and pin it in a validation-set instead`, { file });
    }
    const y = await readSnapYaml(file);
    if (!model.snaps.some((s) => s.name === y.name)) {
      throw fail('ERR_SNAP_NOT_IN_MODEL', `--snap ${file}: the model has no snap named "${y.name}" (it has ${model.snaps.map((s) => s.name).join(', ')})`, { file });
    }
    local.set(y.name, { file, type: y.type, architectures: y.architectures });
  }

  // 2. Validation-sets: from the input, else from the store; each verified. The sequence is the
  // one the model pins, else the highest offered, never below one already seen with this cache.
  const pins = new Map<string, Pin>();
  const sequences = new SequenceRecord(cache.dir);
  const verifiedSequences = new Map<string, number>();
  for (const vs of model.validationSets) {
    const set = `${vs.accountId}/${vs.name}`;
    const seen = vs.sequence === undefined ? sequences.seen(vs.accountId, vs.name) : 0;
    const given = input.filter(
      (a) => a.type === 'validation-set' && a.header('account-id') === vs.accountId && a.header('name') === vs.name && (vs.sequence === undefined || a.header('sequence') === String(vs.sequence)),
    );
    let chosen = given.sort((x, y) => Number(y.header('sequence')) - Number(x.header('sequence')))[0];
    if (!chosen) chosen = vs.sequence !== undefined ? await fetchValidationSet(vs.accountId, vs.name, vs.sequence) : await highestValidationSet(vs.accountId, vs.name, seen);
    if (!chosen) {
      throw fail('ERR_MISSING_VALIDATION_SET', `validation-set ${set}${vs.sequence ? ` sequence ${vs.sequence}` : ''}, named by the model, is neither in ${modelAssertion.source.file ?? 'the model file'} nor in the store ${store.backend.url}`, { set });
    }
    const sequence = Number(chosen.header('sequence'));
    if (sequence < seen) {
      throw fail(
        'ERR_VALIDATION_SET_ROLLBACK',
        `validation-set ${set}: sequence ${sequence} (${chosen.source.file ?? 'from the input'}) is older than sequence ${seen}, already resolved with the cache ${cache.dir} (recorded in ${sequences.file}); an older set would pin older revisions: pin the sequence in the model to go back on purpose`,
        { set, sequence, seen },
      );
    }
    await ensure(chosen);
    const view = assembleAs(validationSetType, chosen);
    if (view.accountId !== vs.accountId || view.name !== vs.name || (vs.sequence !== undefined && view.sequence !== vs.sequence)) {
      throw fail('ERR_STORE_WRONG_ASSERTION', `validation-set ${set}: got ${refOf(chosen)}, not the set the model names`, { set });
    }
    verifiedSequences.set(SequenceRecord.key(vs.accountId, vs.name), view.sequence);
    if (vs.mode === 'enforce' || vs.mode === 'prefer-enforce') addPins(pins, view);
  }

  function fetchValidationSet(accountId: string, name: string, sequence: number): Promise<Assertion | undefined> {
    return fetchAssertion(`fetching validation-set ${accountId}/${name} sequence ${sequence}`, 'validation-set', ['16', accountId, name, String(sequence)]);
  }

  /**
   * The highest sequence the store offers, from `seen` up, in at most about 2·log2 requests:
   * doubling steps find a sequence the store lacks, then a binary search finds the last one it
   * has (sequences are consecutive). A store without `seen` itself offers nothing usable.
   */
  async function highestValidationSet(accountId: string, name: string, seen: number): Promise<Assertion | undefined> {
    let low = Math.max(seen, 1);
    let best = await fetchValidationSet(accountId, name, low);
    if (!best && seen > 0) {
      throw fail(
        'ERR_VALIDATION_SET_ROLLBACK',
        `validation-set ${accountId}/${name}: the store ${store.backend.url} does not offer sequence ${seen}, already resolved with the cache ${cache.dir} (recorded in ${sequences.file}); refusing an older set: pin the sequence in the model to go back on purpose`,
        { set: `${accountId}/${name}`, seen },
      );
    }
    if (!best) return undefined;
    let high: number | undefined;
    for (let step = 1; high === undefined; step *= 2) {
      if (step > MAX_SEQUENCE_STEP) {
        throw fail('ERR_VALIDATION_SET_SEQUENCES', `validation-set ${accountId}/${name}: the store ${store.backend.url} offers sequences beyond ${low + step / 2}; refusing to search further: pin the sequence in the model`, { set: `${accountId}/${name}` });
      }
      const a = await fetchValidationSet(accountId, name, low + step);
      if (a) [low, best] = [low + step, a];
      else high = low + step;
    }
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      const a = await fetchValidationSet(accountId, name, mid);
      if (a) [low, best] = [mid, a];
      else high = mid;
    }
    return best;
  }

  // 3. Per snap: revision, declaration, revision assertion — all before any download.
  const unpinned = model.snaps.filter((s) => !local.has(s.name) && pins.get(s.name)?.revision === undefined && pins.get(s.name)?.presence !== 'invalid');
  if ((model.grade === 'signed' || model.grade === 'secured') && unpinned.length && !opts.allowUnpinned) {
    throw fail(
      'ERR_UNPINNED',
      `${refOf(modelAssertion)}: grade ${model.grade} but ${unpinned.map((s) => s.name).join(', ')} ${unpinned.length === 1 ? 'is' : 'are'} not pinned to a revision by a validation-set; pin ${unpinned.length === 1 ? 'it' : 'them'} or pass --allow-unpinned`,
      { snaps: unpinned.map((s) => s.name) },
    );
  }
  const planned: Planned[] = [];
  const localResolved: ResolvedBundle[] = [];
  for (const snap of model.snaps) {
    const mine = local.get(snap.name);
    if (mine) {
      const { sha3_384, size } = await fileDigest(mine.file);
      await checkBundle(mine.file, { snap, revision: 0 } as Planned, arch);
      localResolved.push({ name: snap.name, 'snap-id': snap.id ?? '', type: snap.type, revision: 0, 'sha3-384': sha3_384, size, url: pathToFileURL(resolvePath(mine.file)).href, path: resolvePath(mine.file) });
      continue;
    }
    const pin = pins.get(snap.name);
    const optional = snap.presence === 'optional';
    if (pin?.presence === 'invalid') {
      if (optional) continue;
      throw fail('ERR_VALIDATION', `${snap.name} is required by the model but invalid in validation-set ${pin.set}`, { snap: snap.name });
    }
    const index = await storeRead(`reading ${snap.name} from ${store.backend.url}`, () => store.snapIndex(snap.name));
    if (!index) {
      if (optional) continue;
      throw fail('ERR_STORE_NO_SNAP', `${snap.name} (required by the model) is not in the store ${store.backend.url}`, { snap: snap.name });
    }
    let revision = pin?.revision;
    if (revision === undefined) {
      const channel = normaliseChannel(snap.defaultChannel);
      const byArch = index.channels[channel];
      revision = byArch?.[arch] ?? byArch?.['all'];
      if (revision === undefined) {
        if (optional) continue;
        const have = Object.keys(index.channels).join(', ') || 'none';
        throw fail('ERR_STORE_NO_CHANNEL', `${snap.name} has no revision for ${arch} in channel ${channel} of ${store.backend.url} (channels: ${have})`, { snap: snap.name, channel, arch });
      }
    }
    const entry = index.revisions.find((r) => r.revision === revision);
    if (!entry) {
      throw fail('ERR_STORE_NO_REVISION', `${snap.name} revision ${revision}${pin ? ` (pinned by ${pin.set})` : ''} is not in the store ${store.backend.url} (revisions: ${index.revisions.map((r) => r.revision).join(', ') || 'none'})`, { snap: snap.name, revision });
    }
    const rev = await fetchAssertion(`fetching snap-revision of ${snap.name}`, 'snap-revision', [entry['sha3-384'], 'global-upload']);
    if (!rev) throw fail('ERR_STORE_NO_ASSERTION', `no snap-revision assertion for ${snap.name} revision ${revision} (sha3-384 ${entry['sha3-384']}) in ${store.backend.url}`, { snap: snap.name });
    const snapId = rev.header('snap-id')!;
    const decl = await fetchAssertion(`fetching snap-declaration of ${snap.name}`, 'snap-declaration', ['16', snapId]);
    if (!decl) throw fail('ERR_STORE_NO_ASSERTION', `no snap-declaration for ${snap.name} (snap-id ${snapId}) in ${store.backend.url}`, { snap: snap.name });
    await ensureStoreSigned(decl);
    await ensureStoreSigned(rev);
    checkBinding(snap, decl, rev, revision, entry['sha3-384'], entry.size);
    planned.push({ snap, index, revision, sha3_384: entry['sha3-384'], size: Number(rev.header('snap-size')), snapId });
  }

  // 4. Downloads, in parallel, into the cache.
  cache.prepare();
  const cachedBefore = await Promise.all(
    planned.map((p) => cache.verifiedLookup(p.sha3_384, p.size, (why) => emit({ kind: 'cache-corrupt', name: p.snap.name, why: `${why}: downloading it again` }))),
  );
  emit({ kind: 'plan', bundles: planned.map((p, i) => ({ name: p.snap.name, revision: p.revision, size: p.size, cached: Boolean(cachedBefore[i]) })) });
  let downloaded = 0;
  const paths = await mapLimit(planned, opts.concurrency ?? 4, async (p, i) => {
    const hit = cachedBefore[i];
    if (hit) {
      emit({ kind: 'cached', name: p.snap.name });
      return hit;
    }
    emit({ kind: 'download-start', name: p.snap.name, size: p.size });
    const path = await downloadToCache(store.backend, { snap: p.snap.name, path: bundlePath(p.snap.name, p.revision), sha3_384: p.sha3_384, size: p.size }, cache, policy, {
      onProgress: (bytes) => emit({ kind: 'download-progress', name: p.snap.name, bytes }),
      onRetry: (e, attempt, delayMs) => emit({ kind: 'retry', what: `download of ${p.snap.name}`, attempt, delayMs, error: (e as Error).message }),
      validate: (tmp) => checkBundle(tmp, p, arch),
    });
    downloaded++;
    emit({ kind: 'download-done', name: p.snap.name });
    return path;
  });

  return {
    model,
    downloaded,
    at: db.at,
    validationSets: Object.fromEntries(verifiedSequences),
    recordSequences: () => sequences.record(verifiedSequences),
    assertions: [modelAssertion, ...db.all().filter((a) => a !== modelAssertion)],
    bundles: [...localResolved, ...planned.map((p, i) => ({
      name: p.snap.name,
      'snap-id': p.snapId,
      type: p.snap.type,
      revision: p.revision,
      'sha3-384': p.sha3_384,
      size: p.size,
      url: store.backend.locate(bundlePath(p.snap.name, p.revision)),
      path: paths[i]!,
    }))].sort((a, b) => model.snaps.findIndex((s) => s.name === a.name) - model.snaps.findIndex((s) => s.name === b.name)),
  };
}

/** The largest forward step of the sequence search: 2^20 sequences past the last one known. */
const MAX_SEQUENCE_STEP = 1 << 20;

/**
 * A store must serve the assertion asked for: the same type and the same value for every
 * primary-key header. Otherwise a store (or whoever sits in front of it) could answer one
 * request with another valid, signed assertion, such as an older validation-set.
 */
function askedFor(type: string, primaryKey: readonly string[], a: Assertion | undefined, url: string): Assertion | undefined {
  if (!a) return undefined;
  const t = assertionType(type)!;
  const want = t.primaryKey.map((k, i) => primaryKey[i] ?? t.optionalPrimaryKeyDefaults?.[k] ?? '');
  const asked = `${type} ${t.primaryKey.map((k, i) => `${k}=${want[i]}`).join(' ')}`;
  const differs = a.type !== type || t.primaryKey.some((k, i) => primaryKeyValue(t, a, k) !== want[i]);
  if (differs) {
    throw fail('ERR_STORE_WRONG_ASSERTION', `asked the store ${url} for ${asked}, it served ${refOf(a)} (${a.source.file ?? 'no file'}); refused`, { asked, served: refOf(a) });
  }
  return a;
}

function addPins(pins: Map<string, Pin>, vs: ValidationSetView): void {
  const set = `${vs.accountId}/${vs.name}/${vs.sequence}`;
  for (const s of vs.snaps) {
    const prior = pins.get(s.name);
    if (prior && prior.revision !== undefined && s.revision !== undefined && prior.revision !== s.revision) {
      throw fail('ERR_VALIDATION', `validation-sets ${prior.set} and ${set} pin ${s.name} to different revisions (${prior.revision} and ${s.revision})`, { snap: s.name });
    }
    pins.set(s.name, { revision: s.revision ?? prior?.revision, presence: s.presence === 'invalid' || prior?.presence === 'invalid' ? 'invalid' : s.presence, set });
  }
}

/** The signed assertions must bind this snap name, snap-id and revision together. */
function checkBinding(snap: ModelSnap, decl: Assertion, rev: Assertion, revision: number, sha3: string, size: number): void {
  const declId = decl.header('snap-id');
  if (decl.header('snap-name') !== snap.name) {
    throw fail('ERR_SNAP_ID_MISMATCH', `snap-declaration for snap-id ${declId} names "${decl.header('snap-name')}", not "${snap.name}"`, { snap: snap.name });
  }
  if (snap.id && snap.id !== declId) {
    throw fail('ERR_SNAP_ID_MISMATCH', `the model gives ${snap.name} snap-id ${snap.id}, but the store's snap-declaration says ${declId}`, { snap: snap.name });
  }
  if (rev.header('snap-id') !== declId) {
    throw fail('ERR_SNAP_ID_MISMATCH', `snap-revision for ${snap.name} is for snap-id ${rev.header('snap-id')}, not ${declId}`, { snap: snap.name });
  }
  if (rev.header('snap-revision') !== String(revision)) {
    throw fail('ERR_SNAP_REVISION_MISMATCH', `snap-revision for ${snap.name} says revision ${rev.header('snap-revision')}, the store index says ${revision}`, { snap: snap.name });
  }
  if (rev.header('snap-sha3-384') !== sha3 || rev.header('snap-size') !== String(size)) {
    throw fail('ERR_SNAP_REVISION_MISMATCH', `snap-revision for ${snap.name} revision ${revision} does not match the store index (digest or size differ)`, { snap: snap.name });
  }
}

/** What only the bundle itself can tell: its name, type and architectures (from meta/snap.yaml). */
async function checkBundle(file: string, p: Planned, arch: string): Promise<void> {
  const y = await readSnapYaml(file);
  if (y.name !== p.snap.name) throw fail('ERR_BUNDLE_NAME', `bundle for ${p.snap.name} revision ${p.revision} is named "${y.name}" in its meta/snap.yaml`, { snap: p.snap.name });
  const want = p.snap.type === 'core' ? 'base' : p.snap.type;
  if (y.type !== want && !(want === 'app' && y.type === undefined)) {
    throw fail('ERR_WRONG_TYPE', `${p.snap.name} revision ${p.revision} is of type ${y.type}, but the model needs type ${want}`, { snap: p.snap.name, expected: want, actual: y.type });
  }
  if (!y.architectures.includes(arch) && !y.architectures.includes('all')) {
    throw fail('ERR_WRONG_ARCH', `${p.snap.name} revision ${p.revision} is built for ${y.architectures.join(', ')}, but the model is for ${arch}`, { snap: p.snap.name, expected: arch, actual: y.architectures });
  }
}

/** Runs `fn` over items with at most `limit` at once, keeping order; the first failure wins. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure;
  return out;
}
