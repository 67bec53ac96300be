/**
 * Role usage across volumes. Every gadget: at most one structure of each system-* role. Then
 * either snapd's consistency rules as snapd applies them without a model (`ruleValidateVolumes`
 * with a nil model), or — when the gadget uses edgeimage's `system-a`/`system-b` — edgeimage's
 * A/B rules instead.
 */
import type { GadgetInfo, Structure, Volume } from '../types.js';
import { layoutVolume } from '../layout.js';
import { GadgetError } from '../errors.js';
import { describeOther, failAt } from './context.js';

/** Roles a gadget may use once at most, across all its volumes. */
export const UNIQUE_ROLES = ['system-seed', 'system-seed-null', 'system-boot', 'system-data', 'system-save', 'system-boot-state', 'system-a', 'system-b'] as const;

/** The four roles of an A/B gadget, each exactly once, all on one volume. */
export const AB_ROLES = ['system-boot', 'system-a', 'system-b', 'system-data'] as const;

export interface RoleInstance {
  volume: Volume;
  s: Structure;
}
export type RoleMap = Map<string, RoleInstance>;

export function usesABRoles(g: GadgetInfo): boolean {
  return allStructures(g).some(({ s }) => s.role === 'system-a' || s.role === 'system-b');
}

function allStructures(g: GadgetInfo): RoleInstance[] {
  return g.volumeOrder.flatMap((n) => {
    const volume = g.volumes[n]!;
    return volume.structures.map((s) => ({ volume, s }));
  });
}

/** At most one of each system-* role; returns where each is. */
export function collectRoles(g: GadgetInfo): RoleMap {
  const roles: RoleMap = new Map();
  const across = g.volumeOrder.length > 1 ? ' across volumes' : '';
  for (const inst of allStructures(g)) {
    const role = inst.s.role;
    if (!role || !(UNIQUE_ROLES as readonly string[]).includes(role)) continue;
    const first = roles.get(role);
    if (first) {
      failAt('ERR_GADGET_ROLE', `cannot have more than one structure with role ${role}${across}: structure ${describeOther(first.s)} has it too`, g.file, inst.s);
    }
    roles.set(role, inst);
  }
  const seed = roles.get('system-seed');
  const seedNull = roles.get('system-seed-null');
  if (seed && seedNull) {
    failAt('ERR_GADGET_ROLE', `cannot have both system-seed (structure ${describeOther(seed.s)}) and system-seed-null${across}`, g.file, seedNull.s);
  }
  return roles;
}

/** Every role rule that needs no model; see the module comment. */
export function checkRoles(g: GadgetInfo): void {
  const roles = collectRoles(g);
  if (usesABRoles(g)) checkABRules(g, roles);
  else checkSnapdRoles(g, roles);
}

// ---- edgeimage's A/B rules

/** The README section that explains the A/B roles, named in messages. */
export const AB_README = 'see packages/gadget/README.md, "A/B roles"';

/**
 * edgeimage's rules for a gadget that uses system-a/system-b: exactly one structure each with
 * role system-boot, system-a, system-b and system-data, all on one volume; the slots and
 * system-data are ext4, system-boot has a filesystem; on GPT the slots have a name (the device
 * finds a slot by partition name), on MBR a filesystem label (by label). Returns that volume.
 */
