/**
 * `edgeimage build`: in-process (main) for the outputs and the errors, and as real processes of
 * the built CLI (`packages/cli/bin/edgeimage.js`, so `tsc -b` must have run) where the process
 * matters: run by an unprivileged user, interrupted with Ctrl-C, with a host tool hidden, on a
 * full disk.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha3_384Digest, signAssertion, type Assertion } from '@edgeimage/assertions';
import { abStructures, gadgetTree, gadgetYaml, INITRD_IMG, appTree, APP, snapYaml } from '@edgeimage/testkit/image-bundles';
import { AT } from '@edgeimage/testkit/store-world';
import { CLI_BIN } from '@edgeimage/testkit/repo';
import { ext4Cat, ext4Ls, listFiles, MiB, sh, sha256 } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { leftAfter } from '@edgeimage/testkit/refusals';
import type { ImageManifest } from '@edgeimage/composer';
import { interruptWhen, run } from '@edgeimage/testkit/cli-run';
import { firstMissing, missingRoot, requires } from '@edgeimage/testkit/skips';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let world: ImageWorld;
let model: Assertion;
let files: { model: string; trusted: string[]; trustArgs: string[] };

beforeAll(async () => {
  world = await makeImageWorld();
  model = await world.model({ revision: 3 });
  files = world.files(model);
}, SLOW);

afterAll(() => world?.cleanup());

const at = ['--at', AT.toISOString()];
/** `build` arguments for a model file, with the world's store and trust, a cache and an output folder. */
const buildArgs = (modelFile: string, out: string, cache = join(world.dir, 'cli-cache')) => ['build', modelFile, '--store', world.storeDir, ...files.trustArgs, ...at, '--cache', cache, '-o', out];

const readManifest = (out: string, name = 'edge-pc') => JSON.parse(readFileSync(join(out, `${name}.img.manifest.json`), 'utf8')) as ImageManifest;

interface Proc {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The built CLI as a real process. */
function cli(args: string[], opts: { env?: Record<string, string>; asUser?: number } = {}): Promise<Proc> {
  const argv = [CLI_BIN, ...args];
  const [cmd, full] = opts.asUser !== undefined ? ['setpriv', [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', process.execPath, ...argv]] : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, full, { cwd: world.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** Why this process cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN in a locked-down container), or undefined. */
function missingMount(): string | undefined {
  if (!isRoot) return 'mounting a tmpfs needs root';
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-mount-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]).status !== 0) return 'mounting a tmpfs is not allowed here';
    spawnSync('umount', [d]);
    return undefined;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

describe('build', () => {
  test('writes DIR/<model>.img and its manifest, and prints the image, its partitions and the manifest path', async () => {
    const out = join(world.tempDir('out-'), 'images');
    const r = await run(buildArgs(files.model, out));
    expect(r.status).toBe(0);
    expect(listFiles(out)).toEqual(['edge-pc.img', 'edge-pc.img.manifest.json']);
    const img = join(out, 'edge-pc.img');
    const m = readManifest(out);
    // The default digest is the mapped one, and the line names it.
    expect(m.digest).toBe('sha256-nonzero-4k-blocks');
    expect(r.out).toContain(`${img}  ${m.size} bytes  sha256-nonzero-4k-blocks ${m.outputs[0]!.sha256}`);
    expect(r.out).toMatch(/^\s+1 system-boot\s+system-boot\s+1048576\s+16777216 vfat$/m);
    expect(r.out).toMatch(/^\s+4 system-data\s+system-data\s+68157440\s+16777216 ext4$/m);
    expect(r.out).toContain(`manifest: ${img}.manifest.json`);
    expect(r.err).toMatch(/^unpacking gadget edge-pc$/m);
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
    expect(m.model).toMatchObject({ 'brand-id': 'acme', model: 'edge-pc', revision: 3 });
  }, SLOW);

  test('--json prints the manifest it writes', async () => {
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.out)).toEqual(readManifest(out));
  }, SLOW);

  test('--digests: mapped by default (the manifest names it), full as sha256sum computes, none: no sha256 anywhere; the same image bytes each time', async () => {
    const mapped = world.tempDir('out-');
    expect((await run(buildArgs(files.model, mapped))).status).toBe(0);
    const m = readManifest(mapped);
    expect(m.digest).toBe('sha256-nonzero-4k-blocks');
    expect(m.outputs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.outputs[0]!.sha256).not.toBe(sha256(readFileSync(join(mapped, 'edge-pc.img'))));
    const full = world.tempDir('out-');
    const f = await run([...buildArgs(files.model, full), '--digests', 'full']);
    expect(f.status).toBe(0);
    const img = join(full, 'edge-pc.img');
    expect(f.out).toContain(`${img}  ${m.size} bytes  sha256 ${sha256(readFileSync(img))}`);
    expect(readManifest(full).digest).toBeUndefined();
    expect(readManifest(full).outputs[0]!.sha256).toBe(sha256(readFileSync(img)));
    expect(readFileSync(img).equals(readFileSync(join(mapped, 'edge-pc.img')))).toBe(true);
    const none = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, none), '--digests', 'none']);
    expect(r.status).toBe(0);
    expect(r.out).toContain(`${join(none, 'edge-pc.img')}  ${m.size} bytes\n`);
    expect(readManifest(none).outputs).toEqual([{ format: 'raw', path: 'edge-pc.img' }]);
    expect(readManifest(none).partitions.every((p) => p.sha256 === undefined)).toBe(true);
    expect(readFileSync(join(none, 'edge-pc.img')).equals(readFileSync(join(mapped, 'edge-pc.img')))).toBe(true);
  }, SLOW);
});

