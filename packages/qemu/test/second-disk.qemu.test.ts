/**
 * Issue 11: partitions by name are looked for on the boot disk only. The pc-amd64 (GPT) and
 * arm64-uboot (MBR) reference images boot with a second disk attached (/dev/vdb) that carries
 * system-boot, system-a, system-b and system-data — GPT names or filesystem labels, new UUIDs,
 * slots that hold no system, a system-data that is last and could grow. The bootloader names its
 * own system-boot in `edgeimage.bootpart=`; the device must boot, mount and grow from /dev/vda only
 * and leave the second disk byte for byte as it was. Two boots per board, on one copy of the image:
 *   1. the first boot (a disk 1 GiB bigger): slot a, data and system-boot all on vda; system-boot
 *      read-only, the bundles nosuid,nodev; vda's system-data grows;
 *   2. a try of slot b (set offline): the health check commits it through `bootenv set`, which
 *      remounts system-boot read-write only while it writes — read-only again afterwards (the FAT
 *      is left clean although QEMU is killed right after).
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootPartitionOffset, readImageEnv, readPartitionTable } from '@edgeimage/composer';
import { jest } from '@jest/globals';
import { bootTest, HEALTHY, type BootTestResult } from '../src/index.js';
import { fatDirty } from '@edgeimage/testkit/disk-read';

// one sequence on one disk per board: a retry would run on a disk the later boot changed
jest.retryTimes(0);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOARDS = [{ board: 'pc-amd64', label: 'gpt' }, { board: 'arm64-uboot', label: 'dos' }] as const;
const BOOT_TIMEOUT_S = 240;
const NAMES = ['system-boot', 'system-a', 'system-b', 'system-data'];
const MiB = 1024 * 1024;

const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-system-aarch64', ['--version']).status === 0;

let work: string;
let images: Record<string, string> = {};
let buildError: string | undefined;

beforeAll(() => {
  if (!hasQemu) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-second-disk-'));
  const r = spawnSync(join(ROOT, 'scripts/reference-images'), ['--out', work, ...BOARDS.map((b) => b.board)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    buildError = `scripts/reference-images failed (${r.status}):\n${r.stderr.split('\n').slice(-30).join('\n')}`;
    return;
  }
  images = Object.fromEntries(r.stdout.trim().split('\n').map((p) => [p.replace(/^.*\//, '').replace(/\.img$/, ''), p]));
}, 20 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The second disk, made by hand: 80 MiB, system-boot (FAT, 8 MiB), system-a and system-b (ext4,
 * 16 MiB, a file saying so and no system), system-data (ext4, 8 MiB, last), then 31 MiB free.
 */
