/**
 * RSA public keys as snapd sees them: identified by the SHA3-384 of their normalised OpenPGP
 * packet, carried in account-key bodies, and used to verify assertion signatures.
 */
import { constants, createHash, createPublicKey, publicDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { KeyError, SignatureError } from '../errors.js';
import { encodeDigest, sha3_384 } from './digest.js';
import { rsaNumbers } from './rsa-numbers.js';
import {
  HASH_SHA512,
  OpenPgpError,
  PUBKEY_RSA,
  TAG_PUBLIC_KEY,
  TAG_SIGNATURE,
  encodeRsaPublicKeyBody,
  encodePacket,
  hashAlgoName,
  packetTagName,
  parsePublicKeyBody,
  parseSignatureBody,
  pubkeyAlgoName,
  readPacketHeader,
  v4HashTrailer,
  v4KeyId,
  type ParsedSignature,
  type RsaPublicParams,
} from './openpgp.js';
import { V1EnvelopeError, V1_FORMAT, decodeV1, encodeV1 } from './v1-envelope.js';

/**
 * snapd's `v1FixedTimestamp`, 2016-01-01T00:00:00Z. Every key packet snapd hashes or writes uses
 * it instead of the key's real creation time, so the key id depends on the key material only.
 */
export const V1_FIXED_TIMESTAMP = 0x5685c180;

/** DER DigestInfo prefix for SHA-512 (RFC 8017 §9.2 note 1). */
const SHA512_DIGEST_INFO = Buffer.from('3051300d060960864801650304020305000440', 'hex');

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * A verification key. Immutable; the derived packet, id and bit length are computed once.
 *
 * @example
 * const key = PublicKey.fromAccountKeyBody(accountKey.body);
 * key.id === accountKey.headers['public-key-sha3-384'];
 * key.verify(content, signatureText); // throws SignatureError when it does not verify
 */
export class PublicKey {
  readonly #key: KeyObject;
  readonly #params: RsaPublicParams;
  readonly #packetBody: Buffer;
  readonly #id: string;
  readonly #bits: number;

  private constructor(key: KeyObject, params: RsaPublicParams) {
    this.#key = key;
    this.#params = { n: stripLeadingZeros(params.n), e: stripLeadingZeros(params.e) };
    this.#packetBody = encodeRsaPublicKeyBody(this.#params, V1_FIXED_TIMESTAMP);
    const packet = encodePacket(TAG_PUBLIC_KEY, this.#packetBody);
    this.#id = encodeDigest(sha3_384(Buffer.concat([Buffer.from([V1_FORMAT]), packet])));
    const modulus = this.#params.n;
    this.#bits = modulus.length === 0 ? 0 : (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0]!));
  }

  /**
   * Wraps a node key. A private KeyObject is accepted and reduced to its public half, so callers
   * holding a key pair need not split it first. Only RSA: snapd refuses every other type.
   *
   * @example
   * PublicKey.fromKeyObject(createPublicKey(pem));
   */
  static fromKeyObject(k: KeyObject): PublicKey {
    const pub = k.type === 'public' ? k : createPublicKey(k);
    if (pub.asymmetricKeyType !== 'rsa') {
      throw new KeyError('ERR_KEY_UNSUPPORTED', `only RSA keys are supported, got ${pub.asymmetricKeyType ?? 'a symmetric key'}`);
    }
    // (from the DER export, never the JWK one: a JWK export can hang Node 20 — rsa-numbers.ts)
    const { n, e } = rsaNumbers(pub);
    return new PublicKey(pub, { n, e });
  }

  /**
   * Reads a PEM public key (SPKI or PKCS#1) or the public half of a PEM private key.
   *
   * @example
   * PublicKey.fromPem(readFileSync('key.pub.pem', 'utf8'));
   */
  static fromPem(pem: string): PublicKey {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: pem, format: 'pem' });
    } catch (err) {
      throw new KeyError('ERR_KEY_FORMAT', `cannot read PEM public key: ${(err as Error).message}`);
    }
    return PublicKey.fromKeyObject(key);
  }

  /**
   * Decodes an account-key body (or a serial's `device-key`): v1 base64 of 0x01 || v4 public-key
   * packet. The packet's own creation time is ignored, as in snapd, which rebuilds the packet
   * with the fixed 2016 timestamp before hashing it.
   *
   * Throws `SignatureError` (assertion ref '' — callers rewrap) with code `ERR_KEY_ENCODING`
   * (base64, format byte, trailing data), `ERR_KEY_PACKET` (not a v4 public-key packet, bad
   * RSA numbers) or `ERR_KEY_UNSUPPORTED` (not RSA).
   *
   * @example
   * PublicKey.fromAccountKeyBody('AcbBTQRWhcGAARAA…').id; // the key's public-key-sha3-384
   */
  static fromAccountKeyBody(bodyText: string): PublicKey {
    let data: Buffer;
    try {
      data = decodeV1(bodyText);
    } catch (err) {
      if (err instanceof V1EnvelopeError) throw new SignatureError('', `cannot decode public key: ${err.message}`, {}, 'ERR_KEY_ENCODING');
      throw err;
    }
    let params: RsaPublicParams;
    try {
      const header = readPacketHeader(data);
      if (header.bodyEnd !== data.length) {
        throw new SignatureError('', `public key has ${data.length - header.bodyEnd} bytes of spurious trailing data`, {}, 'ERR_KEY_ENCODING');
      }
      if (header.tag !== TAG_PUBLIC_KEY) {
        throw new SignatureError('', `expected a public-key packet, got ${packetTagName(header.tag)}`, {}, 'ERR_KEY_PACKET');
      }
      const parsed = parsePublicKeyBody(data.subarray(header.bodyStart, header.bodyEnd));
      if (!parsed.rsa) {
        throw new SignatureError('', `expected an RSA public key, got ${pubkeyAlgoName(parsed.algorithm)}`, {}, 'ERR_KEY_UNSUPPORTED');
      }
      params = parsed.rsa;
    } catch (err) {
      if (err instanceof OpenPgpError) {
        throw new SignatureError('', `cannot decode public key: ${err.message}`, {}, err.kind === 'unsupported' ? 'ERR_KEY_UNSUPPORTED' : 'ERR_KEY_PACKET');
      }
      throw err;
    }
    // node accepts a zero modulus in a JWK and fails only when the key is used, so check here.
    if (params.n.every((b) => b === 0) || params.e.every((b) => b === 0)) {
      throw new SignatureError('', 'invalid RSA public key: zero modulus or exponent', {}, 'ERR_KEY_PACKET');
    }
    let key: KeyObject;
    try {
      key = createPublicKey({
        key: { kty: 'RSA', n: stripLeadingZeros(params.n).toString('base64url'), e: stripLeadingZeros(params.e).toString('base64url') },
        format: 'jwk',
      });
    } catch (err) {
      throw new SignatureError('', `invalid RSA public key: ${(err as Error).message}`, {}, 'ERR_KEY_PACKET');
    }
    return new PublicKey(key, params);
  }

  /**
   * snapd's text for this key in an account-key body: exactly what `asserts.EncodePublicKey`
   * writes, so a body we produce hashes to the same `public-key-sha3-384` snapd computes.
   *
   * @example
   * `body-length: ${Buffer.byteLength(key.encodeAccountKeyBody())}`
   */
  encodeAccountKeyBody(): string {
    return encodeV1(this.toOpenPgpPacket());
  }

  /**
   * The v4 public-key packet (header included) with snapd's fixed creation time. Useful to hand
   * the key to OpenPGP tools, whose key id then matches the issuer in our signatures.
   *
   * @example
   * await openpgp.readKey({ binaryKey: key.toOpenPgpPacket() }); // needs a user id to be a full key
   */
  toOpenPgpPacket(): Buffer {
    return encodePacket(TAG_PUBLIC_KEY, this.#packetBody);
  }

  /**
   * snapd's key id (`public-key-sha3-384`, `sign-key-sha3-384`): base64url SHA3-384 of
   * 0x01 || the normalised public-key packet.
   *
   * @example
   * key.id; // '-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk' for the root key
   */
  get id(): string {
    return this.#id;
  }

  /**
   * The OpenPGP v4 key id (16 upper-case hex digits) of the normalised packet: what our signatures
   * put in their issuer subpacket. Canonical's own signatures carry a different value there.
   *
   * @example
   * key.openpgpKeyId; // 'A4F2265AAFD300BE' for the root key
   */
  get openpgpKeyId(): string {
    return v4KeyId(this.#packetBody).toString('hex').toUpperCase();
  }

  /**
   * Modulus size in bits; policy (snapd signs only with ≥ 4096) is the caller's business.
   *
   * @example
   * key.bits; // 8192 for the Canonical root key
   */
  get bits(): number {
    return this.#bits;
  }

  /**
   * The node key, for callers that need other node:crypto operations.
   *
   * @example
   * key.keyObject.export({ type: 'spki', format: 'der' });
   */
  get keyObject(): KeyObject {
    return this.#key;
  }

  /**
   * SPKI PEM, the form other tools (openssl, Go's x509) read without OpenPGP support.
   *
   * @example
   * writeFileSync('key.pub.pem', key.toPem());
   */
  toPem(): string {
    return this.#key.export({ type: 'spki', format: 'pem' }).toString();
  }

  /**
   * Verifies snapd's signature text over `content` (the assertion bytes before the last
   * "\n\n"). Returns nothing on success; every failure is a `SignatureError` (assertion ref ''):
   *
   * - `ERR_SIGNATURE_ENCODING`: not base64, empty, format byte not 0x01, data after the packet;
   * - `ERR_SIGNATURE_PACKET`: not a v4 signature packet, or malformed;
   * - `ERR_SIGNATURE_UNSUPPORTED`: hash other than SHA-512, key algorithm other than RSA,
   *   unknown critical subpacket;
   * - `ERR_SIGNATURE_INVALID`: the signature does not match the content and this key.
   *
   * As in snapd, the issuer and issuer-fingerprint subpackets and the creation time are not
   * checked: Canonical's issuer ids do not match the normalised key, and freshness is judged
   * from assertion headers, not from the signature.
   *
   * @example
   * const cut = text.lastIndexOf('\n\n');
   * key.verify(Buffer.from(text.slice(0, cut)), text.slice(cut + 2));
   */
  verify(content: Uint8Array, signatureText: string | Uint8Array): void {
    const sig = decodeSignature(signatureText);
    if (sig.hashAlgo !== HASH_SHA512) {
      throw new SignatureError('', `unsupported signature hash algorithm ${hashAlgoName(sig.hashAlgo)}, only SHA-512 (10) is accepted`, {}, 'ERR_SIGNATURE_UNSUPPORTED');
    }
    if (sig.pubkeyAlgo !== PUBKEY_RSA) {
      throw new SignatureError('', `unsupported signature key algorithm ${pubkeyAlgoName(sig.pubkeyAlgo)}, only RSA (1) is accepted`, {}, 'ERR_SIGNATURE_UNSUPPORTED');
    }
    const [rsaSig, ...extra] = sig.mpis;
    if (rsaSig === undefined || extra.length > 0) {
      throw new SignatureError('', `RSA signature packet must hold exactly one MPI, found ${sig.mpis.length}`, {}, 'ERR_SIGNATURE_PACKET');
    }

    const trailer = v4HashTrailer(sig.hashedPart);
    const digest = createHash('sha512').update(content).update(trailer).digest();
    if (digest[0] !== sig.hashTag[0] || digest[1] !== sig.hashTag[1]) {
      throw new SignatureError('', 'signature does not verify: hash tag does not match the content', {}, 'ERR_SIGNATURE_INVALID');
    }

    // The MPI drops leading zero octets; PKCS#1 v1.5 wants exactly the modulus length.
    const size = this.#params.n.length;
    const sigBytes = stripLeadingZeros(rsaSig);
    if (sigBytes.length > size) {
      throw new SignatureError('', 'signature does not verify: RSA value is longer than the key modulus', {}, 'ERR_SIGNATURE_INVALID');
    }
    const padded = Buffer.concat([Buffer.alloc(size - sigBytes.length), sigBytes]);
    // One hash, one RSA operation: recover the PKCS#1 v1.5 block (OpenSSL checks the type-1
    // padding) and compare it whole with the DigestInfo of the digest already computed for the tag.
    let recovered: Buffer | undefined;
    try {
      recovered = publicDecrypt({ key: this.#key, padding: constants.RSA_PKCS1_PADDING }, padded);
    } catch {
      recovered = undefined;
    }
    const expected = Buffer.concat([SHA512_DIGEST_INFO, digest]);
    const ok = recovered !== undefined && recovered.length === expected.length && timingSafeEqual(recovered, expected);
    if (!ok) {
      throw new SignatureError('', `signature does not verify with key ${this.#id}`, {}, 'ERR_SIGNATURE_INVALID');
    }
  }
}

/** Unwraps the v1 envelope and parses the one signature packet inside, mapping errors to codes. */
function decodeSignature(signatureText: string | Uint8Array): ParsedSignature {
  let data: Buffer;
  try {
    data = decodeV1(signatureText);
  } catch (err) {
    if (err instanceof V1EnvelopeError) throw new SignatureError('', `cannot decode signature: ${err.message}`, {}, 'ERR_SIGNATURE_ENCODING');
    throw err;
  }
  try {
    const header = readPacketHeader(data);
    if (header.bodyEnd !== data.length) {
      throw new SignatureError('', `signature has ${data.length - header.bodyEnd} bytes of spurious trailing data`, {}, 'ERR_SIGNATURE_ENCODING');
    }
    if (header.tag !== TAG_SIGNATURE) {
      throw new SignatureError('', `expected a signature packet, got ${packetTagName(header.tag)}`, {}, 'ERR_SIGNATURE_PACKET');
    }
    return parseSignatureBody(data.subarray(header.bodyStart, header.bodyEnd));
  } catch (err) {
    if (err instanceof OpenPgpError) {
      throw new SignatureError('', `cannot decode signature: ${err.message}`, {}, err.kind === 'unsupported' ? 'ERR_SIGNATURE_UNSUPPORTED' : 'ERR_SIGNATURE_PACKET');
    }
    throw err;
  }
}