describe('--dry-run', () => {
  /** Every path under `dir` with its size and mtime: what a run wrote or changed there. */
  const snapshot = (dir: string): string[] =>
    !existsSync(dir) ? [] : readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath ?? e.path, e.name)).sort().map((p) => `${p} ${statSync(p).size} ${statSync(p).mtimeMs}`);

  test('prints a table naming every partition (offset, size, type, GUID, filesystem, label) and what goes into each, and writes nothing', async () => {
    const out = join(world.tempDir('out-'), 'images');
    const cache = join(world.dir, 'dry-cache');
    // A cold cache: resolving fills it with the verified bundles (as `resolve` does); nothing else.
    const r = await run([...buildArgs(files.model, out, cache), '--dry-run']);
    expect(r.status).toBe(0);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(cache).sort()).toEqual(['bundles', 'tmp']);
    expect(readdirSync(join(cache, 'tmp'))).toEqual([]);
    // No validation-set sequence is recorded: no image was made (`resolve` records one).
    expect(existsSync(join(cache, 'validation-sets.json'))).toBe(false);
    // A warm cache: not one byte or mtime changes.
    const before = snapshot(cache);
    const again = await run([...buildArgs(files.model, out, cache), '--dry-run']);
    expect(again.status).toBe(0);
    expect(snapshot(cache)).toEqual(before);
    expect(existsSync(out)).toBe(false);

    expect(r.out).toMatch(/^plan for acme\/edge-pc revision 3 .*nothing written$/m);
    expect(r.out).toMatch(/^volume pc: gpt, \d+ bytes .*disk GUID [0-9A-F-]{36}, A\/B$/m);
    expect(r.out).toMatch(/^\s+1 system-boot\s+system-boot\s+1048576\s+16777216\s+\S+\s+[0-9A-F-]{36}\s+vfat\s+system-boot$/m);
    for (const name of ['system-a', 'system-b']) expect(r.out).toMatch(new RegExp(`^\\s+\\d ${name}\\s+${name}\\s+\\d+\\s+\\d+\\s+\\S+\\s+[0-9A-F-]{36}\\s+ext4\\s+${name}$`, 'm'));
    expect(r.out).toMatch(/^\s+4 system-data\s+system-data\s+68157440\s+16777216\s+\S+\s+[0-9A-F-]{36}\s+ext4\s+/m);
    expect(r.out).toMatch(/^ {2}system-a: the system \(slot tree\), \d+ files, \d+ bytes$/m);
    expect(r.out).toMatch(/^ {4}bundles\/edge-base_1\.snap {2}\d+$/m);
    expect(r.out).toMatch(/^ {4}boot\/kernel\.img {2}\d+$/m);
    expect(r.out).toMatch(/^ {2}system-data: empty, 0 files, 0 bytes$/m);
    expect(r.out).toContain(`raw      ${join(out, 'edge-pc.img')}`);
    expect(r.out).toContain(`manifest ${join(out, 'edge-pc.img.manifest.json')}`);
  }, SLOW);

  test('--json prints the plan: the partitions of the real build\'s manifest (offsets, sizes, types, GUIDs, labels), and writes nothing', async () => {
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--dry-run', '--json', '--format', 'raw,bmap']);
    expect(r.status).toBe(0);
    expect(listFiles(out)).toEqual([]);
    const plan = JSON.parse(r.out) as { volumes: { structures: Record<string, unknown>[]; outputs: { format: string; path: string }[]; size: number }[] };
    const built = join(world.tempDir('out-'), 'images');
    expect((await run([...buildArgs(files.model, built), '--format', 'raw,bmap'])).status).toBe(0);
    const m = readManifest(built);
    const v = plan.volumes[0]!;
    expect(v.size).toBe(m.size);
    const pick = (p: Record<string, unknown>) => ({ index: p.index, name: p.name, role: p.role, offset: p.offset, size: p.size, type: p.type, guid: p.guid, filesystem: p.filesystem, label: p.label });
    expect(v.structures.map(pick)).toEqual(m.partitions.map((p) => pick(p as unknown as Record<string, unknown>)));
    expect(v.outputs.map((o) => o.format)).toEqual(['raw', 'bmap', 'manifest']);
    expect(v.outputs.map((o) => o.path.replace(out, built))).toEqual([join(built, 'edge-pc.img'), join(built, 'edge-pc.img.bmap'), join(built, 'edge-pc.img.manifest.json')]);
  }, SLOW);

  test('--help documents it', async () => {
    const r = await run(['build', '--help']);
    expect(r.out).toMatch(/--dry-run\s+print the plan \(every partition[^[]*and write nothing/);
    expect(r.out).toMatch(/--dry-run \[--json\]/);
  });
});

