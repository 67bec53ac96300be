/**
 * The device's first-boot growth of system-data (`grow-data` in the base), run for real on the
 * host: busybox sh and the base's own sfdisk, resizepart and resize2fs in a chroot of the amd64
 * base, on a loop device whose partitions the host kernel reads. Each run is a mount namespace of
 * its own (unshare -m), so nothing it mounts outlives it. Root is needed (CI runs as root).
 * system-data is not mounted here, so resize2fs grows it offline: on these machines root lacks
 * CAP_SYS_RESOURCE, which ext4's online resize needs. The online resize, as on the device, is
 * what the QEMU board boots cover (boards.qemu.test.ts).
 *
 * The disk is laid out as the composer lays out an image: system-data last, ending 1 MiB before
 * the end. Covered: growth on GPT (backup table moved: sgdisk verifies) and MBR; nothing to do on
 * a later boot; a growth cut off between the table and the filesystem; and every refusal —
 * system-data not the last partition, no ext4 on it, a resize2fs that fails (a filesystem with
 * errors recorded: growth resumes once it is repaired), no device recorded,
 * a device that is not a partition. A second disk with its own growable system-data is never
 * touched: only the boot disk's system-data grows (the kernel command line each run sees, bound
 * over /proc/cmdline, names the boot disk's system-boot in `edgeimage.bootpart=`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPartitionTable } from '@edgeimage/composer';
import { isRoot, runWithDevices, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { ext4Bytes, partUuid } from '@edgeimage/testkit/disk-read';
import { requires } from '@edgeimage/testkit/skips';

const MiB = 1024 * 1024;
const hasLoop = isRoot && spawnSync('losetup', ['-f']).status === 0;
const missingLoop = hasLoop ? undefined : 'grow-data runs in a chroot on a loop device, which needs root and a free loop device (losetup -f)';

let work: string;
let chroot: string;
const ready = useBaseChroot('edgeimage-grow-data-', hasLoop, (w, c) => {
  work = w;
  chroot = c;
  mkdirSync(join(chroot, 'run/edgeimage'), { recursive: true });
});

interface DiskOptions {
  label: 'gpt' | 'dos';
  /** MiB added at the end of the disk after it was laid out (a bigger card). */
  grownBy?: number;
  /** A fifth partition of 4 MiB after system-data. */
  afterData?: boolean;
  /** system-data holds no filesystem (zeros). */
  noExt4?: boolean;
  /** system-data's ext4 records errors (resize2fs then asks for e2fsck first). */
  fsErrors?: boolean;
  /** The table already grown on the host (a growth cut off before the filesystem). */
  tableGrown?: boolean;
}

/**
 * A disk file: 1 MiB, three 8 MiB partitions, system-data (16 MiB ext4, 4 KiB blocks) as the
 * fourth, 1 MiB spare at the end; then `grownBy` MiB more.
 */
