/**
 * The device's partition lookup (`partitions`, shared by the initramfs /init and the base's tools),
 * run for real — busybox sh, dd and od of the amd64 base — in a chroot, on loop devices whose
 * tables it reads itself (no udev, no blkid, as on the device). The kernel command line each run
 * sees is a file bound over /proc/cmdline in a mount namespace of its own.
 *
 * A second disk that carries system-boot/system-a/system-b/system-data (GPT names, or filesystem
 * labels on MBR) is never chosen: the boot disk is the one holding the partition whose PARTUUID
 * `edgeimage.bootpart=` names (its first occurrence). No partition or two with that PARTUUID, a
 * malformed value, or (without the argument) a name found on two disks: each a refusal naming it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_INIT, PARTITIONS_SH } from '@edgeimage/composer';
import { isRoot, runWithDevices, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { partUuid } from '@edgeimage/testkit/disk-read';
import { requires } from '@edgeimage/testkit/skips';

const hasLoop = isRoot && spawnSync('losetup', ['-f']).status === 0;
const missingLoop = hasLoop ? undefined : 'the partition lookup runs in a chroot on loop devices, which needs root and a free loop device (losetup -f)';
const NAMES = ['system-boot', 'system-a', 'system-b', 'system-data'];

let work: string;
let chroot: string;
const ready = useBaseChroot('edgeimage-boot-disk-', hasLoop, (w, c) => {
  work = w;
  chroot = c;
});

/**
 * A 40 MiB disk laid out as an image: four 8 MiB partitions named (GPT) or labelled (MBR: vfat
 * SYSTEM-BOOT, then ext4) system-boot, system-a, system-b, system-data. New UUIDs every time.
 * `slotB`: system-b holds an ext4 (labelled so, also on GPT) with a model of that revision.
 */
function makeDisk(name: string, label: 'gpt' | 'dos', slotB?: number): string {
  const disk = join(work, `${name}.img`);
  execFileSync('truncate', ['-s', '40M', disk]);
  const parts = NAMES.map((n, i) => `${i === 0 ? 'start=1MiB, ' : ''}size=8MiB${label === 'gpt' ? `, name=${n}` : ''}`);
  execFileSync('sfdisk', ['-q', disk], { input: [`label: ${label}`, ...parts, ''].join('\n') });
  if (label === 'dos') {
    NAMES.forEach((n, i) => {
      const fs = join(work, `${name}.${i}.fs`);
      execFileSync('truncate', ['-s', '8M', fs]);
      if (i === 0) execFileSync('mkfs.vfat', ['-n', n.toUpperCase(), fs], { stdio: 'ignore' });
      else execFileSync('mkfs.ext4', ['-q', '-F', '-L', n, fs]);
      execFileSync('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', `seek=${1 + 8 * i}`, 'conv=notrunc', 'status=none']);
      rmSync(fs);
    });
  }
  if (slotB !== undefined) {
    const dir = mkdtempSync(join(work, 'slot-b-'));
    writeFileSync(join(dir, 'model.assert'), MODEL(slotB));
    const fs = join(work, `${name}.b.fs`);
    execFileSync('truncate', ['-s', '8M', fs]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'system-b', '-d', dir, fs]);
    execFileSync('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', 'seek=17', 'conv=notrunc', 'status=none']);
    rmSync(fs);
    rmSync(dir, { recursive: true });
  }
  return disk;
}

/**
 * A GPT disk of 8 MiB partitions with the GPT names given (exactly: quoted, so trailing spaces
 * stay), each with an ext4 whose label is `label` when given: a Buffer is written over the
 * superblock's 16 label bytes as is, for labels mkfs.ext4 will not write.
 */
function makeGpt(name: string, parts: { name: string; label?: string | Buffer }[]): string {
  const disk = join(work, `${name}.img`);
  execFileSync('truncate', ['-s', `${8 * parts.length + 8}M`, disk]);
  const lines = parts.map((p, i) => `${i === 0 ? 'start=1MiB, ' : ''}size=8MiB, name="${p.name}"`);
  execFileSync('sfdisk', ['-q', disk], { input: ['label: gpt', ...lines, ''].join('\n') });
  parts.forEach((p, i) => {
    if (p.label === undefined) return;
    const fs = join(work, `${name}.${i}.fs`);
    execFileSync('truncate', ['-s', '8M', fs]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', typeof p.label === 'string' ? p.label : 'placeholder', fs]);
    if (typeof p.label !== 'string') {
      const label = Buffer.alloc(16);
      p.label.copy(label);
      execFileSync('dd', [`of=${fs}`, 'bs=1', 'seek=1144', 'conv=notrunc', 'status=none'], { input: label });
    }
    execFileSync('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', `seek=${1 + 8 * i}`, 'conv=notrunc', 'status=none']);
    rmSync(fs);
  });
  return disk;
}

