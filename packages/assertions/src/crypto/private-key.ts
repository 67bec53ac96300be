/**
 * RSA signing keys, producing signatures byte-compatible with snapd's `openpgpPrivateKey.sign`
 * (v4 packet, SHA-512, hashed creation time) so snapd and `snap known` accept what we sign.
 */
import { constants, createHash, createPrivateKey, createPublicKey, createSign, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KeyError } from '../errors.js';
import {
  HASH_SHA512,
  PUBKEY_RSA,
  SIGTYPE_BINARY,
  SUBPACKET_CREATION_TIME,
  SUBPACKET_ISSUER,
  TAG_SIGNATURE,
  buildHashedPart,
  buildSignatureBody,
  encodePacket,
  encodeSubpacket,
  v4HashTrailer,
} from './openpgp.js';
import { PublicKey } from './public-key.js';
import { encodeV1 } from './v1-envelope.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Below this, RSA is not considered safe; snapd itself generates 4096-bit keys. */
export const MIN_GENERATED_BITS = 2048;

/** The cipher for encrypted PKCS#8 output: widely readable (openssl, Go, node) and strong. */
const PEM_CIPHER = 'aes-256-cbc';

function isEncryptedPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,\s*ENCRYPTED/.test(pem);
}

/**
 * A signing key. The node `KeyObject` stays private so the secret only leaves through
 * {@link PrivateKey.toPem}, where the caller decides about encryption.
 *
 * @example
 * const key = await PrivateKey.generate();
 * const signature = key.sign(content);           // append '\n' when writing the assertion
 * key.publicKey.verify(content, signature);
 */
export class PrivateKey {
  readonly #key: KeyObject;
  readonly #publicKey: PublicKey;

  private constructor(key: KeyObject) {
    this.#key = key;
    this.#publicKey = PublicKey.fromKeyObject(createPublicKey(key));
  }

  /**
   * Generates a new RSA key with e = 65537. The default 4096 bits matches snapd's
   * `GenerateKey`; smaller than 2048 is refused with `KeyError` code `ERR_KEY_BITS`.
   *
   * @example
   * const key = await PrivateKey.generate();      // 4096 bits, takes a second or more
   * const quick = await PrivateKey.generate(2048); // tests
   */
  static async generate(bits = 4096): Promise<PrivateKey> {
    if (!Number.isInteger(bits) || bits < MIN_GENERATED_BITS) {
      throw new KeyError('ERR_KEY_BITS', `RSA keys must have at least ${MIN_GENERATED_BITS} bits, got ${bits}`);
    }
    const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
    // a key of its own, not sharing the generation job's data (and its mutex, which the job's
    // destructor locks during a garbage collection: rsa-numbers.ts)
    return new PrivateKey(createPrivateKey({ key: privateKey.export({ type: 'pkcs8', format: 'der' }), type: 'pkcs8', format: 'der' }));
  }

  /**
   * Wraps a node private key (RSA only, `KeyError` `ERR_KEY_UNSUPPORTED` otherwise).
   *
   * @example
   * PrivateKey.fromKeyObject(createPrivateKey(pem));
   */
  static fromKeyObject(k: KeyObject): PrivateKey {
    if (k.type !== 'private') throw new KeyError('ERR_KEY_FORMAT', `expected a private key, got a ${k.type} key`);
    if (k.asymmetricKeyType !== 'rsa') {
      throw new KeyError('ERR_KEY_UNSUPPORTED', `only RSA keys are supported, got ${k.asymmetricKeyType ?? 'unknown'}`);
    }
    return new PrivateKey(k);
  }

