import { closeSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { planMbr, writeMbr, type MbrPartitionSpec, type MbrSpec } from './mbr.js';
import { cleanUp, diffRanges, MiB, pattern, run, sparseImage, tempDir } from '@edgeimage/testkit/partition-image';
import { expectComposeError } from '@edgeimage/testkit/partition-specs';

afterAll(cleanUp);

const DISK = 64 * MiB;
const DISK_ID = 0x2a2a2a2a;
const ALL: MbrPartitionSpec[] = [
  { start: 1 * MiB, size: 16 * MiB, type: 0x0c, bootable: true },
  { start: 17 * MiB, size: 16 * MiB, type: 0x83 },
  { start: 33 * MiB, size: 16 * MiB, type: 0x83 },
  { start: 49 * MiB, size: 15 * MiB, type: 0x83 },
];

function poke(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function lba0(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The same table written by sfdisk, for byte comparison. */
function sfdiskImage(size: number, spec: MbrSpec): string {
  const file = sparseImage(size, 'sfdisk.img');
  const lines = ['label: dos', `label-id: 0x${spec.diskId.toString(16).padStart(8, '0')}`];
  for (const p of spec.partitions) lines.push(`start=${p.start / 512}, size=${p.size / 512}, type=${p.type.toString(16)}${p.bootable ? ', bootable' : ''}`);
  const r = run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', file], lines.join('\n') + '\n');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return file;
}

describe.each([2, 3, 4])('writeMbr with %i partitions, checked by util-linux', (count) => {
  const spec: MbrSpec = { diskId: DISK_ID, partitions: ALL.slice(0, count) };
  let file: string;
  beforeAll(() => {
    file = sparseImage(DISK);
    writeMbr(file, spec);
  });

  test('sfdisk --verify finds no errors', () => {
    const r = run('sfdisk', ['--verify', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('No errors detected.');
  });

  test('sfdisk --json lists exactly our partitions', () => {
    const t = (JSON.parse(run('sfdisk', ['--json', file]).stdout) as { partitiontable: Record<string, unknown> & { partitions: Record<string, unknown>[] } }).partitiontable;
    expect(t).toMatchObject({ label: 'dos', id: '0x2a2a2a2a', unit: 'sectors', sectorsize: 512 });
    expect(t.partitions.map(({ node: _node, ...p }) => p)).toEqual(
      spec.partitions.map((p) => ({ start: p.start / 512, size: p.size / 512, type: p.type.toString(16), ...(p.bootable ? { bootable: true } : {}) })),
    );
  });

  test('fdisk -l agrees', () => {
    const r = run('fdisk', ['-l', '-o', 'Device,Boot,Start,End,Sectors,Id', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Disklabel type: dos');
    expect(r.stdout).toContain('Disk identifier: 0x2a2a2a2a');
    const rows = r.stdout.split('\n').filter((l) => l.startsWith(file)).map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual(
      spec.partitions.map((p, i) => [`${file}${i + 1}`, ...(p.bootable ? ['*'] : []), String(p.start / 512), String((p.start + p.size) / 512 - 1), String(p.size / 512), p.type.toString(16)]),
    );
  });

  test('writes the same LBA 0 as sfdisk (LBA and CHS fields, disk id, signature)', () => {
    expect(lba0(file).equals(lba0(sfdiskImage(DISK, spec)))).toBe(true);
  });
});

describe('writeMbr', () => {
  test('uses the FE FF FF CHS convention beyond cylinder 1023, as sfdisk does', () => {
    const size = 16 * 2 ** 30;
    const spec: MbrSpec = {
      diskId: 0xdeadbeef,
      partitions: [
        { start: MiB, size: 16 * MiB, type: 0x0c, bootable: true },
        { start: 17 * MiB, size: 10 * 2 ** 30, type: 0x83 },
        { start: 12 * 2 ** 30, size: 2 * 2 ** 30, type: 0x83 },
      ],
    };
    const file = sparseImage(size);
    writeMbr(file, spec);
    const s = lba0(file);
    expect(s.subarray(446 + 16 + 5, 446 + 16 + 8).toString('hex')).toBe('feffff'); // end of partition 2
    expect(s.subarray(446 + 32 + 1, 446 + 32 + 4).toString('hex')).toBe('feffff'); // start of partition 3
    expect(s.equals(lba0(sfdiskImage(size, spec)))).toBe(true);
    expect(run('sfdisk', ['--verify', file]).status).toBe(0);
  });

  test('keeps boot code in bytes 0 … 439 and touches no byte but 440 … 511', () => {
    const file = sparseImage(DISK);
    const bootCode = pattern(440, 3);
    poke(file, 0, bootCode);
    poke(file, 2 * MiB, pattern(4096, 4));
    const before = readFileSync(file);
    writeMbr(file, { diskId: DISK_ID, partitions: ALL.slice(0, 2) });
    const after = readFileSync(file);
    expect(after.subarray(0, 440).equals(bootCode)).toBe(true);
    expect(diffRanges(before, after).every(([from, to]) => from >= 440 && to <= 512)).toBe(true);
    expect(run('sfdisk', ['--verify', file]).status).toBe(0);
  });

  test('a bare structure at byte 512 (a u-boot blob, as on odroid boards) survives: only LBA 0 is written', () => {
    const file = sparseImage(DISK);
    const uboot = pattern(MiB - 512, 5); // fills everything between LBA 0 and the first partition
    poke(file, 512, uboot);
    const before = readFileSync(file);
    writeMbr(file, { diskId: DISK_ID, partitions: ALL.slice(0, 2) });
    const after = readFileSync(file);
    const changed = diffRanges(before, after);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every(([from, to]) => from >= 440 && to <= 512)).toBe(true);
    expect(after.subarray(512, MiB).equals(uboot)).toBe(true);
    expect(run('sfdisk', ['--verify', file]).status).toBe(0);
  });

  test('replaces bytes 0 … 439 with bootCode when given', () => {
    const file = sparseImage(DISK);
    poke(file, 0, pattern(440, 6));
    writeMbr(file, { diskId: DISK_ID, partitions: ALL.slice(0, 2), bootCode: pattern(440, 8) });
    expect(lba0(file).subarray(0, 440).equals(pattern(440, 8))).toBe(true);
  });

  test('is deterministic and plans only LBA 0', () => {
    const spec: MbrSpec = { diskId: DISK_ID, partitions: ALL, diskSize: DISK };
    const a = planMbr(spec);
    expect(a.map((w) => [w.offset, w.bytes.length, w.what])).toEqual([[440, 72, 'MBR (LBA 0)']]);
    expect(planMbr(spec)[0]!.bytes.equals(a[0]!.bytes)).toBe(true);
  });
});

describe('writeMbr refuses bad input and writes nothing', () => {
  function refuses(spec: MbrSpec, code: string, ...message: string[]) {
    const file = sparseImage(DISK);
    const err = expectComposeError(() => writeMbr(file, spec), code, file, ...message);
    const st = statSync(file);
    expect([st.size, st.blocks]).toEqual([DISK, 0]);
    return err;
  }

  test('more than 4 partitions: extended partitions are not supported', () => {
    const five = [...ALL.slice(0, 3), { start: 49 * MiB, size: 7 * MiB, type: 0x83 }, { start: 56 * MiB, size: 8 * MiB, type: 0x83 }];
    const err = refuses(
      { diskId: DISK_ID, partitions: five },
      'ERR_PARTITION_TOO_MANY',
      '5 partitions, but an MBR (DOS) table holds at most 4 primary partitions',
      'extended and logical partitions are not supported',
    );
    expect(err.context).toMatchObject({ count: 5, max: 4, schema: 'mbr' });
  });

  test('overlapping partitions', () => {
    refuses(
      { diskId: DISK_ID, partitions: [ALL[0]!, { start: 16 * MiB, size: 2 * MiB, type: 0x83 }] },
      'ERR_PARTITION_OVERLAP',
      `partition 2 (bytes ${16 * MiB} … ${18 * MiB - 1}) overlaps partition 1 (bytes ${MiB} … ${17 * MiB - 1})`,
    );
  });

  test('a partition beyond the end of the image, or over LBA 0', () => {
    refuses({ diskId: DISK_ID, partitions: [{ start: 60 * MiB, size: 8 * MiB, type: 0x83 }] }, 'ERR_PARTITION_OUTSIDE_DISK', 'partition 1', `the disk is ${DISK} bytes`);
    refuses({ diskId: DISK_ID, partitions: [{ start: 0, size: MiB, type: 0x83 }] }, 'ERR_PARTITION_OUTSIDE_DISK', 'LBA 0 holds the partition table');
  });

  test('a start or size that is not a multiple of 512 bytes', () => {
    refuses({ diskId: DISK_ID, partitions: [{ start: MiB + 1, size: MiB, type: 0x83 }] }, 'ERR_PARTITION_ALIGNMENT', 'must be multiples of 512 bytes');
  });

  test('extended, protective and empty types', () => {
    refuses({ diskId: DISK_ID, partitions: [{ start: MiB, size: MiB, type: 0x05 }] }, 'ERR_PARTITION_TYPE', 'type 0x05 is an extended partition', 'not supported');
    refuses({ diskId: DISK_ID, partitions: [{ start: MiB, size: MiB, type: 0xee }] }, 'ERR_PARTITION_TYPE', '0xEE');
    refuses({ diskId: DISK_ID, partitions: [{ start: MiB, size: MiB, type: 0 }] }, 'ERR_PARTITION_TYPE', '0 marks an unused entry');
  });

  test('a disk id that is not 32 bits', () => {
    refuses({ diskId: 2 ** 32, partitions: [] }, 'ERR_MBR_DISK_ID', 'not a 32-bit unsigned number');
  });

  test('a disk size that is not the image size', () => {
    refuses({ diskId: DISK_ID, partitions: [], diskSize: 2 * DISK }, 'ERR_DISK_SIZE_MISMATCH', `the image is ${DISK} bytes`);
  });

  test('boot code longer than 440 bytes', () => {
    refuses({ diskId: DISK_ID, partitions: [], bootCode: Buffer.alloc(512) }, 'ERR_BOOT_CODE_TOO_LARGE', 'boot code is 512 bytes');
  });

  test('a missing image file', () => {
    const file = `${tempDir()}/missing.img`;
    expectComposeError(() => writeMbr(file, { diskId: 1, partitions: [] }), 'ERR_IMAGE_OPEN', file, 'no such file');
  });
});