export function checkABRules(g: GadgetInfo, roles: RoleMap): Volume {
  const present = AB_ROLES.filter((r) => roles.has(r));
  const anchor = (roles.get('system-a') ?? roles.get('system-b') ?? roles.get('system-boot') ?? roles.get('system-data'))!;
  const missing = AB_ROLES.filter((r) => !roles.has(r));
  if (missing.length > 0) {
    failAt(
      'ERR_GADGET_AB',
      `role${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing: a gadget with edgeimage's A/B roles has exactly one structure each with role system-boot, system-a, system-b and system-data, on one volume (found ${present.join(', ')}); ${AB_README}`,
      g.file,
      anchor.s,
    );
  }
  const volume = roles.get('system-a')!.volume;
  for (const role of AB_ROLES) {
    const inst = roles.get(role)!;
    if (inst.volume !== volume) {
      failAt('ERR_GADGET_AB', `role ${role} is on volume ${JSON.stringify(inst.volume.name)}, system-a on ${JSON.stringify(volume.name)}: the A/B roles are all on one volume; ${AB_README}`, g.file, inst.s);
    }
  }
  for (const role of ['system-a', 'system-b'] as const) {
    const { s } = roles.get(role)!;
    if (s.filesystem !== 'ext4') {
      failAt('ERR_GADGET_AB', `a system slot (role ${role}) must have filesystem ext4 (GRUB and U-Boot both read it), not ${s.filesystem}; ${AB_README}`, g.file, s);
    }
    if (volume.schema === 'gpt' && !s.name) {
      failAt('ERR_GADGET_AB', `a system slot (role ${role}) on a GPT volume needs a name: the device finds its slots by partition name (e.g. name: ${role}); ${AB_README}`, g.file, s);
    }
    if (volume.schema === 'mbr' && !s.filesystemLabel) {
      failAt('ERR_GADGET_AB', `a system slot (role ${role}) on an MBR volume needs a filesystem-label: MBR partitions have no names, so the device finds its slots by label (e.g. filesystem-label: ${role}); ${AB_README}`, g.file, s);
    }
    // GRUB 2.06 and U-Boot cannot read GPT names: they find a slot by its ext4 label alone
    if (s.filesystemLabel !== undefined && s.filesystemLabel !== role) {
      failAt('ERR_GADGET_AB', `a system slot (role ${role}) must have the filesystem-label ${JSON.stringify(role)} or none (it is implied), not ${JSON.stringify(s.filesystemLabel)}: the bootloaders find a slot by that label; ${AB_README}`, g.file, s);
    }
  }
  checkSlotPartitionNumbers(g, volume, roles);
  const data = roles.get('system-data')!.s;
  if (data.filesystem !== 'ext4') failAt('ERR_GADGET_AB', `system-data must have filesystem ext4, not ${data.filesystem}; ${AB_README}`, g.file, data);
  const boot = roles.get('system-boot')!.s;
  if (boot.filesystem === 'none') {
    failAt('ERR_GADGET_AB', `system-boot needs a filesystem (vfat for an EFI system partition; it holds the bootloader and the boot environment); ${AB_README}`, g.file, boot);
  }
  return volume;
}

/** The partitions the bootloaders look through for a slot's label (bundles/bootloader: 1-9). */
export const MAX_SLOT_PARTITION = 9;

/**
 * The slots must be among partitions 1-9 of the disk, in any order: the bootloaders look through
 * those for the label system-a/system-b (U-Boot's `part start` reads a decimal partition number
 * and its device:partition syntax a hex one; they agree up to 9). A volume that cannot be laid
 * out is left to the layout's own, more precise error.
 */
function checkSlotPartitionNumbers(g: GadgetInfo, volume: Volume, roles: RoleMap): void {
  let laidOut: ReturnType<typeof layoutVolume>;
  try {
    laidOut = layoutVolume(volume, g.file);
  } catch (e) {
    if (e instanceof GadgetError) return;
    throw e;
  }
  for (const role of ['system-a', 'system-b'] as const) {
    const { s } = roles.get(role)!;
    const n = laidOut.structures.find((x) => x.yamlIndex === s.yamlIndex)?.partitionIndex;
    if (n !== undefined && n > MAX_SLOT_PARTITION) {
      failAt('ERR_GADGET_AB', `a system slot (role ${role}) is partition ${n} of the disk: the bootloaders look for the slots among partitions 1-${MAX_SLOT_PARTITION} only; put it earlier in the volume; ${AB_README}`, g.file, s);
    }
  }
}

// ---- snapd's rules (gadget/validate.go, without a model)

