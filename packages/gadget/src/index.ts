/**
 * @edgeimage/gadget — gadget.yaml (the Ubuntu Core gadget specification, plus edgeimage's A/B
 * roles): parsing, validation with snapd's rules, and a pure volume layout.
 */
export * from './types.js';
export * from './errors.js';
export { parseGadgetYaml, readGadgetYaml } from './parse.js';
export { readGadget, unpackGadgetSnap, MAX_GADGET_YAML_BYTES, type ReadGadget, type ReadGadgetOptions } from './read.js';
export { layoutVolume, layoutGadget, layoutContent, isPartition, GPT_BACKUP_SIZE, NON_MBR_START_OFFSET, MAX_PARTITIONS } from './layout.js';
export { checkABRoles, AB_ROLES } from './ab-roles.js';
export { checkContentPath, checkGadgetContent, type ContentPathOrigin } from './content.js';
export { KNOWN_ROLES, SNAPD_ROLES, SLOT_ROLES, FILESYSTEMS } from './rules/structure.js';
export { BOOTLOADERS } from './rules/volume.js';
export * from './updates.js';