function makeSecondDisk(file: string, label: 'gpt' | 'dos'): void {
  const sizes = [8, 16, 16, 8];
  execFileSync('truncate', ['-s', '80M', file]);
  const parts = NAMES.map((n, i) => `${i === 0 ? 'start=1MiB, ' : ''}size=${sizes[i]}MiB${label === 'gpt' ? `, name=${n}` : ''}`);
  execFileSync('sfdisk', ['-q', file], { input: [`label: ${label}`, ...parts, ''].join('\n') });
  let start = 1;
  NAMES.forEach((n, i) => {
    const fs = `${file}.${i}.fs`;
    execFileSync('truncate', ['-s', `${sizes[i]}M`, fs]);
    if (i === 0) {
      execFileSync('mkfs.vfat', ['-n', n.toUpperCase(), fs], { stdio: 'ignore' });
    } else {
      const dir = mkdtempSync(join(work, 'fs-'));
      execFileSync('sh', ['-c', 'echo "the second disk: never to be booted, mounted or grown" > "$1/not-the-boot-disk"', 'sh', dir]);
      execFileSync('mkfs.ext4', ['-q', '-F', '-L', n, '-d', dir, fs]);
      rmSync(dir, { recursive: true });
    }
    execFileSync('dd', [`if=${fs}`, `of=${file}`, 'bs=1M', `seek=${start}`, 'conv=notrunc', 'status=none']);
    rmSync(fs);
    start += sizes[i]!;
  });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function explain(r: BootTestResult): string {
  return r.passed ? '' : `${r.code}: ${r.reason}\n${r.tail ?? ''}`;
}

const line = (r: BootTestResult, re: RegExp): string => r.markers.map((m) => m.line).find((l) => re.test(l)) ?? '';

/** `edgeimage-init: devices: DEV on MOUNTPOINT TYPE OPTIONS; ...` as [mount point, device, type, options]. */
function mounts(r: BootTestResult): Record<string, { dev: string; type: string; opts: string[] }> {
  const text = line(r, /edgeimage-init: devices: /).replace(/^.*edgeimage-init: devices: /, '');
  const out: Record<string, { dev: string; type: string; opts: string[] }> = {};
  for (const m of text.split(';').map((s) => s.trim()).filter(Boolean)) {
    const [dev, , point, type, opts] = m.split(' ');
    out[point!] = { dev: dev!, type: type!, opts: (opts ?? '').split(',') };
  }
  return out;
}

/** The mounts every boot must show: slot, data and system-boot from vda, system-boot read-only, the bundles nosuid,nodev. */
function expectOwnDiskMounts(r: BootTestResult, slotIndex: number): void {
  const m = mounts(r);
  expect(m['/run/edgeimage/slot']).toMatchObject({ dev: `/dev/vda${slotIndex}`, type: 'ext4' });
  expect(m['/run/edgeimage/slot']!.opts).toContain('ro');
  expect(m['/writable']).toMatchObject({ dev: '/dev/vda4', type: 'ext4' });
  expect(m['/run/edgeimage/boot']).toMatchObject({ dev: '/dev/vda1', type: 'vfat' });
  expect(m['/run/edgeimage/boot']!.opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
  const apps = Object.entries(m).filter(([p]) => p.startsWith('/run/edgeimage/snap/'));
  expect(apps.map(([p]) => p)).toContain('/run/edgeimage/snap/hello-kiosk');
  for (const [, a] of apps) {
    expect(a.type).toBe('squashfs');
    expect(a.opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
  }
  expect(Object.values(m).map((x) => x.dev).filter((d) => /vdb/.test(d))).toEqual([]);
}

(hasQemu ? describe.each(BOARDS) : describe.skip.each(BOARDS))('$board ($label) with a second disk carrying the same partition names', ({ board, label }) => {
  let disk: string;
  let second: string;
  let secondHash: string;

  beforeAll(() => {
    if (buildError || !images[board]) return;
    disk = join(work, `${board}.boot.img`);
    execFileSync('cp', ['--sparse=always', images[board]!, disk]);
    second = join(work, `${board}.second.img`);
    makeSecondDisk(second, label);
    secondHash = sha256(second);
  });

  const ready = () => {
    if (buildError) throw new Error(buildError);
    expect(images[board]).toBeDefined();
  };

  const boot = (expect: RegExp[], extra: { diskSize?: string } = {}) => bootTest({
    image: disk,
    inPlace: true,
    extraDisks: [second],
    expect,
    timeoutSeconds: BOOT_TIMEOUT_S,
    log: `${disk}.${Date.now()}.log`,
    ...extra,
  });

  test('first boot: slot a, system-data and system-boot from vda (edgeimage.bootpart); system-boot read-only, bundles nosuid,nodev; vda\'s system-data grows, the second disk is untouched', async () => {
    ready();
    const before = readPartitionTable(disk).partitions.find((p) => p.index === 4)!;
    const r = await boot([
      /edgeimage-initramfs: boot disk \/dev\/(\S+) \(edgeimage\.bootpart=\S+ is \/dev\/(\S+)\)/,
      /edgeimage-initramfs: slot a: (\S+) mounted/,
      /edgeimage-init: devices: (.*)/,
      /edgeimage-grow: system-data is now (\d+) MiB/,
      HEALTHY,
    ], { diskSize: '+1G' });
    expect(explain(r)).toBe('');
    expect(r.slot).toBe('a');
    expect(line(r, /boot disk/)).toMatch(/boot disk \/dev\/vda \(edgeimage\.bootpart=\S+ is \/dev\/vda1\)/);
    expect(line(r, /slot a: /)).toMatch(/slot a: \/dev\/vda2 mounted/);
    expectOwnDiskMounts(r, 2);
    const after = readPartitionTable(disk).partitions.find((p) => p.index === 4)!;
    expect(after.size).toBeGreaterThanOrEqual(before.size + 1024 * MiB - MiB);
    expect(sha256(second)).toBe(secondHash);
    expect(fatDirty(disk, bootPartitionOffset(disk))).toBe(false);
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('a try of slot b: booted from vda3, committed through bootenv (system-boot read-write only while it writes: left clean); the second disk is untouched', async () => {
    ready();
    execFileSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), 'env', 'set', disk, 'edge_try_slot=b', 'edge_status=try']);
    const r = await boot([
      /edgeimage-initramfs: slot b: (\S+) mounted/,
      /edgeimage-init: devices: (.*)/,
      /edgeimage-health: committed slot b/,
      HEALTHY,
    ]);
    expect(explain(r)).toBe('');
    expect(r.slot).toBe('b');
    expect(line(r, /slot b: /)).toMatch(/slot b: \/dev\/vda3 mounted/);
    expectOwnDiskMounts(r, 3);
    const env = (await readImageEnv(disk, bootPartitionOffset(disk))).vars;
    expect([env['edge_slot'], env['edge_status'] ?? '', env['edge_try_slot'] ?? '']).toEqual(['b', '', '']);
    expect(fatDirty(disk, bootPartitionOffset(disk))).toBe(false);
    expect(sha256(second)).toBe(secondHash);
  }, (BOOT_TIMEOUT_S + 60) * 1000);
});

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the second-disk boots are skipped', () => undefined);
