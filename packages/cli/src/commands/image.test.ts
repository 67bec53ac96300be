/**
 * `edgeimage inspect` and `edgeimage env get|set` on images composed from the image test world
 * (GPT and MBR), in-process through `main`. Checks of what `env set` wrote use mtools directly.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComposeResult, PartitionManifest } from '@edgeimage/composer';
import { fatCat, grubVars, sh, sha256, slice } from '@edgeimage/testkit/image-read';
import { GADGET_MBR } from '@edgeimage/testkit/image-bundles';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { run } from '@edgeimage/testkit/cli-run';

let world: ImageWorld;
let gpt: ComposeResult;
let mbr: ComposeResult;
let emptyB: ComposeResult;

beforeAll(async () => {
  world = await makeImageWorld();
  const resolution = await world.resolve(await world.model({ revision: 5 }));
  gpt = await world.compose(resolution);
  emptyB = await world.compose(resolution, { emptyB: true });
  mbr = await world.compose(await world.resolve(await world.model({ model: 'edge-mbr', gadget: GADGET_MBR, revision: 2 })));
}, SLOW);

afterAll(() => world?.cleanup());

const imageOf = (r: ComposeResult) => r.images[0]!.path;
const part = (r: ComposeResult, role: string): PartitionManifest => r.manifest.partitions.find((p) => p.role === role)!;
const INITIAL = { edge_failed_slot: '', edge_slot: 'a', edge_status: '', edge_try_slot: '' };

/** A copy of an image, for the tests that change it. */
function copyOf(r: ComposeResult): string {
  const p = join(world.tempDir('img-'), 'copy.img');
  copyFileSync(imageOf(r), p);
  return p;
}