  /**
   * Reads a PEM private key (PKCS#8, possibly encrypted; PKCS#1 also works). A missing or wrong
   * passphrase for an encrypted key is `KeyError` `ERR_KEY_PASSPHRASE`, so a CLI can prompt
   * again; anything unreadable otherwise is `ERR_KEY_FORMAT`; non-RSA is `ERR_KEY_UNSUPPORTED`.
   *
   * @example
   * PrivateKey.fromPem(readFileSync('signing.pem', 'utf8'), process.env.KEY_PASSPHRASE);
   */
  static fromPem(pem: string, passphrase?: string): PrivateKey {
    const encrypted = isEncryptedPem(pem);
    if (encrypted && passphrase === undefined) {
      throw new KeyError('ERR_KEY_PASSPHRASE', 'the private key is encrypted: a passphrase is required');
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase });
    } catch (err) {
      if (encrypted) {
        // OpenSSL reports a wrong passphrase as a decryption or ASN.1 error, indistinguishable
        // from a damaged file, so the message names both.
        throw new KeyError('ERR_KEY_PASSPHRASE', `cannot decrypt the private key: wrong passphrase or damaged key (${(err as Error).message})`);
      }
      throw new KeyError('ERR_KEY_FORMAT', `cannot read PEM private key: ${(err as Error).message}`);
    }
    return PrivateKey.fromKeyObject(key);
  }

  /**
   * PKCS#8 PEM, encrypted with AES-256-CBC (PBES2) when a passphrase is given. An empty
   * passphrase is refused (`ERR_KEY_PASSPHRASE`): it would look protected and not be.
   *
   * @example
   * writeFileSync('signing.pem', key.toPem(passphrase), { mode: 0o600 });
   */
  toPem(passphrase?: string): string {
    if (passphrase === undefined) return this.#key.export({ type: 'pkcs8', format: 'pem' }).toString();
    if (passphrase.length === 0) throw new KeyError('ERR_KEY_PASSPHRASE', 'refusing to encrypt a private key with an empty passphrase');
    return this.#key.export({ type: 'pkcs8', format: 'pem', cipher: PEM_CIPHER, passphrase }).toString();
  }

  /**
   * The matching public key; its `id` is what goes in `sign-key-sha3-384`.
   *
   * @example
   * headers['sign-key-sha3-384'] = key.publicKey.id;
   */
  get publicKey(): PublicKey {
    return this.#publicKey;
  }

  /**
   * Modulus size in bits.
   *
   * @example
   * if (key.bits < 4096) console.warn('snapd refuses to sign with keys under 4096 bits');
   */
  get bits(): number {
    return this.#publicKey.bits;
  }

  /**
   * Signs `content` (the assertion text up to, not including, the "\n\n" before the signature)
   * and returns snapd's signature text: base64 of 0x01 || v4 signature packet, 76-column lines,
   * no trailing newline. The hashed area holds only the creation time, as snapd's does; the
   * unhashed issuer subpacket carries the OpenPGP key id of the normalised key so OpenPGP tools
   * can match it (snapd ignores it).
   *
   * @example
   * const assertion = `${content}\n\n${key.sign(Buffer.from(content))}\n`;
   */
  sign(content: Uint8Array, now: Date = new Date()): string {
    const seconds = Math.floor(now.getTime() / 1000);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > 0xffffffff) {
      throw new RangeError(`signature time out of range: ${String(now)}`);
    }
    const created = Buffer.alloc(4);
    created.writeUInt32BE(seconds);
    const hashedPart = buildHashedPart(SIGTYPE_BINARY, PUBKEY_RSA, HASH_SHA512, encodeSubpacket(SUBPACKET_CREATION_TIME, created));
    const trailer = v4HashTrailer(hashedPart);
    const rsaSignature = createSign('sha512').update(content).update(trailer).sign({ key: this.#key, padding: constants.RSA_PKCS1_PADDING });
    // The hash tag is the first two octets of the digest RSA signed (a cheap pre-check for verifiers).
    const hashTag = createHash('sha512').update(content).update(trailer).digest().subarray(0, 2);
    const issuer = encodeSubpacket(SUBPACKET_ISSUER, Buffer.from(this.#publicKey.openpgpKeyId, 'hex'));
    const body = buildSignatureBody(hashedPart, issuer, hashTag, [rsaSignature]);
    return encodeV1(encodePacket(TAG_SIGNATURE, body));
  }
}
