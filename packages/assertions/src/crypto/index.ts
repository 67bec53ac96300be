/**
 * Cryptography for snapd assertions: SHA3-384 digests, RSA keys with snapd's key ids, and
 * OpenPGP v4 signatures in snapd's v1 text envelope. Only node:crypto is used at runtime.
 *
 * @example
 * import { PrivateKey, PublicKey } from './crypto/index.js';
 * const key = await PrivateKey.generate();
 * const sig = key.sign(content);
 * PublicKey.fromAccountKeyBody(key.publicKey.encodeAccountKeyBody()).verify(content, sig);
 */
export { PublicKey, V1_FIXED_TIMESTAMP } from './public-key.js';
export { PrivateKey } from './private-key.js';
export { rsaNumbers, type RsaNumbers } from './rsa-numbers.js';
export { SHA3_384_SIZE, decodeDigest, encodeDigest, sha3_384, sha3_384Digest } from './digest.js';
