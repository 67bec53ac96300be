import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Assertion } from '@edgeimage/assertions';
import { Store } from '../store.js';
import { assertionPath } from '../layout.js';
import { BundleCache } from './cache.js';
import { resolveModel, type ResolveOptions } from './resolve.js';
import { SequenceRecord } from './sequences.js';
import { AT, SNAPS, makeWorld, type World } from '@edgeimage/testkit/store-world';
import type { StoreError } from '../errors.js';

// What a store may not do to a build: serve another assertion than the one asked for, or an older
// validation-set than one already resolved, or lead the sequence search on forever.

const FAST_RETRY = { retries: 1, baseDelayMs: 5 };
let world: World;
let n = 0;
const newCache = () => new BundleCache(join(world.dir, `cache-${++n}`));
const pinsOf = (seq: number, hello: number) => world.validationSet({ ...Object.fromEntries(SNAPS.map((s) => [s.name, 1])), hello }, { sequence: String(seq) });

beforeAll(async () => {
  world = await makeWorld();
  // hello revision 2, pinned by sequence 2 of acme/world (sequence 1 pins revision 1).
  expect(await world.publish({ ...SNAPS.find((s) => s.name === 'hello')!, payload: 200_001 })).toBe(2);
  await world.store.publishAssertion(pinsOf(2, 2));
}, 60_000);

afterAll(() => world?.cleanup());

const modelInput = (model = world.model()) => [...world.brandAssertions, model];

async function resolveWith(input: Assertion[], opts: Partial<ResolveOptions> = {}) {
  return resolveModel(input, { store: opts.store ?? (await Store.open(world.storeDir)), trusted: world.trusted, at: AT, cache: opts.cache ?? newCache(), retry: FAST_RETRY, ...opts });
}

/** A resolve whose output is in place, so it records its sequences, as `build` does. */
async function resolveAndRecord(input: Assertion[], opts: Partial<ResolveOptions> = {}) {
  const r = await resolveWith(input, opts);
  await r.recordSequences();
  return r;
}

async function failure(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    return e as StoreError;
  }
  throw new Error('expected the resolve to fail');
}

