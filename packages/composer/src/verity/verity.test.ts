/**
 * dm-verity trees of bundles: the composer's own tree and root hash against veritysetup's
 * (cryptsetup-bin) at the level edges and on a real bundle, `veritysetup verify` on what the
 * composer writes, the refusals, a planted tree never used, and the trees in composed slots.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runTool } from '@edgeimage/host-tools';
import { pack } from '@edgeimage/store';
import type { Assertion } from '@edgeimage/assertions';
import { helloTree, useTempDirs, writeTree } from '@edgeimage/testkit/bundle-trees';
import { APP, appTree, noise } from '@edgeimage/testkit/image-bundles';
import { ext4Cat } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { bundleVerity, computeVerityTree, veritySalt, type VerityParams } from './index.js';

const tempDir = useTempDirs('edgeimage-verity-test-');
const BLOCK = 4096;
const SALT = veritySalt('a-bundle-digest');

/** `veritysetup format --no-superblock` of `data` with `salt`: its tree's bytes and root hash. */
async function veritysetupFormat(data: string, salt: Buffer): Promise<{ tree: Buffer; rootHash: string }> {
  const treeFile = `${data}.veritysetup`;
  const r = await runTool('veritysetup', ['format', '--no-superblock', `--salt=${salt.toString('hex')}`, '--data-block-size=4096', '--hash-block-size=4096', '--hash=sha256', data, treeFile]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const rootHash = /^Root hash:\s+([0-9a-f]{64})$/m.exec(r.stdout.toString('utf8'))?.[1];
  if (!rootHash) throw new Error(`no root hash in veritysetup's output:\n${r.stdout.toString('utf8')}`);
  return { tree: readFileSync(treeFile), rootHash };
}

/** `veritysetup verify --no-superblock`: exit status 0 when every block of `data` matches the tree and the root hash. */
async function veritysetupVerify(data: string, tree: string, p: Pick<VerityParams, 'salt' | 'rootHash' | 'dataBlocks'>) {
  return runTool('veritysetup', ['verify', '--no-superblock', `--salt=${p.salt}`, '--data-block-size=4096', '--hash-block-size=4096', '--hash=sha256', `--data-blocks=${p.dataBlocks}`, data, tree, p.rootHash]);
}

function dataFile(blocks: number, seed: string): string {
  const f = join(tempDir(), `${seed}.data`);
  writeFileSync(f, noise(blocks * BLOCK, seed));
  return f;
}

describe('the tree of a file', () => {
  // 1 block: no hash level at all (the root is the block's hash); 127/128: one hash block, partly
  // and wholly filled; 129: two levels; 16385: three.
  test.each([1, 127, 128, 129, 16385])('of %i blocks is veritysetup format --no-superblock\'s, tree and root hash', async (blocks) => {
    const f = blocks > 1000 ? join(tempDir(), 'sparse.data') : dataFile(blocks, `b${blocks}`);
    if (blocks > 1000) {
      // Mostly zeros, a block of noise at each end: large without generating 64 MiB of noise.
      writeFileSync(f, noise(BLOCK, 'head'));
      truncateSync(f, (blocks - 1) * BLOCK);
      writeFileSync(f, noise(BLOCK, 'tail'), { flag: 'a' });
    }
    const ours = await computeVerityTree(f, SALT, blocks * BLOCK);
    const theirs = await veritysetupFormat(f, SALT);
    expect(ours.params).toEqual({ version: 1, hashAlgorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: blocks, salt: SALT.toString('hex'), rootHash: theirs.rootHash });
    expect(ours.tree.length).toBe(theirs.tree.length);
    expect(ours.tree.equals(theirs.tree)).toBe(true);
  }, SLOW);

  test('of a real bundle (mksquashfs) is veritysetup\'s; veritysetup verify accepts it, and refuses a flipped data byte', async () => {
    const src = writeTree(join(tempDir(), 'src'), { ...helloTree(), 'blob.bin': noise(200_000, 'blob') });
    const bundle = (await pack(src, { output: `${tempDir()}/` })).path;
    const size = readFileSync(bundle).length;
    expect(size % BLOCK).toBe(0);
    const ours = await computeVerityTree(bundle, SALT, size);
    const theirs = await veritysetupFormat(bundle, SALT);
    expect(ours.params.rootHash).toBe(theirs.rootHash);
    expect(ours.tree.equals(theirs.tree)).toBe(true);

    const treeFile = join(tempDir(), 'bundle.verity');
    writeFileSync(treeFile, ours.tree);
    const good = await veritysetupVerify(bundle, treeFile, ours.params);
    expect(good.stderr).toBe('');
    expect(good.exitCode).toBe(0);

    const bytes = readFileSync(bundle);
    bytes[bytes.length >> 1]! ^= 0x01;
    const flipped = join(tempDir(), 'flipped.snap');
    writeFileSync(flipped, bytes);
    const bad = await veritysetupVerify(flipped, treeFile, ours.params);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/Verification failed/);
  }, SLOW);

  test('of a file that is not whole 4096-byte blocks is refused, naming the file and its size', async () => {
    const f = join(tempDir(), 'odd.snap');
    writeFileSync(f, noise(3 * BLOCK + 100, 'odd'));
    await expect(computeVerityTree(f, SALT, 3 * BLOCK + 100)).rejects.toMatchObject({
      code: 'ERR_VERITY_SIZE',
      message: `${f}: 12388 bytes is not a whole number of 4096-byte blocks (100 bytes over): dm-verity cannot cover its last partial block on the device; a bundle made by mksquashfs without -nopad is padded to 4 KiB`,
      context: { file: f, size: 12388 },
    });
  });
});

