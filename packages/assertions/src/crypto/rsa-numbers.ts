/**
 * The modulus and public exponent of an RSA key, read from its PKCS#1 DER export.
 *
 * Not `key.export({ format: 'jwk' })` nor `key.asymmetricKeyDetails`: Node 20 holds the key's
 * mutex while it builds those JavaScript objects, and a garbage collection during those
 * allocations can finalize the key-generation job the key came from (`generateKeyPair`,
 * `generateKeyPairSync`, any key type; `createPublicKey` of such a private key shares its mutex),
 * whose destructor locks the same mutex — the process then hangs for ever on one thread (seen: a
 * CI run hung 20 minutes in uefi.test.ts, gdb showing `~KeyGenJob` under `ExportJWKRsaKey`
 * waiting on a futex). The DER export holds the key's lock only while it copies the key, never
 * while it allocates JavaScript objects. (Non-minimal DER lengths and leading zero bytes are
 * accepted: the input is OpenSSL's own export.)
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyError } from '../errors.js';

/** RSA moduli beyond 16384 bits are refused (OpenSSL's own limit for RSA keys); leading zeros stripped first. */
const MAX_MODULUS_BYTES = 16384 / 8;

export interface RsaNumbers {
  /** The modulus, big-endian, without leading zero bytes. */
  n: Buffer;
  /** The public exponent, big-endian, without leading zero bytes. */
  e: Buffer;
  /** The modulus's length in bits. */
  bits: number;
}

/**
 * n, e and the modulus length of an RSA key (public or private: its public half is read).
 * `ERR_KEY_UNSUPPORTED` for another type; `ERR_KEY_FORMAT` when the encoding is not the
 * SEQUENCE { INTEGER n, INTEGER e } of PKCS#1.
 *
 * @example
 * rsaNumbers(createPublicKey(pem)).bits; // 2048
 */
export function rsaNumbers(key: KeyObject): RsaNumbers {
  if (key.type === 'secret' || key.asymmetricKeyType !== 'rsa') {
    throw new KeyError('ERR_KEY_UNSUPPORTED', `expected an RSA key, got ${key.type === 'secret' ? 'a symmetric key' : `a key of type ${key.asymmetricKeyType ?? 'unknown'}`}`);
  }
  // (a private key's public half: createPublicKey shares the key's data, the secret is not copied)
  const pub = key.type === 'public' ? key : createPublicKey(key);
  return parsePkcs1(pub.export({ type: 'pkcs1', format: 'der' }));
}

/** SEQUENCE { INTEGER n, INTEGER e } with DER's definite lengths; nothing after it. */
export function parsePkcs1(der: Buffer): RsaNumbers {
  const bad = (what: string): never => {
    throw new KeyError('ERR_KEY_FORMAT', `cannot read the RSA public key's PKCS#1 encoding: ${what}`);
  };
  let at = 0;
  const header = (tag: number, name: string): number => {
    if (at + 2 > der.length) bad(`${name}: the encoding ends at byte ${at}`);
    if (der[at] !== tag) bad(`${name}: expected tag 0x${tag.toString(16)} at byte ${at}, found 0x${der[at]!.toString(16)}`);
    let len = der[at + 1]!;
    at += 2;
    if (len & 0x80) {
      const count = len & 0x7f;
      // (three length bytes at most: no RSA key needs more)
      if (count === 0 || count > 3) bad(`${name}: a length of ${count} bytes`);
      if (at + count > der.length) bad(`${name}: the encoding ends in its length`);
      len = 0;
      for (let i = 0; i < count; i++) len = len * 256 + der[at + i]!;
      at += count;
    }
    if (at + len > der.length) bad(`${name}: ${len} bytes announced, ${der.length - at} left`);
    return len;
  };
  const integer = (name: string): Buffer => {
    const len = header(0x02, name);
    if (len === 0) bad(`${name}: empty`);
    if (der[at]! & 0x80) bad(`${name}: negative`);
    let v = der.subarray(at, at + len);
    at += len;
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    v = v.subarray(i);
    if (v.length > MAX_MODULUS_BYTES) bad(`${name}: ${v.length} bytes, more than ${MAX_MODULUS_BYTES}`);
    return Buffer.from(v);
  };
  const seq = header(0x30, 'the sequence');
  if (at + seq !== der.length) bad(`${der.length - at - seq} bytes after the sequence`);
  const n = integer('the modulus');
  const e = integer('the exponent');
  if (at !== der.length) bad(`${der.length - at} bytes after the exponent`);
  if (n.length === 1 && n[0] === 0) bad('a zero modulus');
  const bits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  return { n, e, bits };
}
