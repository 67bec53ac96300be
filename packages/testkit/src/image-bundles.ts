/**
 * The bundles of the composer's test world, as trees to pack: A/B gadgets (GPT and MBR, small
 * sizes so tests stay fast), a kernel with a fake `kernel.img` and `initrd.img`, a base and an app.
 */
import { createHash } from 'node:crypto';
import type { Entry } from './bundle-trees.js';

export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** Incompressible but deterministic bytes. */
export function noise(n: number, seed: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 64 < n; i++) out.push(createHash('sha512').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

export interface StructureSpec {
  name: string;
  role?: string;
  filesystem: string;
  label?: string;
  type: string;
  size: string;
  offset?: string;
  'offset-write'?: string;
  /** The GPT partition GUID. */
  id?: string;
  content?: ({ source: string; target: string } | { image: string })[];
}

/** One volume of a gadget.yaml (its lines, indented under `volumes:`). */
export function volumeYaml(volume: string, schema: 'gpt' | 'mbr', bootloader: string | undefined, structures: StructureSpec[], id?: string): string[] {
  const lines = [`  ${volume}:`, `    schema: ${schema}`];
  if (bootloader) lines.push(`    bootloader: ${bootloader}`);
  if (id) lines.push(`    id: ${id}`);
  lines.push('    structure:');
  for (const s of structures) {
    lines.push(`      - name: ${s.name}`);
    if (s.role) lines.push(`        role: ${s.role}`);
    lines.push(`        filesystem: ${s.filesystem}`);
    if (s.label) lines.push(`        filesystem-label: ${s.label}`);
    lines.push(`        type: ${s.type}`, `        size: ${s.size}`);
    if (s.offset) lines.push(`        offset: ${s.offset}`);
    if (s['offset-write']) lines.push(`        offset-write: ${s['offset-write']}`);
    if (s.id) lines.push(`        id: ${s.id}`);
    if (s.content?.length) {
      lines.push('        content:');
      for (const c of s.content) {
        if ('image' in c) lines.push(`          - image: ${c.image}`);
        else lines.push(`          - source: ${c.source}`, `            target: ${c.target}`);
      }
    }
  }
  return lines;
}

/** A gadget.yaml with one volume. */
export function gadgetYaml(volume: string, schema: 'gpt' | 'mbr', bootloader: string, structures: StructureSpec[], id?: string): string {
  return `${['volumes:', ...volumeYaml(volume, schema, bootloader, structures, id)].join('\n')}\n`;
}

/** The four A/B structures (like bundles/pc, with small sizes). */
export function abStructures(schema: 'gpt' | 'mbr', sizes: { boot?: string; slot?: string; data?: string } = {}): StructureSpec[] {
  const t = (gpt: string, mbr: string) => (schema === 'gpt' ? gpt : mbr);
  return [
    { name: 'system-boot', role: 'system-boot', filesystem: 'vfat', label: 'system-boot', type: t(ESP_TYPE, '0C'), size: sizes.boot ?? '16M', content: [{ source: 'boot-assets/', target: '/' }] },
    { name: 'system-a', role: 'system-a', filesystem: 'ext4', label: 'system-a', type: t(LINUX_TYPE, '83'), size: sizes.slot ?? '24M' },
    { name: 'system-b', role: 'system-b', filesystem: 'ext4', label: 'system-b', type: t(LINUX_TYPE, '83'), size: sizes.slot ?? '24M' },
    { name: 'system-data', role: 'system-data', filesystem: 'ext4', label: 'system-data', type: t(LINUX_TYPE, '83'), size: sizes.data ?? '16M' },
  ];
}

export const snapYaml = (name: string, type: string, arch: string) => `name: ${name}\nversion: '1.0'\ntype: ${type}\narchitectures: [${arch}]\n`;

/** The boot assets every test gadget carries (a fake EFI binary and a GRUB config). */
export const BOOT_ASSETS: Record<string, Entry> = {
  'boot-assets/EFI/BOOT/BOOTX64.EFI': noise(40_000, 'bootx64'),
  'boot-assets/EFI/edgeimage/grub.cfg': 'set timeout=0\nload_env --file ($root)/EFI/edgeimage/env1/env\n',
};

export function gadgetTree(name: string, yaml: string, opts: { arch?: string; snapYamlText?: string; extra?: Record<string, Entry> } = {}): Record<string, Entry> {
  return { 'meta/snap.yaml': opts.snapYamlText ?? snapYaml(name, 'gadget', opts.arch ?? 'amd64'), 'meta/gadget.yaml': yaml, ...BOOT_ASSETS, ...opts.extra };
}

export const KERNEL_IMG = noise(300_000, 'kernel.img');
export const INITRD_IMG = noise(100_000, 'initrd.img');

export function kernelTree(name: string, opts: { arch?: string; kernelImg?: boolean } = {}): Record<string, Entry> {
  return {
    'meta/snap.yaml': snapYaml(name, 'kernel', opts.arch ?? 'amd64'),
    ...(opts.kernelImg === false ? { 'vmlinuz-6.1.0': KERNEL_IMG } : { 'kernel.img': KERNEL_IMG }),
    'initrd.img': INITRD_IMG,
    'modules/6.1.0/modules.dep': '',
  };
}

export const baseTree = (name: string, arch = 'amd64'): Record<string, Entry> => ({
  'meta/snap.yaml': snapYaml(name, 'base', arch),
  'etc/os-release': 'NAME="edge base"\nID=edge\n',
  'bin/sh': { data: '#!/bin/true\n', mode: 0o755 },
});

/** A device agent (the model's snapd-type bundle): the file the initramfs checks for, no more. */
export const agentTree = (name: string, arch = 'all'): Record<string, Entry> => ({
  'meta/snap.yaml': snapYaml(name, 'snapd', arch),
  'lib/edgeimage/common': '# the test world\'s device agent\n',
});

export const appTree = (name: string, payload = 20_000): Record<string, Entry> => ({
  'meta/snap.yaml': `${snapYaml(name, 'app', 'all')}apps:\n  ${name}:\n    command: bin/${name}\n    daemon: simple\n`,
  [`bin/${name}`]: { data: '#!/bin/sh\necho hello\n', mode: 0o755 },
  'share/payload.bin': noise(payload, name),
});

/** Standard bundle names of the world. */
export const GADGET_GPT = 'edge-pc';
export const GADGET_MBR = 'edge-uboot';
export const KERNEL = 'edge-kernel';
export const BASE = 'edge-base';
export const AGENT = 'edge-agent';
export const APP = 'hello';
