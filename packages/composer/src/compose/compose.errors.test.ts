/**
 * Bad input to the composer gets a clear error (its code, a message that says what is wrong), and
 * nothing is written: no image, no temporary file in the output folder, no work folder left in
 * the temporary directory. Every build here runs the real tools on real bundles.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeimageError } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { ComposeError } from '../errors.js';
import { abStructures, ESP_TYPE, gadgetTree, gadgetYaml, kernelTree, LINUX_TYPE, noise, type StructureSpec } from '@edgeimage/testkit/image-bundles';
import { makePlan } from './plan.js';
import { writePlan } from './write.js';
import { leftAfter, refusal } from '@edgeimage/testkit/refusals';
import { listFiles, MiB, sh } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { MTOOLS, pathWithout } from '@edgeimage/testkit/host-path';
import { type ModelSpec } from '@edgeimage/testkit/image-models';

let world: ImageWorld;
/** The standard GPT world, resolved: builds fine unless a test breaks something. */
let good: Resolution;
/** TMPDIR of this file's builds: the composer's work folders go there, and must go away. */
let tmp: string;
const saved = { TMPDIR: process.env.TMPDIR, PATH: process.env.PATH };

beforeAll(async () => {
  world = await makeImageWorld();
  good = await world.resolve(await world.model());
  tmp = world.tempDir('tmpdir-');
  process.env.TMPDIR = tmp;
}, SLOW);

afterEach(() => {
  process.env.PATH = saved.PATH;
});

