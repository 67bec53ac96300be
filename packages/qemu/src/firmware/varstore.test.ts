import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from '@edgeimage/testkit/skips';
import { blankVarStore, enrolledVarStore, writeVarStore, VarStoreError, MAX_CERTIFICATE_BYTES } from './varstore.js';

const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const AAVMF_SNAKEOIL = '/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd';
const OWNER = 'e1d9a7f0-5e7a-4c1e-9a51-ed9e1a9e0001';

// --- the test's own reader, written from the UEFI/PI specs, sharing no code with varstore.ts ---

/** A GUID string from its EFI memory order (first three fields little-endian). */
function guidAt(b: Buffer, off: number): string {
  const x = b.subarray(off, off + 16);
  const le = (s: number, n: number) => Buffer.from(x.subarray(s, s + n)).reverse().toString('hex');
  const rest = x.subarray(8).toString('hex');
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${rest.slice(0, 4)}-${rest.slice(4)}`;
}

/** Bitwise CRC-32 (no table), to check the writer's table-driven one. */
function crc32Bitwise(data: Buffer): number {
  let crc = ~0 >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    crc >>>= 0;
  }
  return ~crc >>> 0;
}

function fvHeaderSumsToZero(d: Buffer): boolean {
  const len = d.readUInt16LE(0x30);
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += d.readUInt16LE(i);
  return (sum & 0xffff) === 0;
}

/** The FTW working block header's stored CRC and the one recomputed (CRC and state byte as 0xff). */
function ftwCrc(d: Buffer, off: number): { stored: number; computed: number; signature: string; state: number } {
  const h = Buffer.from(d.subarray(off, off + 32));
  const stored = h.readUInt32LE(16);
  const state = h[20]!;
  h.fill(0xff, 16, 21);
  return { stored, computed: crc32Bitwise(h), signature: guidAt(d, off), state };
}

interface Variable { name: string; vendor: string; attributes: number; state: number; timestamp: Buffer; data: Buffer }

function readVariables(d: Buffer): Variable[] {
  const storeOff = d.readUInt16LE(0x30);
  const storeSize = d.readUInt32LE(storeOff + 16);
  const end = storeOff + storeSize;
  const out: Variable[] = [];
  let p = storeOff + 28;
  for (let n = 0; n < 64 && p + 60 <= end && d.readUInt16LE(p) === 0x55aa; n++) {
    const nameSize = d.readUInt32LE(p + 36);
    const dataSize = d.readUInt32LE(p + 40);
    const name = d.subarray(p + 60, p + 60 + nameSize).toString('utf16le').replace(/\0$/, '');
    out.push({ name, vendor: guidAt(d, p + 44), attributes: d.readUInt32LE(p + 4), state: d[p + 2]!, timestamp: d.subarray(p + 16, p + 32), data: d.subarray(p + 60 + nameSize, p + 60 + nameSize + dataSize) });
    p = (p + 60 + nameSize + dataSize + 3) & ~3;
  }
  return out;
}

function readSignatureList(data: Buffer): { type: string; owner: string; cert: Buffer } {
  const listSize = data.readUInt32LE(16);
  const headerSize = data.readUInt32LE(20);
  const sigSize = data.readUInt32LE(24);
  expect(listSize).toBe(data.length);
  expect(headerSize).toBe(0);
  expect(28 + sigSize).toBe(listSize);
  return { type: guidAt(data, 0), owner: guidAt(data, 28), cert: data.subarray(44, 28 + sigSize) };
}

// --- certificates made by openssl ---

let dir: string;
const certs: Record<'pk' | 'kek' | 'db', Buffer> = {} as never;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-varstore-'));
  for (const role of ['pk', 'kek', 'db'] as const) {
    execFileSync('openssl', ['req', '-new', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650', '-subj', `/CN=test ${role}`, '-keyout', join(dir, `${role}.key`), '-outform', 'DER', '-out', join(dir, `${role}.der`)], { stdio: 'ignore' });
    certs[role] = readFileSync(join(dir, `${role}.der`));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

requires(existsSync(OVMF_VARS) ? undefined : `no ${OVMF_VARS} (ovmf)`).test("the blank OVMF 4M store is byte for byte Debian's OVMF_VARS_4M.fd", () => {
  const mine = blankVarStore('ovmf-4m');
  expect(mine.length).toBe(0x84000);
  expect(mine.equals(readFileSync(OVMF_VARS))).toBe(true);
});

test.each(['ovmf-4m', 'aavmf'] as const)('the blank %s store: FV header sums to 0, FTW working header CRC recomputed, empty authenticated store', (kind) => {
  const d = blankVarStore(kind);
  expect(d.length).toBe(kind === 'aavmf' ? 64 * 1024 * 1024 : 0x84000);
  expect(guidAt(d, 0x10)).toBe('fff12b8d-7696-4c8b-a985-2747075b4f50');
  expect(d.subarray(0x28, 0x2c).toString('latin1')).toBe('_FVH');
  expect(fvHeaderSumsToZero(d)).toBe(true);
  expect(guidAt(d, 0x48)).toBe('aaf32c78-947b-439a-a180-2e144ec37792');
  expect(d.readUInt32LE(0x48 + 16)).toBe(0x40000 - 0x48);
  expect([d[0x48 + 20], d[0x48 + 21]]).toEqual([0x5a, 0xfe]);
  expect(readVariables(d)).toEqual([]);
  const ftw = ftwCrc(d, kind === 'aavmf' ? 0x40000 : 0x41000);
  expect(ftw.signature).toBe('9e58292b-7c68-497d-a0ce-6500fd9f1b95');
  expect(ftw.state).toBe(0xfe);
  expect(ftw.stored).toBe(ftw.computed);
});

requires(existsSync(AAVMF_SNAKEOIL) ? undefined : `no ${AAVMF_SNAKEOIL} (qemu-efi-aarch64)`).test("the blank AAVMF store equals Debian's enrolled AAVMF_VARS.snakeoil.fd outside its variable records", () => {
  const mine = blankVarStore('aavmf');
  const theirs = readFileSync(AAVMF_SNAKEOIL);
  expect(theirs.length).toBe(mine.length);
  expect(readVariables(theirs).length).toBeGreaterThan(0);
  const records = 0x48 + 28;
  expect(mine.subarray(0, records).equals(theirs.subarray(0, records))).toBe(true);
  expect(mine.subarray(0x40000).equals(theirs.subarray(0x40000))).toBe(true);
});

test.each(['ovmf-4m', 'aavmf'] as const)('the enrolled %s store holds PK, KEK (global GUID) and db (security database GUID), attributes 0x27, each one X.509 list of its certificate; the rest is the blank store', (kind) => {
  const d = enrolledVarStore(kind, { ...certs, owner: OWNER });
  const vars = readVariables(d);
  expect(vars.map((v) => `${v.name}-${v.vendor}`)).toEqual([
    'PK-8be4df61-93ca-11d2-aa0d-00e098032b8c',
    'KEK-8be4df61-93ca-11d2-aa0d-00e098032b8c',
    'db-d719b2cb-3d3a-4596-a3bc-dad00e67656f',
  ]);
  for (const [v, cert] of vars.map((v, i) => [v, [certs.pk, certs.kek, certs.db][i]!] as const)) {
    expect(v.attributes).toBe(0x27);
    expect(v.state).toBe(0x3f);
    expect(v.timestamp.readUInt16LE(0)).toBe(2026);
    const esl = readSignatureList(v.data);
    expect(esl.type).toBe('a5c059a1-94e4-4aa7-87b5-ab155c2bf072');
    expect(esl.owner).toBe(OWNER);
    expect(esl.cert.equals(cert)).toBe(true);
  }
  const blank = blankVarStore(kind);
  const last = vars[2]!;
  const end = last.data.byteOffset - d.byteOffset + last.data.length;
  expect(d.subarray(end, 0x40000).every((b) => b === 0xff)).toBe(true);
  expect(d.subarray(0, 0x64).equals(blank.subarray(0, 0x64))).toBe(true);
  expect(d.subarray(0x40000).equals(blank.subarray(0x40000))).toBe(true);
  expect(enrolledVarStore(kind, { ...certs, owner: OWNER }).equals(d)).toBe(true);
});

describe('refusals', () => {
  const refuse = (f: () => unknown, code: string, message: RegExp) => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(VarStoreError);
    expect((err as VarStoreError).code).toBe(code);
    expect((err as Error).message).toMatch(message);
  };
  test('a certificate over 64 KiB, an empty one, or bytes that are no certificate', () => {
    refuse(() => enrolledVarStore('ovmf-4m', { ...certs, kek: Buffer.alloc(MAX_CERTIFICATE_BYTES + 1, 0x30), owner: OWNER }), 'ERR_VARSTORE_CERT', /^KEK certificate: expected 1 to 65536 bytes of DER, found 65537 bytes/);
    refuse(() => enrolledVarStore('ovmf-4m', { ...certs, pk: Buffer.alloc(0), owner: OWNER }), 'ERR_VARSTORE_CERT', /^PK certificate: .* found 0 bytes/);
    refuse(() => enrolledVarStore('aavmf', { ...certs, db: Buffer.from('-----BEGIN CERTIFICATE-----\n'), owner: OWNER }), 'ERR_VARSTORE_CERT', /^db certificate: not a DER X\.509 certificate/);
  });
  test('an owner that is no GUID, and an unknown kind', () => {
    refuse(() => enrolledVarStore('ovmf-4m', { ...certs, owner: 'acme' }), 'ERR_VARSTORE_OWNER', /signature owner "acme": expected a GUID/);
    refuse(() => blankVarStore('ovmf' as never), 'ERR_VARSTORE_KIND', /kind "ovmf": expected one of ovmf-4m, aavmf/);
  });
});

test('writeVarStore writes the 64 MiB AAVMF store sparse, same bytes, and leaves no temp file', () => {
  const store = enrolledVarStore('aavmf', { ...certs, owner: OWNER });
  const out = join(dir, 'vars.fd');
  writeVarStore(out, store);
  expect(readFileSync(out).equals(store)).toBe(true);
  expect(statSync(out).blocks * 512).toBeLessThan(2 * 1024 * 1024);
  expect(execFileSync('ls', [dir]).toString().split('\n').filter((n) => n.includes('.tmp'))).toEqual([]);
});