/** A copy of the world's store, to tamper with. */
function storeCopy(name: string): string {
  const dir = join(world.dir, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(world.storeDir, dir, { recursive: true });
  return dir;
}

const vsPath = (seq: number, name = 'world') => assertionPath('validation-set', ['16', 'acme', name, String(seq)]);

/** Nothing entered the cache: no bundle, no temp file, no sequence record. */
function expectNothingWritten(cache: BundleCache) {
  const files = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  expect(files(cache.bundlesDir)).toEqual([]);
  expect(files(cache.tmpDir)).toEqual([]);
  expect(existsSync(new SequenceRecord(cache.dir).file)).toBe(false);
}

describe('every assertion taken from a store is the one asked for', () => {
  test('an older sequence served in place of the pinned one is refused, naming both', async () => {
    const dir = storeCopy('store-old-for-new');
    writeFileSync(join(dir, vsPath(2)), readFileSync(join(dir, vsPath(1))));
    const model = world.model({ 'validation-sets': [{ 'account-id': 'acme', name: 'world', sequence: '2', mode: 'enforce' }] as never });
    const cache = newCache();
    const e = await failure(resolveWith(modelInput(model), { store: await Store.open(dir), cache }));
    expect(e.code).toBe('ERR_STORE_WRONG_ASSERTION');
    expect(e.message).toContain('for validation-set series=16 account-id=acme name=world sequence=2, it served validation-set series=16 account-id=acme name=world sequence=1');
    expectNothingWritten(cache);
  });

  test('another set, or another type, served at the path of the one asked for is refused', async () => {
    const dir = storeCopy('store-other-set');
    const other = world.validationSet({ hello: 1 }, { name: 'other' });
    writeFileSync(join(dir, vsPath(1)), other.encode());
    rmSync(join(dir, vsPath(2)));
    const cache = newCache();
    const e = await failure(resolveWith(modelInput(), { store: await Store.open(dir), cache }));
    expect(e.code).toBe('ERR_STORE_WRONG_ASSERTION');
    expect(e.message).toMatch(/it served validation-set series=16 account-id=acme name=other sequence=1/);
    expectNothingWritten(cache);

    const dir2 = storeCopy('store-other-type');
    const sha = (await world.store.snapIndex('hello'))!.revisions.find((r) => r.revision === 2)!['sha3-384'];
    const decl = readFileSync(join(dir2, assertionPath('snap-declaration', ['16', world.snapId('hello')])));
    writeFileSync(join(dir2, assertionPath('snap-revision', [sha, 'global-upload'])), decl);
    const cache2 = newCache();
    const e2 = await failure(resolveWith(modelInput(), { store: await Store.open(dir2), cache: cache2 }));
    expect(e2.code).toBe('ERR_STORE_WRONG_ASSERTION');
    expect(e2.message).toContain(`for snap-revision snap-sha3-384=${sha} provenance=global-upload, it served snap-declaration series=16 snap-id=${world.snapId('hello')}`);
    expectNothingWritten(cache2);
  });
});

describe('validation-set sequences: the highest offered, never older than one already seen', () => {
  test('unpinned: the highest sequence is used, and recorded next to the cache only when the caller says its output is in place', async () => {
    const cache = newCache();
    const r = await resolveWith(modelInput(), { cache });
    expect(r.bundles.find((b) => b.name === 'hello')!.revision).toBe(2);
    expect(r.validationSets).toEqual({ '16/acme/world': 2 });
    // A build whose compose is refused after this resolve stops here: nothing is recorded.
    expect(existsSync(new SequenceRecord(cache.dir).file)).toBe(false);
    await r.recordSequences();
    expect(JSON.parse(readFileSync(join(cache.dir, 'validation-sets.json'), 'utf8'))).toEqual({ '16/acme/world': 2 });
  });

  test('a store that now offers only an older sequence is refused, and nothing is written', async () => {
    const cache = newCache();
    await resolveAndRecord(modelInput(), { cache });
    const recorded = readFileSync(new SequenceRecord(cache.dir).file);
    const dir = storeCopy('store-rolled-back');
    rmSync(join(dir, vsPath(2)));
    const before = readdirSync(cache.bundlesDir).sort();
    const e = await failure(resolveWith(modelInput(), { store: await Store.open(dir), cache }));
    expect(e.code).toBe('ERR_VALIDATION_SET_ROLLBACK');
    expect(e.message).toMatch(/validation-set acme\/world: the store .* does not offer sequence 2, already resolved with the cache .*validation-sets\.json\); refusing an older set/);
    expect(readFileSync(new SequenceRecord(cache.dir).file).equals(recorded)).toBe(true);
    expect(readdirSync(cache.bundlesDir).sort()).toEqual(before);
  });

  test('an older sequence given with the model is refused too', async () => {
    const cache = newCache();
    await resolveAndRecord(modelInput(), { cache });
    const e = await failure(resolveWith([...modelInput(), pinsOf(1, 1)], { cache }));
    expect(e.code).toBe('ERR_VALIDATION_SET_ROLLBACK');
    expect(e.message).toMatch(/validation-set acme\/world: sequence 1 .* is older than sequence 2, already resolved/);
  });

  test('a model that pins the sequence gets exactly that one', async () => {
    const cache = newCache();
    await resolveAndRecord(modelInput(), { cache });
    const model = world.model({ 'validation-sets': [{ 'account-id': 'acme', name: 'world', sequence: '1', mode: 'enforce' }] as never });
    const r = await resolveAndRecord(modelInput(model), { cache });
    expect(r.bundles.find((b) => b.name === 'hello')!.revision).toBe(1);
    expect(new SequenceRecord(cache.dir).seen('acme', 'world')).toBe(2);
  });

  test('a failed resolve records no sequence', async () => {
    const cache = newCache();
    const e = await failure(resolveWith(modelInput(world.model({ architecture: 'arm64' })), { cache }));
    expect(e.code).toBe('ERR_WRONG_ARCH');
    expect(existsSync(new SequenceRecord(cache.dir).file)).toBe(false);
  });

  test('a damaged record is refused, not ignored', async () => {
    const cache = newCache();
    cache.prepare();
    writeFileSync(new SequenceRecord(cache.dir).file, '{"16/acme/world": "two"}');
    const e = await failure(resolveWith(modelInput(), { cache }));
    expect(e.code).toBe('ERR_SEQUENCE_RECORD');
    expect(e.message).toMatch(/validation-sets\.json: the sequence of "16\/acme\/world" is "two", not a positive integer/);
  });

  test('the search over sequences is bounded, even when every sequence exists', async () => {
    // A brand that signed a set for every sequence (made on demand): the search must stop.
    const real = await Store.open(world.storeDir);
    const asked: string[] = [];
    const endless = Object.create(real) as Store;
    endless.assertion = async (type: string, key: readonly string[]) => {
      if (type !== 'validation-set') return real.assertion(type, key);
      asked.push(key[3]!);
      // Yields to timers, so that an unbounded search fails by the test's timeout instead of hanging.
      await new Promise((r) => setImmediate(r));
      return pinsOf(Number(key[3]), 2);
    };
    const cache = newCache();
    const e = await failure(resolveWith(modelInput(), { store: endless, cache }));
    expect(e.code).toBe('ERR_VALIDATION_SET_SEQUENCES');
    expect(e.message).toMatch(/refusing to search further: pin the sequence in the model/);
    expect(asked.length).toBeLessThanOrEqual(25);
    expectNothingWritten(cache);
  }, 20_000);
});
