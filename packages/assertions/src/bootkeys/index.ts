export { BootKeys, BOOT_KEY_BITS, fitKeyName, type BootKeyInfo, type BootKeyRole, type BootKeySet, type BootSigner, type CreateBootKeysOptions } from './boot-keys.js';
export { selfSignedCertificate, VALIDITY_YEARS, type Certificate, type CertificateOptions } from './certificate.js';
export { brandOwnerGuid, guidBytes, x509SignatureList, readX509SignatureList, EFI_CERT_X509_GUID } from './esl.js';
