/**
 * EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1), the format a factory (or `efi-updatevar`, or KeyTool)
 * writes into the PK, KEK and db variables: one list holding one X.509 certificate.
 */
import { createHash } from 'node:crypto';

/** EFI_CERT_X509_GUID: the list's entries are DER certificates. */
export const EFI_CERT_X509_GUID = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';

/** RFC 9562's name space for URLs, used with a `urn:edgeimage:brand:ID` name (UUIDs of names that are URIs). */
const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The SignatureOwner of the brand's entries: a name-based UUID (version 5, SHA-1) of
 * `urn:edgeimage:brand:<brand-id>` in RFC 9562's URL name space. Anyone can recompute it from the
 * brand id alone, and the same brand always gets the same owner in every key set it makes.
 *
 * @example
 * brandOwnerGuid('acme') // always the same GUID for "acme"
 */
export function brandOwnerGuid(brandId: string): string {
  const h = createHash('sha1').update(Buffer.from(NAMESPACE_URL.replace(/-/g, ''), 'hex')).update(`urn:edgeimage:brand:${brandId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * EFI_GUID in memory order: Data1 (32 bits), Data2 and Data3 (16 bits) little-endian, then the
 * last 8 bytes as written.
 */
export function guidBytes(guid: string): Buffer {
  if (!GUID.test(guid)) throw new RangeError(`not a GUID: ${JSON.stringify(guid)}`);
  const b = Buffer.from(guid.replace(/-/g, ''), 'hex');
  return Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
}

/**
 * One EFI_SIGNATURE_LIST of type X.509 with one entry: SignatureType, SignatureListSize,
 * SignatureHeaderSize 0, SignatureSize = 16 (the owner GUID) + the DER length, then the entry.
 *
 * @example
 * writeFileSync('db.esl', x509SignatureList(cert.der, brandOwnerGuid('acme')));
 */
export function x509SignatureList(der: Uint8Array, owner: string): Buffer {
  const signatureSize = 16 + der.length;
  const header = Buffer.alloc(28);
  guidBytes(EFI_CERT_X509_GUID).copy(header, 0);
  header.writeUInt32LE(28 + signatureSize, 16);
  header.writeUInt32LE(0, 20);
  header.writeUInt32LE(signatureSize, 24);
  return Buffer.concat([header, guidBytes(owner), der]);
}

function guidString(b: Uint8Array): string {
  const le = (s: number, n: number) => Buffer.from(b.subarray(s, s + n)).reverse().toString('hex');
  const rest = Buffer.from(b.subarray(8, 16)).toString('hex');
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${rest.slice(0, 4)}-${rest.slice(4)}`;
}

/**
 * The owner and certificate of what {@link x509SignatureList} writes, checked field by field:
 * exactly one list of type X.509, SignatureHeaderSize 0, SignatureListSize the whole input,
 * exactly one entry. A RangeError names the field, what was expected and what was found (a
 * factory tool that trusts the sizes reads out of bounds or loops on a list that lies about them).
 */
export function readX509SignatureList(bytes: Uint8Array): { owner: string; der: Buffer } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 28 + 16 + 1) throw new RangeError(`${b.length} bytes: expected an EFI_SIGNATURE_LIST (a 28-byte header, a 16-byte owner and a certificate)`);
  const type = guidString(b.subarray(0, 16));
  if (type !== EFI_CERT_X509_GUID) throw new RangeError(`SignatureType ${type}: expected EFI_CERT_X509_GUID ${EFI_CERT_X509_GUID}`);
  const listSize = b.readUInt32LE(16);
  if (listSize !== b.length) throw new RangeError(`SignatureListSize ${listSize}: expected ${b.length}, the size of the input (one list)`);
  const headerSize = b.readUInt32LE(20);
  if (headerSize !== 0) throw new RangeError(`SignatureHeaderSize ${headerSize}: expected 0 for X.509`);
  const signatureSize = b.readUInt32LE(24);
  if (signatureSize !== listSize - 28) throw new RangeError(`SignatureSize ${signatureSize}: expected ${listSize - 28} (exactly one entry: the list's ${listSize} bytes less its 28-byte header)`);
  return { owner: guidString(b.subarray(28, 44)), der: Buffer.from(b.subarray(44)) };
}
