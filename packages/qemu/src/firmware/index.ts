export { blankVarStore, enrolledVarStore, writeVarStore, fvHeaderChecksum, VarStoreError, VAR_STORE_KINDS, MAX_CERTIFICATE_BYTES, SECURE_BOOT_VARIABLE_ATTRIBUTES, NVDATA_FV_GUID, AUTH_VARIABLE_GUID, FTW_WORKING_GUID, EFI_GLOBAL_VARIABLE_GUID, EFI_IMAGE_SECURITY_DATABASE_GUID, type SecureBootKeys, type VarStoreKind } from './varstore.js';
export { SECURE_BOOT_FIRMWARE, DEFAULT_SIGNATURE_OWNER, readSecureBootKeys } from './secure-boot.js';
export { initializedOvmfVars } from './nvram.js';
