/**
 * A store that sends headers and then nothing does not hang a resolve: every transfer has an idle
 * timeout ($EDGEIMAGE_IDLE_TIMEOUT_MS, short here), the resolver retries and then fails naming the
 * file, and nothing enters the cache. Real HTTP server on 127.0.0.1 that stalls on demand.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serveDirectory, type StaticServer } from '@edgeimage/testkit/http-server';
import { Store } from '../store.js';
import { BundleCache } from './cache.js';
import { resolveModel } from './resolve.js';
import { AT, makeWorld, type World } from '@edgeimage/testkit/store-world';

let world: World;
let server: StaticServer;
/** Paths the server stalls on (headers and half the body, then nothing). */
let stallOn: (path: string) => boolean = () => false;
const saved = process.env.EDGEIMAGE_IDLE_TIMEOUT_MS;

beforeAll(async () => {
  world = await makeWorld();
  server = await serveDirectory(world.storeDir, { fault: (r) => (stallOn(r.path) ? 'stall-mid-body' : undefined) });
  process.env.EDGEIMAGE_IDLE_TIMEOUT_MS = '200';
}, 60_000);

afterAll(async () => {
  if (saved === undefined) delete process.env.EDGEIMAGE_IDLE_TIMEOUT_MS;
  else process.env.EDGEIMAGE_IDLE_TIMEOUT_MS = saved;
  await server?.close();
  world?.cleanup();
});

afterEach(() => {
  stallOn = () => false;
});

let n = 0;
async function resolveInto(cache: BundleCache) {
  const store = await Store.open(server.url);
  return resolveModel([...world.brandAssertions, world.model()], { store, trusted: world.trusted, at: AT, cache, retry: { retries: 1, baseDelayMs: 5 } });
}

test('a bundle download that stalls: ERR_STORE_UNREACHABLE after the retries, naming the file; nothing cached', async () => {
  stallOn = (p) => p.endsWith('.snap');
  const cache = new BundleCache(join(world.dir, `cache-${++n}`));
  await expect(resolveInto(cache)).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringMatching(/gave up after 2 attempts: .*\.snap: the connection failed after \d+ bytes of the body: no data for 0\.2 s/) });
  expect(readdirSync(cache.bundlesDir)).toEqual([]);
  expect(existsSync(cache.tmpDir) ? readdirSync(cache.tmpDir) : []).toEqual([]);
});

test('a store metadata file that stalls: ERR_STORE_UNREACHABLE, naming the file; nothing cached', async () => {
  stallOn = (p) => p.endsWith('.json') && p !== 'store.json';
  const cache = new BundleCache(join(world.dir, `cache-${++n}`));
  await expect(resolveInto(cache)).rejects.toMatchObject({ code: 'ERR_STORE_UNREACHABLE', message: expect.stringContaining('no data for 0.2 s') });
  expect(existsSync(cache.bundlesDir) ? readdirSync(cache.bundlesDir) : []).toEqual([]);
});