describe('outputs', () => {
  let out: string;
  let img: string;
  let manifest: ImageManifest;

  beforeAll(async () => {
    out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--format', 'raw,bmap,qcow2', '--compress', 'zstd', '--digests', 'full']);
    if (r.status !== 0) throw new Error(`build failed: ${r.err}`);
    img = join(out, 'edge-pc.img');
    manifest = readManifest(out);
  }, SLOW);

  test('--format raw,bmap,qcow2 --compress zstd writes all four forms next to the manifest', () => {
    expect(listFiles(out)).toEqual(['edge-pc.img', 'edge-pc.img.bmap', 'edge-pc.img.manifest.json', 'edge-pc.img.zst', 'edge-pc.qcow2']);
    expect(manifest.outputs.map((o) => [o.format, o.path])).toEqual([
      ['raw', 'edge-pc.img'],
      ['bmap', 'edge-pc.img.bmap'],
      ['qcow2', 'edge-pc.qcow2'],
      ['zstd', 'edge-pc.img.zst'],
    ]);
    expect(manifest.outputs[0]!.sha256).toBe(sha256(readFileSync(img)));
    expect(manifest.outputs[3]!.sha256).toBe(sha256(readFileSync(join(out, 'edge-pc.img.zst'))));
  });

  test('the image stays sparse, and its .bmap maps only the blocks in use', () => {
    const st = statSync(img);
    expect(st.blocks * 512).toBeLessThan(st.size / 4);
    const bmap = readFileSync(`${img}.bmap`, 'utf8');
    expect(bmap).toMatch(/<bmap version="\d+\.\d+">/);
    expect(Number(/<ImageSize>\s*(\d+)\s*<\/ImageSize>/.exec(bmap)?.[1])).toBe(manifest.size);
    const total = Number(/<BlocksCount>\s*(\d+)\s*<\/BlocksCount>/.exec(bmap)?.[1]);
    const mapped = Number(/<MappedBlocksCount>\s*(\d+)\s*<\/MappedBlocksCount>/.exec(bmap)?.[1]);
    expect(total).toBe(manifest.size / 4096);
    expect(mapped).toBeGreaterThan(0);
    expect(mapped).toBeLessThan(total / 4);
  });

  test('bmaptool copy driven by the .bmap gives the identical image', () => {
    const copy = join(world.tempDir('bmap-'), 'copy.img');
    const r = sh('bmaptool', ['copy', '--bmap', `${img}.bmap`, img, copy]);
    expect(r.status).toBe(0);
    expect(sha256(readFileSync(copy))).toBe(sha256(readFileSync(img)));
  });

  test('the qcow2 is a qcow2 of the image\'s virtual size and qemu-img compare finds it equal to the raw image', () => {
    const q = join(out, 'edge-pc.qcow2');
    const info = JSON.parse(sh('qemu-img', ['info', '--output=json', q]).stdout) as { format: string; 'virtual-size': number };
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(manifest.size);
    const c = sh('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', img, q]);
    expect(c.stdout).toMatch(/Images are identical/);
    expect(c.status).toBe(0);
  });

  test('zstd -d of the .zst gives the identical image', () => {
    const r = spawnSync('zstd', ['-d', '-c', join(out, 'edge-pc.img.zst')], { maxBuffer: 512 * MiB });
    expect(r.status).toBe(0);
    expect(sha256(r.stdout)).toBe(sha256(readFileSync(img)));
  });

  test('--compress xz: xz -d of the .xz gives the identical image', async () => {
    const xzOut = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, xzOut), '--compress', 'xz', '--digests', 'full']);
    expect(r.status).toBe(0);
    expect(listFiles(xzOut)).toEqual(['edge-pc.img', 'edge-pc.img.manifest.json', 'edge-pc.img.xz']);
    const d = spawnSync('xz', ['-d', '-c', join(xzOut, 'edge-pc.img.xz')], { maxBuffer: 512 * MiB });
    expect(d.status).toBe(0);
    expect(sha256(d.stdout)).toBe(sha256(readFileSync(join(xzOut, 'edge-pc.img'))));
    // Same inputs: the same raw image as the zstd build's.
    expect(sha256(d.stdout)).toBe(manifest.outputs[0]!.sha256);
    expect(readManifest(xzOut).outputs.find((o) => o.format === 'xz')?.sha256).toBe(sha256(readFileSync(join(xzOut, 'edge-pc.img.xz'))));
  }, SLOW);

  test('an unknown --format is a usage error and writes nothing', async () => {
    const o = join(world.tempDir('out-'), 'images');
    const r = await run([...buildArgs(files.model, o), '--format', 'raw,vmdk']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/--format: expected raw, bmap and\/or qcow2, found "vmdk"/);
    expect(existsSync(o)).toBe(false);
  });
});

