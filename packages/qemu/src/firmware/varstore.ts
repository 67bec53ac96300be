/**
 * The edk2 authenticated variable store of OVMF (4 MiB build) and AAVMF, written from scratch:
 * a blank one as Debian ships it, or one with a brand's PK, KEK and db enrolled, so that the
 * firmware starts with Secure Boot on (setup mode off) without a setup-mode guest enrolling them.
 * Debian 12 ships no tool that writes such a store; the layout is the one of Debian's own
 * templates (OVMF_VARS_4M.fd, AAVMF_VARS.snakeoil.fd), see /work/notes/vb/uefi/NOTES.md §2.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { EdgeimageError, guidBytes, x509SignatureList } from '@edgeimage/assertions';
import { crc32 } from '@edgeimage/composer';

export type VarStoreKind = 'ovmf-4m' | 'aavmf';
export const VAR_STORE_KINDS: readonly VarStoreKind[] = ['ovmf-4m', 'aavmf'];

/** A variable store that cannot be written as asked: `code` says which input, `context` holds it. */
export class VarStoreError extends EdgeimageError {}

export const NVDATA_FV_GUID = 'fff12b8d-7696-4c8b-a985-2747075b4f50';
export const AUTH_VARIABLE_GUID = 'aaf32c78-947b-439a-a180-2e144ec37792';
export const FTW_WORKING_GUID = '9e58292b-7c68-497d-a0ce-6500fd9f1b95';
export const EFI_GLOBAL_VARIABLE_GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE_GUID = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';

/** NV | BS | RT | TIME_BASED_AUTHENTICATED_WRITE_ACCESS, as the firmware stores PK/KEK/db itself. */
export const SECURE_BOOT_VARIABLE_ATTRIBUTES = 0x27;

/** A certificate larger than this is refused (real ones are 1–2 KiB). */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;

interface Layout {
  fileSize: number;
  fvLength: number;
  fvAttributes: number;
  blocks: { count: number; size: number };
  /** The variable store region, from offset 0 (the FV header is its start). */
  storeRegion: number;
  ftwWorking: { offset: number; size: number };
  /** What follows the FV up to the end of the file: erased flash or zeros. */
  tail: number;
}

// Read from Debian 12's templates: OVMF_VARS_4M.fd is store 0–0x40000, event log to 0x41000,
// FTW working block to 0x42000, FTW spare to 0x84000; AAVMF_VARS is a 64 MiB bank whose first
// 0xc0000 bytes are store, FTW working and spare, zeros after.
const LAYOUTS: Record<VarStoreKind, Layout> = {
  'ovmf-4m': { fileSize: 0x84000, fvLength: 0x84000, fvAttributes: 0x0004feff, blocks: { count: 0x84, size: 0x1000 }, storeRegion: 0x40000, ftwWorking: { offset: 0x41000, size: 0x1000 }, tail: 0xff },
  aavmf: { fileSize: 0x4000000, fvLength: 0xc0000, fvAttributes: 0x00000e36, blocks: { count: 0x100, size: 0x40000 }, storeRegion: 0x40000, ftwWorking: { offset: 0x40000, size: 0x40000 }, tail: 0x00 },
};

const FV_HEADER_LENGTH = 0x48;
const STORE_HEADER_LENGTH = 28;
const VARIABLE_HEADER_LENGTH = 60;
const VAR_ADDED = 0x3f;
/** Any fixed time: the timestamp later authenticated updates of PK/KEK/db must be newer than. */
const ENROLL_TIME = { year: 2026, month: 1, day: 1 };

function layoutOf(kind: VarStoreKind): Layout {
  const l = (LAYOUTS as Record<string, Layout | undefined>)[kind];
  if (!l) throw new VarStoreError('ERR_VARSTORE_KIND', `variable store kind ${JSON.stringify(kind)}: expected one of ${VAR_STORE_KINDS.join(', ')}`, { kind });
  return l;
}

