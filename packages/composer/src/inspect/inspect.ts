import { closeSync, openSync, readSync } from 'node:fs';
import { decodeStream } from '@edgeimage/assertions';
import { ComposeError } from '../errors.js';
import { readImageEnv } from '../bootenv/image.js';
import type { BootEnv } from '../bootenv/env.js';
import { runTool } from '../fs/tool.js';
import { readPartitionTable, type PartitionInfo, type PartitionTable } from '../partition/index.js';

export interface FilesystemInfo {
  type: 'ext4' | 'vfat' | 'squashfs' | 'unknown';
  label?: string;
  uuid?: string;
}

export interface SlotInfo {
  slot: 'a' | 'b';
  partition: number;
  empty: boolean;
  model?: { 'brand-id': string; model: string; revision: number; architecture: string; 'sign-key-sha3-384': string };
  bundles?: { name: string; type: string; revision: number; 'sha3-384': string }[];
  kernel?: string[];
  /** A verified slot: its signed boot payload (UEFI: a unified kernel image; fit: a FIT image). */
  'verified-boot'?: { kind: string; files: string[] };
  'trust-store'?: string[];
  /** The slot's model verifies only through the example root (TEST ONLY keys). */
  'test-keys'?: true;
}

export interface ImageInspection {
  image: string;
  table: PartitionTable;
  partitions: (PartitionInfo & { filesystem: FilesystemInfo })[];
  slots: SlotInfo[];
  bootEnvironment?: { vars: BootEnv; from: string; reason?: string };
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, offset);
  return b;
}

/** What filesystem starts at `offset`, from its superblock (ext4) or boot sector (FAT). */
export function sniffFilesystem(image: string, offset: number): FilesystemInfo {
  const fd = openSync(image, 'r');
  try {
    const sb = readAt(fd, offset + 1024, 256);
    if (sb.readUInt16LE(56) === 0xef53) {
      const label = sb.subarray(120, 136).toString('latin1').replace(/\0.*$/s, '');
      const u = sb.subarray(104, 120).toString('hex');
      return { type: 'ext4', label: label || undefined, uuid: `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}` };
    }
    const boot = readAt(fd, offset, 512);
    if (boot.subarray(0, 4).toString('latin1') === 'hsqs') return { type: 'squashfs' };
    if (boot.readUInt16LE(510) === 0xaa55) {
      const fat32 = boot.subarray(82, 87).toString('latin1') === 'FAT32';
      const fat = fat32 || boot.subarray(54, 57).toString('latin1') === 'FAT';
      if (fat) {
        const at = fat32 ? 67 : 39;
        const serial = boot.readUInt32LE(at).toString(16).toUpperCase().padStart(8, '0');
        const label = boot.subarray(at + 4, at + 15).toString('latin1').trim();
        return { type: 'vfat', label: label && label !== 'NO NAME' ? label : undefined, uuid: `${serial.slice(0, 4)}-${serial.slice(4)}` };
      }
    }
    return { type: 'unknown' };
  } finally {
    closeSync(fd);
  }
}

/** A file of an ext4 filesystem inside the image, read with debugfs (no mounting); undefined if absent. */
export async function readExt4File(image: string, offset: number, path: string): Promise<Buffer | undefined> {
  const r = await runTool('debugfs', ['-R', `cat "${path}"`, `${image}?offset=${offset}`], { check: false });
  if (/File not found|not found by ext2_lookup/.test(r.stderr)) return undefined;
  if (r.code !== 0) throw new ComposeError('ERR_TOOL_FAILED', `debugfs could not read ${path} from ${image} at offset ${offset}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The partition of a role: by GPT partition name, or on MBR disks by filesystem label. */
export function findRolePartition(image: string, table: PartitionTable, role: string): PartitionInfo | undefined {
  if (table.kind === 'gpt') return table.partitions.find((p) => p.name === role);
  return table.partitions.find((p) => {
    const label = sniffFilesystem(image, p.start).label;
    return label !== undefined && label.toLowerCase() === role.toLowerCase();
  });
}

/**
 * Reads an image without root: its partition table (our reader), each partition's filesystem,
 * the slots' manifests and models (debugfs), and the boot environment (mtools).
 */
export async function inspectImage(image: string): Promise<ImageInspection> {
  const table = readPartitionTable(image);
  const partitions = table.partitions.map((p) => ({ ...p, filesystem: sniffFilesystem(image, p.start) }));
  const slots: SlotInfo[] = [];
  for (const slot of ['a', 'b'] as const) {
    const p = findRolePartition(image, table, `system-${slot}`);
    if (!p) continue;
    const manifest = await readExt4File(image, p.start, '/manifest.json');
    const modelBytes = await readExt4File(image, p.start, '/model.assert');
    if (!manifest || !modelBytes) {
      slots.push({ slot, partition: p.index, empty: true });
      continue;
    }
    const m = JSON.parse(manifest.toString('utf8')) as { bundles: SlotInfo['bundles']; kernel: string[]; 'verified-boot'?: { kind: string; files: string[] }; 'trust-store': string[]; 'test-keys'?: unknown };
    const [model] = decodeStream(modelBytes, { file: `slot ${slot}:/model.assert` });
    slots.push({
      slot,
      partition: p.index,
      empty: false,
      model: { 'brand-id': model!.header('brand-id')!, model: model!.header('model')!, revision: model!.revision, architecture: model!.header('architecture') ?? '', 'sign-key-sha3-384': model!.signKeyId },
      bundles: m.bundles,
      kernel: m.kernel,
      ...(m['verified-boot'] ? { 'verified-boot': { kind: String(m['verified-boot'].kind), files: [...m['verified-boot'].files].map(String) } } : {}),
      'trust-store': m['trust-store'],
      ...(m['test-keys'] === true ? { 'test-keys': true as const } : {}),
    });
  }
  const boot = findRolePartition(image, table, 'system-boot');
  const bootEnvironment = boot ? await readImageEnv(image, boot.start) : undefined;
  return { image, table, partitions, slots, bootEnvironment };
}

/** The offset of the system-boot partition, where the boot environment lives. */
export function bootPartitionOffset(image: string): number {
  const table = readPartitionTable(image);
  const boot = findRolePartition(image, table, 'system-boot');
  if (!boot) {
    throw new ComposeError('ERR_NO_BOOT_PARTITION', `${image}: no system-boot partition (GPT partition named system-boot, or on MBR a filesystem labelled SYSTEM-BOOT)`, { image });
  }
  return boot.start;
}
