/**
 * tamperImage on a real small GPT image (the composer's GPT writer, mke2fs and mkfs.vfat through
 * its filesystem builders): each change is exactly the byte(s) reported, read back through the
 * filesystem (debugfs, mtools), the ext4 filesystem stays consistent (e2fsck), the original is
 * never written; hostile inputs are typed errors and leave no output and no temporary file.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExt4, buildVfat, GPT_TYPES, readExt4File, writeGpt, writeMbr, type PartitionInfo } from '@edgeimage/composer';
import { checkTamperPath, tamperImage, TamperError, type ByteChange, type FileReplacement, type TamperOp } from './tamper.js';

const MiB = 2 ** 20;
const T = 60_000;
/** Deterministic bytes that are never a run of zero blocks. */
const bytes = (n: number, seed: string) => {
  const out = Buffer.alloc(n);
  for (let i = 0, c = 0; i < n; c++) createHash('sha256').update(`${seed}${c}`).digest().copy(out, i), (i += 32);
  return out;
};

let dir: string;
let image: string;
let original: Buffer;
const parts: Record<string, PartitionInfo> = {};
const BASE = bytes(50_000, 'base');
const UKI = bytes(10_000, 'uki');
const GRUB = bytes(30_000, 'grub');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-tamper-'));
  image = join(dir, 'disk.img');
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', String(28 * MiB), image]);
  const layout: [string, number, string][] = [['system-boot', 1, GPT_TYPES.esp], ['system-a', 9, GPT_TYPES.linuxFilesystem], ['system-b', 18, GPT_TYPES.linuxFilesystem]];
  writeGpt(image, {
    diskSize: 28 * MiB,
    diskGuid: '11111111-2222-4333-8444-555555555555',
    partitions: layout.map(([name, at, type], i) => ({ firstLba: (at * MiB) / 512, lastLba: ((at + 8) * MiB) / 512 - 1, typeGuid: type, partGuid: `11111111-2222-4333-8444-55555555555${i + 6}`, name })),
  });
  const stamp = new Date('2026-01-01T00:00:00Z');
  for (const [name, at] of layout) parts[name] = { index: 0, start: at * MiB, size: 8 * MiB };
  const esp = join(dir, 'esp');
  mkdirSync(join(esp, 'EFI/BOOT'), { recursive: true });
  writeFileSync(join(esp, 'EFI/BOOT/BOOTX64.EFI'), GRUB);
  writeFileSync(join(esp, 'grubenv'), bytes(1024, 'env'));
  await buildVfat({ sourceDir: esp, output: image, offset: MiB, size: 8 * MiB, label: 'SYSTEM-BOOT', volumeId: 0x1234abcd, timestamp: stamp, hiddenSectors: 2048 });
  for (const slot of ['a', 'b']) {
    const src = join(dir, `slot-${slot}`);
    mkdirSync(join(src, 'bundles'), { recursive: true });
    mkdirSync(join(src, 'boot'));
    writeFileSync(join(src, 'bundles/base_1.snap'), BASE);
    writeFileSync(join(src, 'boot/uki.efi'), UKI);
    // a file whose first block is zeros: mke2fs -d leaves it a hole
    writeFileSync(join(src, 'holey'), Buffer.concat([Buffer.alloc(8192), bytes(100, 'tail')]));
    await buildExt4({ sourceDir: src, output: image, offset: parts[`system-${slot}`]!.start, size: 8 * MiB, uuid: `aaaaaaaa-bbbb-4ccc-8ddd-00000000000${slot === 'a' ? 1 : 2}`, hashSeed: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', timestamp: stamp, label: `system-${slot}` });
  }
  original = readFileSync(image);
}, T);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The offsets where two images differ. */
function differences(a: Buffer, b: Buffer): number[] {
  expect(b.length).toBe(a.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
const e2fsck = (img: string, slot: string) => execFileSync('e2fsck', ['-fn', `${img}?offset=${parts[slot]!.start}`], { stdio: 'pipe' }).toString();
const fatFile = (img: string, file: string) => execFileSync('mcopy', ['-n', '-i', `${img}@@${MiB}`, `::${file}`, '-'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
let n = 0;
const out = () => join(dir, `out-${++n}.img`);

test('a byte in the middle of a bundle in system-a: exactly that byte of the image changes, the file reads back with only it changed, e2fsck is clean, the original is untouched', async () => {
  const o = out();
  const r = await tamperImage(image, o, [{ op: 'flip-byte', partition: 'system-a', file: '/bundles/base_1.snap' }]);
  const c = r.changes[0] as ByteChange;
  expect(c).toMatchObject({ op: 'flip-byte', partition: 'system-a', filesystem: 'ext4', file: '/bundles/base_1.snap', fileOffset: 25_000, old: BASE[25_000], new: BASE[25_000]! ^ 0xff });
  expect(differences(original, readFileSync(o))).toEqual([c.offset]);
  expect(c.offset).toBeGreaterThan(parts['system-a']!.start);
  expect(c.offset).toBeLessThan(parts['system-a']!.start + 8 * MiB);
  const back = (await readExt4File(o, parts['system-a']!.start, '/bundles/base_1.snap'))!;
  expect(differences(BASE, back)).toEqual([25_000]);
  expect(back[25_000]).toBe(c.new);
  expect(e2fsck(o, 'system-a')).toMatch(/Pass 5/);
  expect(readFileSync(image).equals(original)).toBe(true);
}, T);

test('first, last and a given offset with chosen bits, in system-b and the vfat system-boot, in one copy', async () => {
  const o = out();
  const ops: TamperOp[] = [
    { op: 'flip-byte', partition: 'system-b', file: '/boot/uki.efi', at: 'first' },
    { op: 'flip-byte', partition: 'system-b', file: '/boot/uki.efi', at: 4097, xor: 0x01 },
    { op: 'flip-byte', partition: 'system-boot', file: '/EFI/BOOT/BOOTX64.EFI', at: 'last' },
    { op: 'flip-byte', partition: 'system-boot', file: '/EFI/BOOT/BOOTX64.EFI', at: 20_000, xor: 0x80 },
  ];
  const r = await tamperImage(image, o, ops);
  const cs = r.changes as ByteChange[];
  expect(cs.map((c) => [c.filesystem, c.fileOffset, c.old, c.new])).toEqual([
    ['ext4', 0, UKI[0], UKI[0]! ^ 0xff],
    ['ext4', 4097, UKI[4097], UKI[4097]! ^ 0x01],
    ['vfat', 29_999, GRUB[29_999], GRUB[29_999]! ^ 0xff],
    ['vfat', 20_000, GRUB[20_000], GRUB[20_000]! ^ 0x80],
  ]);
  expect(differences(original, readFileSync(o))).toEqual(cs.map((c) => c.offset).sort((a, b) => a - b));
  const uki = (await readExt4File(o, parts['system-b']!.start, '/boot/uki.efi'))!;
  expect(differences(UKI, uki)).toEqual([0, 4097]);
  const grub = fatFile(o, '/EFI/BOOT/BOOTX64.EFI');
  expect(differences(GRUB, grub)).toEqual([20_000, 29_999]);
  expect(grub[29_999]).toBe(GRUB[29_999]! ^ 0xff);
  e2fsck(o, 'system-b');
}, T);

test('replace a file: same size in place over its blocks, another size rewritten (mode and owner kept); e2fsck clean; nothing outside the partition changes', async () => {
  const o = out();
  const same = bytes(10_000, 're-signed');
  const shorter = Buffer.from('a root-hash list that is not the signed one\n');
  const r = await tamperImage(image, o, [
    { op: 'replace-file', partition: 'system-a', file: '/boot/uki.efi', content: same },
    { op: 'replace-file', partition: 'system-a', file: '/bundles/base_1.snap', content: shorter },
  ]);
  const [a, b] = r.changes as FileReplacement[];
  const sha = (x: Uint8Array) => createHash('sha256').update(x).digest('hex');
  expect(a).toEqual({ op: 'replace-file', partition: 'system-a', filesystem: 'ext4', file: '/boot/uki.efi', oldSize: 10_000, newSize: 10_000, oldSha256: sha(UKI), newSha256: sha(same), how: 'in-place' });
  expect(b).toMatchObject({ file: '/bundles/base_1.snap', oldSize: 50_000, newSize: shorter.length, how: 'rewritten' });
  expect((await readExt4File(o, parts['system-a']!.start, '/boot/uki.efi'))!.equals(same)).toBe(true);
  expect((await readExt4File(o, parts['system-a']!.start, '/bundles/base_1.snap'))!.equals(shorter)).toBe(true);
  const stat = execFileSync('debugfs', ['-R', 'stat "/bundles/base_1.snap"', `${o}?offset=${parts['system-a']!.start}`], { stdio: 'pipe' }).toString();
  expect(stat).toMatch(/Type: regular\s+Mode:\s+0644/);
  expect(stat).toMatch(/User:\s+0\s+Group:\s+0/);
  e2fsck(o, 'system-a');
  const changed = differences(original, readFileSync(o));
  const a0 = parts['system-a']!.start;
  expect(changed.length).toBeGreaterThan(0);
  expect(changed.every((x) => x >= a0 && x < a0 + 8 * MiB)).toBe(true);
}, T);

test('an MBR disk (the U-Boot board): the partition is found by its filesystem label', async () => {
  const mbr = join(dir, 'mbr.img');
  writeFileSync(mbr, '');
  execFileSync('truncate', ['-s', String(10 * MiB), mbr]);
  writeMbr(mbr, { diskId: 0x3263b5f4, partitions: [{ start: MiB, size: 8 * MiB, type: 0x83 }] });
  const src = join(dir, 'mbr-slot');
  mkdirSync(join(src, 'boot'), { recursive: true });
  writeFileSync(join(src, 'boot/boot.itb'), UKI);
  await buildExt4({ sourceDir: src, output: mbr, offset: MiB, size: 8 * MiB, uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-000000000003', hashSeed: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', timestamp: new Date('2026-01-01T00:00:00Z'), label: 'system-a' });
  const before = readFileSync(mbr);
  const o = out();
  const c = (await tamperImage(mbr, o, [{ op: 'flip-byte', partition: 'system-a', file: '/boot/boot.itb', at: 'last' }])).changes[0] as ByteChange;
  expect(differences(before, readFileSync(o))).toEqual([c.offset]);
  expect(differences(UKI, (await readExt4File(o, MiB, '/boot/boot.itb'))!)).toEqual([9_999]);
  await expect(tamperImage(mbr, join(dir, 'mbr-b.img'), [{ op: 'flip-byte', partition: 'system-b', file: '/boot/boot.itb' }])).rejects.toThrow(/mbr\.img has no partition system-b \(filesystem labels: system-a\)$/);
}, T);

describe('hostile inputs: a typed error naming what is missing, no output, no temporary file', () => {
  async function refused(ops: TamperOp[], output = join(dir, 'refused.img')): Promise<TamperError> {
    const before = readdirSync(dir).sort();
    try {
      await tamperImage(image, output, ops);
    } catch (e) {
      if (!(e instanceof TamperError)) throw e;
      expect(readdirSync(dir).sort()).toEqual(before);
      expect(readFileSync(image).equals(original)).toBe(true);
      return e;
    }
    throw new Error('not refused');
  }
  const flip = (partition: string, file: string, more: Partial<TamperOp> = {}): TamperOp => ({ op: 'flip-byte', partition, file, ...more }) as TamperOp;

  test('a path with .., a relative path, a character the tools would read as syntax', async () => {
    const dots = await refused([flip('system-a', '/bundles/../model.assert')]);
    expect([dots.code, dots.message]).toEqual(['ERR_TAMPER_PATH', 'file "/bundles/../model.assert": ".." is not allowed: name the file by its plain path']);
    expect((await refused([flip('system-a', 'bundles/base_1.snap')])).message).toMatch(/expected an absolute path inside the partition \(starting with \/\)$/);
    expect((await refused([flip('system-a', '/boot/a"; rm -rf /')])).message).toMatch(/the character "\\"" is not allowed/);
    expect(() => checkTamperPath('/a\nb')).toThrow(/the character "\\n" is not allowed/);
    expect(() => checkTamperPath(`/${'x'.repeat(1100)}`)).toThrow(/longer than 1024 characters/);
  });

  test('a partition that is not there, named with those that are', async () => {
    const e = await refused([flip('system-c', '/bundles/base_1.snap')]);
    expect(e.code).toBe('ERR_TAMPER_PARTITION');
    expect(e.message).toMatch(/disk\.img has no partition system-c \(GPT names: system-boot, system-a, system-b\)$/);
  });

  test('a file that is not there (ext4 and vfat), a directory, a byte past the end, a byte in a hole', async () => {
    const ext = await refused([flip('system-a', '/bundles/hello_1.snap')]);
    expect([ext.code, ext.message]).toEqual(['ERR_TAMPER_FILE', '/bundles/hello_1.snap is not in partition system-a (ext4)']);
    const fat = await refused([flip('system-boot', '/EFI/BOOT/BOOTAA64.EFI')]);
    expect([fat.code, fat.message]).toEqual(['ERR_TAMPER_FILE', '/EFI/BOOT/BOOTAA64.EFI is not in partition system-boot (vfat)']);
    expect((await refused([flip('system-a', '/bundles')])).message).toBe('/bundles in system-a is a directory, not a regular file');
    const past = await refused([flip('system-a', '/boot/uki.efi', { at: 10_000 })]);
    expect([past.code, past.message]).toEqual(['ERR_TAMPER_OFFSET', '/boot/uki.efi in system-a is 10000 bytes: byte 10000 is past its end']);
    const hole = await refused([flip('system-a', '/holey', { at: 10 })]);
    expect([hole.code, hole.message]).toEqual(['ERR_TAMPER_OFFSET', 'byte 10 of /holey in system-a lies in a hole (it reads zero and has no block on the disk): pick another byte']);
  });

  test('a later operation failing removes the copy the earlier ones changed', async () => {
    const e = await refused([flip('system-a', '/boot/uki.efi'), flip('system-b', '/nope')]);
    expect(e.code).toBe('ERR_TAMPER_FILE');
  });

  test('the output is the image itself or exists; a vfat file to replace; malformed xor and at', async () => {
    const self = await refused([flip('system-a', '/boot/uki.efi')], image);
    expect([self.code, self.message]).toEqual(['ERR_TAMPER_OUTPUT', `the output ${image} is the image itself: tampering works on a copy only`]);
    const existing = join(dir, 'exists.img');
    writeFileSync(existing, 'keep');
    try {
      expect((await refused([flip('system-a', '/boot/uki.efi')], existing)).message).toBe(`the output ${existing} exists already: give a new path`);
      expect(readFileSync(existing, 'utf8')).toBe('keep');
    } finally {
      rmSync(existing);
    }
    const vfat = await refused([{ op: 'replace-file', partition: 'system-boot', file: '/EFI/BOOT/BOOTX64.EFI', content: Buffer.from('x') }]);
    expect(vfat.code).toBe('ERR_TAMPER_FILESYSTEM');
    expect((await refused([flip('system-a', '/boot/uki.efi', { xor: 0 })])).message).toBe('xor: expected the bits to flip, 1-255, found 0');
    expect((await refused([flip('system-a', '/boot/uki.efi', { at: -1 })])).message).toBe('at: expected first, middle, last or an offset ≥ 0, found -1');
  });
});
