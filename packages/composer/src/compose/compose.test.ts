/**
 * The composer end to end, in-process: a signed model resolved from a real directory store into
 * real bundles, composed into an A/B disk image, and the image checked with tools that know
 * nothing of edgeimage — sfdisk/sgdisk/fdisk for the partition table, debugfs and e2fsck for the
 * ext4 slots, mtools and fsck.vfat for system-boot, openssl for the trust store.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeStream, sha3_384Digest, type Assertion } from '@edgeimage/assertions';
import type { Resolution } from '@edgeimage/store';
import { inspectImage } from '../inspect/inspect.js';
import type { ComposeResult, PartitionManifest } from './compose.js';
import { AGENT, APP, BASE, gadgetTree, gadgetYaml, GADGET_GPT, GADGET_MBR, INITRD_IMG, KERNEL, KERNEL_IMG, noise, abStructures, volumeYaml, type StructureSpec } from '@edgeimage/testkit/image-bundles';
import { ext4Cat, ext4Ls, ext4Tree, fatCat, grubVars, listFiles, MiB, sfdiskJson, sh, sha256, sha3, slice } from '@edgeimage/testkit/image-read';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { MODEL_TIMESTAMP } from '@edgeimage/testkit/image-models';

let world: ImageWorld;
let model: Assertion;
let resolution: Resolution;
/** The image every read-only test looks at: the GPT world, model edge-pc revision 3. */
let built: ComposeResult;
let image: string;

beforeAll(async () => {
  world = await makeImageWorld();
  model = await world.model({ revision: 3 });
  resolution = await world.resolve(model);
  // Full digests: these tests compare the manifest with sha256 of the bytes (the default, mapped, is digest.test's).
  built = await world.compose(resolution, { digests: 'full' });
  image = built.images[0]!.path;
}, SLOW);

afterAll(() => world?.cleanup());

const part = (r: ComposeResult, role: string): PartitionManifest => {
  const p = r.manifest.partitions.find((x) => x.role === role);
  if (!p) throw new Error(`no ${role} in the manifest`);
  return p;
};

/** A partition cut out of the image into its own file (for fsck tools that take no offset). */
function extract(img: string, p: PartitionManifest, name: string): string {
  const out = join(world.tempDir('part-'), name);
  writeFileSync(out, slice(img, p.offset, p.size));
  return out;
}

