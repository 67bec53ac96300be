export { UpdateError } from './errors.js';
export { createUpdate, signManifest, brandKeyIds, readImageSystem, sniffUpdateFrom, type BaseSystem, type UpdateFrom, type CreateUpdateOptions, type UpdateFileInfo, type UpdateResult } from './create.js';
export { readUpdate, readUpdateLayout, verifiersFromAssertions, verifierFromPem, type UpdateInfo, type UpdateLayout, type UpdateVerifier } from './info.js';
export { encodeUpdateManifest, parseUpdateManifest, listSlotFiles, checkSlotPath, slotPathProblem, UPDATE_FORMAT, MANIFEST_ENTRY, SIGNATURE_ENTRY, SLOT_PREFIX, type SlotFile, type UpdateManifest } from './manifest.js';
export { writeTar, readTar, readTarEntry, type TarEntry, type TarSource } from './tar.js';
export { stageSystem, type StageSystemOptions, type StagedSystem } from '../compose/slot.js';
