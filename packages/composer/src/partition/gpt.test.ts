import { closeSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { EdgeimageError } from '@edgeimage/assertions';
import { GPT_TYPES } from './guid.js';
import { gptGeometry, planGpt, writeGpt, type GptSpec } from './gpt.js';
import { cleanUp, diffRanges, MiB, pattern, run, sha256, sparseImage, tempDir } from '@edgeimage/testkit/partition-image';
import { abGptSpec, expectComposeError, guidOf } from '@edgeimage/testkit/partition-specs';

afterAll(cleanUp);

function readSector(file: string, offset: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

function poke(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function writtenAb(): { file: string; spec: GptSpec } {
  const spec = abGptSpec();
  const file = sparseImage(spec.diskSize);
  writeGpt(file, spec);
  return { file, spec };
}

describe('writeGpt, checked by util-linux and gdisk', () => {
  test('sfdisk --verify finds no errors', () => {
    const { file } = writtenAb();
    const r = run('sfdisk', ['--verify', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('No errors detected.');
    expect(r.stdout).toContain('Using 4 out of 128 partitions.');
  });

  test('sgdisk -v reports "No problems found" and no cautions', () => {
    const { file } = writtenAb();
    const r = run('sgdisk', ['-v', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('No problems found.');
    expect(r.stdout).not.toMatch(/Caution|Warning|Problem:|corrupt/i);
  });

  test('sfdisk --json lists exactly our partitions: start, size, type, uuid, name, attributes', () => {
    const { file, spec } = writtenAb();
    const r = run('sfdisk', ['--json', file]);
    expect(r.status).toBe(0);
    const t = (JSON.parse(r.stdout) as { partitiontable: Record<string, unknown> & { partitions: Record<string, unknown>[] } }).partitiontable;
    expect(t).toMatchObject({ label: 'gpt', id: spec.diskGuid, unit: 'sectors', firstlba: 34, lastlba: 131038, sectorsize: 512 });
    expect(t.partitions.map(({ node: _node, ...p }) => p)).toEqual([
      { start: 2048, size: 32768, type: GPT_TYPES.esp, uuid: guidOf('system-boot'), name: 'system-boot', attrs: 'LegacyBIOSBootable' },
      { start: 34816, size: 32768, type: GPT_TYPES.linuxFilesystem, uuid: guidOf('system-a'), name: 'system-a', attrs: 'RequiredPartition GUID:60' },
      { start: 67584, size: 32768, type: GPT_TYPES.linuxFilesystem, uuid: guidOf('system-b'), name: 'system-b' },
      { start: 100352, size: 28672, type: GPT_TYPES.linuxFilesystem, uuid: guidOf('system-data'), name: 'system-data' },
    ]);
  });

  test('fdisk -l agrees: label, disk identifier, sectors, types, GUIDs and names', () => {
    const { file, spec } = writtenAb();
    const plain = run('fdisk', ['-l', file]);
    expect(plain.stderr).toBe('');
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain('Disklabel type: gpt');
    expect(plain.stdout).toContain(`Disk identifier: ${spec.diskGuid}`);
    const typeNames = plain.stdout.split('\n').filter((l) => l.startsWith(file)).map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(typeNames).toEqual(['EFI System', 'Linux filesystem', 'Linux filesystem', 'Linux filesystem']);

    const r = run('fdisk', ['-l', '-o', 'Device,Start,End,Sectors,Type-UUID,UUID,Name', file]);
    expect(r.stderr).toBe('');
    const rows = r.stdout.split('\n').filter((l) => l.startsWith(file)).map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual(
      spec.partitions.map((p, i) => [`${file}${i + 1}`, String(p.firstLba), String(p.lastLba), String(p.lastLba - p.firstLba + 1), p.typeGuid, p.partGuid, p.name]),
    );
  });

  test('the longest name (36 UTF-16 units) and non-ASCII names survive', () => {
    const spec = abGptSpec();
    const long = 'x'.repeat(36);
    spec.partitions[0]!.name = long;
    spec.partitions[1]!.name = 'système-ä';
    const file = sparseImage(spec.diskSize);
    writeGpt(file, spec);
    const t = JSON.parse(run('sfdisk', ['--json', file]).stdout) as { partitiontable: { partitions: { name?: string }[] } };
    expect(t.partitiontable.partitions.map((p) => p.name)).toEqual([long, 'système-ä', 'system-b', 'system-data']);
    expect(run('sgdisk', ['-v', file]).stdout).toContain('No problems found.');
  });

  test('keeps the partition order given, even when not in disk order', () => {
    const spec = abGptSpec();
    spec.partitions.reverse();
    const file = sparseImage(spec.diskSize);
    writeGpt(file, spec);
    const t = JSON.parse(run('sfdisk', ['--json', file]).stdout) as { partitiontable: { partitions: { name?: string; start: number }[] } };
    expect(t.partitiontable.partitions.map((p) => p.name)).toEqual(['system-data', 'system-b', 'system-a', 'system-boot']);
    expect(run('sfdisk', ['--verify', file]).status).toBe(0);
  });

  test('a full array of 128 partitions is accepted by sfdisk and sgdisk', () => {
    const base = abGptSpec();
    const spec: GptSpec = {
      ...base,
      partitions: Array.from({ length: 128 }, (_, i) => ({ firstLba: 2048 + 512 * i, lastLba: 2048 + 512 * (i + 1) - 1, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf(`p${i}`), name: `p${i}` })),
    };
    const file = sparseImage(spec.diskSize);
    writeGpt(file, spec);
    const v = run('sfdisk', ['--verify', file]);
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('Using 128 out of 128 partitions.');
    expect(run('sgdisk', ['-v', file]).stdout).toContain('No problems found.');
  });

  test('a disk beyond 2 TiB gets a protective MBR of 0xFFFFFFFF sectors, and tools accept it', () => {
    const diskSize = 3 * 2 ** 40;
    const geo = gptGeometry(diskSize);
    const spec: GptSpec = {
      diskSize,
      diskGuid: guidOf('big'),
      partitions: [{ firstLba: 2048, lastLba: geo.lastUsableLba, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf('big', 'data'), name: 'system-data' }],
    };
    const file = sparseImage(diskSize);
    writeGpt(file, spec);
    const sector = readSector(file, 0);
    expect(sector.subarray(446, 462).toString('hex')).toBe('00000200eeffffff01000000ffffffff');
    expect(readSector(file, 510).subarray(0, 2).toString('hex')).toBe('55aa');
    const v = run('sfdisk', ['--verify', file]);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('No errors detected.');
    expect(run('sgdisk', ['-v', file]).stdout).toContain('No problems found.');
  });
});

describe('writeGpt, compared with gdisk', () => {
  test('writes the same table bytes as sgdisk given the same layout, GUIDs, names and attributes', () => {
    const { file: ours, spec } = writtenAb();
    const theirs = sparseImage(spec.diskSize, 'sgdisk.img');
    const args = ['-o', '-U', spec.diskGuid];
    spec.partitions.forEach((p, i) => {
      const n = i + 1;
      args.push('-n', `${n}:${p.firstLba}:${p.lastLba}`, '-t', `${n}:${p.typeGuid}`, '-u', `${n}:${p.partGuid}`, '-c', `${n}:${p.name}`);
      for (let bit = 0n; bit < 64n; bit++) if (((p.attributes ?? 0n) >> bit) & 1n) args.push('-A', `${n}:set:${bit}`);
    });
    const r = run('sgdisk', [...args, theirs]);
    expect(r.status).toBe(0);
    const a = readFileSync(ours);
    const b = readFileSync(theirs);
    expect(diffRanges(a, b)).toEqual([]);
  });
});

describe('writeGpt writes only the table', () => {
  test('gives the same bytes on every run', () => {
    const a = writtenAb().file;
    const b = writtenAb().file;
    expect(sha256(a)).toBe(sha256(b));
    writeGpt(a, abGptSpec()); // again over itself
    expect(sha256(a)).toBe(sha256(b));
  });

  test('changes nothing but bytes 440 … 511 of LBA 0, LBAs 1 … 33 and the last 33 sectors', () => {
    const spec = abGptSpec();
    const file = sparseImage(spec.diskSize);
    const bootCode = pattern(440, 1);
    poke(file, 0, bootCode);
    // Content at both ends of every partition, and in the gaps a gadget may use for bare structures.
    const marks = [34 * 512, 1000 * 512, ...spec.partitions.flatMap((p) => [p.firstLba * 512, p.lastLba * 512]), spec.diskSize - 34 * 512];
    marks.forEach((m, i) => poke(file, m, pattern(512, 100 + i)));
    const before = readFileSync(file);
    writeGpt(file, spec);
    const after = readFileSync(file);
    expect(after.length).toBe(before.length);
    expect(after.subarray(0, 440).equals(bootCode)).toBe(true);
    const sectors = spec.diskSize / 512;
    const allowed: [number, number][] = [[440, 34 * 512], [(sectors - 33) * 512, sectors * 512]]; // contiguous diffs merge
    for (const [from, to] of diffRanges(before, after)) {
      expect(allowed.some(([a, b]) => from >= a && to <= b)).toBe(true);
    }
    marks.forEach((m, i) => expect(after.subarray(m, m + 512).equals(pattern(512, 100 + i))).toBe(true));
    expect(run('sgdisk', ['-v', file]).stdout).toContain('No problems found.');
  });

  test('leaves a sparse image sparse and never changes its size', () => {
    const { file, spec } = writtenAb();
    const st = statSync(file);
    expect(st.size).toBe(spec.diskSize);
    expect(st.blocks * 512).toBeLessThanOrEqual(128 * 1024);
  });

  test('replaces bytes 0 … 439 with bootCode when given, padding it with zeros', () => {
    const spec = abGptSpec();
    const file = sparseImage(spec.diskSize);
    poke(file, 0, pattern(440, 7));
    writeGpt(file, { ...spec, bootCode: pattern(300, 9) });
    const s0 = readSector(file, 0);
    expect(s0.subarray(0, 300).equals(pattern(300, 9))).toBe(true);
    expect(s0.subarray(300, 440).equals(Buffer.alloc(140))).toBe(true);
    expect(s0.subarray(510).toString('hex')).toBe('55aa');
    expect(run('sfdisk', ['--verify', file]).status).toBe(0);
  });

  test('plans the same writes it makes, without touching a file', () => {
    const writes = planGpt(abGptSpec());
    expect(writes.map((w) => [w.offset, w.bytes.length])).toEqual([
      [440, 72],
      [512, 512],
      [1024, 16384],
      [(131072 - 33) * 512, 16384],
      [(131072 - 1) * 512, 512],
    ]);
    expect(writes.map((w) => w.what)).toEqual([
      'protective MBR (LBA 0)',
      'primary GPT header (LBA 1)',
      'primary partition array (LBA 2 … 33)',
      'backup partition array (LBA 131039 … 131070)',
      'backup GPT header (LBA 131071)',
    ]);
  });
});

describe('writeGpt refuses bad input and writes nothing', () => {
  /** Expects the error and checks the sparse image is still without any data block. */
  function refuses(mutate: (spec: GptSpec) => void, code: string, ...message: string[]) {
    const spec = abGptSpec();
    mutate(spec);
    const file = sparseImage(64 * MiB);
    const err = expectComposeError(() => writeGpt(file, spec), code, file, ...message);
    expect(err).toBeInstanceOf(EdgeimageError);
    const st = statSync(file);
    expect([st.size, st.blocks]).toEqual([64 * MiB, 0]);
    return err;
  }

  test('overlapping partitions', () => {
    const err = refuses((s) => (s.partitions[2]!.firstLba = 60000), 'ERR_PARTITION_OVERLAP', 'partition 3 (system-b) (sectors 60000 … 100351) overlaps partition 2 (system-a) (sectors 34816 … 67583)');
    expect(err.context).toMatchObject({ index: 3, name: 'system-b', otherIndex: 2, otherName: 'system-a' });
  });

  test('a partition past the last usable sector (the backup GPT)', () => {
    const err = refuses((s) => (s.partitions[3]!.lastLba = 131039), 'ERR_PARTITION_OUTSIDE_DISK', 'partition 4 (system-data)', 'outside the usable area 34 … 131038');
    expect(err.context).toMatchObject({ index: 4, lastLba: 131039, lastUsableLba: 131038 });
  });

  test('a partition over the primary GPT', () => {
    refuses((s) => (s.partitions[0]!.firstLba = 33), 'ERR_PARTITION_OUTSIDE_DISK', 'partition 1 (system-boot)', 'sectors 33 … 34815');
  });

  test('a partition that ends before it starts', () => {
    refuses((s) => (s.partitions[1]!.lastLba = 100), 'ERR_PARTITION_RANGE', 'partition 2 (system-a)');
  });

  test('a name longer than 36 UTF-16 code units', () => {
    const err = refuses((s) => (s.partitions[1]!.name = 'a'.repeat(37)), 'ERR_PARTITION_NAME_TOO_LONG', 'name is 37 UTF-16 code units long; GPT names hold at most 36');
    expect(err.context).toMatchObject({ index: 2, length: 37, max: 36 });
    // Characters outside the BMP take two units each.
    refuses((s) => (s.partitions[1]!.name = '😀'.repeat(19)), 'ERR_PARTITION_NAME_TOO_LONG', '38 UTF-16 code units');
  });

  test('more than 128 partitions', () => {
    refuses(
      (s) => (s.partitions = Array.from({ length: 129 }, (_, i) => ({ firstLba: 100 * (i + 1), lastLba: 100 * (i + 1) + 9, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf(`p${i}`), name: `p${i}` }))),
      'ERR_PARTITION_TOO_MANY',
      '129 partitions; a GPT partition array holds at most 128',
    );
  });

  test('a malformed GUID, a duplicate GUID, a zero type', () => {
    refuses((s) => (s.partitions[0]!.typeGuid = 'EFI'), 'ERR_GUID_INVALID', 'partition 1 (system-boot): type GUID "EFI" is not a GUID');
    refuses((s) => (s.diskGuid = 'nope'), 'ERR_GUID_INVALID', 'disk GUID "nope"');
    refuses((s) => (s.partitions[3]!.partGuid = s.partitions[1]!.partGuid.toLowerCase()), 'ERR_GUID_DUPLICATE', 'partition 4 (system-data): partition GUID', 'is also the GUID of partition 2 (system-a)');
    refuses((s) => (s.partitions[0]!.partGuid = s.diskGuid), 'ERR_GUID_DUPLICATE', 'is also the disk GUID');
    refuses((s) => (s.partitions[0]!.typeGuid = '00000000-0000-0000-0000-000000000000'), 'ERR_PARTITION_TYPE', 'all-zero type GUID');
  });

  test('attributes beyond 64 bits', () => {
    refuses((s) => (s.partitions[0]!.attributes = 1n << 64n), 'ERR_PARTITION_ATTRIBUTES', 'not a 64-bit unsigned value');
  });

  test('boot code longer than 440 bytes', () => {
    refuses((s) => (s.bootCode = Buffer.alloc(446)), 'ERR_BOOT_CODE_TOO_LARGE', 'boot code is 446 bytes');
  });

  test('a disk size that is not a multiple of 512, or too small', () => {
    refuses((s) => (s.diskSize = 64 * MiB + 1), 'ERR_DISK_SIZE', 'not a positive multiple of 512');
    refuses((s) => ((s.diskSize = 67 * 512), (s.partitions = [])), 'ERR_DISK_SIZE', 'too small for a GPT');
  });

  test('an image whose size is not the disk size', () => {
    const err = refuses((s) => (s.diskSize = 128 * MiB), 'ERR_DISK_SIZE_MISMATCH', `the image is ${64 * MiB} bytes but the GPT describes a ${128 * MiB}-byte disk`);
    expect(err.context).toMatchObject({ size: 64 * MiB, diskSize: 128 * MiB });
  });

  test('another sector size', () => {
    refuses((s) => ((s as { sectorSize?: number }).sectorSize = 4096), 'ERR_SECTOR_SIZE', 'sector size 4096 is not supported');
  });

  test('a missing image file', () => {
    const file = `${tempDir()}/missing.img`;
    expectComposeError(() => writeGpt(file, abGptSpec()), 'ERR_IMAGE_OPEN', file, 'no such file');
  });
});