/** The 16-bit sum that makes all 16-bit words of `header` add up to 0. */
export function fvHeaderChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < header.length; i += 2) sum = (sum + (header[i]! | (header[i + 1]! << 8))) & 0xffff;
  return (0x10000 - sum) & 0xffff;
}

/** An empty, formatted store, byte for byte what Debian ships for `ovmf-4m` (OVMF_VARS_4M.fd). */
export function blankVarStore(kind: VarStoreKind): Buffer {
  const l = layoutOf(kind);
  const d = Buffer.alloc(l.fileSize, l.tail);
  d.fill(0xff, 0, l.fvLength);

  const h = d.subarray(0, FV_HEADER_LENGTH);
  h.fill(0, 0, 16); // ZeroVector
  guidBytes(NVDATA_FV_GUID).copy(h, 0x10);
  h.writeBigUInt64LE(BigInt(l.fvLength), 0x20);
  h.write('_FVH', 0x28, 'latin1');
  h.writeUInt32LE(l.fvAttributes, 0x2c);
  h.writeUInt16LE(FV_HEADER_LENGTH, 0x30);
  h.writeUInt16LE(0, 0x32);
  h.writeUInt16LE(0, 0x34); // ExtHeaderOffset
  h[0x36] = 0;
  h[0x37] = 2; // Revision
  h.writeUInt32LE(l.blocks.count, 0x38);
  h.writeUInt32LE(l.blocks.size, 0x3c);
  h.fill(0, 0x40, 0x48); // block map terminator
  h.writeUInt16LE(fvHeaderChecksum(h), 0x32);

  // VARIABLE_STORE_HEADER: the authenticated format, formatted (0x5a), healthy (0xfe).
  const s = d.subarray(FV_HEADER_LENGTH, FV_HEADER_LENGTH + STORE_HEADER_LENGTH);
  guidBytes(AUTH_VARIABLE_GUID).copy(s, 0);
  s.writeUInt32LE(l.storeRegion - FV_HEADER_LENGTH, 16);
  s[20] = 0x5a;
  s[21] = 0xfe;
  s.fill(0, 22, 28);

  // The fault-tolerant-write working block header; its CRC covers the header with the CRC field
  // and the state byte erased (0xff), then the state becomes "valid" (bit 0 cleared).
  const w = d.subarray(l.ftwWorking.offset, l.ftwWorking.offset + 32);
  guidBytes(FTW_WORKING_GUID).copy(w, 0);
  w.fill(0xff, 16, 24);
  w.writeBigUInt64LE(BigInt(l.ftwWorking.size - 32), 24);
  w.writeUInt32LE(crc32(w) >>> 0, 16);
  w[20] = 0xfe;
  return d;
}

function efiTime(): Buffer {
  const t = Buffer.alloc(16);
  t.writeUInt16LE(ENROLL_TIME.year, 0);
  t[2] = ENROLL_TIME.month;
  t[3] = ENROLL_TIME.day;
  return t;
}

function variableRecord(name: string, vendor: string, data: Buffer): Buffer {
  const n = Buffer.from(`${name}\0`, 'utf16le');
  const h = Buffer.alloc(VARIABLE_HEADER_LENGTH);
  h.writeUInt16LE(0x55aa, 0);
  h[2] = VAR_ADDED;
  h[3] = 0;
  h.writeUInt32LE(SECURE_BOOT_VARIABLE_ATTRIBUTES, 4);
  // MonotonicCount stays 0
  efiTime().copy(h, 16);
  // PubKeyIndex stays 0
  h.writeUInt32LE(n.length, 36);
  h.writeUInt32LE(data.length, 40);
  guidBytes(vendor).copy(h, 44);
  const rec = Buffer.concat([h, n, data]);
  // the next header starts 4-byte aligned; the gap is erased flash
  return Buffer.concat([rec, Buffer.alloc((4 - (rec.length % 4)) % 4, 0xff)]);
}

