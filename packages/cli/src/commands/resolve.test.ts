import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { join } from 'node:path';
import { encodeStream, sha3_384Digest, type Assertion } from '@edgeimage/assertions';
import { serveDirectory, type StaticServer } from '@edgeimage/testkit/http-server';
import { SNAPS, makeWorld, type World } from '@edgeimage/testkit/store-world';
import { run } from '@edgeimage/testkit/cli-run';

let world: World;
let server: StaticServer;
let files: { model: string; trusted: string[] };

const write = (name: string, as: Assertion[]) => {
  const p = join(world.dir, name);
  writeFileSync(p, encodeStream(as.map((a) => a.encode())));
  return p;
};

beforeAll(async () => {
  world = await makeWorld();
  server = await serveDirectory(world.storeDir);
  files = {
    model: write('kiosk.assert', [...world.brandAssertions, world.model()]),
    trusted: world.trusted.map((a, i) => write(`trusted-${i}.assert`, [a])),
  };
}, 60_000);

afterAll(async () => {
  await server?.close();
  world?.cleanup();
});

const trustArgs = () => files.trusted.flatMap((f) => ['--trusted', f]);

test('resolve --json prints the resolution manifest, one object per snap', async () => {
  const cache = join(world.dir, 'cli-cache');
  const r = await run(['resolve', files.model, '--store', server.url, ...trustArgs(), '--no-default-trust', '--at', '2026-06-01T00:00:00Z', '--cache', cache, '--json']);
  expect(r.status).toBe(0);
  const manifest = JSON.parse(r.out) as Record<string, unknown>[];
  expect(manifest.map((m) => m['name']).sort()).toEqual(SNAPS.map((s) => s.name).sort());
  for (const m of manifest) {
    expect(Object.keys(m).sort()).toEqual(['name', 'path', 'revision', 'sha3-384', 'size', 'snap-id', 'type', 'url'].sort());
    expect(m['sha3-384']).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(sha3_384Digest(readFileSync(m['path'] as string))).toBe(m['sha3-384']);
    expect(String(m['path']).startsWith(join(cache, 'bundles'))).toBe(true);
  }
  // Off a terminal, progress is one plain line per event on stderr.
  expect(r.err).toMatch(/^model acme\/kiosk: verified$/m);
  expect(r.err).toMatch(/^downloading pc-kernel \(\d+(\.\d)? [kM]B\)$/m);
  // The cache is complete: the validation-set sequences it was resolved with are recorded.
  expect(Object.keys(JSON.parse(readFileSync(join(cache, 'validation-sets.json'), 'utf8')))).toEqual(['16/acme/world']);

  const again = await run(['resolve', files.model, '--store', server.url, ...trustArgs(), '--no-default-trust', '--at', '2026-06-01T00:00:00Z', '--cache', cache]);
  expect(again.status).toBe(0);
  expect(again.out).toMatch(/acme\/kiosk: 4 bundles verified \(0 downloaded, 4 from the cache\)/);
});

test('resolve without the store among the trusted fails, naming why', async () => {
  const r = await run(['resolve', files.model, '--store', server.url, '--trusted', files.trusted[0]!, '--trusted', files.trusted[1]!, '--no-default-trust', '--at', '2026-06-01T00:00:00Z', '--cache', join(world.dir, 'c2')]);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/snap-declaration .*signed by unknown key .* of "acme-store".*the store's account and account-key \(signed by a trusted root\) are given with --trusted \[ERR_UNKNOWN_KEY\]/);
});

test('resolve of a store that does not exist says so', async () => {
  const r = await run(['resolve', files.model, '--store', join(world.dir, 'no-store'), ...trustArgs()]);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/ERR_STORE_NOT_FOUND/);
});

test('two edgeimage processes resolving into the same cache at once both succeed and leave it sound', async () => {
  // Real processes (the built CLI), as two CI jobs sharing a cache would run.
  const bin = fileURLToPath(new URL('../../bin/edgeimage.js', import.meta.url));
  const cache = join(world.dir, 'shared-cache');
  const args = [bin, 'resolve', files.model, '--store', server.url, ...trustArgs(), '--no-default-trust', '--at', '2026-06-01T00:00:00Z', '--cache', cache, '--json'];
  const [a, b] = await Promise.all([execa('node', args), execa('node', args)]);
  const ma = JSON.parse(a.stdout) as { path: string; 'sha3-384': string }[];
  const mb = JSON.parse(b.stdout) as { path: string }[];
  expect(ma.map((m) => m.path)).toEqual(mb.map((m) => m.path));
  expect(readdirSync(join(cache, 'bundles')).sort()).toEqual(ma.map((m) => `${m['sha3-384']}.snap`).sort());
  for (const m of ma) expect(sha3_384Digest(readFileSync(m.path))).toBe(m['sha3-384']);
  expect(readdirSync(join(cache, 'tmp'))).toEqual([]);
}, 60_000);
