/**
 * Self-signed X.509 v3 certificates for the UEFI Secure Boot keys (PK, KEK, db) and the U-Boot FIT
 * key. node-forge builds and signs the certificate in memory, so the private key never reaches a
 * command line, an environment variable or a temporary file (as `openssl req -x509` would need).
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import type { PrivateKey } from '../crypto/index.js';

/** 30 years: firmware has no trusted clock and edk2 ignores validity, so expiry would only trip tools that check it. */
export const VALIDITY_YEARS = 30;

export interface CertificateOptions {
  /** The subject's (and issuer's) common name, e.g. `acme Secure Boot db`. */
  commonName: string;
  /** The subject's organisation: the brand id. */
  organization: string;
  /** Adds extendedKeyUsage codeSigning: the db key signs EFI binaries (GRUB, the UKIs). */
  codeSigning?: boolean;
  /** Start of validity; the day it falls on (00:00 UTC) is used, so a set made twice the same day has the same window. */
  now?: Date;
}

export interface Certificate {
  der: Buffer;
  /** PEM with LF line ends (what openssl, sbsign and mkimage read). */
  pem: string;
}

/**
 * Makes a self-signed certificate for `key` (sha256WithRSAEncryption, random positive 128-bit
 * serial, keyUsage digitalSignature, subject and authority key ids, and CA:TRUE as `openssl req
 * -x509` and the usual Secure Boot recipes make them: a self-signed certificate is its own trust
 * anchor). PK and KEK sign the variables below them and db signs binaries; none issues certificates.
 *
 * @example
 * const cert = selfSignedCertificate(await PrivateKey.generate(2048), { commonName: 'acme Secure Boot db', organization: 'acme', codeSigning: true });
 * writeFileSync('db.crt', cert.pem);
 */
export function selfSignedCertificate(key: PrivateKey, opts: CertificateOptions): Certificate {
  // The unencrypted PEM lives only in this process's memory, long enough for forge to sign.
  const priv = forge.pki.privateKeyFromPem(key.toPem()) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(priv.n, priv.e);
  const serial = randomBytes(16);
  // DER integers are signed: a clear top bit keeps the serial positive, a set next bit keeps it 16 bytes.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  cert.serialNumber = serial.toString('hex');
  const start = new Date(opts.now ?? Date.now());
  start.setUTCHours(0, 0, 0, 0);
  const end = new Date(start);
  end.setUTCFullYear(start.getUTCFullYear() + VALIDITY_YEARS);
  cert.validity.notBefore = start;
  cert.validity.notAfter = end;
  const name = [
    { name: 'commonName', value: opts.commonName },
    { name: 'organizationName', value: opts.organization },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
  ];
  if (opts.codeSigning) extensions.push({ name: 'extKeyUsage', codeSigning: true });
  cert.setExtensions(extensions);
  cert.sign(priv, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { der, pem: new X509Certificate(der).toString() };
}
