/**
 * The small slice of RFC 4880 that snapd's assertion signatures and account-key bodies use.
 *
 * snapd never handles whole OpenPGP messages or keyrings: a signature is exactly one v4
 * signature packet, a public key exactly one v4 public-key packet. Implementing that slice by
 * hand keeps the byte layout under our control (the key id is a hash of these exact bytes) and
 * avoids a full OpenPGP library at runtime.
 *
 * Functions here throw {@link OpenPgpError}; the callers turn its `kind` into the typed
 * `SignatureError` codes, because only they know whether the bytes were a key or a signature.
 */
import { createHash } from 'node:crypto';

/** Packet tags (RFC 4880 §4.3). */
export const TAG_SIGNATURE = 2;
export const TAG_PUBLIC_KEY = 6;

/** Public-key algorithm ids (RFC 4880 §9.1). */
export const PUBKEY_RSA = 1;
export const PUBKEY_RSA_ENCRYPT_ONLY = 2;
export const PUBKEY_RSA_SIGN_ONLY = 3;

/** Hash algorithm id of SHA-512 (RFC 4880 §9.4), the only one snapd signs with. */
export const HASH_SHA512 = 10;

/** Signature type 0x00: signature of a binary document (RFC 4880 §5.2.1). */
export const SIGTYPE_BINARY = 0x00;

/** Signature subpacket types (RFC 4880 §5.2.3.1, RFC 9580 §5.2.3.35). */
export const SUBPACKET_CREATION_TIME = 2;
export const SUBPACKET_ISSUER = 16;
export const SUBPACKET_ISSUER_FINGERPRINT = 33;

/**
 * The subpacket types golang.org/x/crypto/openpgp understands. snapd rejects a signature with a
 * *critical* subpacket outside this set, so we do too; non-critical unknown ones are ignored.
 */
const KNOWN_SUBPACKET_TYPES: ReadonlySet<number> = new Set([2, 3, 9, 11, 16, 21, 22, 25, 27, 29, 30, 32]);

const PACKET_NAMES: Record<number, string> = {
  1: 'public-key encrypted session key',
  2: 'signature',
  3: 'symmetric-key encrypted session key',
  4: 'one-pass signature',
  5: 'secret key',
  6: 'public key',
  7: 'secret subkey',
  8: 'compressed data',
  11: 'literal data',
  13: 'user id',
  14: 'public subkey',
};

const PUBKEY_NAMES: Record<number, string> = {
  1: 'RSA',
  2: 'RSA encrypt-only',
  3: 'RSA sign-only',
  16: 'ElGamal',
  17: 'DSA',
  18: 'ECDH',
  19: 'ECDSA',
  22: 'EdDSA',
  25: 'X25519',
  26: 'X448',
  27: 'Ed25519',
  28: 'Ed448',
};

const HASH_NAMES: Record<number, string> = {
  1: 'MD5',
  2: 'SHA-1',
  3: 'RIPEMD-160',
  8: 'SHA-256',
  9: 'SHA-384',
  10: 'SHA-512',
  11: 'SHA-224',
  12: 'SHA3-256',
  14: 'SHA3-512',
};

/** `tag 6 (public key)`: readable names keep error messages actionable. */
export function packetTagName(tag: number): string {
  return `tag ${tag}${PACKET_NAMES[tag] ? ` (${PACKET_NAMES[tag]})` : ''}`;
}

/** `RSA (1)`, `DSA (17)`, `unknown (99)`. */
export function pubkeyAlgoName(algo: number): string {
  return `${PUBKEY_NAMES[algo] ?? 'unknown'} (${algo})`;
}

/** `SHA-512 (10)`, `SHA-256 (8)`, `unknown (99)`. */
export function hashAlgoName(algo: number): string {
  return `${HASH_NAMES[algo] ?? 'unknown'} (${algo})`;
}

/**
 * What went wrong, coarsely: `packet` = malformed structure, `unsupported` = well-formed but
 * using something snapd does not accept. Callers map this onto their own error codes.
 */
export type OpenPgpErrorKind = 'packet' | 'unsupported';

export class OpenPgpError extends Error {
  constructor(
    readonly kind: OpenPgpErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'OpenPgpError';
  }
}

