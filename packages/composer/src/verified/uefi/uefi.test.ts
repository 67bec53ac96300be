// The UEFI half of verified boot against real tools: Debian's systemd-boot stubs, sbverify
// (Authenticode), sbsign (an independent image digest), gpg (the GRUB signatures), grub-mkimage.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey, selfSignedCertificate } from '@edgeimage/assertions';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { REPO } from '@edgeimage/testkit/repo';
import { ComposeError } from '../../errors.js';
import { authenticodeDigest, buildSignedGrub, buildUki, grubModuleSubset, grubPublicKey, grubSignature, GRUB_VERIFIED_MODULES, parsePe, peSignatures, signPe, type PeSigner } from './index.js';

const STUB_AMD64 = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const GRUB_X86 = '/usr/lib/grub/x86_64-efi';
const onPath = (tool: string, pkg: string): string | undefined => (spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0 ? undefined : `no ${tool} (${pkg})`);
const missingSb = onPath('sbverify', 'sbsigntool');
const missingStub = existsSync(STUB_AMD64) ? undefined : `no ${STUB_AMD64} (systemd-boot-efi)`;
const missingGrub = firstMissing(existsSync(GRUB_X86) ? undefined : `no ${GRUB_X86} (grub-efi-amd64-bin)`, onPath('grub-mkimage', 'grub-common'));

/** A Debian arm64 package unpacked into `dir`, or why not (no apt source for arm64 here). */
function arm64Deb(pkg: string, dir: string): string | undefined {
  const r = spawnSync(join(REPO, 'scripts/fetch-debs'), ['arm64', pkg], { encoding: 'utf8' });
  const deb = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !deb) return `cannot fetch ${pkg}:arm64: ${r.stderr.trim()}`;
  execFileSync('dpkg-deb', ['-x', deb, dir]);
  return undefined;
}

let dir: string;
let db: PeSigner & { certPath: string };
let other: PeSigner & { certPath: string };
let stub: Buffer;
const kernel = Buffer.alloc(3 * 4096 + 123, 0x4b);
const initrd = Buffer.alloc(5000, 0x49);
const inputs = (): Parameters<typeof buildUki>[0] => ({ stub, kernel, initrd, cmdline: 'console=ttyS0 quiet', osRelease: 'ID=edgeimage\nVERSION_ID=1\n' });

function signer(name: string): PeSigner & { certPath: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = selfSignedCertificate(PrivateKey.fromKeyObject(privateKey), { commonName: `edgeimage test ${name}`, organization: 'test', codeSigning: true });
  const certPath = join(dir, `${name}.crt`);
  writeFileSync(certPath, cert.pem);
  return { key: privateKey, certPem: cert.pem, certPath };
}