describe('the tree of a bundle', () => {
  /** A bundle file in a cache folder as the resolver leaves it: DIR/bundles/<sha3-384>.snap. */
  function cachedBundle(blocks: number, seed: string) {
    const dir = tempDir();
    mkdirSync(join(dir, 'bundles'));
    mkdirSync(join(dir, 'tmp'));
    const digest = `digest-${seed}`;
    const path = join(dir, 'bundles', `${digest}.snap`);
    copyFileSync(dataFile(blocks, seed), path);
    return { dir, b: { path, 'sha3-384': digest, size: blocks * BLOCK } };
  }

  test('is computed from the bundle\'s bytes each time: a tree of other data planted next to a cached bundle (with its parameters, root hash and the public salt) is never used, and nothing is written there', async () => {
    const { dir, b } = cachedBundle(300, 'planted');
    const honest = await computeVerityTree(b.path, veritySalt(b['sha3-384']), b.size);
    // What an attacker who can write the cache plants: the tree of other data of the same size.
    const other = await computeVerityTree(dataFile(300, 'other'), veritySalt(b['sha3-384']), b.size);
    writeFileSync(join(dir, 'bundles', `${b['sha3-384']}.verity`), other.tree);
    writeFileSync(join(dir, 'bundles', `${b['sha3-384']}.verity.json`), JSON.stringify({ 'sha3-384': b['sha3-384'], size: b.size, ...other.params }));
    const got = await bundleVerity(b);
    expect(got.params.rootHash).toBe(honest.params.rootHash);
    expect(got.params.rootHash).not.toBe(other.params.rootHash);
    expect(got.tree.equals(honest.tree)).toBe(true);
    expect(readdirSync(join(dir, 'bundles')).sort()).toEqual([`${b['sha3-384']}.snap`, `${b['sha3-384']}.verity`, `${b['sha3-384']}.verity.json`]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  test('of a bundle cut short (not its signed size) is refused, and nothing is written', async () => {
    const { dir, b } = cachedBundle(300, 'short');
    truncateSync(b.path, 200 * BLOCK);
    await expect(bundleVerity(b)).rejects.toMatchObject({
      code: 'ERR_VERITY_READ',
      message: `${b.path}: cannot compute its hash tree: expected ${300 * BLOCK} bytes (its signed size), found ${200 * BLOCK} bytes`,
    });
    expect(readdirSync(join(dir, 'bundles'))).toEqual([`${b['sha3-384']}.snap`]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  test('of a bundle that is not whole 4096-byte blocks is refused, and nothing is written', async () => {
    const { dir, b } = cachedBundle(3, 'odd');
    truncateSync(b.path, 3 * BLOCK - 1);
    await expect(bundleVerity({ ...b, size: 3 * BLOCK - 1 })).rejects.toMatchObject({ code: 'ERR_VERITY_SIZE', context: { file: b.path, size: 3 * BLOCK - 1 } });
    expect(readdirSync(join(dir, 'bundles'))).toEqual([`${b['sha3-384']}.snap`]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });
});

describe('composed slots', () => {
  let world: ImageWorld;
  beforeAll(async () => {
    world = await makeImageWorld();
  }, SLOW);
  afterAll(() => world?.cleanup());

  const slotA = (r: Awaited<ReturnType<ImageWorld['compose']>>) => r.manifest.partitions.find((p) => p.role === 'system-a')!;

  /** Each bundle of slot a with its tree, as the image holds them, checked with veritysetup verify against the slot manifest's parameters. */
  async function checkSlot(image: string, offset: number) {
    const manifest = JSON.parse(ext4Cat(image, offset, '/manifest.json')!.toString('utf8')) as { bundles: { file: string; verity: { file: string; 'root-hash': string; salt: string; 'data-blocks': number } }[] };
    const dir = tempDir();
    const trees: Record<string, Buffer> = {};
    for (const b of manifest.bundles) {
      expect(b.verity.file).toBe(`${b.file}.verity`);
      const data = join(dir, 'bundle');
      const tree = join(dir, 'tree');
      writeFileSync(data, ext4Cat(image, offset, `/${b.file}`)!);
      writeFileSync(tree, ext4Cat(image, offset, `/${b.verity.file}`)!);
      const r = await veritysetupVerify(data, tree, { salt: b.verity.salt, rootHash: b.verity['root-hash'], dataBlocks: b.verity['data-blocks'] });
      expect(`${b.file}: ${r.stderr}`).toBe(`${b.file}: `);
      expect(r.exitCode).toBe(0);
      trees[b.verity.file] = readFileSync(tree);
    }
    return { manifest, trees };
  }

  test.each(['signed', 'dangerous'] as const)('of grade %s hold a tree next to each bundle that veritysetup verifies with the slot manifest\'s root hash; two composes are the same bytes', async (grade) => {
    const model: Assertion = await world.model({ revision: 3, grade });
    const resolution = await world.resolve(model);
    const one = await world.compose(resolution);
    const { manifest, trees } = await checkSlot(one.images[0]!.path, slotA(one).offset);
    expect(manifest.bundles.length).toBe(resolution.bundles.length);
    // The image manifest's bundle entries carry the same parameters.
    expect(one.manifest.bundles.map((b) => b.verity)).toEqual(manifest.bundles.map((b) => b.verity));
    // Again, and from a cold cache: the same trees, the same image.
    const two = await world.compose(resolution);
    const cold = await world.compose(await world.resolve(model));
    expect(two.images[0]!.sha256).toBe(one.images[0]!.sha256);
    expect(cold.images[0]!.sha256).toBe(one.images[0]!.sha256);
    const again = await checkSlot(cold.images[0]!.path, slotA(cold).offset);
    expect(again.trees).toEqual(trees);
  }, SLOW);

  test('a bundle that is not whole 4096-byte blocks (a local --snap without mksquashfs\'s padding) is refused: ERR_VERITY_SIZE naming it, and no image is written', async () => {
    const packed = readFileSync(await world.pack(APP, appTree(APP)));
    // squashfs's bytes_used (superblock offset 40): the filesystem without the padding after it.
    const used = Number(packed.readBigUInt64LE(40));
    const size = used % BLOCK ? used : used + 100;
    const local = join(world.tempDir('local-'), 'hello.snap');
    writeFileSync(local, Buffer.concat([packed.subarray(0, Math.min(size, packed.length)), Buffer.alloc(Math.max(0, size - packed.length))]));
    const resolution = await world.resolve(await world.model({ revision: 4, grade: 'dangerous' }), { localBundles: [local] });
    const out = world.tempDir('out-');
    await expect(world.compose(resolution, { outputDir: out })).rejects.toMatchObject({
      code: 'ERR_VERITY_SIZE',
      message: expect.stringMatching(new RegExp(`^bundle ${APP} revision 0 \\(${local}\\): ${size} bytes is not a whole number of 4096-byte blocks \\(${size % BLOCK} bytes over\\)`)),
      context: { file: local, size },
    });
    expect(readdirSync(out)).toEqual([]);
    expect(readdirSync(dirname(local))).toEqual(['hello.snap']);
  }, SLOW);
});
