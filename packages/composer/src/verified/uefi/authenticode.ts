/**
 * Authenticode signatures of EFI binaries (what UEFI Secure Boot checks against db): a PKCS#7
 * SignedData over SpcIndirectDataContent holding the image's SHA-256, appended as the image's
 * certificate table. Made here rather than with sbsign so the bytes are deterministic (sbsign
 * adds a signingTime attribute) and the private key stays in this process.
 */
import { X509Certificate, createHash, sign, type KeyObject } from 'node:crypto';
import { ComposeError } from '../../errors.js';
import { children, derNull, explicit, integer, octets, oid, readTlv, sequence, setOf, tlv } from './der.js';
import { alignUp, parsePe, writePeChecksum, type PeHeaders } from './pe.js';

export interface PeSigner {
  /** The db private key (RSA). */
  key: KeyObject;
  /** Its certificate, as enrolled in db. */
  certPem: string;
}

const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_RSA = '1.2.840.113549.1.1.1';
const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SPC_INDIRECT_DATA = '1.3.6.1.4.1.311.2.1.4';
const OID_SPC_PE_IMAGE_DATA = '1.3.6.1.4.1.311.2.1.15';
/** WIN_CERTIFICATE: revision 2.0, type PKCS_SIGNED_DATA. */
const WIN_CERT_REVISION = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;

/**
 * The image's Authenticode SHA-256 as edk2's DxeImageVerificationLib computes it: the headers
 * without CheckSum and the security directory entry, the sections in file order, then whatever
 * follows them up to the certificate table. The sections must tile the file after the headers:
 * with a gap, firmware and signing tools disagree on which bytes count.
 */
export function authenticodeDigest(data: Buffer, h: PeHeaders, what = 'the PE image'): Buffer {
  const hash = createHash('sha256');
  hash.update(data.subarray(0, h.checksumOffset));
  hash.update(data.subarray(h.checksumOffset + 4, h.securityDirectoryOffset));
  hash.update(data.subarray(h.securityDirectoryOffset + 8, h.sizeOfHeaders));
  let at = h.sizeOfHeaders;
  for (const s of [...h.sections].filter((s) => s.sizeOfRawData > 0).sort((a, b) => a.pointerToRawData - b.pointerToRawData)) {
    if (s.pointerToRawData !== at) {
      throw new ComposeError('ERR_PE_FORMAT', `${what} is not a usable PE/COFF image: section ${JSON.stringify(s.name)} starts at 0x${s.pointerToRawData.toString(16)}, expected 0x${at.toString(16)} (sections must follow each other without gaps or overlaps to be signed)`, { what, section: s.name });
    }
    hash.update(data.subarray(s.pointerToRawData, s.pointerToRawData + s.sizeOfRawData));
    at += s.sizeOfRawData;
  }
  const end = h.certificateTable ? h.certificateTable.offset : data.length;
  if (end > at) hash.update(data.subarray(at, end));
  return hash.digest();
}

/** Issuer and serial number of a DER certificate, as a SignerInfo names its signer. */
function issuerAndSerial(certDer: Buffer): Buffer {
  const what = 'the signing certificate';
  const cert = readTlv(certDer, 0, what);
  const [tbs] = children(cert, what, 3);
  if (!tbs) throw new ComposeError('ERR_SIGNER_CERT', `${what}: no tbsCertificate`);
  const fields = children(tbs, what, 12);
  const start = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is absent in v1 certificates
  const serial = fields[start];
  const issuer = fields[start + 2];
  if (serial?.tag !== 0x02 || issuer?.tag !== 0x30) throw new ComposeError('ERR_SIGNER_CERT', `${what}: expected serialNumber and issuer in tbsCertificate`);
  return sequence(issuer.raw, serial.raw);
}