describe('the composed GPT image', () => {
  test('is named after the model, in the output folder, with its manifest next to it', () => {
    expect(image).toMatch(/\/edge-pc\.img$/);
    expect(built.manifestPath).toBe(`${image}.manifest.json`);
    expect(JSON.parse(readFileSync(built.manifestPath, 'utf8'))).toEqual(built.manifest);
    expect(statSync(image).size).toBe(built.manifest.size);
    // Exactly what the layout needs, rounded up to a MiB: 1 MiB + 16 + 24 + 24 + 16 MiB + the backup GPT.
    expect(built.manifest.size).toBe(82 * 2 ** 20);
    expect(built.images[0]!.sha256).toBe(sha256(readFileSync(image)));
  });

  test('has a partition table sfdisk --verify, sgdisk -v and fdisk -l accept', () => {
    const v = sh('sfdisk', ['--verify', image]);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/No errors detected/);
    const g = sh('sgdisk', ['-v', image]);
    expect(g.status).toBe(0);
    expect(g.stdout).toMatch(/No problems found/);
    const f = sh('fdisk', ['-l', image]);
    expect(f.status).toBe(0);
    expect(f.stdout).toMatch(/Disklabel type: gpt/);
    expect(f.stdout.split('\n').filter((l) => l.startsWith(image)).length).toBe(4);
  });

  test('sfdisk --json lists system-boot, system-a, system-b, system-data at the manifest\'s offsets, sizes, types and GUIDs', () => {
    const t = sfdiskJson(image);
    expect(t.label).toBe('gpt');
    expect(t.id).toBe(built.manifest['disk-guid']);
    expect(t.partitions.map((p) => p.name)).toEqual(['system-boot', 'system-a', 'system-b', 'system-data']);
    expect(built.manifest.partitions.map((p) => p.name)).toEqual(['system-boot', 'system-a', 'system-b', 'system-data']);
    for (const [i, p] of t.partitions.entries()) {
      const m = built.manifest.partitions[i]!;
      expect({ start: p.start * 512, size: p.size * 512, type: p.type.toUpperCase(), uuid: p.uuid?.toUpperCase() }).toEqual({ start: m.offset, size: m.size, type: m.type.toUpperCase(), uuid: m.guid });
      expect(m.index).toBe(i + 1);
    }
    // The small sizes of the test gadget.
    expect(t.partitions.map((p) => (p.size * 512) / 2 ** 20)).toEqual([16, 24, 24, 16]);
    // Every GUID is different.
    const guids = [t.id, ...t.partitions.map((p) => p.uuid)];
    expect(new Set(guids).size).toBe(5);
  });

  test('the manifest lists the partitions (with the sha256 of their bytes as written), the bundles and the model', () => {
    const m = built.manifest;
    expect(m.format).toBe(1);
    expect(m.volume).toBe('pc');
    expect(m.schema).toBe('gpt');
    expect(m.model).toEqual({
      'brand-id': 'acme',
      model: 'edge-pc',
      revision: 3,
      architecture: 'amd64',
      grade: 'signed',
      timestamp: MODEL_TIMESTAMP,
      'sign-key-sha3-384': world.brandKey.publicKey.id,
    });
    for (const p of m.partitions) {
      expect(p.sha256).toBe(sha256(slice(image, p.offset, p.size)));
      expect(p.guid).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    }
    expect(m.partitions.map((p) => [p.role, p.filesystem, p.label])).toEqual([
      ['system-boot', 'vfat', 'system-boot'],
      ['system-a', 'ext4', 'system-a'],
      ['system-b', 'ext4', 'system-b'],
      ['system-data', 'ext4', 'system-data'],
    ]);
    // Bundles: every one of the model, with the revision the validation-set pins and the digest of the store's file.
    const byName = Object.fromEntries(m.bundles.map((b) => [b.name, b]));
    expect(Object.keys(byName).sort()).toEqual([AGENT, APP, BASE, GADGET_GPT, KERNEL].sort());
    for (const [name, b] of Object.entries(byName)) {
      const published = world.bundles.get(name)!;
      const bytes = readFileSync(published.file);
      // …and its dm-verity tree's parameters (verity/verity.test.ts checks the tree).
      expect(b).toEqual({ name, 'snap-id': world.snapId(name), type: published.type, revision: published.revision, 'sha3-384': sha3_384Digest(bytes), size: bytes.length, verity: expect.objectContaining({ file: `bundles/${name}_${published.revision}.snap.verity`, 'data-blocks': bytes.length / 4096 }) });
    }
    expect(m['boot-environment']).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' });
    expect(m.outputs).toEqual([{ format: 'raw', path: 'edge-pc.img', sha256: built.images[0]!.sha256 }]);
  });

  describe('slot a (system-a)', () => {
    const a = () => part(built, 'system-a').offset;

    test('holds the signed model byte for byte', () => {
      expect(ext4Cat(image, a(), '/model.assert')).toEqual(Buffer.from(model.encode()));
    });

    test('holds every bundle file exactly as resolved (sha3-384 of the cached file)', () => {
      expect(ext4Ls(image, a(), '/bundles')).toEqual(resolution.bundles.flatMap((b) => [`${b.name}_${b.revision}.snap`, `${b.name}_${b.revision}.snap.verity`]).sort());
      for (const b of resolution.bundles) {
        const inSlot = ext4Cat(image, a(), `/bundles/${b.name}_${b.revision}.snap`)!;
        const cached = readFileSync(b.path);
        expect(sha3(inSlot)).toBe(sha3(cached));
        expect(inSlot.equals(cached)).toBe(true);
        // …and that is the digest the store signed.
        expect(sha3_384Digest(inSlot)).toBe(b['sha3-384']);
      }
    });

    test('holds the kernel and initrd of the kernel bundle in /boot', () => {
      expect(ext4Ls(image, a(), '/boot')).toEqual(['initrd.img', 'kernel.img', 'slot.env']);
      expect(ext4Cat(image, a(), '/boot/kernel.img')!.equals(KERNEL_IMG)).toBe(true);
      expect(ext4Cat(image, a(), '/boot/initrd.img')!.equals(INITRD_IMG)).toBe(true);
    });

    test("holds a device trust store with the PEM public key of the brand's key, and no other (trust-store.test.ts)", () => {
      const names = ext4Ls(image, a(), '/trust');
      expect(names.map((n) => `trust/${n}`)).toEqual(built.manifest['trust-store']);
      const pems = Object.fromEntries(names.map((n) => [n, ext4Cat(image, a(), `/trust/${n}`)!.toString('utf8')]));
      expect(names).toEqual([`acme-${world.brandKey.publicKey.id.slice(0, 12)}.pem`]);
      expect(pems[names[0]!]).toBe(world.brandKey.publicKey.toPem());
      // Real PEM public keys, as openssl on the device reads them.
      for (const n of names) {
        const f = join(world.tempDir('pem-'), n);
        writeFileSync(f, pems[n]!);
        const r = sh('openssl', ['pkey', '-pubin', '-in', f, '-noout', '-text']);
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/Public-Key: \(2048 bit\)/);
      }
    });

    test('holds the assertions the model rests on and a slot manifest', () => {
      const stream = decodeStream(ext4Cat(image, a(), '/assertions.assert')!);
      const revisions = stream.filter((x) => x.type === 'snap-revision').map((x) => x.header('snap-sha3-384')).sort();
      expect(revisions).toEqual(resolution.bundles.map((b) => b['sha3-384']).sort());
      expect(stream.some((x) => x.type === 'account-key' && x.header('public-key-sha3-384') === world.brandKey.publicKey.id)).toBe(true);
      expect(stream.some((x) => x.type === 'validation-set')).toBe(true);
      const slotManifest = JSON.parse(ext4Cat(image, a(), '/manifest.json')!.toString('utf8')) as Record<string, unknown>;
      expect(slotManifest['model']).toEqual({ 'brand-id': 'acme', model: 'edge-pc', revision: 3 });
      expect(slotManifest['kernel']).toEqual(['boot/initrd.img', 'boot/kernel.img']);
      expect(slotManifest['trust-store']).toEqual(built.manifest['trust-store']);
      expect(slotManifest['source-date-epoch']).toBe(Date.parse(MODEL_TIMESTAMP) / 1000);
      expect((slotManifest['bundles'] as { file: string }[]).map((b) => b.file).sort()).toEqual(resolution.bundles.map((b) => `bundles/${b.name}_${b.revision}.snap`).sort());
    });
  });

  test('files in the slots are owned by root and dated with the model\'s timestamp; system-boot\'s entries too', () => {
    const a = part(built, 'system-a').offset;
    const epoch = Date.parse(MODEL_TIMESTAMP) / 1000;
    const hex = `0x${epoch.toString(16)}`;
    const paths = ['/', '/model.assert', '/bundles', ...resolution.bundles.map((b) => `/bundles/${b.name}_${b.revision}.snap`), '/boot/kernel.img', '/trust', '/manifest.json'];
    for (const p of paths) {
      const st = sh('debugfs', ['-R', `stat "${p}"`, `${image}?offset=${a}`]).stdout;
      expect({ p, owner: /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(st)?.slice(1) }).toEqual({ p, owner: ['0', '0'] });
      for (const t of ['ctime', 'atime', 'mtime', 'crtime']) expect({ p, t, v: new RegExp(`${t}: (0x[0-9a-f]+)`).exec(st)?.[1] }).toEqual({ p, t, v: hex });
      const mode = /Mode:\s+(\d+)/.exec(st)?.[1];
      expect({ p, mode }).toEqual({ p, mode: p === '/' || p === '/bundles' || p === '/trust' ? '0755' : '0644' });
    }
    const boot = part(built, 'system-boot').offset;
    const listing = sh('mdir', ['-i', `${image}@@${boot}`, '-/', '::/']).stdout;
    const dated = listing.split('\n').filter((l) => /\d{4}-\d\d-\d\d/.test(l));
    expect(dated.length).toBeGreaterThan(5);
    for (const l of dated) expect(l).toMatch(/2026-03-01 +0:00/);
  });

  test('slot b holds exactly the files of slot a', () => {
    const a = ext4Tree(image, part(built, 'system-a').offset, join(world.tempDir('dump-'), 'a'));
    const b = ext4Tree(image, part(built, 'system-b').offset, join(world.tempDir('dump-'), 'b'));
    expect(Object.keys(a)).toEqual(expect.arrayContaining(['model.assert', 'bundles', 'boot/kernel.img', 'trust', 'manifest.json', 'assertions.assert']));
    expect(b).toEqual(a);
  });

  test('system-data is an empty ext4 (only lost+found)', () => {
    const d = part(built, 'system-data');
    expect(ext4Ls(image, d.offset, '/')).toEqual(['lost+found']);
    expect(ext4Ls(image, d.offset, '/lost+found')).toEqual([]);
  });

  test('every filesystem is clean for e2fsck and fsck.vfat', () => {
    for (const role of ['system-a', 'system-b', 'system-data']) {
      const r = sh('e2fsck', ['-fn', extract(image, part(built, role), `${role}.img`)]);
      expect({ role, status: r.status, err: r.stderr }).toEqual({ role, status: 0, err: expect.not.stringMatching(/error|corrupt/i) });
    }
    const f = sh('fsck.vfat', ['-n', extract(image, part(built, 'system-boot'), 'boot.img')]);
    expect(f.status).toBe(0);
  });

  test('system-boot holds the gadget\'s boot assets and the boot environment (edge_slot=a, nothing to try) in both copies', () => {
    const off = part(built, 'system-boot').offset;
    expect(fatCat(image, off, '/EFI/edgeimage/grub.cfg')!.toString()).toMatch(/^set timeout=0/);
    for (const copy of ['env1', 'env2']) {
      const block = fatCat(image, off, `/EFI/edgeimage/${copy}/env`)!;
      expect(block.length).toBe(1024);
      expect(block.toString('latin1')).toMatch(/^# GRUB Environment Block\n/);
      expect(grubVars(block)).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' });
      expect(grubVars(fatCat(image, off, `/EFI/edgeimage/${copy}/lock`)!)).toEqual({ editing: '0' });
    }
  });

  test('inspectImage reads back the partitions, both slots and the boot environment', async () => {
    const r = await inspectImage(image);
    expect(r.table.kind).toBe('gpt');
    expect(r.table.warnings).toEqual([]);
    expect(r.partitions.map((p) => [p.name, p.filesystem.type, p.filesystem.label?.toLowerCase()])).toEqual([
      ['system-boot', 'vfat', 'system-boot'],
      ['system-a', 'ext4', 'system-a'],
      ['system-b', 'ext4', 'system-b'],
      ['system-data', 'ext4', 'system-data'],
    ]);
    expect(r.slots.map((s) => [s.slot, s.empty, s.model?.model, s.model?.revision])).toEqual([
      ['a', false, 'edge-pc', 3],
      ['b', false, 'edge-pc', 3],
    ]);
    expect(r.bootEnvironment).toEqual({ vars: { edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' }, from: 'env1' });
  });
});

describe('--empty-b', () => {
  test('leaves slot b an empty ext4 and slot a complete', async () => {
    const r = await world.compose(resolution, { emptyB: true, digests: 'full' });
    const img = r.images[0]!.path;
    expect(ext4Ls(img, part(r, 'system-b').offset, '/')).toEqual(['lost+found']);
    expect(ext4Ls(img, part(r, 'system-a').offset, '/')).toEqual(['assertions.assert', 'boot', 'bundles', 'lost+found', 'manifest.json', 'model.assert', 'trust']);
    // Slot a is the same filesystem as with a copied slot b.
    expect(part(r, 'system-a').sha256).toBe(part(built, 'system-a').sha256);
    expect(part(r, 'system-b').sha256).not.toBe(part(built, 'system-b').sha256);
    const inspected = await inspectImage(img);
    expect(inspected.slots.map((s) => [s.slot, s.empty])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
  }, SLOW);
});

describe('reproducible', () => {
  test('two builds of the same inputs (separate caches and output folders) give the same image, byte for byte', async () => {
    const again = await world.resolve(model);
    expect(again.bundles.map((b) => b.path)).not.toEqual(resolution.bundles.map((b) => b.path));
    const r = await world.compose(again, { digests: 'full' });
    expect(r.images[0]!.path).not.toBe(image);
    expect(r.images[0]!.sha256).toBe(built.images[0]!.sha256);
    expect(createHash('sha256').update(readFileSync(r.images[0]!.path)).digest('hex')).toBe(built.images[0]!.sha256);
    expect(r.manifest).toEqual(built.manifest);
    expect(readFileSync(r.manifestPath)).toEqual(readFileSync(built.manifestPath));
  }, SLOW);

  test('two different models get different disk, partition and filesystem ids', async () => {
    const other = await world.compose(await world.resolve(await world.model({ model: 'edge-pc-2', revision: 3 })));
    const img2 = other.images[0]!.path;
    expect(img2).toMatch(/\/edge-pc-2\.img$/);
    const t1 = sfdiskJson(image);
    const t2 = sfdiskJson(img2);
    expect(t2.id).not.toBe(t1.id);
    for (const [i, p] of t2.partitions.entries()) {
      expect(p.name).toBe(t1.partitions[i]!.name);
      expect(p.start).toBe(t1.partitions[i]!.start);
      expect(p.uuid).not.toBe(t1.partitions[i]!.uuid);
    }
    const fs1 = (await inspectImage(image)).partitions.map((p) => p.filesystem.uuid);
    const fs2 = (await inspectImage(img2)).partitions.map((p) => p.filesystem.uuid);
    for (const [i, u] of fs2.entries()) expect(u).not.toBe(fs1[i]);
    expect(sh('sfdisk', ['--verify', img2]).status).toBe(0);
  }, SLOW);
});

describe('the MBR variant (like bundles/arm64-uboot)', () => {
  let mbr: ComposeResult;
  beforeAll(async () => {
    mbr = await world.compose(await world.resolve(await world.model({ model: 'edge-mbr', gadget: GADGET_MBR, revision: 2 })));
  }, SLOW);

  test('builds a dos partition table with types 0c and 83 that sfdisk and fdisk accept', () => {
    const img = mbr.images[0]!.path;
    expect(img).toMatch(/\/edge-mbr\.img$/);
    const v = sh('sfdisk', ['--verify', img]);
    expect(v.status).toBe(0);
    expect(v.stderr).toBe('');
    const t = sfdiskJson(img);
    expect(t.label).toBe('dos');
    expect(t.id).toBe(`0x${mbr.manifest['disk-id']}`);
    expect(t.partitions.map((p) => p.type)).toEqual(['c', '83', '83', '83']);
    expect(t.partitions.map((p) => [p.start * 512, p.size * 512])).toEqual(mbr.manifest.partitions.map((p) => [p.offset, p.size]));
    expect(t.partitions[0]!.bootable).toBe(true);
    expect(sh('fdisk', ['-l', img]).stdout).toMatch(/Disklabel type: dos/);
    expect(mbr.manifest.schema).toBe('mbr');
    expect(mbr.manifest['disk-guid']).toBeUndefined();
  });

  test('inspect finds the slots by filesystem label, and the boot environment', async () => {
    const r = await inspectImage(mbr.images[0]!.path);
    expect(r.table.kind).toBe('mbr');
    expect(r.partitions.map((p) => p.filesystem.label?.toLowerCase())).toEqual(['system-boot', 'system-a', 'system-b', 'system-data']);
    expect(r.slots.map((s) => [s.slot, s.partition, s.empty, s.model?.model, s.model?.revision])).toEqual([
      ['a', 2, false, 'edge-mbr', 2],
      ['b', 3, false, 'edge-mbr', 2],
    ]);
    expect(r.bootEnvironment?.vars).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' });
  });

  test('slot a holds the model and the kernel', () => {
    const img = mbr.images[0]!.path;
    const a = part(mbr, 'system-a').offset;
    expect(ext4Cat(img, a, '/boot/kernel.img')!.equals(KERNEL_IMG)).toBe(true);
    expect(decodeStream(ext4Cat(img, a, '/model.assert')!)[0]!.header('model')).toBe('edge-mbr');
  });
});

describe('what the gadget says', () => {
  /** FAT type of the filesystem at `offset`, from its boot sector. */
  const fatType = (img: string, offset: number) => {
    const bs = slice(img, offset, 512);
    return bs.toString('latin1', 82, 87) === 'FAT32' ? 'FAT32' : bs.toString('latin1', 54, 59);
  };

  test('raw image content in the mbr and a bare structure, offset-write, and the disk and partition ids the gadget gives', async () => {
    const bootImg = noise(440, 'pc-boot.img');
    const coreImg = noise(30_000, 'pc-core.img');
    const structures: StructureSpec[] = [
      { name: 'mbr', filesystem: 'none', type: 'mbr', size: '440', content: [{ image: 'pc-boot.img' }] },
      { name: 'BIOS Boot', filesystem: 'none', type: 'DA,21686148-6449-6E6F-744E-656564454649', size: '1M', offset: '1M', 'offset-write': 'mbr+92', content: [{ image: 'pc-core.img' }] },
      ...abStructures('gpt'),
    ];
    structures[3]!.id = '11111111-2222-3333-4444-555555555555';
    const yaml = gadgetYaml('pc', 'gpt', 'grub', structures, 'AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE');
    await world.publish('raw-pc', gadgetTree('raw-pc', yaml, { extra: { 'pc-boot.img': bootImg, 'pc-core.img': coreImg } }));
    const r = await world.compose(await world.resolve(await world.model({ gadget: 'raw-pc' })));
    const img = r.images[0]!.path;
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
    expect(sh('sgdisk', ['-v', img]).stdout).toMatch(/No problems found/);
    // The boot code as the gadget has it, but for the 4 bytes of offset-write: the LBA of BIOS Boot.
    const mbr = slice(img, 0, 512);
    const expected = Buffer.from(bootImg);
    expected.writeUInt32LE(2048, 92);
    expect(mbr.subarray(0, 440).equals(expected)).toBe(true);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    expect(slice(img, 1 * MiB, coreImg.length).equals(coreImg)).toBe(true);
    const t = sfdiskJson(img);
    expect(t.id).toBe('AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE');
    expect(t.partitions.map((p) => [p.name, p.type])).toEqual([
      ['BIOS Boot', '21686148-6449-6E6F-744E-656564454649'],
      ['system-boot', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'],
      ['system-a', '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
      ['system-b', '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
      ['system-data', '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
    ]);
    expect(t.partitions[2]!.uuid).toBe('11111111-2222-3333-4444-555555555555');
    // The others are still derived from the model and the structure: the same as in the standard image.
    expect(t.partitions[3]!.uuid).toBe(sfdiskJson(image).partitions[2]!.uuid);
    expect(r.manifest.partitions.find((p) => p.name === 'mbr')).toMatchObject({ offset: 0, size: 440 });
  }, SLOW);

  test('an MBR disk with a bootloader blob in a bare structure at a fixed offset', async () => {
    const uboot = noise(200_000, 'u-boot.bin');
    const structures: StructureSpec[] = [{ name: 'u-boot', filesystem: 'none', type: 'bare', size: '524288', offset: '32768', content: [{ image: 'u-boot.bin' }] }, ...abStructures('mbr')];
    await world.publish('blob-uboot', gadgetTree('blob-uboot', gadgetYaml('uboot', 'mbr', 'u-boot', structures), { extra: { 'u-boot.bin': uboot } }));
    const r = await world.compose(await world.resolve(await world.model({ model: 'edge-blob', gadget: 'blob-uboot' })));
    const img = r.images[0]!.path;
    expect(sh('sfdisk', ['--verify', img]).status).toBe(0);
    expect(slice(img, 32768, uboot.length).equals(uboot)).toBe(true);
    const t = sfdiskJson(img);
    expect(t.partitions.map((p) => p.type)).toEqual(['c', '83', '83', '83']);
    expect(t.partitions[0]!.start * 512).toBe(1 * MiB);
    expect((await inspectImage(img)).slots.map((s) => s.empty)).toEqual([false, false]);
  }, SLOW);

  test('system-boot with filesystem vfat-32 is FAT32', async () => {
    const s = abStructures('gpt', { boot: '40M' });
    s[0]!.filesystem = 'vfat-32';
    await world.publish('fat32-pc', gadgetTree('fat32-pc', gadgetYaml('pc', 'gpt', 'grub', s)));
    const r = await world.compose(await world.resolve(await world.model({ gadget: 'fat32-pc' })));
    expect(fatType(r.images[0]!.path, part(r, 'system-boot').offset)).toBe('FAT32');
    expect(grubVars(fatCat(r.images[0]!.path, part(r, 'system-boot').offset, '/EFI/edgeimage/env2/env')!).edge_slot).toBe('a');
  }, SLOW);

  // Documented in packages/gadget/README.md: plain `vfat` lets mkfs.vfat choose the FAT size
  // (FAT16 below 512 MiB), unlike snapd, which always makes FAT32; `vfat-32` forces it.
  it('system-boot with filesystem vfat gets the FAT size mkfs.vfat picks (FAT16 at 40 MiB)', async () => {
    const s = abStructures('gpt', { boot: '40M' });
    await world.publish('vfat40-pc', gadgetTree('vfat40-pc', gadgetYaml('pc', 'gpt', 'grub', s)));
    const r = await world.compose(await world.resolve(await world.model({ gadget: 'vfat40-pc' })));
    expect(fatType(r.images[0]!.path, part(r, 'system-boot').offset)).toBe('FAT16');
  }, SLOW);

  // Issue 4: several volumes give DIR/<model>.<volume>.img each, as ubuntu-image does.
  it('a gadget with two volumes gives one image per volume, <model>.<volume>.img', async () => {
    const extra: StructureSpec[] = [{ name: 'extra-data', filesystem: 'ext4', label: 'extra', type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', size: '8M' }];
    const yaml = `# two volumes\n${['volumes:', ...volumeYaml('pc', 'gpt', 'grub', abStructures('gpt')), ...volumeYaml('extra', 'gpt', undefined, extra)].join('\n')}\n`;
    await world.publish('two-volumes-pc', gadgetTree('two-volumes-pc', yaml));
    const out = world.tempDir('out-');
    const r = await world.compose(await world.resolve(await world.model({ gadget: 'two-volumes-pc' })), { outputDir: out });
    expect(listFiles(out)).toEqual(expect.arrayContaining(['edge-pc.pc.img', 'edge-pc.extra.img']));
    expect(r.images.map((i) => i.volume).sort()).toEqual(['extra', 'pc']);
  }, SLOW);
});