describe('--snap', () => {
  test('with a signed model is refused (ERR_SNAP_NOT_DANGEROUS) and writes nothing', async () => {
    const local = await world.pack(APP, appTree(APP, 30_000));
    const out = join(world.tempDir('out-'), 'images');
    const r = await run([...buildArgs(files.model, out), '--snap', local]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: --snap .*hello.*: local bundles are allowed only for models of grade dangerous, .* is grade signed; .* \[ERR_SNAP_NOT_DANGEROUS\]$/m);
    expect(existsSync(out)).toBe(false);
  }, SLOW);

  test('with a dangerous model puts the local bundle, byte for byte, in the slots (revision 0)', async () => {
    const local = await world.pack(APP, appTree(APP, 31_000));
    const dangerous = world.files(await world.model({ grade: 'dangerous' }), 'dangerous.assert');
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(dangerous.model, out), '--snap', local]);
    expect(r.status).toBe(0);
    const m = readManifest(out);
    const bytes = readFileSync(local);
    expect(m.model.grade).toBe('dangerous');
    expect(m.bundles.find((b) => b.name === APP)).toMatchObject({ revision: 0, 'sha3-384': sha3_384Digest(bytes), size: bytes.length });
    const img = join(out, 'edge-pc.img');
    for (const role of ['system-a', 'system-b']) {
      const off = m.partitions.find((p) => p.role === role)!.offset;
      expect(ext4Ls(img, off, '/bundles')).toContain('hello_0.snap');
      expect(ext4Cat(img, off, '/bundles/hello_0.snap')!.equals(bytes)).toBe(true);
    }
  }, SLOW);
});

