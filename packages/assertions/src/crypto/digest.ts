/**
 * SHA3-384 digests in snapd's text form (`public-key-sha3-384`, `sign-key-sha3-384`,
 * `snap-sha3-384`, `device-key-sha3-384`): base64url without padding, always 64 characters.
 */
import { createHash } from 'node:crypto';
import { EdgeimageError } from '../errors.js';

/** Size of a SHA3-384 digest in bytes. */
export const SHA3_384_SIZE = 48;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * SHA3-384 of `data`.
 *
 * @example
 * sha3_384(Buffer.from('')).toString('hex'); // '0c63a75b…d5f004'
 */
export function sha3_384(data: Uint8Array): Buffer {
  return createHash('sha3-384').update(data).digest();
}

/**
 * Encodes a digest as snapd does (Go's `base64.RawURLEncoding`): URL alphabet, no padding, so
 * the value can sit in a header and in a URL unchanged.
 *
 * @example
 * encodeDigest(sha3_384(bytes)); // 64 characters, e.g. '-CvQKAwRQ5h3Ffn1…'
 */
export function encodeDigest(d: Uint8Array): string {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64url');
}

/**
 * Decodes a SHA3-384 digest header value. Node's base64 decoder silently skips bad characters,
 * so the alphabet and length are checked first: a typo must not yield a different digest.
 * Throws an `EdgeimageError` with code `ERR_DIGEST_ENCODING`; callers add the header name.
 *
 * @example
 * decodeDigest('-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk').length; // 48
 */
export function decodeDigest(s: string): Buffer {
  if (!BASE64URL.test(s)) {
    throw new EdgeimageError('ERR_DIGEST_ENCODING', `digest is not unpadded base64url: ${JSON.stringify(s)}`, { value: s });
  }
  // 48 bytes is exactly 64 characters; any other length cannot decode to 48 bytes.
  const expectedChars = Math.ceil((SHA3_384_SIZE * 4) / 3);
  if (s.length !== expectedChars) {
    const bytes = Math.floor((s.length * 3) / 4);
    throw new EdgeimageError('ERR_DIGEST_ENCODING', `digest must be ${SHA3_384_SIZE} bytes (${expectedChars} characters), got ${bytes} bytes (${s.length} characters)`, { value: s });
  }
  return Buffer.from(s, 'base64url');
}

/**
 * The snapd text form of the SHA3-384 of `data`.
 *
 * @example
 * sha3_384Digest(snapFileBytes); // value for `snap-sha3-384`
 */
export function sha3_384Digest(data: Uint8Array): string {
  return encodeDigest(sha3_384(data));
}