export interface SecureBootKeys {
  /** The platform key's X.509 certificate, DER. */
  pk: Uint8Array;
  /** The key exchange key's certificate, DER. */
  kek: Uint8Array;
  /** The signature database's certificate (what signs the bootloader), DER. */
  db: Uint8Array;
  /** The SignatureOwner GUID of the three entries (e.g. `brandOwnerGuid(brand)`). */
  owner: string;
}

function checkCertificate(role: string, der: Uint8Array): void {
  if (!(der instanceof Uint8Array) || der.length === 0 || der.length > MAX_CERTIFICATE_BYTES) {
    const size = der instanceof Uint8Array ? der.length : undefined;
    throw new VarStoreError('ERR_VARSTORE_CERT', `${role} certificate: expected 1 to ${MAX_CERTIFICATE_BYTES} bytes of DER, found ${size === undefined ? 'no bytes' : `${size} bytes`}`, { role, size });
  }
  try {
    new X509Certificate(der);
  } catch (e) {
    throw new VarStoreError('ERR_VARSTORE_CERT', `${role} certificate: not a DER X.509 certificate (${(e as Error).message})`, { role, size: der.length });
  }
}

/**
 * A store of `kind` with PK, KEK and db each holding one EFI_SIGNATURE_LIST of one X.509
 * certificate, attributes 0x27 and a fixed timestamp: the same inputs give the same bytes. The
 * firmware boots it with Secure Boot on (PK present: setup mode off) and adds its own variables
 * on the first boot, so each boot needs its own copy.
 *
 * @example
 * await writeVarStore(join(dir, 'vars.fd'), enrolledVarStore('ovmf-4m', { pk, kek, db, owner: brandOwnerGuid('acme') }));
 */
export function enrolledVarStore(kind: VarStoreKind, keys: SecureBootKeys): Buffer {
  const l = layoutOf(kind);
  checkCertificate('PK', keys.pk);
  checkCertificate('KEK', keys.kek);
  checkCertificate('db', keys.db);
  try {
    guidBytes(keys.owner);
  } catch {
    throw new VarStoreError('ERR_VARSTORE_OWNER', `signature owner ${JSON.stringify(keys.owner)}: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, lower case)`, { owner: keys.owner });
  }
  const records = Buffer.concat([
    variableRecord('PK', EFI_GLOBAL_VARIABLE_GUID, x509SignatureList(keys.pk, keys.owner)),
    variableRecord('KEK', EFI_GLOBAL_VARIABLE_GUID, x509SignatureList(keys.kek, keys.owner)),
    variableRecord('db', EFI_IMAGE_SECURITY_DATABASE_GUID, x509SignatureList(keys.db, keys.owner)),
  ]);
  const start = FV_HEADER_LENGTH + STORE_HEADER_LENGTH;
  const room = l.storeRegion - start;
  if (records.length > room) {
    throw new VarStoreError('ERR_VARSTORE_FULL', `the PK, KEK and db records take ${records.length} bytes; the ${kind} variable store has room for ${room}`, { kind, size: records.length, room });
  }
  const d = blankVarStore(kind);
  records.copy(d, start);
  return d;
}

/**
 * Writes a store to `path` through a temp file and a rename, sparse: only its non-zero 64 KiB
 * blocks are written (an AAVMF store is 64 MiB, nearly all zeros).
 */
export function writeVarStore(path: string, store: Uint8Array, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    ftruncateSync(fd, store.length);
    const block = 64 * 1024;
    const zeros = Buffer.alloc(block);
    const bytes = Buffer.from(store.buffer, store.byteOffset, store.length);
    for (let off = 0; off < bytes.length; off += block) {
      const chunk = bytes.subarray(off, Math.min(off + block, bytes.length));
      if (!chunk.equals(zeros.subarray(0, chunk.length))) writeSync(fd, chunk, 0, chunk.length, off);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
