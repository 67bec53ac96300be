/**
 * @edgeimage/gadget — gadget.yaml (the Ubuntu Core gadget specification, plus edgeimage's A/B
 * roles): parsing, validation with snapd's rules, and a pure volume layout.
 */
export * from './types.js';
export * from './errors.js';
export { parseGadgetYaml, readGadgetYaml } from './parse.js';
export { layoutVolume, layoutGadget } from './layout.js';
export { checkABRoles, AB_ROLES } from './ab-roles.js';