describe('bad input: a clear error, and nothing written', () => {
  const nothingIn = (out: string) => expect(existsSync(out) ? listFiles(out) : []).toEqual([]);

  test('--image-size too small for the layout: ERR_IMAGE_TOO_SMALL with the size needed', async () => {
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--image-size', '32M']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: --image-size 33554432 bytes is too small for the layout of volume pc: it needs at least 84951552 bytes \(82 MiB\) \[ERR_IMAGE_TOO_SMALL\]$/m);
    nothingIn(out);
  }, SLOW);

  test('--image-size that is not a size is a usage error', async () => {
    const out = join(world.tempDir('out-'), 'images');
    const r = await run([...buildArgs(files.model, out), '--image-size', '2 GB']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/--image-size: expected a size such as 1G, 512M or a number of bytes, found "2 GB"/);
    expect(existsSync(out)).toBe(false);
  });

  test('a bigger --image-size gives a bigger disk with the same partitions', async () => {
    const out = world.tempDir('out-');
    const r = await run([...buildArgs(files.model, out), '--image-size', '128M']);
    expect(r.status).toBe(0);
    const img = join(out, 'edge-pc.img');
    expect(statSync(img).size).toBe(128 * MiB);
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
    expect(sh('sgdisk', ['-v', img]).stdout).toMatch(/No problems found/);
  }, SLOW);

  test("a model signed by the store's key (trusted, but not a root): ERR_SIGNER_ROLE, and no cache entry", async () => {
    const headers = { ...model.headers, 'authority-id': 'acme-store', 'brand-id': 'acme-store' } as Record<string, Assertion['headers'][string]>;
    delete headers['sign-key-sha3-384'];
    const storeSigned = world.files(signAssertion(headers, undefined, world.storeKey), 'store-signed.assert');
    const out = join(world.tempDir('out-'), 'images');
    const cache = join(world.dir, 'store-signed-cache');
    const r = await run(buildArgs(storeSigned.model, out, cache));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: .*model series=16 brand-id=acme-store model=edge-pc: signed by "acme-store", a trusted account that is not a root .* not a model \[ERR_SIGNER_ROLE\]$/m);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(cache) ? listFiles(cache) : []).toEqual([]);
  });

  test('a model for another architecture than its bundles: ERR_WRONG_ARCH', async () => {
    const arm = world.files(await world.model({ architecture: 'arm64' }), 'arm64.assert');
    const out = join(world.tempDir('out-'), 'images');
    const r = await run(buildArgs(arm.model, out, join(world.dir, 'arm-cache')));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: .* is built for amd64, but the model is for arm64 \[ERR_WRONG_ARCH\]$/m);
    expect(existsSync(out)).toBe(false);
  }, SLOW);

  test('a gadget without A/B roles: ERR_GADGET_NOT_AB', async () => {
    const yaml = gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt').filter((s) => s.role === 'system-boot'));
    await world.publish('noab-pc', gadgetTree('noab-pc', yaml));
    const noab = world.files(await world.model({ gadget: 'noab-pc' }), 'noab.assert');
    const out = world.tempDir('out-');
    const r = await run(buildArgs(noab.model, out));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: .*no A\/B roles.*add structures with role .*system-a.*system-b.* \[ERR_GADGET_NOT_AB\]$/m);
    nothingIn(out);
  }, SLOW);

  test('a signed model refused by the composer after it resolved records no validation-set sequence; the same cache after a build that succeeds does', async () => {
    const yaml = gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt').filter((s) => s.role === 'system-boot'));
    await world.publish('seq-noab-pc', gadgetTree('seq-noab-pc', yaml));
    const noab = world.files(await world.model({ gadget: 'seq-noab-pc' }), 'seq-noab.assert');
    const cache = join(world.dir, 'seq-cache');
    const record = join(cache, 'validation-sets.json');
    const out = world.tempDir('out-');
    const r = await run(buildArgs(noab.model, out, cache));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/\[ERR_GADGET_NOT_AB\]$/m);
    nothingIn(out);
    expect(existsSync(record)).toBe(false);

    const good = world.files(await world.model({ revision: 3 }), 'seq-good.assert');
    const ok = await run(buildArgs(good.model, world.tempDir('out-'), cache));
    expect(ok.status).toBe(0);
    expect(Object.values(JSON.parse(readFileSync(record, 'utf8')))).toEqual([1]);
  }, SLOW);

  test('an output folder that cannot be created: ERR_OUTPUT_DIR', async () => {
    const file = join(world.tempDir('x-'), 'file');
    writeFileSync(file, '');
    const r = await run(buildArgs(files.model, join(file, 'out')));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: cannot write to the output directory .*\/file\/out: ENOTDIR \[ERR_OUTPUT_DIR\]$/m);
  }, SLOW);

  const missingUnshare = firstMissing(missingRoot('hiding mkfs.vfat in a private mount namespace'), spawnSync('unshare', ['-m', 'true']).status === 0 ? undefined : 'unshare -m is not allowed here');

  requires(missingUnshare).test('mkfs.vfat missing: ERR_HOST_TOOL naming mkfs.vfat and dosfstools (root: hidden in a private mount namespace)', async () => {
    // PATH cannot hide mkfs.vfat: the composer adds /usr/sbin and /sbin to every tool's PATH.
    // So /usr/sbin is replaced, in a private mount namespace, by links to all but mkfs.vfat.
    const d = world.tempDir('hide-');
    const script = join(d, 'hide.sh');
    writeFileSync(
      script,
      [
        'set -e',
        `mkdir "${d}/orig"`,
        `mount --bind /usr/sbin "${d}/orig"`,
        'mount -t tmpfs tmpfs /usr/sbin',
        `for f in "${d}"/orig/*; do ln -s "$f" /usr/sbin/; done`,
        'rm /usr/sbin/mkfs.vfat',
        'exec "$@"',
        '',
      ].join('\n'),
    );
    const out = world.tempDir('out-');
    const p = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', script, process.execPath, CLI_BIN, ...buildArgs(files.model, out)], { encoding: 'utf8', cwd: world.dir });
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/^edgeimage: error: mkfs\.vfat is not installed \(not found on PATH\); install the Debian package dosfstools \(apt-get install dosfstools\) \[ERR_HOST_TOOL\]$/m);
    expect(listFiles(out)).toEqual([]);
    // The host's mkfs.vfat was never touched.
    expect(existsSync('/usr/sbin/mkfs.vfat')).toBe(true);
  }, SLOW);

  requires(missingMount()).test('a full disk (a 2 MiB tmpfs as the output folder): ERR_DISK_FULL, and nothing is kept', async () => {
    const mnt = world.tempDir('full-');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const tmp = world.tempDir('tmpdir-');
      const r = await cli(buildArgs(files.model, mnt), { env: { TMPDIR: tmp } });
      expect(r.status).toBe(1);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.stderr).toMatch(/^edgeimage: error: no space left on the device of .*full-.* while writing the image .*\[ERR_DISK_FULL\]$/m);
      expect(readdirSync(mnt)).toEqual([]);
      expect(await leftAfter(tmp)).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  }, SLOW);
});