function signedData(digest: Buffer, signer: PeSigner, certDer: Buffer): Buffer {
  const sha256 = sequence(oid(OID_SHA256), derNull());
  // SpcPeImageData: no flags, and the obsolete file link as an empty Unicode string.
  const peImageData = sequence(tlv(0x03, Buffer.from([0x00])), explicit(0, tlv(0xa2, tlv(0x80))));
  const indirect = sequence(sequence(oid(OID_SPC_PE_IMAGE_DATA), peImageData), sequence(sha256, octets(digest)));
  // PKCS#7 digests the content octets of the content, without its SEQUENCE header.
  const contentOctets = readTlv(indirect, 0, 'SpcIndirectDataContent').content;
  const attributes = [
    sequence(oid(OID_CONTENT_TYPE), setOf(oid(OID_SPC_INDIRECT_DATA))),
    sequence(oid(OID_MESSAGE_DIGEST), setOf(octets(createHash('sha256').update(contentOctets).digest()))),
  ];
  // No signingTime: firmware has no trusted clock, and without it the same image signs to the same bytes.
  const signedAttributes = setOf(...attributes);
  const signature = sign('sha256', signedAttributes, signer.key);
  const signerInfo = sequence(
    integer(1),
    issuerAndSerial(certDer),
    sha256,
    tlv(0xa0, readTlv(signedAttributes, 0, 'signed attributes').content), // [0] IMPLICIT: same content, context tag
    sequence(oid(OID_RSA), derNull()),
    octets(signature),
  );
  const content = sequence(
    integer(1),
    setOf(sha256),
    sequence(oid(OID_SPC_INDIRECT_DATA), explicit(0, indirect)),
    tlv(0xa0, certDer),
    setOf(signerInfo),
  );
  return sequence(oid(OID_SIGNED_DATA), explicit(0, content));
}

function checkSigner(signer: PeSigner): Buffer {
  if (signer.key.type !== 'private' || signer.key.asymmetricKeyType !== 'rsa') {
    throw new ComposeError('ERR_SIGNER_KEY', `the Authenticode signing key must be a private RSA key, got a ${signer.key.type} ${signer.key.asymmetricKeyType ?? ''} key`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(signer.certPem);
  } catch (e) {
    throw new ComposeError('ERR_SIGNER_CERT', `the Authenticode signing certificate is not a readable X.509 certificate: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(signer.key)) {
    throw new ComposeError('ERR_SIGNER_KEY', `the Authenticode signing key does not match the certificate ${JSON.stringify(cert.subject)}: firmware would check the signature against the wrong key`, { subject: cert.subject });
  }
  return cert.raw;
}

/**
 * Authenticode-signs an unsigned PE image with the db key: the image padded to 8 bytes, then a
 * certificate table with one PKCS#7 SignedData (SHA-256, no signing time), CheckSum updated.
 * Deterministic. An image that already carries a certificate table is refused (ERR_PE_SIGNED)
 * rather than re-signed: replacing a signature would hide which key a bundle's binary came with.
 *
 * @example
 * const signed = signPe(buildUki(inputs), { key, certPem });   // sbverify --cert db.crt accepts it
 */
export function signPe(pe: Buffer, signer: PeSigner): Buffer {
  const h = parsePe(pe, 'the PE image to sign');
  if (h.certificateTable) {
    throw new ComposeError('ERR_PE_SIGNED', `the PE image to sign already carries a certificate table (${h.certificateTable.size} bytes at 0x${h.certificateTable.offset.toString(16)}): sign the unsigned image`, { ...h.certificateTable });
  }
  const certDer = checkSigner(signer);
  const padded = Buffer.alloc(alignUp(pe.length, 8));
  pe.copy(padded);
  const pkcs7 = signedData(authenticodeDigest(padded, h), signer, certDer);
  const entrySize = alignUp(8 + pkcs7.length, 8);
  const out = Buffer.alloc(padded.length + entrySize);
  padded.copy(out);
  out.writeUInt32LE(8 + pkcs7.length, padded.length);
  out.writeUInt16LE(WIN_CERT_REVISION, padded.length + 4);
  out.writeUInt16LE(WIN_CERT_TYPE_PKCS_SIGNED_DATA, padded.length + 6);
  pkcs7.copy(out, padded.length + 8);
  out.writeUInt32LE(padded.length, h.securityDirectoryOffset);
  out.writeUInt32LE(entrySize, h.securityDirectoryOffset + 4);
  writePeChecksum(out, h);
  return out;
}

/**
 * The PKCS#7 SignedData blobs of a signed image's certificate table (for tests and inspection);
 * an image without one gives [].
 */
export function peSignatures(pe: Buffer): Buffer[] {
  const h = parsePe(pe, 'the signed PE image');
  if (!h.certificateTable) return [];
  const out: Buffer[] = [];
  const end = h.certificateTable.offset + h.certificateTable.size;
  for (let o = h.certificateTable.offset; o + 8 <= end && out.length < 16; ) {
    const len = pe.readUInt32LE(o);
    if (len < 8 || o + len > end) throw new ComposeError('ERR_PE_FORMAT', `the signed PE image's certificate entry at 0x${o.toString(16)} has length ${len}, outside its table`, { offset: o });
    if (pe.readUInt16LE(o + 6) === WIN_CERT_TYPE_PKCS_SIGNED_DATA) out.push(pe.subarray(o + 8, o + len));
    o += alignUp(len, 8);
  }
  return out;
}