describe('inspect', () => {
  test('shows the partition table, filesystems and labels, both slots with model and bundles, and the boot environment', async () => {
    const r = await run(['inspect', imageOf(gpt)]);
    expect(r.status).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(`${imageOf(gpt)}: GPT disk ${gpt.manifest['disk-guid']}`);
    for (const p of gpt.manifest.partitions) {
      const fsLabel = p.filesystem === 'vfat' ? p.label!.toUpperCase() : p.label!;
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\s+${p.index} ${p.name}\\s+${p.offset}\\s+${p.size}\\s+${p.filesystem}\\s+${fsLabel}$`)));
    }
    expect(lines).toContain('slot a: model acme/edge-pc revision 5');
    expect(lines).toContain('slot b: model acme/edge-pc revision 5');
    for (const b of gpt.manifest.bundles) {
      expect(lines.filter((l) => new RegExp(`^\\s+${b.name}\\s+${b.type}\\s+revision ${b.revision}\\s+${b['sha3-384']}$`).test(l))).toHaveLength(2);
    }
    expect(lines.filter((l) => l === '  kernel: boot/initrd.img, boot/kernel.img; trust store: 1 key(s)')).toHaveLength(2);
    expect(r.out).toContain('boot environment (from env1):\n  edge_failed_slot=\n  edge_slot=a\n  edge_status=\n  edge_try_slot=\n');
  });

  it('--json: partitions, filesystems with labels, both slots\' models and bundles, the boot environment', async () => {
    const r = await run(['inspect', imageOf(gpt), '--json']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.out) as {
      table: { kind: string; diskGuid: string };
      partitions: { index: number; name: string; start: number; size: number; filesystem: { type: string; label?: string } }[];
      slots: { slot: string; empty: boolean; model: { 'brand-id': string; model: string; revision: number }; bundles: { name: string; revision: number; 'sha3-384': string }[] }[];
      bootEnvironment: { vars: Record<string, string>; from: string };
    };
    expect(j.table).toMatchObject({ kind: 'gpt', diskGuid: gpt.manifest['disk-guid'] });
    expect(j.partitions.map((p) => [p.index, p.name, p.start, p.size, p.filesystem.type, p.filesystem.label?.toLowerCase()])).toEqual(
      gpt.manifest.partitions.map((p) => [p.index, p.name, p.offset, p.size, p.filesystem, p.label]),
    );
    expect(j.slots.map((s) => [s.slot, s.empty, s.model['brand-id'], s.model.model, s.model.revision])).toEqual([
      ['a', false, 'acme', 'edge-pc', 5],
      ['b', false, 'acme', 'edge-pc', 5],
    ]);
    for (const s of j.slots) {
      expect(s.bundles.map((b) => [b.name, b.revision, b['sha3-384']]).sort()).toEqual(gpt.manifest.bundles.map((b) => [b.name, b.revision, b['sha3-384']]).sort());
    }
    expect(j.bootEnvironment).toEqual({ vars: { edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' }, from: 'env1' });
  });

  test('an image built with --empty-b shows slot b empty', async () => {
    const r = await run(['inspect', imageOf(emptyB)]);
    expect(r.status).toBe(0);
    expect(r.out).toContain('slot a: model acme/edge-pc revision 5');
    expect(r.out).toMatch(/^slot b: empty$/m);
  });

  test('an MBR image: the dos table, and the slots found by their filesystem labels', async () => {
    const r = await run(['inspect', imageOf(mbr)]);
    expect(r.status).toBe(0);
    expect(r.out.split('\n')[0]).toBe(`${imageOf(mbr)}: MBR disk id ${mbr.manifest['disk-id']}`);
    expect(r.out).toMatch(/^\s+2\s+\d+\s+\d+\s+ext4\s+system-a$/m);
    expect(r.out).toContain('slot a: model acme/edge-mbr revision 2');
    expect(r.out).toContain('slot b: model acme/edge-mbr revision 2');
    expect(r.out).toMatch(/boot environment \(from env1\):\n {2}edge_failed_slot=\n {2}edge_slot=a\n/);
  });

  test('a file that is not a disk image: a clear error', async () => {
    const f = join(world.tempDir('x-'), 'zeros.img');
    writeFileSync(f, Buffer.alloc(4 << 20));
    const r = await run(['inspect', f]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: .*zeros\.img: no partition table .*\[ERR_PARTITION_TABLE_NOT_FOUND\]$/m);
  });
});

describe('env get', () => {
  test('KEY prints KEY=VALUE', async () => {
    const r = await run(['env', 'get', imageOf(gpt), 'edge_slot']);
    expect(r.status).toBe(0);
    expect(r.out).toBe('edge_slot=a\n');
  });

  test('without a key prints every variable', async () => {
    const r = await run(['env', 'get', imageOf(gpt)]);
    expect(r.status).toBe(0);
    expect(r.out).toBe('edge_failed_slot=\nedge_slot=a\nedge_status=\nedge_try_slot=\n');
  });

  test('works on an MBR image (system-boot found by its label)', async () => {
    const r = await run(['env', 'get', imageOf(mbr), 'edge_slot']);
    expect(r.status).toBe(0);
    expect(r.out).toBe('edge_slot=a\n');
  });

  test('a variable that is not there is an error naming the ones that are', async () => {
    const r = await run(['env', 'get', imageOf(gpt), 'edge_nope']);
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(/no variable edge_nope in the boot environment \(it has edge_failed_slot, edge_slot, edge_status, edge_try_slot\)/);
  });
});

describe('env set', () => {
  test('edge_try_slot=b edge_status=try: env get shows them, and both copies (env1, env2) hold them', async () => {
    const img = copyOf(gpt);
    const boot = part(gpt, 'system-boot');
    const outsideBefore = [sha256(slice(img, 0, boot.offset)), sha256(slice(img, boot.offset + boot.size, gpt.manifest.size))];
    const r = await run(['env', 'set', img, 'edge_try_slot=b', 'edge_status=try']);
    expect(r.status).toBe(0);
    expect(r.out).toBe('edge_failed_slot=\nedge_slot=a\nedge_status=try\nedge_try_slot=b\n');
    const got = await run(['env', 'get', img]);
    expect(got.out).toBe('edge_failed_slot=\nedge_slot=a\nedge_status=try\nedge_try_slot=b\n');
    expect((await run(['env', 'get', img, 'edge_status'])).out).toBe('edge_status=try\n');
    for (const copy of ['env1', 'env2']) {
      const block = fatCat(img, boot.offset, `/EFI/edgeimage/${copy}/env`)!;
      expect(block.length).toBe(1024);
      expect(grubVars(block)).toEqual({ ...INITIAL, edge_status: 'try', edge_try_slot: 'b' });
      // Both writes finished: neither copy is marked as being written.
      expect(grubVars(fatCat(img, boot.offset, `/EFI/edgeimage/${copy}/lock`)!)).toEqual({ editing: '0' });
    }
    // Only system-boot changed, and its FAT is clean.
    expect([sha256(slice(img, 0, boot.offset)), sha256(slice(img, boot.offset + boot.size, gpt.manifest.size))]).toEqual(outsideBefore);
    const fat = join(world.tempDir('fat-'), 'boot.img');
    writeFileSync(fat, slice(img, boot.offset, boot.size));
    expect(sh('fsck.vfat', ['-n', fat]).status).toBe(0);
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
  });

  test('edge_slot=c is refused (exit 1) and the image is not changed', async () => {
    const img = copyOf(gpt);
    const before = sha256(readFileSync(img));
    const r = await run(['env', 'set', img, 'edge_slot=c']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^edgeimage: error: boot environment: edge_slot="c" is not allowed; edge_slot is one of a, b \[ERR_BOOTENV_VALUE\]$/m);
    expect(sha256(readFileSync(img))).toBe(before);
    expect((await run(['env', 'get', img, 'edge_slot'])).out).toBe('edge_slot=a\n');
  });

  test('a try without a slot to try is refused and the image is not changed', async () => {
    const img = copyOf(gpt);
    const before = sha256(readFileSync(img));
    const r = await run(['env', 'set', img, 'edge_status=try']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/edge_status=try needs edge_try_slot set to a or b \[ERR_BOOTENV_STATE\]/);
    expect(sha256(readFileSync(img))).toBe(before);
  });

  test('an assignment without = is a usage error and the image is not changed', async () => {
    const img = copyOf(gpt);
    const before = sha256(readFileSync(img));
    const r = await run(['env', 'set', img, 'edge_slot']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/expected KEY=VALUE, found "edge_slot"/);
    expect(sha256(readFileSync(img))).toBe(before);
  });

  test('on an MBR image too', async () => {
    const img = copyOf(mbr);
    const r = await run(['env', 'set', img, 'edge_try_slot=b', 'edge_status=try']);
    expect(r.status).toBe(0);
    const boot = part(mbr, 'system-boot');
    for (const copy of ['env1', 'env2']) expect(grubVars(fatCat(img, boot.offset, `/EFI/edgeimage/${copy}/env`)!)).toMatchObject({ edge_try_slot: 'b', edge_status: 'try' });
  });
});