const MODEL = (rev: number) => `type: model\nauthority-id: example-brand\nbrand-id: example-brand\nmodel: pc-amd64\nrevision: ${rev}\n\nSIGNATURE\n`;

/** Attaches a disk to a loop device and waits for its partitions (partx when the kernel did not scan them). */
function attach(disk: string): string {
  const dev = execFileSync('losetup', ['-P', '--show', '-f', disk], { encoding: 'utf8' }).trim();
  const p4 = `/sys/class/block/${dev.replace('/dev/', '')}p4`;
  for (let i = 0; i < 10 && !existsSync(p4); i++) spawnSync('sleep', ['0.1']);
  if (!existsSync(p4)) execFileSync('partx', ['-a', dev]);
  return dev;
}

interface Lookup {
  /** NAME → the device found, or `ERROR <part_err>`. */
  found: Record<string, string>;
  /** The loop device of each disk, in the order given. */
  devs: string[];
}

/** Attaches `disks`, then looks each name up in the chroot, the kernel command line being `cmdline`. */
function lookup(disks: string[], cmdline: string): Lookup {
  const inner = `. /run/edgeimage/agent/lib/edgeimage/partitions; for n in ${NAMES.join(' ')}; do if edge_find_part "$n"; then echo "$n $part_dev"; else echo "$n ERROR $part_err"; fi; done`;
  const r = inChroot(disks, cmdline, inner);
  if (r.status !== 0) throw new Error(`the lookup did not run (${r.status}): ${r.output}`);
  const found = Object.fromEntries(r.output.trim().split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
  return { found, devs: r.devs };
}

/** Attaches `disks` and runs the shell command `inner` in the chroot, the kernel command line being `cmdline`. */
function inChroot(disks: string[], cmdline: string, inner: string): { status: number | null; output: string; devs: string[] } {
  const devs: string[] = [];
  try {
    for (const d of disks) devs.push(attach(d));
    const file = join(work, 'cmdline');
    writeFileSync(file, `${cmdline}\n`);
    return { ...runWithDevices(chroot, file, inner), devs };
  } finally {
    for (const d of devs) execFileSync('losetup', ['-d', d]);
  }
}

const partsOf = (dev: string) => Object.fromEntries(NAMES.map((n, i) => [n, `${dev}p${i + 1}`]));

requires(missingLoop).describe('partitions on the boot disk (chroot of the amd64 base, loop devices)', () => {
  test('the initramfs /init embeds the very file the device agent ships as /run/edgeimage/agent/lib/edgeimage/partitions', () => {
    ready();
    expect(readFileSync(join(chroot, 'run/edgeimage/agent/lib/edgeimage/partitions'), 'utf8')).toBe(PARTITIONS_SH);
    expect(DEFAULT_INIT).toContain(PARTITIONS_SH);
  });

  test.each(['gpt', 'dos'] as const)('%s: a second disk with the same names and labels: every name is found on the boot disk only, whichever disk comes first; the first edgeimage.bootpart counts', (label) => {
    ready();
    const boot = makeDisk(`boot-${label}`, label);
    const second = makeDisk(`second-${label}`, label);
    const bootpart = partUuid(boot, 1);
    for (const order of [[second, boot], [boot, second]]) {
      const r = lookup(order, `console=ttyS0 edgeimage.bootpart=${bootpart} edgeimage.bootpart=${partUuid(second, 1)} edgeimage.slot=a`);
      expect(r.found).toEqual(partsOf(r.devs[order.indexOf(boot)]!));
    }
    // upper case, as a hand-typed argument might be: the same partition
    const upper = lookup([second, boot], `edgeimage.bootpart=${bootpart.toUpperCase()}`);
    expect(upper.found).toEqual(partsOf(upper.devs[1]!));
  });

  test.each([
    ['a second partition with the GPT name "system-a " (a trailing space)', [{ name: 'system-a ' }]],
    ['a second partition with the GPT name " system-a" (a leading space)', [{ name: ' system-a' }]],
    ['a second partition with an ext4 labelled SYSTEM-A', [{ name: 'data2', label: 'SYSTEM-A' }]],
    ['a second partition with an ext4 labelled "system-a " (a trailing space)', [{ name: 'data2', label: 'system-a ' }]],
    ['a second partition with an ext4 label system\\0-a (a NUL inside)', [{ name: 'data2', label: Buffer.from('system\0-a') }]],
  ] as const)('names and ext4 labels compare exactly, as the bootloaders compare them: %s on the boot disk is another name, never system-a', (_name, extra) => {
    ready();
    const disk = makeGpt(`exact-${_name.replace(/\W+/g, '-').slice(0, 40)}`, [...NAMES.map((n) => ({ name: n })), ...extra]);
    const r = lookup([disk], `edgeimage.bootpart=${partUuid(disk, 1)}`);
    expect(r.found).toEqual(partsOf(r.devs[0]!));
  });

  test.each([
    ['the GPT name "system-a " (a trailing space)', { name: 'system-a ' }],
    ['no GPT name and an ext4 labelled SYSTEM-A', { name: '', label: 'SYSTEM-A' }],
  ] as const)('a slot partition found only by a spelling the bootloaders would not match (%s) is never chosen: no system-a', (_name, slotA) => {
    ready();
    const disk = makeGpt(`only-${_name.replace(/\W+/g, '-').slice(0, 40)}`, [{ name: 'system-boot' }, slotA, { name: 'system-b' }, { name: 'system-data' }]);
    const r = lookup([disk], `edgeimage.bootpart=${partUuid(disk, 1)}`);
    expect(r.found['system-a']).toBe(`ERROR no partition with the GPT name or filesystem label system-a on the boot disk /dev/${r.devs[0]!.replace('/dev/', '')}`);
    expect(r.found['system-b']).toBe(`${r.devs[0]}p3`);
  });

  test('edgeimage.bootpart matches no partition: every lookup refused, naming the UUID', () => {
    ready();
    const boot = makeDisk('nomatch', 'gpt');
    const r = lookup([boot], 'edgeimage.bootpart=01234567-89ab-cdef-0123-456789abcdef');
    for (const n of NAMES) expect(r.found[n]).toBe('ERROR no partition has PARTUUID 01234567-89ab-cdef-0123-456789abcdef (edgeimage.bootpart, the system-boot the bootloader started from): which disk to boot from is unclear');
  });

  test.each(['gpt', 'dos'] as const)('%s: edgeimage.bootpart matches two partitions (a byte copy of the boot disk attached): refused, naming both', (label) => {
    ready();
    const boot = makeDisk(`twin-${label}`, label);
    const copy = join(work, `twin-${label}.copy.img`);
    copyFileSync(boot, copy);
    const r = lookup([boot, copy], `edgeimage.bootpart=${partUuid(boot, 1)}`);
    const [a, b] = r.devs.map((d) => `${d}p1`).sort();
    for (const n of NAMES) expect(r.found[n]).toBe(`ERROR several partitions have PARTUUID ${partUuid(boot, 1)} (edgeimage.bootpart): ${a} ${b}: which disk to trust is unclear`);
  });

  test('a value that is no partition UUID: refused, naming it', () => {
    ready();
    const boot = makeDisk('malformed', 'gpt');
    for (const v of ['', 'system-boot', '0123456-01', '01234567-1g', '../../etc', '01234567-89ab-cdef-0123-456789abcdef0']) {
      const r = lookup([boot], `edgeimage.bootpart=${v} quiet`);
      expect(r.found['system-a']).toBe(`ERROR edgeimage.bootpart=${v} is not a partition UUID (GPT: 8-4-4-4-12 hex digits; MBR: 8-2)`);
    }
  });

  test('edge-update reads the other slot from the boot disk only: status shows the boot disk\'s system-b, never the second disk\'s', () => {
    ready();
    const run = join(chroot, 'run/edgeimage');
    mkdirSync(join(run, 'slot'), { recursive: true });
    writeFileSync(join(run, 'slot/model.assert'), MODEL(1));
    writeFileSync(join(run, 'slot-name'), 'a\n');
    writeFileSync(join(run, 'devices'), 'slot_dev=\ndata_dev=\nboot_dev=\n');
    const boot = makeDisk('update-boot', 'gpt', 5);
    const second = makeDisk('update-second', 'dos', 9);
    // either disk on the lower loop device: whichever a search of all disks meets first
    for (const order of [[second, boot], [boot, second]]) {
      const r = inChroot(order, `edgeimage.bootpart=${partUuid(boot, 1)}`, '/run/edgeimage/agent/lib/edgeimage/edge-update status');
      expect(r.output).toMatch(/^slot b: example-brand\/pc-amd64 revision 5$/m);
      expect(r.output).not.toContain('revision 9');
    }
  });

  test('without edgeimage.bootpart (a direct kernel boot): one disk is searched whole; with a second disk every name is refused as ambiguous, naming both', () => {
    ready();
    const boot = makeDisk('direct', 'gpt');
    const alone = lookup([boot], 'console=ttyS0 edgeimage.slot=a');
    expect(alone.found).toEqual(partsOf(alone.devs[0]!));
    const second = makeDisk('direct-second', 'dos');
    const two = lookup([boot, second], 'console=ttyS0');
    // (both named, in the order the device lists its block devices: which loop device each disk
    // got depends on what else the machine has attached)
    NAMES.forEach((n, i) => {
      const [a, b] = [`${two.devs[0]}p${i + 1}`, `${two.devs[1]}p${i + 1}`];
      const message = (x: string, y: string) => `ERROR several partitions with the GPT name or filesystem label ${n} on any disk (no edgeimage.bootpart on the kernel command line): ${x} ${y}: which to use is unclear`;
      expect([message(a, b), message(b, a)]).toContain(two.found[n]);
    });
  });
});
