export { TrustDatabase, type TrustDatabaseOptions, type AddResult } from './database.js';
export { SigningKey } from './signing-key.js';
export { DEFAULT_CHECKERS, type Checker, type CheckInput, type TrustView } from './checkers.js';
export { defaultTrustedAssertions } from './default-trust.js';
export { EXAMPLE_ROOT_KEY_ID, chainRootKeyId, signedWithTestKeys } from './test-keys.js';
export { KeyConstraints, CHANNEL_POINTER_TYPE, POINTER_ONLY_CONSTRAINTS } from './constraints.js';
