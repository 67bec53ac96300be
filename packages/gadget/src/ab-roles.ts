// STUB — to be implemented (gadget helper).
import type { GadgetInfo, Volume } from './types.js';
export const AB_ROLES = ['system-boot', 'system-a', 'system-b', 'system-data'] as const;
/**
 * The volume that carries edgeimage's A/B roles, checked by edgeimage's rules (exactly one of
 * each of the four). Throws GadgetError ERR_GADGET_NOT_AB saying what to add when they are absent.
 */
export function checkABRoles(_g: GadgetInfo): Volume {
  throw new Error('not implemented');
}