afterAll(() => {
  if (saved.TMPDIR === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved.TMPDIR;
  world?.cleanup();
});

/** Publishes a gadget and a model using it (with the standard kernel, base and app), and resolves it. */
async function withGadget(name: string, tree: Parameters<ImageWorld['publish']>[1], spec: ModelSpec = {}): Promise<Resolution> {
  await world.publish(name, tree);
  return world.resolve(await world.model({ gadget: name, ...spec }));
}

/** Composes into a fresh output folder; the build must be refused. Returns the refusal and the folder. */
async function refused(resolution: Resolution, opts: Parameters<ImageWorld['compose']>[1] = {}) {
  const out = opts.outputDir ?? world.tempDir('out-');
  const r = await refusal(world.compose(resolution, { ...opts, outputDir: out }));
  return { ...r, out };
}

/** Nothing in the output folder, nothing of the build left in TMPDIR. */
async function expectNothingWritten(out: string, before: string[] = []): Promise<void> {
  expect(listFiles(out)).toEqual(before);
  expect(await leftAfter(tmp)).toEqual([]);
}

describe('image size', () => {
  test('an --image-size too small for the layout is ERR_IMAGE_TOO_SMALL, naming the size it needs', async () => {
    const r = await refused(good, { imageSize: 32 * MiB });
    expect(r.code).toBe('ERR_IMAGE_TOO_SMALL');
    expect(r.error).toBeInstanceOf(ComposeError);
    // 1 MiB + 16 + 24 + 24 + 16 MiB of structures + 33 sectors of backup GPT.
    const needed = 81 * MiB + 33 * 512;
    expect(r.message).toContain(`${32 * MiB}`);
    expect(r.message).toContain(`needs at least ${needed} bytes`);
    expect(r.context).toMatchObject({ size: 32 * MiB, needed });
    await expectNothingWritten(r.out);
  }, SLOW);

  test('one byte short of the layout is refused too; exactly the layout\'s size builds', async () => {
    const needed = 81 * MiB + 33 * 512;
    const r = await refused(good, { imageSize: needed - 512 });
    expect(r.code).toBe('ERR_IMAGE_TOO_SMALL');
    await expectNothingWritten(r.out);
    const ok = await world.compose(good, { imageSize: needed });
    expect(ok.manifest.size).toBe(needed);
    expect(sh('sfdisk', ['--verify', ok.images[0]!.path]).status).toBe(0);
  }, SLOW);

  test('a size that is not a whole number of sectors is refused, and nothing is left behind', async () => {
    const r = await refused(good, { imageSize: 90 * MiB + 100 });
    expect(r.code).toMatch(/^ERR_/);
    expect(r.error).toBeInstanceOf(EdgeimageError);
    expect(r.message).toMatch(/multiple of 512/);
    await expectNothingWritten(r.out);
  }, SLOW);
});

describe('device agent', () => {
  test('a model without a snap of type snapd is ERR_NO_AGENT, naming the model and what to add; nothing is written', async () => {
    const r = await refused(await world.resolve(await world.model({ model: 'no-agent', agent: null })));
    expect(r.code).toBe('ERR_NO_AGENT');
    expect(r.error).toBeInstanceOf(ComposeError);
    expect(r.message).toBe("model acme/no-agent has no snap of type snapd (the device agent, which updates the device, checks its health and commits a try boot): add the snap edge-agent with type: snapd to the model's snaps (and its validation set)");
    expect(r.context).toMatchObject({ model: 'acme/no-agent' });
    await expectNothingWritten(r.out);
  }, SLOW);

  test('a resolution with two snapd-type bundles is ERR_SEVERAL_AGENTS, naming both', async () => {
    const agent = good.bundles.find((b) => b.type === 'snapd')!;
    const r = await refused({ ...good, bundles: [...good.bundles, { ...agent, name: 'other-agent' }] });
    expect(r.code).toBe('ERR_SEVERAL_AGENTS');
    expect(r.message).toMatch(/^model \S+\/edge-pc has 2 snaps of type snapd \(edge-agent, other-agent\): the device mounts exactly one agent; keep one$/);
    await expectNothingWritten(r.out);
  }, SLOW);
});

describe('architecture', () => {
  test('a model for arm64 with amd64 bundles is refused (the resolver checks every bundle first: ERR_WRONG_ARCH)', async () => {
    const r = await refusal(world.resolve(await world.model({ architecture: 'arm64' })));
    expect(r.code).toBe('ERR_WRONG_ARCH');
    expect(r.message).toMatch(/is built for amd64, but the model is for arm64/);
  }, SLOW);

  test("the composer's own check: a resolution whose model is for arm64 but whose gadget and kernel are amd64 is ERR_ARCH_MISMATCH", async () => {
    // Through resolveModel this cannot happen (it refuses first, above): the composer checks again
    // on what it is handed, so it is handed that directly.
    const r = await refused({ ...good, model: { ...good.model, architecture: 'arm64' } as Resolution['model'] });
    expect(r.code).toBe('ERR_ARCH_MISMATCH');
    expect(r.message).toMatch(/the model is for arm64, but (gadget edge-pc|kernel edge-kernel) revision 1 is built for amd64/);
    await expectNothingWritten(r.out);
  }, SLOW);

  test('a kernel for all architectures and a gadget for the model\'s build fine', async () => {
    await world.publish('any-kernel', kernelTree('any-kernel', { arch: 'all' }));
    const r = await world.compose(await world.resolve(await world.model({ kernel: 'any-kernel' })));
    expect(r.manifest.bundles.find((b) => b.type === 'kernel')?.name).toBe('any-kernel');
  }, SLOW);

  it('a gadget whose snap.yaml lists its architectures as a YAML block list builds', async () => {
    const yaml = "name: block-pc\nversion: '1.0'\ntype: gadget\narchitectures:\n  - amd64\n";
    const res = await withGadget('block-pc', gadgetTree('block-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { snapYamlText: yaml }));
    const r = await world.compose(res);
    expect(r.images).toHaveLength(1);
  }, SLOW);

  it('a gadget whose snap.yaml has a comment after its architectures builds', async () => {
    const yaml = "name: comment-pc\nversion: '1.0'\ntype: gadget\narchitectures: [amd64]  # PC only\n";
    const res = await withGadget('comment-pc', gadgetTree('comment-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { snapYamlText: yaml }));
    const r = await world.compose(res);
    expect(r.images).toHaveLength(1);
  }, SLOW);
});

describe('kernel', () => {
  test('a kernel bundle without kernel.img is ERR_KERNEL_NO_IMAGE, naming the bundle and what it has', async () => {
    await world.publish('noimg-kernel', kernelTree('noimg-kernel', { kernelImg: false }));
    const res = await world.resolve(await world.model({ kernel: 'noimg-kernel' }));
    const r = await refused(res);
    expect(r.code).toBe('ERR_KERNEL_NO_IMAGE');
    expect(r.message).toMatch(/kernel bundle noimg-kernel revision 1 has no kernel\.img/);
    expect(r.message).toMatch(/vmlinuz-6\.1\.0/);
    await expectNothingWritten(r.out);
  }, SLOW);
});

describe('gadget', () => {
  test('a gadget without the A/B roles is ERR_GADGET_NOT_AB, saying which roles to add', async () => {
    const yaml = gadgetYaml('pc', 'gpt', 'grub', [
      { name: 'system-boot', role: 'system-boot', filesystem: 'vfat', label: 'system-boot', type: ESP_TYPE, size: '16M', content: [{ source: 'boot-assets/', target: '/' }] },
      { name: 'writable', role: 'system-data', filesystem: 'ext4', label: 'writable', type: LINUX_TYPE, size: '16M' },
    ]);
    const r = await refused(await withGadget('noab-pc', gadgetTree('noab-pc', yaml)));
    expect(r.code).toBe('ERR_GADGET_NOT_AB');
    expect(r.message).toMatch(/system-a/);
    expect(r.message).toMatch(/system-b/);
    expect(r.message).toMatch(/\badd\b/);
    expect(r.message).toMatch(/noab-pc_1\.snap:meta\/gadget\.yaml/);
    await expectNothingWritten(r.out);
  }, SLOW);

  test('a content source that is a symbolic link out of the gadget (absolute) is ERR_GADGET_CONTENT_ESCAPE', async () => {
    const s = abStructures('gpt');
    s[0]!.content = [{ source: 'host-hostname', target: '/hostname' }];
    const tree = gadgetTree('escape-pc', gadgetYaml('pc', 'gpt', 'grub', s), { extra: { 'host-hostname': { symlink: '/etc/hostname' } } });
    const r = await refused(await withGadget('escape-pc', tree));
    expect(r.code).toBe('ERR_GADGET_CONTENT_ESCAPE');
    expect(r.message).toMatch(/host-hostname/);
    expect(r.message).toMatch(/system-boot/);
    await expectNothingWritten(r.out);
  }, SLOW);

  test('a symbolic link inside a copied folder that climbs out of the gadget is ERR_GADGET_CONTENT_ESCAPE', async () => {
    const tree = gadgetTree('escape2-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: { 'boot-assets/passwd': { symlink: '../../../../../../../../etc/passwd' } } });
    const r = await refused(await withGadget('escape2-pc', tree));
    expect(r.code).toBe('ERR_GADGET_CONTENT_ESCAPE');
    expect(r.message).toMatch(/passwd/);
    await expectNothingWritten(r.out);
  }, SLOW);

  test('a content source missing from the gadget bundle is ERR_GADGET_CONTENT_MISSING', async () => {
    const s = abStructures('gpt');
    s[0]!.content = [{ source: 'boot-assets/', target: '/' }, { source: 'firmware/', target: '/firmware/' }];
    const r = await refused(await withGadget('missing-pc', gadgetTree('missing-pc', gadgetYaml('pc', 'gpt', 'grub', s))));
    expect(r.code).toBe('ERR_GADGET_CONTENT_MISSING');
    expect(r.message).toMatch(/firmware/);
    await expectNothingWritten(r.out);
  }, SLOW);

  it('a content error in build names the line and column of the content entry, as gadget validate does', async () => {
    const s = abStructures('gpt');
    s[0]!.content = [{ source: 'boot-assets/', target: '/' }, { source: 'firmware/', target: '/firmware/' }];
    const r = await refused(await withGadget('missing2-pc', gadgetTree('missing2-pc', gadgetYaml('pc', 'gpt', 'grub', s))));
    expect(r.code).toBe('ERR_GADGET_CONTENT_MISSING');
    expect(r.message).toMatch(/missing2-pc_1\.snap:meta\/gadget\.yaml:15:13: structure "system-boot": content #1: source "firmware\/" is not in the gadget/);
  }, SLOW);

  test('gadget content larger than its structure is ERR_FS_TOO_SMALL, naming the structure', async () => {
    const tree = gadgetTree('fat-pc', gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')), { extra: { 'boot-assets/firmware.bin': Buffer.alloc(20 * MiB, 1) } });
    const r = await refused(await withGadget('fat-pc', tree));
    expect(r.code).toBe('ERR_FS_TOO_SMALL');
    expect(r.message).toMatch(/system-boot/);
    expect(r.message).toMatch(/does not fit/);
    await expectNothingWritten(r.out);
  }, SLOW);

  test('slots too small for the system (bundles, kernel) are ERR_FS_TOO_SMALL, naming the slot and the size it needs', async () => {
    const yaml = gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt', { slot: '524288' }));
    const r = await refused(await withGadget('tiny-pc', gadgetTree('tiny-pc', yaml)));
    expect(r.code).toBe('ERR_FS_TOO_SMALL');
    expect(r.message).toMatch(/system-[ab]/);
    expect(r.message).toMatch(/524288 bytes/);
    expect(r.context['needed']).toEqual(expect.any(Number));
    expect(r.context['needed'] as number).toBeGreaterThan(524288);
    await expectNothingWritten(r.out);
  }, SLOW);
});

describe('output folder', () => {
  test('an output folder that cannot be created (under a regular file) is ERR_OUTPUT_DIR, and nothing is created', async () => {
    const file = join(world.tempDir('x-'), 'file');
    writeFileSync(file, 'not a folder\n');
    const r = await refusal(world.compose(good, { outputDir: join(file, 'out') }));
    expect(r.code).toBe('ERR_OUTPUT_DIR');
    expect(r.message).toContain(join(file, 'out'));
    expect(r.message).toMatch(/ENOTDIR/);
    expect(readFileSync(file, 'utf8')).toBe('not a folder\n');
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);

  test('a full disk while writing the image is ERR_DISK_FULL naming the output folder, and nothing is kept (fault hook)', async () => {
    // A real full disk needs a mount (see build.test.ts); here the composer's test hook makes a
    // write into the image fail as the kernel would.
    const out = world.tempDir('out-');
    let writes = 0;
    const r = await refusal(
      world.compose(good, {
        outputDir: out,
        beforeImageWrite: (offset) => {
          writes++;
          if (offset > 1 * MiB) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
        },
      }),
    );
    expect(writes).toBeGreaterThan(1);
    expect(r.code).toBe('ERR_DISK_FULL');
    expect(r.error).toBeInstanceOf(ComposeError);
    expect(r.message).toContain(out);
    expect(r.message).toMatch(/no space left/);
    await expectNothingWritten(out);
  }, SLOW);
});

describe('host tools', () => {
  test('mtools missing is ERR_HOST_TOOL, naming the tool and its Debian package', async () => {
    const out = world.tempDir('out-');
    process.env.PATH = pathWithout(world.tempDir('path-'), MTOOLS);
    const r = await refusal(world.compose(good, { outputDir: out }));
    expect(r.code).toBe('ERR_HOST_TOOL');
    expect(r.context['package']).toBe('mtools');
    expect(r.message).toMatch(/^m[a-z]+ is not installed .*install the Debian package mtools \(apt-get install mtools\)$/);
    await expectNothingWritten(out);
  }, SLOW);

  test('unsquashfs missing is ERR_HOST_TOOL naming squashfs-tools', async () => {
    const out = world.tempDir('out-');
    process.env.PATH = pathWithout(world.tempDir('path-'), ['unsquashfs']);
    const r = await refusal(world.compose(good, { outputDir: out }));
    expect(r.code).toBe('ERR_HOST_TOOL');
    expect(r.message).toMatch(/unsquashfs is not installed .*squashfs-tools/);
    await expectNothingWritten(out);
  }, SLOW);

  it('bmaptool missing (with --format bmap) is ERR_HOST_TOOL naming bmap-tools, and nothing is written', async () => {
    const out = world.tempDir('out-');
    process.env.PATH = pathWithout(world.tempDir('path-'), ['bmaptool']);
    const r = await refusal(world.compose(good, { outputDir: out, formats: ['raw', 'bmap'] }));
    expect(r.code).toBe('ERR_HOST_TOOL');
    expect(r.message).toMatch(/bmaptool is not installed .*bmap-tools/);
    await expectNothingWritten(out);
  }, SLOW);
});

describe('atomic', () => {
  /** An output folder holding the image of an earlier build, which a failed build must not touch. */
  function withEarlierImage(): { out: string; before: string[] } {
    const out = world.tempDir('out-');
    writeFileSync(join(out, 'edge-pc.img'), 'the image of an earlier build\n');
    writeFileSync(join(out, 'edge-pc.img.manifest.json'), '{}\n');
    return { out, before: listFiles(out) };
  }

  test('a build that fails before the image is written (too small) leaves an earlier image untouched and no temp file', async () => {
    const { out, before } = withEarlierImage();
    const r = await refused(good, { outputDir: out, imageSize: 8 * MiB });
    expect(r.code).toBe('ERR_IMAGE_TOO_SMALL');
    await expectNothingWritten(out, before);
    expect(readFileSync(join(out, 'edge-pc.img'), 'utf8')).toBe('the image of an earlier build\n');
  }, SLOW);

  test('a build whose gadget lacks a content file leaves an earlier image untouched and no temp file', async () => {
    const s = abStructures('gpt');
    s[0]!.content = [{ source: 'boot-assets/', target: '/' }, { source: 'grub/grubx64.efi', target: '/EFI/BOOT/grubx64.efi' }];
    const res = await withGadget('nogrub-pc', gadgetTree('nogrub-pc', gadgetYaml('pc', 'gpt', 'grub', s)));
    const { out, before } = withEarlierImage();
    const r = await refused(res, { outputDir: out });
    expect(r.code).toBe('ERR_GADGET_CONTENT_MISSING');
    expect(r.message).toMatch(/grub\/grubx64\.efi/);
    await expectNothingWritten(out, before);
    expect(readFileSync(join(out, 'edge-pc.img'), 'utf8')).toBe('the image of an earlier build\n');
  }, SLOW);

  test('a build that fails while writing the temporary image (the partition table) removes it', async () => {
    const { out, before } = withEarlierImage();
    let sawTemp: string[] = [];
    const r = await refusal(
      world.compose(good, {
        outputDir: out,
        beforeImageWrite: (offset) => {
          if (offset !== 0) return;
          sawTemp = listFiles(out).filter((n) => /^\.edge-pc\.img\.tmp-/.test(n));
          throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
        },
      }),
    );
    expect(sawTemp).toHaveLength(1);
    expect(r.code).toBe('EIO');
    await expectNothingWritten(out, before);
    expect(readFileSync(join(out, 'edge-pc.img'), 'utf8')).toBe('the image of an earlier build\n');
  }, SLOW);

  test('a successful build replaces the earlier image in one rename and leaves no temp file', async () => {
    const { out } = withEarlierImage();
    const r = await world.compose(good, { outputDir: out });
    expect(listFiles(out)).toEqual(['edge-pc.img', 'edge-pc.img.manifest.json']);
    expect(r.images[0]!.path).toBe(join(out, 'edge-pc.img'));
    expect(sh('sfdisk', ['--verify', r.images[0]!.path]).status).toBe(0);
    expect(await leftAfter(tmp)).toEqual([]);
  }, SLOW);
});

describe('a gadget raw image that changes between the plan and the write', () => {
  // The plan placed the blob by its size then; the write must use exactly that, or nothing.
  let resolution: Resolution;
  beforeAll(async () => {
    const structures: StructureSpec[] = [{ name: 'u-boot', filesystem: 'none', type: 'bare', size: '524288', offset: '32768', content: [{ image: 'u-boot.bin' }] }, ...abStructures('mbr')];
    resolution = await withGadget('blob-changes', gadgetTree('blob-changes', gadgetYaml('uboot', 'mbr', 'u-boot', structures), { extra: { 'u-boot.bin': noise(200_000, 'u-boot.bin') } }), { model: 'edge-blob' });
  }, SLOW);

  test.each([
    ['grown past its planned size', (f: string) => writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.alloc(300_000, 0xee)])), /found 500000 bytes/],
    ['shrunk', (f: string) => writeFileSync(f, readFileSync(f).subarray(0, 1000)), /found 1000 bytes/],
    ['swapped for a symbolic link', (f: string) => { rmSync(f); symlinkSync('/etc/passwd', f); }, /found a symbolic link/],
    ['removed', (f: string) => rmSync(f), /found nothing readable \(ENOENT\)/],
    ['swapped for a FIFO (the open must not wait for a writer)', (f: string) => { rmSync(f); expect(spawnSync('mkfifo', [f]).status).toBe(0); }, /found something that is not a regular file/],
  ] as const)('%s: ERR_GADGET_CHANGED names the file and the sizes, and no image is written', async (_what, change, found) => {
    const out = world.tempDir('out-');
    const work = world.tempDir('work-');
    const { plan, workspace } = await makePlan({ resolution, trusted: world.trusted, outputDir: out }, work);
    const blob = join(workspace.gadgetDir, 'u-boot.bin');
    change(blob);
    const r = await refusal(writePlan(plan, workspace, { inProgress: new Set() }));
    expect(r.code).toBe('ERR_GADGET_CHANGED');
    expect(r.message).toMatch(new RegExp(`^${blob.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the gadget's raw image changed while the image was built: planned as a regular file of 200000 bytes, `));
    expect(r.message).toMatch(found);
    expect(listFiles(out)).toEqual([]);
  }, SLOW);
});
