import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guidBytes, x509SignatureList } from '@edgeimage/assertions';
import { BootTestError } from '../errors.js';
import { qemuCommand } from '../machine.js';
import { DEFAULT_SIGNATURE_OWNER, readSecureBootKeys } from './secure-boot.js';
import { VarStoreError } from './varstore.js';

let dir: string;
const der: Record<string, Buffer> = {};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-sb-keys-'));
  for (const role of ['PK', 'KEK', 'db']) {
    execFileSync('openssl', ['req', '-new', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650', '-subj', `/CN=${role}`, '-keyout', join(dir, `${role}.key`), '-out', join(dir, `${role}.pem`)], { stdio: 'ignore' });
    der[role] = execFileSync('openssl', ['x509', '-in', join(dir, `${role}.pem`), '-outform', 'DER']);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('qemuCommand with secureBoot', () => {
  const files = { code: '/fw/OVMF_CODE_4M.secboot.fd', vars: '/t/vars.fd' };
  test('amd64: q35 with SMM and the variable flash writable from SMM only', () => {
    const a = qemuCommand({ arch: 'amd64', accel: 'tcg', firmware: { kind: 'uefi', files }, secureBoot: true }).args;
    expect(a.slice(0, 2)).toEqual(['-M', 'q35,smm=on']);
    expect(a.join(' ')).toContain('-drive if=pflash,format=raw,file=/t/vars.fd -boot menu=on,splash-time=0 -global driver=cfi.pflash01,property=secure,value=on');
    const plain = qemuCommand({ arch: 'amd64', accel: 'tcg', firmware: { kind: 'uefi', files } }).args;
    expect(plain.slice(0, 2)).toEqual(['-M', 'q35']);
    expect(plain).not.toContain('-global');
  });
  test('arm64: no SMM on virt, the same AAVMF line; U-Boot or a direct boot is ERR_USAGE', () => {
    const a = qemuCommand({ arch: 'arm64', accel: 'tcg', firmware: { kind: 'uefi', files }, secureBoot: true }).args;
    expect(a.slice(0, 2)).toEqual(['-M', 'virt,acpi=off']);
    expect(a).not.toContain('-global');
    for (const spec of [{ firmware: { kind: 'uboot' as const, files: { bios: '/b' } } }, { direct: { kernel: '/k' } }]) {
      let err: unknown;
      try { qemuCommand({ arch: 'arm64', accel: 'tcg', secureBoot: true, ...spec }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(BootTestError);
      expect((err as BootTestError).code).toBe('ERR_USAGE');
      expect((err as Error).message).toBe('Secure Boot needs a UEFI firmware boot');
    }
  });
});

describe('readSecureBootKeys', () => {
  const folder = (name: string, files: Record<string, Buffer | string>): string => {
    const d = join(dir, name);
    mkdirSync(d);
    for (const [f, b] of Object.entries(files)) writeFileSync(join(d, f), b);
    return d;
  };
  const refused = (d: string, message: RegExp) => {
    let err: unknown;
    try { readSecureBootKeys(d); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(VarStoreError);
    expect((err as VarStoreError).code).toBe('ERR_SECURE_BOOT_KEYS');
    expect((err as Error).message).toMatch(message);
  };

  test('.cer (DER) first, else .crt (PEM); the owner from db.esl when there, else the default', () => {
    const d = folder('mixed', { 'PK.cer': der['PK']!, 'KEK.crt': readFileSync(join(dir, 'KEK.pem')), 'db.crt': readFileSync(join(dir, 'db.pem')) });
    const k = readSecureBootKeys(d);
    expect([Buffer.from(k.pk).equals(der['PK']!), Buffer.from(k.kek).equals(der['KEK']!), Buffer.from(k.db).equals(der['db']!)]).toEqual([true, true, true]);
    expect(k.owner).toBe(DEFAULT_SIGNATURE_OWNER);
    writeFileSync(join(d, 'db.esl'), x509SignatureList(der['db']!, '00112233-4455-6677-8899-aabbccddeeff'));
    expect(readSecureBootKeys(d).owner).toBe('00112233-4455-6677-8899-aabbccddeeff');
  });

  test('a db.esl that is not one X.509 list of db.cer\'s certificate is refused, naming the field or the certificate', () => {
    const owner = '00112233-4455-6677-8899-aabbccddeeff';
    const good = x509SignatureList(der['db']!, owner);
    const keys = { 'PK.cer': der['PK']!, 'KEK.cer': der['KEK']!, 'db.cer': der['db']! };
    const patched = (at: number, value: number | Buffer): Buffer => {
      const b = Buffer.from(good);
      if (typeof value === 'number') b.writeUInt32LE(value, at);
      else value.copy(b, at);
      return b;
    };
    // another certificate than db.cer's: the store would enrol one db, the factory another
    refused(folder('esl-other-cert', { ...keys, 'db.esl': x509SignatureList(der['KEK']!, owner) }), new RegExp(`esl-other-cert/db\\.esl: its certificate is not the one in .*esl-other-cert/db\\.cer: expected the DER with SHA-256 [0-9a-f]{64} \\(${der['db']!.length} bytes\\), found SHA-256 [0-9a-f]{64} \\(${der['KEK']!.length} bytes\\)`));
    // the same check against db.crt's DER when there is no db.cer
    refused(folder('esl-other-crt', { 'PK.cer': der['PK']!, 'KEK.cer': der['KEK']!, 'db.crt': readFileSync(join(dir, 'db.pem')), 'db.esl': x509SignatureList(der['PK']!, owner) }), /esl-other-crt\/db\.esl: its certificate is not the one in .*esl-other-crt\/db\.crt/);
    // an owner, then the certificate, behind a zeroed header (what the old reader took)
    refused(folder('esl-no-type', { ...keys, 'db.esl': Buffer.concat([Buffer.alloc(28), good.subarray(28)]) }), /esl-no-type\/db\.esl: not one EFI_SIGNATURE_LIST holding one X\.509 certificate: SignatureType 00000000-0000-0000-0000-000000000000: expected EFI_CERT_X509_GUID a5c059a1-94e4-4aa7-87b5-ab155c2bf072/);
    // EFI_CERT_SHA256_GUID: a list of hashes
    refused(folder('esl-sha256', { ...keys, 'db.esl': patched(0, guidBytes('c1c41626-504c-4092-aca9-41f936934328')) }), /SignatureType c1c41626-504c-4092-aca9-41f936934328: expected EFI_CERT_X509_GUID/);
    refused(folder('esl-list-size', { ...keys, 'db.esl': patched(16, good.length + 1) }), new RegExp(`SignatureListSize ${good.length + 1}: expected ${good.length}, the size of the input`));
    refused(folder('esl-two-lists', { ...keys, 'db.esl': Buffer.concat([good, good]) }), new RegExp(`SignatureListSize ${good.length}: expected ${2 * good.length}, the size of the input \\(one list\\)`));
    refused(folder('esl-header', { ...keys, 'db.esl': patched(20, 4) }), /SignatureHeaderSize 4: expected 0 for X\.509/);
    // a well-formed list of two entries (db.cer's certificate twice)
    const entry = good.subarray(28);
    const two = Buffer.concat([good.subarray(0, 28), entry, entry]);
    two.writeUInt32LE(two.length, 16);
    refused(folder('esl-two-entries', { ...keys, 'db.esl': two }), new RegExp(`SignatureSize ${entry.length}: expected ${2 * entry.length} \\(exactly one entry`));
    refused(folder('esl-short', { ...keys, 'db.esl': good.subarray(0, 40) }), /esl-short\/db\.esl: not one EFI_SIGNATURE_LIST holding one X\.509 certificate: 40 bytes: expected/);
    refused(folder('esl-big', { ...keys, 'db.esl': Buffer.alloc(28 + 16 + 65537) }), /esl-big\/db\.esl: 65581 bytes, expected at most 65580/);
  });

  test('a missing certificate, one that is no certificate, an oversized file, a link: each named', () => {
    refused(folder('no-kek', { 'PK.cer': der['PK']!, 'db.cer': der['db']! }), /no-kek: no KEK certificate \(expected KEK\.cer or KEK\.crt/);
    refused(folder('garbage', { 'PK.cer': der['PK']!, 'KEK.cer': der['KEK']!, 'db.crt': 'hello' }), /garbage\/db\.crt: not an X\.509 certificate \(PEM expected\)/);
    refused(folder('big', { 'PK.cer': Buffer.alloc(65537, 0x30) }), /big\/PK\.cer: 65537 bytes, expected at most 65536/);
    const l = folder('link', {});
    symlinkSync(join(dir, 'PK.pem'), join(l, 'PK.crt'));
    refused(l, /link\/PK\.crt: expected a regular file, found a symbolic link/);
  });
});