describe('rootless', () => {
  requires(missingRoot('switching to an unprivileged user with setpriv')).test('a build by an unprivileged user (setpriv, uid 65534) gives exactly the bytes of a build by root', async () => {
    // Inputs readable by anyone; output, cache and home writable by the build user only.
    spawnSync('chmod', ['-R', 'a+rX', world.storeDir, join(world.dir, 'files')]);
    const home = world.tempDir('home-');
    const outUser = world.tempDir('out-user-');
    const tmpUser = world.tempDir('tmp-user-');
    for (const d of [home, outUser, tmpUser]) {
      chownSync(d, NOBODY, NOBODY);
      chmodSync(d, 0o700);
    }
    const outRoot = world.tempDir('out-root-');
    const args = (out: string) => ['build', files.model, '--store', world.storeDir, ...files.trustArgs, ...at, '-o', out];
    const [asRoot, asUser] = await Promise.all([
      cli(args(outRoot), { env: { HOME: world.tempDir('home-root-'), EDGEIMAGE_CACHE: join(world.tempDir('cache-root-'), 'c') } }),
      cli(args(outUser), { asUser: NOBODY, env: { HOME: home, EDGEIMAGE_CACHE: join(home, 'cache'), TMPDIR: tmpUser } }),
    ]);
    expect({ status: asRoot.status, err: asRoot.stderr }).toEqual({ status: 0, err: expect.any(String) });
    expect({ status: asUser.status, err: asUser.stderr }).toEqual({ status: 0, err: expect.any(String) });
    const imgRoot = join(outRoot, 'edge-pc.img');
    const imgUser = join(outUser, 'edge-pc.img');
    // Really built by the unprivileged user.
    expect(statSync(imgUser).uid).toBe(NOBODY);
    expect(statSync(join(home, 'cache', 'bundles')).uid).toBe(NOBODY);
    expect(sha256(readFileSync(imgUser))).toBe(sha256(readFileSync(imgRoot)));
    expect(readFileSync(`${imgUser}.manifest.json`, 'utf8')).toBe(readFileSync(`${imgRoot}.manifest.json`, 'utf8'));
    expect(listFiles(outUser)).toEqual(['edge-pc.img', 'edge-pc.img.manifest.json']);
    expect(await leftAfter(tmpUser)).toEqual([]);
  }, SLOW);
});

