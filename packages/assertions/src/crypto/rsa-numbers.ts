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
 * while it allocates JavaScript objects. The DER is read with node-forge's ASN.1 reader (already
 * the certificates' library), strictly and to its last byte.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { KeyError } from '../errors.js';

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

/** SEQUENCE { INTEGER n, INTEGER e }, DER, nothing after it. */
export function parsePkcs1(der: Buffer): RsaNumbers {
  let rsa: forge.pki.rsa.PublicKey;
  try {
    // (forge takes an options object here; its type declarations know only the older boolean)
    const fromDer = forge.asn1.fromDer as unknown as (bytes: forge.util.ByteStringBuffer, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => forge.asn1.Asn1;
    const asn1 = fromDer(forge.util.createBuffer(der.toString('binary')), { strict: true, parseAllBytes: true, decodeBitStrings: false });
    rsa = forge.pki.publicKeyFromAsn1(asn1) as forge.pki.rsa.PublicKey;
  } catch (e) {
    throw new KeyError('ERR_KEY_FORMAT', `cannot read the RSA public key's PKCS#1 encoding: ${(e as Error).message}`);
  }
  const bytes = (v: forge.jsbn.BigInteger): Buffer => {
    const hex = v.toString(16);
    return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  };
  if (rsa.n.signum() <= 0 || rsa.e.signum() <= 0) {
    throw new KeyError('ERR_KEY_FORMAT', "cannot read the RSA public key's PKCS#1 encoding: a modulus or exponent not above zero");
  }
  return { n: bytes(rsa.n), e: bytes(rsa.e), bits: rsa.n.bitLength() };
}