const LABEL_FOR: Record<string, string> = {
  'system-seed': 'ubuntu-seed',
  'system-seed-null': 'ubuntu-seed',
  'system-boot': 'ubuntu-boot',
  'system-save': 'ubuntu-save',
  'system-data': 'ubuntu-data',
};

const isVfat = (s: Structure) => s.filesystem === 'vfat' || s.filesystem === 'vfat-16' || s.filesystem === 'vfat-32';
/** snapd's HasLabel: vfat labels compare case-insensitively. */
const hasLabel = (s: Structure, label: string) => (isVfat(s) ? s.filesystemLabel?.toLowerCase() === label.toLowerCase() : s.filesystemLabel === label);

function checkImplicitLabel(g: GadgetInfo, inst: RoleInstance, role: string, label: string): void {
  const s = inst.s;
  if (s.filesystemLabel !== undefined && !hasLabel(s, label)) {
    failAt('ERR_GADGET_LABEL', `a ${role} structure must have the implicit label or ${JSON.stringify(label)}, not ${JSON.stringify(s.filesystemLabel)}`, g.file, s);
  }
}

function checkSnapdRoles(g: GadgetInfo, roles: RoleMap): void {
  const seed = roles.get('system-seed');
  const seedNull = roles.get('system-seed-null');
  const boot = roles.get('system-boot');
  const data = roles.get('system-data');
  const save = roles.get('system-save');
  // Without a model, snapd assumes "modes" (UC20+) when a seed role is used, and "classic with
  // modes" for system-seed-null.
  const hasModes = seed !== undefined || seedNull !== undefined;

  // Labels reserved for the structures that have the matching role.
  const reserved = hasModes ? ['ubuntu-boot', 'ubuntu-seed', 'ubuntu-data', 'ubuntu-save'] : ['ubuntu-seed', 'ubuntu-data'];
  for (const { s } of allStructures(g)) {
    if (s.role || s.filesystemLabel === undefined) continue;
    const hit = reserved.find((l) => hasLabel(s, l));
    if (hit) failAt('ERR_GADGET_LABEL', `filesystem label ${JSON.stringify(s.filesystemLabel)} is reserved (for the structure with role system-${hit.slice('ubuntu-'.length)})`, g.file, s);
  }

  if (seedNull) {
    if (!boot || !data) {
      failAt('ERR_GADGET_ROLE', 'system-boot and system-data roles are needed with system-seed-null (classic with modes)', g.file, seedNull.s);
    }
    for (const [role, inst] of [['system-boot', boot], ['system-data', data], ['system-seed-null', seedNull], ['system-save', save]] as const) {
      if (inst) checkImplicitLabel(g, inst, role, LABEL_FOR[role]!);
    }
    for (const [role, inst] of [['system-seed-null', seedNull], ['system-save', save]] as const) {
      if (inst && inst.volume !== boot.volume) failAt('ERR_GADGET_ROLE', `system-boot and ${role} are expected to share the same volume`, g.file, inst.s);
    }
    return;
  }

  if (seed && !data) failAt('ERR_GADGET_ROLE', 'the system-seed role requires system-data to be defined', g.file, seed.s);
  if (!seed && data) checkImplicitLabel(g, data, 'system-data', 'writable');
  if (seed && data) {
    checkImplicitLabel(g, data, 'system-data', 'ubuntu-data');
    checkImplicitLabel(g, seed, 'system-seed', 'ubuntu-seed');
  }
  if (save) {
    if (!seed) failAt('ERR_GADGET_ROLE', 'the system-save role needs system-seed and system-data (Ubuntu Core 20+ layouts)', g.file, save.s);
    checkImplicitLabel(g, save, 'system-save', 'ubuntu-save');
  }
  if (seed) {
    for (const inst of [boot, data, save]) {
      if (inst && inst.volume !== seed.volume) {
        failAt('ERR_GADGET_ROLE', 'system-boot, system-data and system-save are expected to share the same volume as system-seed', g.file, inst.s);
      }
    }
  }
}
