/**
 * One volume: name, schema, bootloader, id, and the rules across its structures that need no
 * layout (unique names and filesystem labels). Offsets, order and overlaps are `layout.ts`'s.
 */
import type { RawVolume } from '../lib/schema.js';
import type { Schema, Structure, Volume } from '../types.js';
import { type Ctx, describeOther, structurePath, structureRef } from './context.js';
import { buildStructure } from './structure.js';

export const BOOTLOADERS = ['grub', 'u-boot', 'android-boot', 'lk', 'piboot'] as const;
export const SCHEMAS: readonly Schema[] = ['gpt', 'mbr', 'emmc'];
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-]+$/;
const GUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const MBR_DISK_ID = /^(0x)?([0-9A-Fa-f]{2}|[0-9A-Fa-f]{8})$/;

export function buildVolume(ctx: Ctx, name: string, raw: RawVolume | null): Volume {
  const path = ['volumes', name];
  if (!VOLUME_NAME.test(name)) {
    ctx.failKey('ERR_GADGET_VOLUME', `invalid volume name ${JSON.stringify(name)}: letters, digits and dashes, at least two characters, not starting with a dash`, ['volumes'], name);
  }
  if (raw === null) ctx.fail('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)} is empty: give its bootloader and structure`, path);
  if (raw.partial !== undefined) {
    ctx.failKey(
      'ERR_GADGET_VOLUME',
      `volume ${JSON.stringify(name)}: partial volumes (completed by an installer on the device) are not supported: edgeimage builds whole images, so give the schema and every size and filesystem`,
      path,
      'partial',
    );
  }
  const schema = (raw.schema ?? 'gpt') as Schema;
  if (!SCHEMAS.includes(schema)) ctx.fail('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)}: invalid schema ${JSON.stringify(raw.schema)}: one of gpt, mbr, emmc`, [...path, 'schema']);
  if (schema === 'emmc') {
    if (raw.bootloader !== undefined) ctx.failKey('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)}: an emmc volume cannot have a bootloader`, path, 'bootloader');
    if (raw.id !== undefined) ctx.failKey('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)}: an emmc volume cannot have an id`, path, 'id');
  }
  if (raw.bootloader !== undefined && !(BOOTLOADERS as readonly string[]).includes(raw.bootloader)) {
    ctx.fail('ERR_GADGET_BOOTLOADER', `volume ${JSON.stringify(name)}: bootloader must be one of grub, u-boot, android-boot, piboot or lk, not ${JSON.stringify(raw.bootloader)}`, [...path, 'bootloader']);
  }
  if (raw.id !== undefined) {
    if (schema === 'gpt' && !GUID.test(raw.id)) {
      ctx.fail('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)}: invalid id ${JSON.stringify(raw.id)}: a GPT disk id is a GUID`, [...path, 'id']);
    }
    if (schema === 'mbr' && !MBR_DISK_ID.test(raw.id)) {
      ctx.fail('ERR_GADGET_VOLUME', `volume ${JSON.stringify(name)}: invalid id ${JSON.stringify(raw.id)}: an MBR disk id is 2 or 8 hex digits`, [...path, 'id']);
    }
  }

  const structures = (raw.structure ?? []).map((s, i) => buildStructure(ctx, { name, schema }, s, i));
  checkUniqueNames(ctx, name, structures);
  checkUniqueLabels(ctx, name, structures);

  const v: Volume = { name, schema, structures };
  if (raw.bootloader !== undefined) v.bootloader = raw.bootloader;
  if (raw.id !== undefined) v.id = raw.id;
  return v;
}

function checkUniqueNames(ctx: Ctx, volume: string, structures: Structure[]): void {
  const seen = new Map<string, Structure>();
  for (const s of structures) {
    if (!s.name) continue;
    const first = seen.get(s.name);
    if (first) {
      ctx.fail('ERR_GADGET_DUPLICATE', `structure name ${JSON.stringify(s.name)} is not unique in volume ${JSON.stringify(volume)}: structure #${first.yamlIndex} (line ${first.line}) has it too`, structurePath(volume, s.yamlIndex, 'name'), structureRef(s));
    }
    seen.set(s.name, s);
  }
}

const isVfat = (s: Structure) => s.filesystem === 'vfat' || s.filesystem === 'vfat-16' || s.filesystem === 'vfat-32';

/** snapd's setKnownLabel: labels are unique per volume; a vfat label clashes with any label that differs only in case. */
function checkUniqueLabels(ctx: Ctx, volume: string, structures: Structure[]): void {
  const exact = new Map<string, Structure>();
  const vfatLower = new Map<string, Structure>();
  for (const s of structures) {
    const label = s.filesystemLabel;
    if (label === undefined) continue;
    const lower = label.toLowerCase();
    let clash: Structure | undefined = vfatLower.get(lower);
    if (!clash) {
      if (isVfat(s)) clash = [...exact].find(([k]) => k.toLowerCase() === lower)?.[1];
      else clash = exact.get(label);
    }
    if (clash) {
      const caseNote = clash.filesystemLabel !== label || isVfat(s) || isVfat(clash) ? ' (vfat labels compare case-insensitively)' : '';
      ctx.fail(
        'ERR_GADGET_DUPLICATE',
        `filesystem label ${JSON.stringify(label)} is not unique in volume ${JSON.stringify(volume)}: structure ${describeOther(clash)} has ${JSON.stringify(clash.filesystemLabel)}${caseNote}`,
        structurePath(volume, s.yamlIndex, 'filesystem-label'),
        structureRef(s),
      );
    }
    if (isVfat(s)) vfatLower.set(lower, s);
    else exact.set(label, s);
  }
}