function write(name: string, data: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

function sbverify(cert: string, file: string): { ok: boolean; out: string } {
  const r = spawnSync('sbverify', ['--cert', cert, file], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function composeError(fn: () => unknown): ComposeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ComposeError);
    return e as ComposeError;
  }
  throw new Error('expected a ComposeError');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-uefi-test-'));
  db = signer('db');
  other = signer('other');
  if (!missingStub) stub = readFileSync(STUB_AMD64);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

requires(missingStub).describe('buildUki', () => {
  test('the stub is kept and .osrel .cmdline .linux .initrd follow at 4 KiB RVAs after its SizeOfImage, holding the inputs as given (objdump reads it)', () => {
    const uki = buildUki(inputs());
    const h = parsePe(uki, 'uki');
    const s = parsePe(stub, 'stub');
    expect(h.sections.map((x) => x.name)).toEqual([...s.sections.map((x) => x.name), '.osrel', '.cmdline', '.linux', '.initrd']);
    const added = h.sections.slice(s.sections.length);
    let rva = Math.ceil(s.sizeOfImage / 4096) * 4096;
    const want = [Buffer.from('ID=edgeimage\nVERSION_ID=1\n'), Buffer.from('console=ttyS0 quiet'), kernel, initrd];
    for (const [i, sec] of added.entries()) {
      expect(sec.virtualAddress).toBe(rva);
      expect(sec.virtualSize).toBe(want[i]!.length);
      expect(uki.subarray(sec.pointerToRawData, sec.pointerToRawData + sec.virtualSize)).toEqual(want[i]);
      rva = Math.ceil((rva + sec.virtualSize) / 4096) * 4096;
    }
    // the stub's own bytes are unchanged: its sections' data at the same offsets
    for (const sec of s.sections) expect(uki.subarray(sec.pointerToRawData, sec.pointerToRawData + sec.sizeOfRawData)).toEqual(stub.subarray(sec.pointerToRawData, sec.pointerToRawData + sec.sizeOfRawData));
    expect(h.sizeOfImage).toBe(added[3]!.virtualAddress + Math.ceil(initrd.length / 512) * 512);
    const dump = execFileSync('objdump', ['-h', '-p', write('uki-objdump.efi', uki)], { encoding: 'utf8' });
    expect(dump).toMatch(/\.cmdline\s+00000013\s+000000000001b000/);
    expect(dump).toMatch(/\.linux\s+0000307b\s+000000000001c000/);
    expect(dump).toMatch(/Time\/Date\s+Thu Jan  1 00:00:00 1970/);
    expect(dump).toMatch(/SizeOfImage\s+00021400/);
    expect(dump).toMatch(/Entry 4 0+ 0+ Security Directory/);
  });

  test('same inputs give the same bytes; the stub\'s symbol table and the fields objcopy would stamp are not carried over', () => {
    const a = buildUki(inputs());
    expect(buildUki(inputs())).toEqual(a);
    expect(a.readUInt32LE(parsePe(a, 'uki').coffOffset + 4)).toBe(0); // TimeDateStamp
    expect(a.readUInt32LE(parsePe(a, 'uki').coffOffset + 8)).toBe(0); // PointerToSymbolTable (Debian's stub has one)
    expect(buildUki({ ...inputs(), cmdline: 'console=ttyS0 quieT' })).not.toEqual(a);
  });

  test('a truncated stub is ERR_PE_FORMAT naming the section whose data is cut off', () => {
    const e = composeError(() => buildUki({ ...inputs(), stub: stub.subarray(0, 0x8000) }));
    expect(e.code).toBe('ERR_PE_FORMAT');
    expect(e.message).toMatch(/^the UKI stub is not a usable PE\/COFF image: section 0 \("\.text"\) has file data at 0x400\+0xc000, outside .* the file's end 0x8000/);
  });

  test('a stub whose SizeOfImage is huge is ERR_PE_FORMAT (SizeOfImage), before anything is sized from it', () => {
    const bad = Buffer.from(stub);
    bad.writeUInt32LE(0xfffff000, parsePe(stub, 's').optionalOffset + 56);
    const e = composeError(() => buildUki({ ...inputs(), stub: bad }));
    expect(e.code).toBe('ERR_PE_FORMAT');
    expect(e.message).toMatch(/SizeOfImage 0xfffff000 is over the 1073741824 bytes/);
  });

  test('a stub with too many sections is ERR_PE_FORMAT (NumberOfSections); one whose table overruns its headers too', () => {
    const bad = Buffer.from(stub);
    bad.writeUInt16LE(200, parsePe(stub, 's').coffOffset + 2);
    let e = composeError(() => buildUki({ ...inputs(), stub: bad }));
    expect(e.code).toBe('ERR_PE_FORMAT');
    expect(e.message).toMatch(/NumberOfSections is 200, expected 1 to 96/);
    bad.writeUInt16LE(60, parsePe(stub, 's').coffOffset + 2);
    e = composeError(() => buildUki({ ...inputs(), stub: bad }));
    expect(e.message).toMatch(/the section table \(60 sections, ending at 0x[0-9a-f]+\) and SizeOfHeaders 0x400 do not fit/);
  });

  test('not a PE file, a stub for another machine, a UKI given as the stub: each a clear ComposeError', () => {
    expect(composeError(() => buildUki({ ...inputs(), stub: Buffer.from('#!/bin/sh\n'.padEnd(200)) })).message).toMatch(/expected the DOS header 'MZ' at offset 0, found 0x2321/);
    const i386 = Buffer.from(stub);
    i386.writeUInt16LE(0x14c, parsePe(stub, 's').coffOffset);
    const m = composeError(() => buildUki({ ...inputs(), stub: i386 }));
    expect([m.code, m.message]).toEqual(['ERR_UKI_STUB', 'the UKI stub is for machine 0x14c, expected x86-64 (0x8664) or arm64 (0xaa64)']);
    const u = composeError(() => buildUki({ ...inputs(), stub: buildUki(inputs()) }));
    expect([u.code, u.message]).toEqual(['ERR_UKI_STUB', 'the UKI stub already has a .osrel section: it is a UKI, not a stub']);
    // a stub carrying a device tree of its own (systemd-stub installs .dtb for the kernel): renamed .data
    const dtb = Buffer.from(stub);
    const h = parsePe(stub, 's');
    const data = h.sections.findIndex((x) => x.name === '.data');
    dtb.write('.dtb\0\0\0\0', h.sectionTableOffset + 40 * data, 'latin1');
    expect(composeError(() => buildUki({ ...inputs(), stub: dtb })).message).toBe('the UKI stub already has a .dtb section: systemd-stub would hand it on, signed without the build ever choosing it');
  });

  test('an empty kernel, a cmdline with NUL or an empty os-release is ERR_UKI_INPUT', () => {
    expect(composeError(() => buildUki({ ...inputs(), kernel: Buffer.alloc(0) })).message).toBe("the UKI's kernel is empty");
    const nul = composeError(() => buildUki({ ...inputs(), cmdline: 'a\0b' }));
    expect([nul.code, nul.message]).toEqual(['ERR_UKI_INPUT', "the UKI's cmdline must be 1 to 65536 bytes of text without NUL, got 3 bytes with a NUL"]);
    expect(composeError(() => buildUki({ ...inputs(), osRelease: '' })).code).toBe('ERR_UKI_INPUT');
  });

  const arm = { dir: '', missing: undefined as string | undefined };
  beforeAll(() => {
    arm.dir = mkdtempSync(join(tmpdir(), 'edgeimage-uefi-arm64-'));
    arm.missing = arm64Deb('systemd-boot-efi', arm.dir);
  });
  afterAll(() => rmSync(arm.dir, { recursive: true, force: true }));
  requires(missingSb).test('a UKI from Debian\'s arm64 stub (no binutils for it here) parses back and sbverify accepts it signed', () => {
    if (arm.missing) throw new Error(arm.missing);
    const armStub = readFileSync(join(arm.dir, 'usr/lib/systemd/boot/efi/linuxaa64.efi.stub'));
    const uki = buildUki({ ...inputs(), stub: armStub });
    const h = parsePe(uki, 'uki');
    expect(h.machine).toBe(0xaa64);
    expect(h.sections.map((s) => [s.name, s.virtualAddress.toString(16)])).toEqual([['.text', '1000'], ['.data', 'f000'], ['.osrel', '11000'], ['.cmdline', '12000'], ['.linux', '13000'], ['.initrd', '17000']]);
    // the stub's 5 KiB after its last section are never loaded: left out
    expect(uki.length).toBe(0x10e00 + 0x200 + 0x200 + Math.ceil(kernel.length / 512) * 512 + Math.ceil(initrd.length / 512) * 512);
    expect(sbverify(db.certPath, write('uki-arm64.efi', signPe(uki, db))).ok).toBe(true);
  });
});

requires(firstMissing(missingStub, missingSb)).describe('signPe', () => {
  let uki: Buffer;
  let signed: string;
  beforeAll(() => {
    uki = buildUki(inputs());
    signed = write('uki-signed.efi', signPe(uki, db));
  });

  test('sbverify accepts the signature with the db certificate and refuses it with another one', () => {
    const ok = sbverify(db.certPath, signed);
    expect(ok).toEqual({ ok: true, out: expect.stringContaining('Signature verification OK') });
    const no = sbverify(other.certPath, signed);
    expect(no.ok).toBe(false);
    expect(no.out).toContain('Signature verification failed');
  });

  test('deterministic: the same image and key sign to the same bytes', () => {
    expect(signPe(uki, db)).toEqual(readFileSync(signed));
  });

  test('a byte flipped after signing, in .linux or in the headers, makes sbverify refuse', () => {
    const s = readFileSync(signed);
    const linux = parsePe(s, 's').sections.find((x) => x.name === '.linux')!;
    for (const at of [linux.pointerToRawData + 100, 0x50]) {
      const t = Buffer.from(s);
      t.writeUInt8(t.readUInt8(at) ^ 0x01, at);
      const r = sbverify(db.certPath, write('uki-tampered.efi', t));
      expect(r.ok).toBe(false);
      expect(r.out).toMatch(/Signature verification failed|doesn't match/);
    }
  });

  test('the signature parses back: one PKCS#7 SignedData holding the db certificate, the image digest sbsign computes too, and no signing time', () => {
    const s = readFileSync(signed);
    const blobs = peSignatures(s);
    expect(blobs).toHaveLength(1);
    const der = write('sig.p7', blobs[0]!);
    const certs = execFileSync('openssl', ['pkcs7', '-inform', 'DER', '-in', der, '-print_certs', '-noout'], { encoding: 'utf8' });
    expect(certs).toContain('subject=CN = edgeimage test db');
    const asn1 = execFileSync('openssl', ['asn1parse', '-inform', 'DER', '-in', der], { encoding: 'utf8' });
    expect(asn1).toContain(':pkcs7-signedData');
    expect(asn1).toContain(':1.3.6.1.4.1.311.2.1.4'); // SpcIndirectDataContent
    expect(asn1).toContain(':messageDigest');
    expect(asn1).not.toContain(':signingTime');
    // the image digest: the one sbsign (an independent implementation) signs for the same image
    const padded = Buffer.alloc(Math.ceil(uki.length / 8) * 8);
    uki.copy(padded);
    const digest = authenticodeDigest(padded, parsePe(uki, 'uki'));
    expect(blobs[0]!.includes(digest)).toBe(true);
    const keyPath = join(dir, 'db.key');
    writeFileSync(keyPath, db.key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    execFileSync('sbsign', ['--key', keyPath, '--cert', db.certPath, '--output', join(dir, 'uki-sbsign.efi'), write('uki-unsigned.efi', uki)], { stdio: 'ignore' });
    rmSync(keyPath);
    expect(peSignatures(readFileSync(join(dir, 'uki-sbsign.efi')))[0]!.includes(digest)).toBe(true);
  });

  test('an image that carries a certificate table already is refused (ERR_PE_SIGNED), not re-signed', () => {
    const e = composeError(() => signPe(readFileSync(signed), other));
    expect(e.code).toBe('ERR_PE_SIGNED');
    expect(e.message).toMatch(/^the PE image to sign already carries a certificate table \(\d+ bytes at 0x[0-9a-f]+\): sign the unsigned image$/);
  });

  test('a key that does not match the certificate is ERR_SIGNER_KEY; a non-RSA key too', () => {
    expect(composeError(() => signPe(uki, { key: other.key, certPem: db.certPem })).message).toMatch(/the Authenticode signing key does not match the certificate "CN=edgeimage test db/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(composeError(() => signPe(uki, { key: ec, certPem: db.certPem })).code).toBe('ERR_SIGNER_KEY');
  });

  test('sections with a gap between them are ERR_PE_FORMAT: firmware and tools would disagree on what the signature covers', () => {
    const gap = Buffer.concat([uki, Buffer.alloc(512)]);
    const h = parsePe(uki, 'uki');
    const last = h.sectionTableOffset + 40 * (h.sections.length - 1);
    gap.writeUInt32LE(gap.readUInt32LE(last + 20) + 512, last + 20); // .initrd's file data moved 512 bytes on
    const e = composeError(() => signPe(gap, db));
    expect(e.code).toBe('ERR_PE_FORMAT');
    expect(e.message).toMatch(/section "\.initrd" starts at 0x[0-9a-f]+, expected 0x[0-9a-f]+ \(sections must follow each other without gaps/);
  });
});

describe('GRUB OpenPGP key and signatures', () => {
  const gpgMissing = onPath('gpg', 'gnupg');
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'edgeimage-gpg-'));
    chmodSync(home, 0o700);
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const gpg = (...args: string[]) => spawnSync('gpg', ['--homedir', home, '--batch', '--allow-non-selfsigned-uid', '--trust-model', 'always', ...args], { encoding: 'utf8' });

  test('the public key is one old-format v4 RSA key packet, the signature an old-format v4 SHA-512 packet, both the same bytes every time', () => {
    const pub = grubPublicKey(db.key);
    expect(pub[0]).toBe(0x80 | (6 << 2) | 1); // old format, tag 6, two-octet length: GRUB 2.06 misreads new-format ones
    expect(pub.readUInt16BE(1)).toBe(pub.length - 3);
    expect(pub[3]).toBe(4);
    expect(grubPublicKey(db.key)).toEqual(pub);
    const sig = grubSignature(Buffer.from('data'), db.key);
    expect(sig[0]).toBe(0x80 | (2 << 2) | 1);
    expect(sig.readUInt16BE(1)).toBe(sig.length - 3);
    expect([...sig.subarray(3, 7)]).toEqual([4, 0x00, 1, 10]); // v4, binary document, RSA, SHA-512
    expect(grubSignature(Buffer.from('data'), db.key)).toEqual(sig);
  });

  test('a key that is not RSA is ERR_SIGNER_KEY for both; a public key cannot sign', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(composeError(() => grubPublicKey(ec.publicKey)).message).toBe("GRUB's OpenPGP key must be an RSA key, got a public ec key");
    expect(composeError(() => grubSignature(Buffer.from('x'), ec.privateKey)).code).toBe('ERR_SIGNER_KEY');
    expect(grubPublicKey(createPublicKey(db.key))).toEqual(grubPublicKey(db.key));
    expect(composeError(() => grubSignature(Buffer.from('x'), createPublicKey(db.key))).message).toBe("GRUB's OpenPGP key must be a private RSA key, got a public rsa key");
  });

  requires(gpgMissing).test('gpg verifies the signature with the exported key (given a user id, which GRUB does not need); the issuer key id is in the unhashed area, where GRUB looks', () => {
    const data = Buffer.alloc(100_000, 7);
    const file = write('payload.bin', data);
    write('payload.bin.sig', grubSignature(data, db.key));
    // a lone key packet is all GRUB reads; gpg imports keys with a user id only
    write('pub-uid.pgp', Buffer.concat([grubPublicKey(db.key), Buffer.from([0xb4, 4]), Buffer.from('test')]));
    expect(gpg('--import', join(dir, 'pub-uid.pgp')).status).toBe(0);
    const ok = gpg('--verify', `${file}.sig`, file);
    expect(ok.stderr).toContain('Good signature from "test"');
    expect(ok.status).toBe(0);
    const packets = gpg('--list-packets', `${file}.sig`).stdout;
    expect(packets).toMatch(/digest algo 10/);
    expect(packets).toMatch(/\n\tsubpkt 16 len 8 \(issuer key ID [0-9A-F]{16}\)/);
    expect(packets).not.toMatch(/hashed subpkt 16/);
    data.writeUInt8(data.readUInt8(50_000) ^ 1, 50_000);
    writeFileSync(file, data);
    const bad = gpg('--verify', `${file}.sig`, file);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('BAD signature');
  });
});

requires(firstMissing(missingGrub, missingSb)).describe('buildSignedGrub and grubModuleSubset', () => {
  const config = 'echo "edgeimage uefi test config"\n';
  let grub: Buffer;
  beforeAll(async () => {
    grub = await buildSignedGrub({ format: 'x86_64-efi', moduleDir: GRUB_X86, config, signer: db });
  });

  test('an Authenticode-signed x86_64 GRUB (sbverify) holding the config and the db key as its OpenPGP key; the same bytes twice', async () => {
    expect(sbverify(db.certPath, write('grubx64.efi', grub)).ok).toBe(true);
    expect(sbverify(other.certPath, join(dir, 'grubx64.efi')).ok).toBe(false);
    expect(grub.includes(Buffer.from(config))).toBe(true);
    expect(grub.includes(grubPublicKey(db.key))).toBe(true);
    expect(grub.includes(Buffer.from('set check_signatures=enforce\nexport check_signatures\n'))).toBe(true);
    expect(await buildSignedGrub({ format: 'x86_64-efi', moduleDir: GRUB_X86, config, signer: db })).toEqual(grub);
  });

  test('a subset of the module folder (the named modules, their dependencies, moddep.lst, kernel.img) builds the same GRUB', async () => {
    const dest = join(dir, 'subset', 'x86_64-efi');
    const files = grubModuleSubset(GRUB_X86, GRUB_VERIFIED_MODULES, dest);
    expect(files).toEqual(expect.arrayContaining(['kernel.img', 'moddep.lst', 'pgp.mod', 'gcry_rsa.mod', 'mpi.mod', 'chain.mod', 'extcmd.mod']));
    expect(readdirSync(dest).sort()).toEqual([...files].sort());
    expect(readdirSync(join(dir, 'subset'))).toEqual(['x86_64-efi']);
    expect(files.length).toBeLessThan(readdirSync(GRUB_X86).length / 3);
    expect(await buildSignedGrub({ format: 'x86_64-efi', moduleDir: dest, config, signer: db })).toEqual(grub);
  });

  test('a module missing from the folder is ERR_GRUB_MODULES naming it; no subset folder, no temporary folder is left', async () => {
    const dest = join(dir, 'subset2', 'x86_64-efi');
    const e = composeError(() => grubModuleSubset(GRUB_X86, [...GRUB_VERIFIED_MODULES, 'no_such_mod'], dest));
    expect([e.code, e.message]).toEqual(['ERR_GRUB_MODULES', `GRUB module folder ${GRUB_X86}: module no_such_mod (no_such_mod.mod) is missing`]);
    expect(existsSync(join(dir, 'subset2')) ? readdirSync(join(dir, 'subset2')) : []).toEqual([]);
    // a subset without pgp's dependency: grub-mkimage is never run on it
    const partial = join(dir, 'partial');
    mkdirSync(partial);
    for (const f of ['kernel.img', 'moddep.lst', 'pgp.mod']) writeFileSync(join(partial, f), readFileSync(join(GRUB_X86, f)));
    const tmpDir = mkdtempSync(join(tmpdir(), 'edgeimage-uefi-tmpdir-'));
    try {
      await expect(buildSignedGrub({ format: 'x86_64-efi', moduleDir: partial, config, signer: db, modules: ['pgp'], tmpDir })).rejects.toMatchObject({ code: 'ERR_GRUB_MODULES', message: expect.stringMatching(/module (mpi|crypto|gcry_sha1|verifiers|extcmd) \(\w+\.mod\) is missing/) });
      // fails after grub-mkimage ran: the work folder with the key and the image is removed all the same
      await expect(buildSignedGrub({ format: 'x86_64-efi', moduleDir: GRUB_X86, config, signer: { key: other.key, certPem: db.certPem }, tmpDir })).rejects.toMatchObject({ code: 'ERR_SIGNER_KEY' });
      expect(readdirSync(tmpDir)).toEqual([]);
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  test('an existing destination folder is ERR_FS_OUTPUT_EXISTS and is left as it was', () => {
    const dest = join(dir, 'exists');
    mkdirSync(dest);
    writeFileSync(join(dest, 'keep'), 'x');
    expect(composeError(() => grubModuleSubset(GRUB_X86, ['echo'], dest)).code).toBe('ERR_FS_OUTPUT_EXISTS');
    expect(readdirSync(dest)).toEqual(['keep']);
  });

  const arm = { dir: '', missing: undefined as string | undefined };
  beforeAll(() => {
    arm.dir = mkdtempSync(join(tmpdir(), 'edgeimage-uefi-grub-arm64-'));
    arm.missing = arm64Deb('grub-efi-arm64-bin', arm.dir);
  });
  afterAll(() => rmSync(arm.dir, { recursive: true, force: true }));
  test('an arm64 GRUB from Debian\'s grub-efi-arm64-bin:arm64 modules, signed (sbverify); its module subset builds the same bytes', async () => {
    if (arm.missing) throw new Error(arm.missing);
    const moduleDir = join(arm.dir, 'usr/lib/grub/arm64-efi');
    const efi = await buildSignedGrub({ format: 'arm64-efi', moduleDir, config, signer: db });
    expect(parsePe(efi, 'grubaa64').machine).toBe(0xaa64);
    expect(sbverify(db.certPath, write('grubaa64.efi', efi)).ok).toBe(true);
    const subset = join(dir, 'subset-arm64');
    grubModuleSubset(moduleDir, GRUB_VERIFIED_MODULES, subset);
    expect(await buildSignedGrub({ format: 'arm64-efi', moduleDir: subset, config, signer: db })).toEqual(efi);
  });
});
