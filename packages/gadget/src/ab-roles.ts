/**
 * edgeimage's A/B roles: what `build` requires of a gadget. `parseGadgetYaml` already applies
 * these rules to a gadget that uses system-a/system-b; this also refuses a gadget without them.
 */
import { GadgetError } from './errors.js';
import { AB_README, AB_ROLES, checkABRules, collectRoles, usesABRoles } from './rules/roles.js';
import type { GadgetInfo, Volume } from './types.js';

export { AB_ROLES } from './rules/roles.js';

/** What each A/B role needs, for "add …" messages. */
const NEEDS: Record<(typeof AB_ROLES)[number], string> = {
  'system-boot': 'system-boot (vfat: bootloader and boot environment)',
  'system-a': 'system-a (ext4: system slot a)',
  'system-b': 'system-b (ext4: system slot b)',
  'system-data': 'system-data (ext4: writable data)',
};

/**
 * The volume that carries edgeimage's A/B roles, checked by edgeimage's rules (exactly one
 * structure each with role system-boot, system-a, system-b and system-data, all on one volume;
 * slots and data ext4). Throws GadgetError `ERR_GADGET_NOT_AB` saying what to add when the gadget
 * has no system-a/system-b, and `ERR_GADGET_AB` when it breaks the rules.
 *
 * @example
 * const volume = checkABRoles(readGadgetYaml('bundles/pc/meta/gadget.yaml'));
 * volume.name; // 'pc'
 */
export function checkABRoles(g: GadgetInfo): Volume {
  const roles = collectRoles(g);
  if (!usesABRoles(g)) {
    const missing = AB_ROLES.filter((r) => !roles.has(r));
    const present = AB_ROLES.filter((r) => roles.has(r));
    throw new GadgetError(
      `no A/B roles: edgeimage builds A/B images, which need on one volume exactly one structure each with role system-boot, system-a, system-b and system-data; ` +
        `add structures with role ${missing.map((r) => NEEDS[r]).join(', ')}` +
        (present.length > 0 ? ` (this gadget has ${present.join(', ')})` : '') +
        `; ${AB_README}`,
      g.file,
      undefined,
      undefined,
      undefined,
      'ERR_GADGET_NOT_AB',
    );
  }
  return checkABRules(g, roles);
}