describe('Ctrl-C', () => {
  /** A model whose slots hold ~100 MiB each, so writing the image takes a while. */
  let big: { model: string; trusted: string[]; trustArgs: string[] };
  let cache: string;

  beforeAll(async () => {
    const kernel = Buffer.alloc(96 * MiB);
    for (let i = 0; i < kernel.length; i++) kernel[i] = (i * 7 + (i >> 12)) % 251;
    await world.publish('big-pc', gadgetTree('big-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt', { slot: '128M' }))));
    await world.publish('big-kernel', { 'meta/snap.yaml': snapYaml('big-kernel', 'kernel', 'amd64'), 'kernel.img': kernel, 'initrd.img': INITRD_IMG });
    big = world.files(await world.model({ model: 'big', gadget: 'big-pc', kernel: 'big-kernel' }), 'big.assert');
    // Resolve once, so the interrupted builds spend their time composing.
    cache = join(world.dir, 'big-cache');
    const r = await run(['resolve', big.model, '--store', world.storeDir, ...files.trustArgs, ...at, '--cache', cache]);
    if (r.status !== 0) throw new Error(r.err);
  }, SLOW);

  /** A build of the big model, interrupted (SIGINT to its process group) once a file matching `when` shows in its output folder. */
  async function interrupt(when: RegExp, extra: string[] = []) {
    const out = world.tempDir('out-');
    const tmp = world.tempDir('tmpdir-');
    const r = await interruptWhen(['build', big.model, '--store', world.storeDir, ...files.trustArgs, ...at, '--cache', cache, '-o', out, ...extra], out, when, tmp);
    return { ...r, out, tmp };
  }

  test('while the temporary image is being written: the build stops (130) and leaves no image, temp file or work folder', async () => {
    const r = await interrupt(/^\.big\.img\.tmp-/);
    expect(r.seen).toMatch(/^\.big\.img\.tmp-\d+-[0-9a-f]{8}$/);
    // The CLI's handler exits 130; a build tool killed by the same Ctrl-C may fail the build first (1).
    expect([130, 1]).toContain(r.status);
    expect(listFiles(r.out)).toEqual([]);
    // The composer's work folder (edgeimage-compose-*) and the builders' are gone from TMPDIR.
    expect(await leftAfter(r.tmp, 3000)).toEqual([]);
  }, SLOW);

  it('while the qcow2 is being written: no image, temp file or work folder is left', async () => {
    const r = await interrupt(/^\.big\.qcow2\.tmp-/, ['--format', 'raw,qcow2']);
    expect(r.seen).toBeDefined();
    expect(r.status).not.toBe(0);
    expect(await leftAfter(r.tmp, 3000)).toEqual([]);
    expect(listFiles(r.out)).toEqual([]);
  }, SLOW);
});