function makeDisk(name: string, o: DiskOptions): string {
  const disk = join(work, `${name}.img`);
  const dataStart = 1 + 3 * 8;
  const parts = ['start=1MiB, size=8MiB', 'size=8MiB', 'size=8MiB', `size=16MiB${o.label === 'gpt' ? ', name=system-data' : ''}`];
  let size = dataStart + 16 + 1;
  if (o.afterData) {
    // (GPT only: on MBR a fifth partition would be a logical one)
    parts.push('size=4MiB');
    size += 4;
  }
  execFileSync('truncate', ['-s', `${size}M`, disk]);
  execFileSync('sfdisk', ['-q', disk], { input: [`label: ${o.label}`, ...parts, ''].join('\n') });
  if (!o.noExt4) {
    const fs = join(work, `${name}.ext4`);
    execFileSync('truncate', ['-s', '16M', fs]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'system-data', '-E', 'root_owner=0:0', fs]);
    if (o.fsErrors) execFileSync('debugfs', ['-w', '-R', 'ssv state 2', fs], { stdio: 'ignore' });
    execFileSync('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', `seek=${dataStart}`, 'conv=notrunc', 'status=none']);
    rmSync(fs);
  }
  if (o.grownBy) execFileSync('truncate', ['-s', `+${o.grownBy}M`, disk]);
  if (o.tableGrown) {
    // what the device's sfdisk wrote before the cut: the fourth partition to the last whole MiB
    const total = (size + (o.grownBy ?? 0)) * 2048;
    const end = Math.floor((total - (o.label === 'gpt' ? 33 : 0) - dataStart * 2048) / 2048) * 2048;
    execFileSync('sfdisk', ['-q', '--no-reread', '-N', '4', disk], { input: `${dataStart * 2048},${end}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  }
  return disk;
}

interface Run {
  status: number | null;
  output: string;
  /** The loop device the disk was attached to. */
  dev: string;
  /** The loop device of the second disk ('' without one). */
  otherDev: string;
}

/**
 * Attaches `disk` (and `other`, a second disk, when given) to loop devices with their partitions,
 * records `data` (a function of the loop devices, e.g. `${dev}p4`) as system-data the way the
 * initramfs does, and runs grow-data in the chroot, with `edgeimage.bootpart=` naming the first
 * partition of `disk` as the bootloader would.
 */
function grow(disk: string, data: (dev: string, other: string) => string, other?: string): Run {
  const dev = execFileSync('losetup', ['-P', '--show', '-f', disk], { encoding: 'utf8' }).trim();
  let otherDev = '';
  try {
    waitForPartitions(dev);
    if (other) {
      otherDev = execFileSync('losetup', ['-P', '--show', '-f', other], { encoding: 'utf8' }).trim();
      waitForPartitions(otherDev);
    }
    const dataDev = data(dev, otherDev);
    writeFileSync(join(chroot, 'run/edgeimage/devices'), `slot_dev=${dev}p2\ndata_dev=${dataDev}\nboot_dev=${dev}p1\n`);
    const cmdline = join(work, 'cmdline');
    writeFileSync(cmdline, `console=ttyS0 edgeimage.bootpart=${partUuid(disk, 1)} edgeimage.slot=a\n`);
    const r = runWithDevices(chroot, cmdline, '/run/edgeimage/agent/lib/edgeimage/grow-data');
    return { status: r.status, output: r.output.trim(), dev, otherDev };
  } finally {
    execFileSync('losetup', ['-d', dev]);
    if (otherDev) execFileSync('losetup', ['-d', otherDev]);
  }
}

/** The kernel adds a loop device's partitions as it scans them: wait for the fourth (partx when the scan did not run). */
function waitForPartitions(dev: string): void {
  const p4 = `/sys/class/block/${dev.replace('/dev/', '')}p4`;
  for (let i = 0; i < 10 && !existsSync(p4); i++) spawnSync('sleep', ['0.1']);
  if (!existsSync(p4)) execFileSync('partx', ['-a', dev]);
  if (!existsSync(`${dev}p4`)) throw new Error(`${dev}: the kernel shows no partition 4 (${p4})`);
}

const data = (disk: string) => readPartitionTable(disk).partitions.find((p) => p.index === 4)!;
const table = (disk: string) => execFileSync('sfdisk', ['--dump', disk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/^device: .*$/m, '');
const p4 = (dev: string) => `${dev}p4`;

requires(missingLoop).describe('grow-data on the device (chroot of the amd64 base, a loop device)', () => {
  // GPT keeps 33 sectors at the end for its backup: the last whole MiB is one less than on MBR
  test.each([
    { label: 'gpt' as const, by: 32, now: 48 },
    { label: 'dos' as const, by: 33, now: 49 },
  ])('$label, a card 32 MiB bigger: system-data grows by $by MiB to $now MiB, ext4 fills it (GPT: the backup table moves to the new end); a second boot does nothing', ({ label, by, now }) => {
    ready();
    const disk = makeDisk(label, { label, grownBy: 32 });
    const r = grow(disk, p4);
    expect(r.output).toBe([
      `edgeimage-grow: growing system-data (${r.dev}p4) by ${by} MiB to the end of ${r.dev} (${label})`,
      `edgeimage-grow: system-data is now ${now} MiB`,
    ].join('\n'));
    expect(r.status).toBe(0);
    expect(data(disk).size).toBe(now * MiB);
    expect(ext4Bytes(disk, data(disk).start)).toBe(now * MiB);
    if (label === 'gpt') expect(spawnSync('sgdisk', ['-v', disk], { encoding: 'utf8' }).stdout).toContain('No problems found');
    const before = table(disk);
    expect(grow(disk, p4)).toMatchObject({ status: 0, output: '' });
    expect(table(disk)).toBe(before);
  });

  test('a card the size of the image: nothing to grow, nothing printed, nothing written', () => {
    ready();
    const disk = makeDisk('same', { label: 'gpt' });
    const before = table(disk);
    const r = grow(disk, p4);
    expect(r).toMatchObject({ status: 0, output: '' });
    expect(table(disk)).toBe(before);
    expect(ext4Bytes(disk, data(disk).start)).toBe(16 * MiB);
  });

  test('a growth cut off after the table: the filesystem smaller than its partition is grown, named as such', () => {
    ready();
    const disk = makeDisk('cut', { label: 'gpt', grownBy: 32, tableGrown: true });
    expect(data(disk).size).toBe(48 * MiB);
    expect(ext4Bytes(disk, data(disk).start)).toBe(16 * MiB);
    const r = grow(disk, p4);
    expect(r.output).toBe([
      'edgeimage-grow: the filesystem of system-data (16 MiB) is smaller than its partition (48 MiB): an earlier growth was cut off; growing it',
      'edgeimage-grow: system-data is now 48 MiB',
    ].join('\n'));
    expect(r.status).toBe(0);
    expect(ext4Bytes(disk, data(disk).start)).toBe(48 * MiB);
  });

  test('system-data is not the last partition: refused, the table unchanged', () => {
    ready();
    const disk = makeDisk('not-last', { label: 'gpt', grownBy: 32, afterData: true });
    const before = table(disk);
    const r = grow(disk, p4);
    expect(r).toMatchObject({ status: 0, output: 'edgeimage-grow: system-data is not the last partition: not grown' });
    expect(table(disk)).toBe(before);
  });

  test('system-data holds no ext4: refused before the table is touched, naming the magic found', () => {
    ready();
    const disk = makeDisk('no-ext4', { label: 'gpt', grownBy: 32, noExt4: true });
    const before = table(disk);
    const r = grow(disk, p4);
    expect(r.output).toBe(`edgeimage-grow: ${r.dev}p4 holds no ext4 (superblock magic 0x0000, expected 0xef53): not grown`);
    expect(r.status).toBe(1);
    expect(table(disk)).toBe(before);
  });

  test('resize2fs fails (the filesystem records errors): its output and the error; once repaired, the next boot finishes the growth', () => {
    ready();
    const disk = makeDisk('errors', { label: 'gpt', grownBy: 32, fsErrors: true });
    const r = grow(disk, p4);
    expect(r.output).toMatch(/^edgeimage-grow: growing system-data .* by 32 MiB/);
    expect(r.output).toContain(`Please run 'e2fsck -f ${r.dev}p4' first.`);
    expect(r.output.split('\n').at(-1)).toBe(`edgeimage-grow: resize2fs ${r.dev}p4 failed`);
    expect(r.status).toBe(1);
    expect(data(disk).size).toBe(48 * MiB);
    expect(ext4Bytes(disk, data(disk).start)).toBe(16 * MiB);
    // e2fsck: 1 = errors corrected
    expect(spawnSync('e2fsck', ['-fy', `${disk}?offset=${data(disk).start}`]).status).toBe(1);
    const next = grow(disk, p4);
    expect(next.output).toBe([
      'edgeimage-grow: the filesystem of system-data (16 MiB) is smaller than its partition (48 MiB): an earlier growth was cut off; growing it',
      'edgeimage-grow: system-data is now 48 MiB',
    ].join('\n'));
    expect(ext4Bytes(disk, data(disk).start)).toBe(48 * MiB);
  });

  test('a second disk whose system-data is last and growable: untouched, also when system-data was recorded from it (refused by name); the boot disk still grows', () => {
    ready();
    const boot = makeDisk('boot', { label: 'gpt', grownBy: 32 });
    const second = makeDisk('second', { label: 'gpt', grownBy: 32 });
    const before = table(second);
    const wrong = grow(boot, (_dev, other) => `${other}p4`, second);
    expect(wrong.output).toBe(`edgeimage-grow: system-data mounted from ${wrong.otherDev}p4 is not the boot disk's system-data (${wrong.dev}p4): not grown`);
    expect(wrong.status).toBe(1);
    expect(table(second)).toBe(before);
    const r = grow(boot, p4, second);
    expect(r.output).toBe([
      `edgeimage-grow: growing system-data (${r.dev}p4) by 32 MiB to the end of ${r.dev} (gpt)`,
      'edgeimage-grow: system-data is now 48 MiB',
    ].join('\n'));
    expect(r.status).toBe(0);
    expect(data(boot).size).toBe(48 * MiB);
    expect(table(second)).toBe(before);
    expect(data(second).size).toBe(16 * MiB);
    expect(ext4Bytes(second, data(second).start)).toBe(16 * MiB);
  });

  test('the boot disk has two partitions named system-data: refused by name, nothing grown', () => {
    ready();
    const disk = makeDisk('two-data', { label: 'gpt', grownBy: 32, afterData: true });
    execFileSync('sfdisk', ['-q', '--part-label', disk, '5', 'system-data'], { stdio: 'ignore' });
    const before = table(disk);
    const r = grow(disk, p4);
    expect(r.output).toBe(`edgeimage-grow: several partitions with the GPT name or filesystem label system-data on the boot disk ${r.dev}: ${r.dev}p4 ${r.dev}p5: which to use is unclear: not grown`);
    expect(r.status).toBe(1);
    expect(table(disk)).toBe(before);
  });

  test('no system-data device recorded by the initramfs; a device that is not a partition: each refused by name', () => {
    ready();
    const disk = makeDisk('names', { label: 'gpt', grownBy: 32 });
    const before = table(disk);
    expect(grow(disk, () => '')).toMatchObject({ status: 1, output: 'edgeimage-grow: no system-data device recorded' });
    const whole = grow(disk, (dev) => dev);
    expect(whole).toMatchObject({ status: 1, output: `edgeimage-grow: ${whole.dev} is not a partition` });
    expect(table(disk)).toBe(before);
  });
});