function fail(kind: OpenPgpErrorKind, message: string): never {
  throw new OpenPgpError(kind, message);
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function uint16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function uint32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Packet framing (RFC 4880 §4.2)

export interface PacketHeader {
  tag: number;
  /** `old` headers still appear in gpg exports; snapd writes `new` ones. */
  format: 'old' | 'new';
  /** Offset of the first body byte in the buffer that was read. */
  bodyStart: number;
  /** Offset just past the body: where the next packet would start. */
  bodyEnd: number;
}

/**
 * Reads the packet header at `offset`. Both header formats are accepted because x/crypto (and
 * thus snapd) accepts both; partial body lengths are refused as no signature or key uses them.
 *
 * @example
 * const h = readPacketHeader(bytes);            // bytes = c2 c1 5c 04 00 01 0a …
 * h.tag === 2; h.bodyEnd - h.bodyStart === 540;
 */
export function readPacketHeader(data: Uint8Array, offset = 0): PacketHeader {
  const buf = toBuffer(data);
  const first = buf[offset];
  if (first === undefined) fail('packet', 'no packet: input is empty');
  if ((first & 0x80) === 0) fail('packet', `not an OpenPGP packet: first octet 0x${first.toString(16).padStart(2, '0')}`);

  let pos = offset + 1;
  const need = (n: number): void => {
    if (pos + n > buf.length) fail('packet', 'packet header truncated');
  };

  let tag: number;
  let length: number;
  let format: 'old' | 'new';
  if (first & 0x40) {
    format = 'new';
    tag = first & 0x3f;
    need(1);
    const o1 = buf[pos]!;
    if (o1 < 192) {
      length = o1;
      pos += 1;
    } else if (o1 < 224) {
      need(2);
      length = ((o1 - 192) << 8) + buf[pos + 1]! + 192;
      pos += 2;
    } else if (o1 === 255) {
      need(5);
      length = buf.readUInt32BE(pos + 1);
      pos += 5;
    } else {
      fail('unsupported', 'partial body lengths are not supported');
    }
  } else {
    format = 'old';
    tag = (first >> 2) & 0x0f;
    const lengthType = first & 0x03;
    if (lengthType === 0) {
      need(1);
      length = buf[pos]!;
      pos += 1;
    } else if (lengthType === 1) {
      need(2);
      length = buf.readUInt16BE(pos);
      pos += 2;
    } else if (lengthType === 2) {
      need(4);
      length = buf.readUInt32BE(pos);
      pos += 4;
    } else {
      // Indeterminate length: the packet runs to the end of the input.
      length = buf.length - pos;
    }
  }
  if (pos + length > buf.length) {
    fail('packet', `packet truncated: ${packetTagName(tag)} declares ${length} body bytes, ${buf.length - pos} present`);
  }
  return { tag, format, bodyStart: pos, bodyEnd: pos + length };
}

/**
 * Frames `body` as a packet with a new-format header and the shortest length encoding, which is
 * what x/crypto writes, so our bytes (and the hashes over them) match snapd's.
 *
 * @example
 * encodePacket(TAG_PUBLIC_KEY, body); // c6 c1 4d … for a 525-byte RSA-4096 key body
 */
export function encodePacket(tag: number, body: Uint8Array): Buffer {
  if (tag < 0 || tag > 63) throw new RangeError(`packet tag out of range: ${tag}`);
  const len = body.length;
  let header: Buffer;
  if (len < 192) {
    header = Buffer.from([0xc0 | tag, len]);
  } else if (len < 8384) {
    const l = len - 192;
    header = Buffer.from([0xc0 | tag, (l >> 8) + 192, l & 0xff]);
  } else {
    header = Buffer.concat([Buffer.from([0xc0 | tag, 0xff]), uint32be(len)]);
  }
  return Buffer.concat([header, body]);
}

// ---------------------------------------------------------------------------------------------
// Multiprecision integers (RFC 4880 §3.2)

/**
 * Encodes an unsigned big-endian integer as an MPI. Leading zero octets are dropped because the
 * bit count must describe the number, not the buffer; otherwise hashes over the key differ.
 *
 * @example
 * encodeMpi(Buffer.from([0x01, 0x00, 0x01])); // 00 11 01 00 01  (65537, 17 bits)
 */
export function encodeMpi(value: Uint8Array): Buffer {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  const bytes = toBuffer(value).subarray(start);
  const bits = bytes.length === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
  if (bits > 0xffff) throw new RangeError(`MPI too large: ${bits} bits`);
  return Buffer.concat([uint16be(bits), bytes]);
}

/**
 * Reads the MPI at `offset`. Like x/crypto, it trusts the bit count for the byte length and does
 * not insist the top bit is set: Canonical's signatures carry 4092–4096-bit values.
 *
 * @example
 * const { value, end } = readMpi(buf, 0);
 */
export function readMpi(data: Uint8Array, offset: number): { value: Buffer; bits: number; end: number } {
  const buf = toBuffer(data);
  if (offset + 2 > buf.length) fail('packet', 'MPI truncated');
  const bits = buf.readUInt16BE(offset);
  const n = (bits + 7) >> 3;
  const end = offset + 2 + n;
  if (end > buf.length) fail('packet', `MPI truncated: ${bits} bits declared, ${buf.length - offset - 2} bytes present`);
  return { value: Buffer.from(buf.subarray(offset + 2, end)), bits, end };
}

// ---------------------------------------------------------------------------------------------
// v4 public-key packets (RFC 4880 §5.5.2)

export interface RsaPublicParams {
  /** Modulus, unsigned big-endian. */
  n: Buffer;
  /** Public exponent, unsigned big-endian. */
  e: Buffer;
}

export interface ParsedPublicKey {
  version: number;
  /** Creation time, seconds since the epoch. snapd ignores it and rewrites it to 2016-01-01. */
  created: number;
  algorithm: number;
  /** Present when `algorithm` is one of the RSA ids (1, 2, 3). */
  rsa?: RsaPublicParams;
}

/**
 * Builds the body (no header) of a v4 RSA public-key packet. snapd always writes algorithm 1 and
 * a fixed creation time, which is why a key id is stable whatever the key's real age.
 *
 * @example
 * encodeRsaPublicKeyBody({ n, e }, 0x5685c180); // 04 56 85 c1 80 01 <MPI n> <MPI e>
 */
export function encodeRsaPublicKeyBody(params: RsaPublicParams, created: number): Buffer {
  return Buffer.concat([Buffer.from([4]), uint32be(created), Buffer.from([PUBKEY_RSA]), encodeMpi(params.n), encodeMpi(params.e)]);
}

/** {@link encodeRsaPublicKeyBody} framed as a packet (tag 6). */
export function encodeRsaPublicKeyPacket(params: RsaPublicParams, created: number): Buffer {
  return encodePacket(TAG_PUBLIC_KEY, encodeRsaPublicKeyBody(params, created));
}

/**
 * Parses a public-key packet body. Only v4 is accepted (x/crypto refuses the others); non-RSA
 * algorithms parse as far as their id so the caller can name what it got.
 *
 * @example
 * const { rsa } = parsePublicKeyBody(body); // rsa.n, rsa.e
 */
export function parsePublicKeyBody(data: Uint8Array): ParsedPublicKey {
  const body = toBuffer(data);
  if (body.length < 1) fail('packet', 'public-key packet is empty');
  const version = body[0]!;
  if (version !== 4) fail('packet', `public-key packet version ${version}, only version 4 is supported`);
  if (body.length < 6) fail('packet', 'public-key packet truncated');
  const created = body.readUInt32BE(1);
  const algorithm = body[5]!;
  if (algorithm !== PUBKEY_RSA && algorithm !== PUBKEY_RSA_ENCRYPT_ONLY && algorithm !== PUBKEY_RSA_SIGN_ONLY) {
    return { version, created, algorithm };
  }
  const n = readMpi(body, 6);
  const e = readMpi(body, n.end);
  if (e.end !== body.length) fail('packet', `public-key packet has ${body.length - e.end} unexpected trailing bytes`);
  return { version, created, algorithm, rsa: { n: n.value, e: e.value } };
}

/**
 * v4 fingerprint: SHA-1 of 0x99 || uint16 length || body (RFC 4880 §12.2). Needed only for the
 * 8-byte issuer key id that OpenPGP tools use to pick a key; snapd itself never checks it.
 *
 * @example
 * v4Fingerprint(encodeRsaPublicKeyBody(params, created)).toString('hex');
 */
export function v4Fingerprint(publicKeyBody: Uint8Array): Buffer {
  return createHash('sha1')
    .update(Buffer.from([0x99]))
    .update(uint16be(publicKeyBody.length))
    .update(publicKeyBody)
    .digest();
}

/** The v4 key id: the low 64 bits of {@link v4Fingerprint}. */
export function v4KeyId(publicKeyBody: Uint8Array): Buffer {
  return v4Fingerprint(publicKeyBody).subarray(12, 20);
}

// ---------------------------------------------------------------------------------------------
// v4 signature packets (RFC 4880 §5.2.3)

export interface Subpacket {
  type: number;
  critical: boolean;
  /** Subpacket data, without the length and type octets. */
  data: Buffer;
}

export interface ParsedSignature {
  version: 4;
  sigType: number;
  pubkeyAlgo: number;
  hashAlgo: number;
  hashed: Subpacket[];
  unhashed: Subpacket[];
  /** Version octet through the end of the hashed subpackets: the signed part of the packet. */
  hashedPart: Buffer;
  /** The first two octets of the digest, a cheap pre-check before the RSA operation. */
  hashTag: Buffer;
  /** The algorithm-specific MPIs (one for RSA). */
  mpis: Buffer[];
  /** Seconds since the epoch, from the hashed creation-time subpacket. */
  created: number;
  /** 8-byte issuer key id when present. Informational only: snapd does not check it. */
  issuerKeyId?: Buffer;
}

/**
 * Encodes one subpacket with the shortest length form.
 *
 * @example
 * encodeSubpacket(SUBPACKET_CREATION_TIME, Buffer.from([0x62, 0x4b, 0xa6, 0xaa])); // 05 02 62 4b a6 aa
 */
export function encodeSubpacket(type: number, data: Uint8Array, critical = false): Buffer {
  const len = data.length + 1;
  let lenBytes: Buffer;
  if (len < 192) lenBytes = Buffer.from([len]);
  else if (len < 8384) lenBytes = Buffer.from([((len - 192) >> 8) + 192, (len - 192) & 0xff]);
  else lenBytes = Buffer.concat([Buffer.from([0xff]), uint32be(len)]);
  return Buffer.concat([lenBytes, Buffer.from([(critical ? 0x80 : 0) | type]), data]);
}

/** Splits a subpacket area. Structural rules mirror x/crypto's so we accept what snapd accepts. */
export function parseSubpackets(data: Uint8Array): Subpacket[] {
  const area = toBuffer(data);
  const out: Subpacket[] = [];
  let pos = 0;
  while (pos < area.length) {
    const o1 = area[pos]!;
    let len: number;
    if (o1 < 192) {
      len = o1;
      pos += 1;
    } else if (o1 < 255) {
      if (pos + 2 > area.length) fail('packet', 'signature subpacket truncated');
      len = ((o1 - 192) << 8) + area[pos + 1]! + 192;
      pos += 2;
    } else {
      if (pos + 5 > area.length) fail('packet', 'signature subpacket truncated');
      len = area.readUInt32BE(pos + 1);
      pos += 5;
    }
    if (len === 0) fail('packet', 'zero-length signature subpacket');
    if (pos + len > area.length) fail('packet', 'signature subpacket truncated');
    const typeOctet = area[pos]!;
    out.push({ type: typeOctet & 0x7f, critical: (typeOctet & 0x80) !== 0, data: Buffer.from(area.subarray(pos + 1, pos + len)) });
    pos += len;
  }
  return out;
}

/**
 * The signed prefix of a v4 signature: version, type, algorithms and hashed subpackets.
 *
 * @example
 * buildHashedPart(SIGTYPE_BINARY, PUBKEY_RSA, HASH_SHA512, encodeSubpacket(2, time));
 */
export function buildHashedPart(sigType: number, pubkeyAlgo: number, hashAlgo: number, hashedSubpackets: Uint8Array): Buffer {
  if (hashedSubpackets.length > 0xffff) throw new RangeError('hashed subpacket area too large');
  return Buffer.concat([Buffer.from([4, sigType, pubkeyAlgo, hashAlgo]), uint16be(hashedSubpackets.length), hashedSubpackets]);
}

/**
 * The bytes hashed after the content for a v4 signature (RFC 4880 §5.2.4):
 * hashedPart || 0x04 0xFF || uint32be(hashedPart.length).
 *
 * @example
 * const digest = createHash('sha512').update(content).update(v4HashTrailer(sig.hashedPart)).digest();
 */
export function v4HashTrailer(hashedPart: Uint8Array): Buffer {
  return Buffer.concat([hashedPart, Buffer.from([0x04, 0xff]), uint32be(hashedPart.length)]);
}

/**
 * Assembles a v4 signature packet body (no header) from its signed prefix, unhashed area, hash
 * tag and MPIs.
 *
 * @example
 * encodePacket(TAG_SIGNATURE, buildSignatureBody(hashedPart, encodeSubpacket(16, keyId), digest.subarray(0, 2), [rsaSig]));
 */
export function buildSignatureBody(hashedPart: Uint8Array, unhashedSubpackets: Uint8Array, hashTag: Uint8Array, mpis: Uint8Array[]): Buffer {
  if (hashTag.length !== 2) throw new RangeError('hash tag must be 2 octets');
  if (unhashedSubpackets.length > 0xffff) throw new RangeError('unhashed subpacket area too large');
  return Buffer.concat([hashedPart, uint16be(unhashedSubpackets.length), unhashedSubpackets, hashTag, ...mpis.map(encodeMpi)]);
}

/**
 * Parses a signature packet body. Accepts any non-critical subpacket (gpg adds an issuer
 * fingerprint, openpgp.js a salt notation), but like x/crypto insists on a hashed creation time
 * and refuses critical subpackets it does not know. Algorithms are not judged here; the MPIs are
 * read to the end of the body so the verifier can name an unsupported algorithm precisely.
 *
 * @example
 * const sig = parseSignatureBody(packet.subarray(h.bodyStart, h.bodyEnd));
 */
export function parseSignatureBody(data: Uint8Array): ParsedSignature {
  const body = toBuffer(data);
  if (body.length < 1) fail('packet', 'signature packet is empty');
  const version = body[0]!;
  if (version !== 4) fail('packet', `signature packet version ${version}, only version 4 is supported`);
  if (body.length < 6) fail('packet', 'signature packet truncated');
  const sigType = body[1]!;
  const pubkeyAlgo = body[2]!;
  const hashAlgo = body[3]!;
  const hashedLen = body.readUInt16BE(4);
  const hashedEnd = 6 + hashedLen;
  if (hashedEnd + 2 > body.length) fail('packet', 'signature packet truncated in the hashed subpackets');
  const hashedPart = Buffer.from(body.subarray(0, hashedEnd));
  const unhashedLen = body.readUInt16BE(hashedEnd);
  const unhashedEnd = hashedEnd + 2 + unhashedLen;
  if (unhashedEnd + 2 > body.length) fail('packet', 'signature packet truncated in the unhashed subpackets');
  const hashed = parseSubpackets(body.subarray(6, hashedEnd));
  const unhashed = parseSubpackets(body.subarray(hashedEnd + 2, unhashedEnd));
  const hashTag = Buffer.from(body.subarray(unhashedEnd, unhashedEnd + 2));

  let created: number | undefined;
  let issuerKeyId: Buffer | undefined;
  for (const [area, isHashed] of [
    [hashed, true],
    [unhashed, false],
  ] as const) {
    for (const sp of area) {
      if (sp.type === SUBPACKET_CREATION_TIME) {
        if (!isHashed) fail('packet', 'signature creation time in the unhashed area');
        if (sp.data.length !== 4) fail('packet', 'signature creation time is not 4 octets');
        created = sp.data.readUInt32BE(0);
      } else if (sp.type === SUBPACKET_ISSUER) {
        if (sp.data.length !== 8) fail('packet', 'issuer subpacket is not 8 octets');
        issuerKeyId = sp.data;
      } else if (sp.critical && !KNOWN_SUBPACKET_TYPES.has(sp.type)) {
        fail('unsupported', `unknown critical signature subpacket type ${sp.type}`);
      }
    }
  }
  if (created === undefined) fail('packet', 'no creation time in signature');

  const mpis: Buffer[] = [];
  let pos = unhashedEnd + 2;
  while (pos < body.length) {
    const mpi = readMpi(body, pos);
    mpis.push(mpi.value);
    pos = mpi.end;
  }
  const sig: ParsedSignature = { version: 4, sigType, pubkeyAlgo, hashAlgo, hashed, unhashed, hashedPart, hashTag, mpis, created };
  if (issuerKeyId) sig.issuerKeyId = issuerKeyId;
  return sig;
}
