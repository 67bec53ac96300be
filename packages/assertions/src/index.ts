/**
 * @edgeimage/assertions — snapd's signed assertions: the text format, keys, signing, and
 * verification through a chain of trust.
 *
 * ```ts
 * import { decodeStream, TrustDatabase, defaultTrustedAssertions } from '@edgeimage/assertions';
 * const db = new TrustDatabase({ trusted: defaultTrustedAssertions() });
 * const results = db.addAll(decodeStream(readFileSync(file), { file }));
 * ```
 */
export { Assertion, type Headers, type HeaderValue } from './assertion.js';
export * from './errors.js';
export { decodeStream, decodeOne, encodeContent, encodeSigned, encodeStream, checkHeaderValue, MAX_BODY_SIZE, MAX_HEADERS_SIZE, MAX_SIGNATURE_SIZE } from './format/index.js';
export { PublicKey, PrivateKey, rsaNumbers, type RsaNumbers, sha3_384, sha3_384Digest, encodeDigest, decodeDigest } from './crypto/index.js';
export * from './types/index.js';
export { TrustDatabase, SigningKey, KeyConstraints, CHANNEL_POINTER_TYPE, POINTER_ONLY_CONSTRAINTS, defaultTrustedAssertions, DEFAULT_CHECKERS, EXAMPLE_ROOT_KEY_ID, chainRootKeyId, signedWithTestKeys, type AddResult, type Checker, type TrustDatabaseOptions } from './trust/index.js';
export { signAssertion, accountKeyHeaders, formatTimestamp, type SignOptions, type AccountKeyOptions } from './sign.js';
export { Keyring, writeAtomic, type KeyInfo } from './keyring/index.js';
export { readRegularFile, type RegularFileProblem } from './files/read-regular.js';
export { snapIdFor } from './naming/snap-id.js';
export { BootKeys, BOOT_KEY_BITS, fitKeyName, selfSignedCertificate, brandOwnerGuid, guidBytes, x509SignatureList, readX509SignatureList, EFI_CERT_X509_GUID, type BootKeyInfo, type BootKeyRole, type BootKeySet, type BootSigner, type CreateBootKeysOptions } from './bootkeys/index.js';
