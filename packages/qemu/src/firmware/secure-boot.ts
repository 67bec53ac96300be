import { createHash, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { readRegularFile, readX509SignatureList } from '@edgeimage/assertions';
import type { Arch } from '../machine.js';
import { MAX_CERTIFICATE_BYTES, VarStoreError, type SecureBootKeys, type VarStoreKind } from './varstore.js';

/**
 * The Secure Boot firmware of each architecture (Debian 12): the CODE build that enforces
 * signatures and the layout of its variable store. amd64's secboot CODE needs SMM (`secureBoot`
 * of the machine); Debian builds AAVMF once, and that build does Secure Boot without SMM.
 */
export const SECURE_BOOT_FIRMWARE: Record<Arch, { code: string; store: VarStoreKind }> = {
  amd64: { code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', store: 'ovmf-4m' },
  arm64: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', store: 'aavmf' },
};

/** The SignatureOwner used when the key folder has no signature list to take the brand's from. */
export const DEFAULT_SIGNATURE_OWNER = 'e1d9a7f0-5e7a-4c1e-9a51-ed9e1a9e0001';

/** A regular file of at most `max` bytes (assertions' readRegularFile); undefined when absent. */
function readBounded(path: string, max: number): Buffer | undefined {
  try {
    return readRegularFile(path, max, (p) => {
      if (p.kind === 'missing') return new MissingFile();
      if (p.kind === 'too-large') return new VarStoreError('ERR_SECURE_BOOT_KEYS', `${path}: ${p.size} bytes, expected at most ${max}`, { path, size: p.size });
      const found = p.kind === 'link' ? 'a symbolic link' : p.kind === 'not-regular' ? 'a FIFO, device, socket or folder' : `something that cannot be opened (${p.code})`;
      return new VarStoreError('ERR_SECURE_BOOT_KEYS', `${path}: expected a regular file, found ${found}`, { path });
    });
  } catch (e) {
    if (e instanceof MissingFile) return undefined;
    throw e;
  }
}

class MissingFile extends Error {}

/**
 * The PK, KEK and db certificates in `dir`, as `edgeimage boot-keys export` writes them: for each,
 * `NAME.cer` (DER) or else `NAME.crt` (PEM). The owner is the SignatureOwner of `db.esl` when
 * that is there (the brand's), else {@link DEFAULT_SIGNATURE_OWNER}. ERR_SECURE_BOOT_KEYS names
 * the file that is missing or not a certificate, and a `db.esl` that is not one X.509 list
 * holding the db certificate: a factory enrols that list, so a store enrolled with another db
 * would pass images that the devices refuse.
 */
export function readSecureBootKeys(dir: string): SecureBootKeys {
  const cert = (name: string): { der: Buffer; path: string } => {
    for (const [file, pem] of [[`${name}.cer`, false], [`${name}.crt`, true]] as const) {
      const path = join(dir, file);
      // a PEM file is about 4/3 of its DER plus header lines
      const bytes = readBounded(path, pem ? 2 * MAX_CERTIFICATE_BYTES : MAX_CERTIFICATE_BYTES);
      if (bytes === undefined) continue;
      try {
        return { der: new X509Certificate(bytes).raw, path };
      } catch (e) {
        throw new VarStoreError('ERR_SECURE_BOOT_KEYS', `${path}: not an X.509 certificate (${pem ? 'PEM' : 'DER'} expected): ${(e as Error).message}`, { path });
      }
    }
    throw new VarStoreError('ERR_SECURE_BOOT_KEYS', `${dir}: no ${name} certificate (expected ${name}.cer or ${name}.crt, as "edgeimage boot-keys export" writes)`, { dir, name });
  };
  const pk = cert('PK').der;
  const kek = cert('KEK').der;
  const db = cert('db');
  const keys = { pk, kek, db: db.der };
  const eslPath = join(dir, 'db.esl');
  const esl = readBounded(eslPath, 28 + 16 + MAX_CERTIFICATE_BYTES);
  if (esl === undefined) return { ...keys, owner: DEFAULT_SIGNATURE_OWNER };
  let list: { owner: string; der: Buffer };
  try {
    list = readX509SignatureList(esl);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new VarStoreError('ERR_SECURE_BOOT_KEYS', `${eslPath}: not one EFI_SIGNATURE_LIST holding one X.509 certificate: ${e.message}`, { path: eslPath });
  }
  if (!list.der.equals(db.der)) {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    throw new VarStoreError('ERR_SECURE_BOOT_KEYS', `${eslPath}: its certificate is not the one in ${db.path}: expected the DER with SHA-256 ${sha(db.der)} (${db.der.length} bytes), found SHA-256 ${sha(list.der)} (${list.der.length} bytes)`, { path: eslPath, certificate: db.path });
  }
  return { ...keys, owner: list.owner };
}
