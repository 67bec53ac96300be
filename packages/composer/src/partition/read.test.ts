import { closeSync, openSync, readSync, truncateSync, writeSync } from 'node:fs';
import { findPartition } from './find.js';
import { GPT_TYPES } from './guid.js';
import { writeGpt } from './gpt.js';
import { writeMbr, type MbrSpec } from './mbr.js';
import { readPartitionTable } from './read.js';
import { cleanUp, MiB, run, sparseImage, tempDir } from '@edgeimage/testkit/partition-image';
import { abGptSpec, expectComposeError, guidOf } from '@edgeimage/testkit/partition-specs';

afterAll(cleanUp);

function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b.writeUInt8(b.readUInt8(0) ^ 0xff, 0);
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

function abImage(): string {
  const spec = abGptSpec();
  const file = sparseImage(spec.diskSize);
  writeGpt(file, spec);
  return file;
}

const AB_PARTITIONS = abGptSpec().partitions.map((p, i) => ({
  index: i + 1,
  start: p.firstLba * 512,
  size: (p.lastLba - p.firstLba + 1) * 512,
  typeGuid: p.typeGuid,
  partGuid: p.partGuid,
  name: p.name,
  attributes: p.attributes ?? 0n,
}));

describe('readPartitionTable on a GPT', () => {
  test('reads back what writeGpt wrote', () => {
    const t = readPartitionTable(abImage());
    expect(t).toEqual({ kind: 'gpt', diskGuid: guidOf(), sectorSize: 512, partitions: AB_PARTITIONS, warnings: [] });
  });

  test('finds partitions by name and by index', () => {
    const t = readPartitionTable(abImage());
    expect(findPartition(t, 'system-b')).toMatchObject({ index: 3, start: 67584 * 512 });
    expect(findPartition(t, 4)?.name).toBe('system-data');
    expect(findPartition(t, 'system-c')).toBeUndefined();
  });

  test('reads a GPT written by sgdisk as sfdisk does', () => {
    const file = sparseImage(32 * MiB);
    const r = run('sgdisk', ['-o', '-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:boot', '-n', '3:0:+4M', '-t', '3:8300', '-c', '3:third', '-A', '3:set:2', file]);
    expect(r.status).toBe(0);
    const theirs = (JSON.parse(run('sfdisk', ['--json', file]).stdout) as { partitiontable: { id: string; partitions: { node: string; start: number; size: number; type: string; uuid: string; name: string }[] } }).partitiontable;
    const t = readPartitionTable(file);
    expect(t.warnings).toEqual([]);
    expect(t.diskGuid).toBe(theirs.id);
    expect(t.partitions).toEqual(
      theirs.partitions.map((p) => ({
        index: Number(/(\d+)$/.exec(p.node)![1]),
        start: p.start * 512,
        size: p.size * 512,
        typeGuid: p.type,
        partGuid: p.uuid,
        name: p.name,
        attributes: p.name === 'third' ? 4n : 0n,
      })),
    );
    expect(t.partitions.map((p) => p.index)).toEqual([1, 3]);
    expect(t.partitions[0]?.typeGuid).toBe(GPT_TYPES.esp);
  });

  test('falls back to the backup header when the primary header is corrupt, and says so', () => {
    const file = abImage();
    flipByte(file, 512 + 60); // inside the disk GUID of the primary header
    expect(run('sgdisk', ['-v', file]).stdout).toMatch(/corrupt GPT/); // the damage is real
    const t = readPartitionTable(file);
    expect(t.partitions).toEqual(AB_PARTITIONS);
    expect(t.diskGuid).toBe(guidOf());
    expect(t.warnings).toHaveLength(1);
    expect(t.warnings[0]).toMatch(/^primary GPT header at LBA 1 is corrupt \(header CRC32 is 0x[0-9a-f]{8} but the header's bytes give 0x[0-9a-f]{8}\); using the backup GPT header at LBA 131071$/);
  });

  test('falls back to the backup when the primary partition array is corrupt', () => {
    const file = abImage();
    flipByte(file, 2 * 512 + 128 + 56); // the name of partition 2 in the primary array
    const t = readPartitionTable(file);
    expect(t.partitions).toEqual(AB_PARTITIONS);
    expect(t.warnings).toEqual([expect.stringMatching(/^primary GPT header at LBA 1 is corrupt \(partition array CRC32 is 0x[0-9a-f]{8} in the header but the array at LBA 2 gives/)]);
  });

  test('uses the primary and warns when only the backup is corrupt', () => {
    const file = abImage();
    flipByte(file, 64 * MiB - 512 + 60);
    const t = readPartitionTable(file);
    expect(t.partitions).toEqual(AB_PARTITIONS);
    expect(t.warnings).toEqual([expect.stringMatching(/^backup GPT header at LBA 131071 is unusable \(header CRC32/)]);
  });

  test('refuses a GPT whose headers are both corrupt', () => {
    const file = abImage();
    flipByte(file, 512 + 60);
    flipByte(file, 64 * MiB - 512 + 60);
    const err = expectComposeError(() => readPartitionTable(file), 'ERR_PARTITION_TABLE_CORRUPT', file, 'both GPT headers are unusable', 'primary at LBA 1', 'backup at LBA 131071');
    expect(err.context).toMatchObject({ file });
  });

  test('warns about a truncated image: lost backup, partitions past the end', () => {
    const file = abImage();
    truncateSync(file, 40 * MiB);
    const t = readPartitionTable(file);
    expect(t.partitions).toEqual(AB_PARTITIONS);
    expect(t.warnings).toEqual([
      'backup GPT header at LBA 131071 is unusable (LBA 131071 is outside the 81920-sector image); the primary is intact',
      'the backup GPT header is at LBA 131071, not in the image\'s last sector 81919 (was the image resized?)',
      `partition 3 ends at byte ${100352 * 512}, beyond the end of the ${40 * MiB}-byte image (truncated image?)`,
      `partition 4 ends at byte ${129024 * 512}, beyond the end of the ${40 * MiB}-byte image (truncated image?)`,
    ]);
  });
});

describe('readPartitionTable on an MBR', () => {
  const spec: MbrSpec = {
    diskId: 0xcafe0042,
    partitions: [
      { start: MiB, size: 16 * MiB, type: 0x0c, bootable: true },
      { start: 17 * MiB, size: 16 * MiB, type: 0x83 },
      { start: 33 * MiB, size: 31 * MiB, type: 0x83 },
    ],
  };

  test('reads back what writeMbr wrote', () => {
    const file = sparseImage(64 * MiB);
    writeMbr(file, spec);
    expect(readPartitionTable(file)).toEqual({
      kind: 'mbr',
      diskId: 0xcafe0042,
      sectorSize: 512,
      partitions: spec.partitions.map((p, i) => ({ index: i + 1, start: p.start, size: p.size, mbrType: p.type, bootable: p.bootable === true })),
      warnings: [],
    });
  });

  test('numbers partitions by their entry, as Linux does, when an entry is empty (table by sfdisk)', () => {
    const file = sparseImage(64 * MiB);
    writeMbr(file, spec);
    expect(run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', '--delete', file, '2']).status).toBe(0);
    const t = readPartitionTable(file);
    expect(t.partitions.map((p) => [p.index, p.mbrType])).toEqual([[1, 0x0c], [3, 0x83]]);
    expect(findPartition(t, 3)?.start).toBe(33 * MiB);
    expect(findPartition(t, 2)).toBeUndefined();
  });

  test('reports an extended partition without following it', () => {
    const file = sparseImage(64 * MiB);
    const r = run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', file], 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, size=65536, type=5\nstart=12288, size=8192, type=83\n');
    expect(r.status).toBe(0);
    const t = readPartitionTable(file);
    expect(t.partitions.map((p) => [p.index, p.mbrType])).toEqual([[1, 0x83], [2, 0x05]]);
    expect(t.warnings).toEqual(['partition 2 is an extended partition (type 0x5); the logical partitions inside it are not read']);
  });
});

describe('readPartitionTable refuses what is not a partition table', () => {
  test('an empty image', () => {
    const file = sparseImage(MiB);
    expectComposeError(() => readPartitionTable(file), 'ERR_PARTITION_TABLE_NOT_FOUND', file, 'no partition table');
  });

  test('a FAT filesystem over the whole image', () => {
    const file = sparseImage(64 * MiB);
    expect(run('mkfs.vfat', [file]).status).toBe(0);
    expectComposeError(() => readPartitionTable(file), 'ERR_PARTITION_TABLE_NOT_FOUND', 'FAT filesystem');
  });

  test('a missing file', () => {
    const file = `${tempDir()}/missing.img`;
    expectComposeError(() => readPartitionTable(file), 'ERR_IMAGE_OPEN', file, 'for reading');
  });
});
