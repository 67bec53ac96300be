import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(a.slice(0, 2)).toEqual(['-M', 'virt']);
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
    // an EFI_SIGNATURE_LIST header (28 bytes) then the owner GUID in EFI byte order
    const owner = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
    writeFileSync(join(d, 'db.esl'), Buffer.concat([Buffer.alloc(28), owner, der['db']!]));
    expect(readSecureBootKeys(d).owner).toBe('00112233-4455-6677-8899-aabbccddeeff');
  });

  test('a missing certificate, one that is no certificate, an oversized file, a link: each named', () => {
    refused(folder('no-kek', { 'PK.cer': der['PK']!, 'db.cer': der['db']! }), /no-kek: no KEK certificate \(expected KEK\.cer or KEK\.crt/);
    refused(folder('garbage', { 'PK.cer': der['PK']!, 'KEK.cer': der['KEK']!, 'db.crt': 'hello' }), /garbage\/db\.crt: not an X\.509 certificate \(PEM expected\)/);
    refused(folder('big', { 'PK.cer': Buffer.alloc(65537, 0x30) }), /big\/PK\.cer: 65537 bytes, expected at most 65536/);
    const l = folder('link', {});
    symlinkSync(join(dir, 'PK.pem'), join(l, 'PK.crt'));
    refused(l, /link\/PK\.crt: cannot be opened \(ELOOP\)/);
  });
});
