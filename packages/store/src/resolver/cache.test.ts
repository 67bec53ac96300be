/**
 * A cache hit is re-hashed against the signed digest and size before it is used: a damaged entry
 * (bytes changed in place, or cut short) is never handed to the composer; the bundle is fetched
 * again through the full verification path, which replaces the entry. Real HTTP store.
 */
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha3_384Digest } from '@edgeimage/assertions';
import { serveDirectory, type StaticServer } from '@edgeimage/testkit/http-server';
import { Store } from '../store.js';
import { BundleCache } from './cache.js';
import { resolveModel, type ResolveEvent } from './resolve.js';
import { AT, makeWorld, type World } from '@edgeimage/testkit/store-world';

let world: World;
let server: StaticServer;
let n = 0;
/** While set, the store answers 404 for every bundle file. */
let bundlesGone = false;

beforeAll(async () => {
  world = await makeWorld();
  server = await serveDirectory(world.storeDir, { fault: (r) => (bundlesGone && r.path.endsWith('.snap') ? 'status:404' : undefined) });
}, 60_000);

afterAll(async () => {
  await server?.close();
  world?.cleanup();
});

async function resolveInto(cache: BundleCache, events: ResolveEvent[] = []) {
  const store = await Store.open(server.url);
  return resolveModel([...world.brandAssertions, world.model()], { store, trusted: world.trusted, at: AT, cache, retry: { retries: 1, baseDelayMs: 5 }, onEvent: (e) => events.push(e) });
}

describe.each([
  ['corrupted (one byte changed, same size)', (f: string) => {
    const b = readFileSync(f);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0xff;
    writeFileSync(f, b);
  }],
  ['truncated', (f: string) => truncateSync(f, 1000)],
])('a %s cache entry', (_what, damage) => {
  test('is not used: the bundle is fetched again, verified, and replaces the entry', async () => {
    const cache = new BundleCache(join(world.dir, `cache-${++n}`));
    const first = await resolveInto(cache);
    const victim = first.bundles.find((b) => b.type === 'kernel')!;
    damage(victim.path);
    server.reset();
    const events: ResolveEvent[] = [];
    const again = await resolveInto(cache, events);
    const b = again.bundles.find((x) => x.name === victim.name)!;
    // What the composer gets is the signed bytes, not the damaged ones.
    expect(sha3_384Digest(readFileSync(b.path))).toBe(b['sha3-384']);
    expect(readFileSync(b.path).length).toBe(b.size);
    expect(again.downloaded).toBe(1);
    expect(server.log.filter((r) => r.path.endsWith('.snap')).map((r) => r.path)).toEqual([expect.stringContaining(victim.name)]);
    const corrupt = events.filter((e) => e.kind === 'cache-corrupt');
    expect(corrupt).toEqual([{ kind: 'cache-corrupt', name: victim.name, why: expect.stringMatching(/signed (digest|size)/) }]);
    // The other entries were hits (re-hashed, sound); nothing is left in the cache's tmp.
    expect(events.filter((e) => e.kind === 'cached')).toHaveLength(first.bundles.length - 1);
    expect(readdirSync(cache.tmpDir)).toEqual([]);
  });

  test('when the store cannot give it again, the resolve fails and the damaged entry is not used', async () => {
    const cache = new BundleCache(join(world.dir, `cache-${++n}`));
    const first = await resolveInto(cache);
    const victim = first.bundles.find((b) => b.type === 'kernel')!;
    damage(victim.path);
    const damaged = readFileSync(victim.path);
    bundlesGone = true;
    try {
      await expect(resolveInto(cache)).rejects.toMatchObject({ code: 'ERR_STORE_NOT_FOUND' });
    } finally {
      bundlesGone = false;
    }
    expect(readFileSync(victim.path)).toEqual(damaged); // left as it was: nothing written
    expect(readdirSync(cache.tmpDir)).toEqual([]);
  });
});
