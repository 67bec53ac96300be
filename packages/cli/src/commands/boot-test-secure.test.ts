/**
 * `edgeimage boot-test --secure-boot`: usage errors (exit 2) and the key folder's refusals before
 * QEMU starts (exit 1, `[ERR_SECURE_BOOT_KEYS]`), in-process. The boots are in
 * packages/qemu/test/secure-boot.qemu.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x509SignatureList } from '@edgeimage/assertions';
import { run } from '@edgeimage/testkit/cli-run';

let dir: string;
let image: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-sb-cli-'));
  image = join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc(4096));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('--help names --secure-boot, --secure-boot-keys, their default next to the image and what is refused', async () => {
  const r = await run(['boot-test', '--help']);
  expect(r.status).toBe(0);
  expect(r.out).toContain('--secure-boot-keys');
  const help = r.out.replace(/\s+/g, ' ');
  expect(help).toMatch(/An image built with --boot-keys of the same brand boots; without --expect the boot must show the device's "edgeimage-init: secure boot enabled" line, then healthy/);
  expect(help).toMatch(/any other image's GRUB is refused \(Access Denied\)/);
  expect(help).toMatch(/default: IMAGE\.boot-keys\/, which build --boot-keys writes next to the image/);
});

test.each([
  [['--secure-boot'], /--secure-boot needs the brand's PK, KEK and db certificates: --secure-boot-keys DIR .* or the IMAGE\.boot-keys\/ folder .* \(there is no .*\/disk\.boot-keys\/\)/],
  [['--secure-boot-keys', 'k'], /--secure-boot-keys goes with --secure-boot/],
  [['--secure-boot', '--secure-boot-keys'], /--secure-boot-keys needs a value/],
  [['--secure-boot', '--secure-boot-keys', 'k', '--firmware', 'uboot'], /not with --firmware uboot/],
])('usage error (exit 2): %j', async (args, message) => {
  const r = await run(['boot-test', image, ...args]);
  expect(r.status).toBe(2);
  expect(r.err).toMatch(message);
});

test('an empty key folder is refused before QEMU starts, naming the file it expected; no log is written', async () => {
  const keys = join(dir, 'keys');
  mkdirSync(keys);
  const log = join(dir, 'console.log');
  const r = await run(['boot-test', image, '--secure-boot', '--secure-boot-keys', keys, '--log', log]);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/no PK certificate \(expected PK\.cer or PK\.crt, as "edgeimage boot-keys export" writes\) \[ERR_SECURE_BOOT_KEYS\]/);
  expect(readdirSync(dir).sort()).toEqual(['disk.img', 'keys']);
});

test('a db.esl whose certificate is not db.cer\'s is refused before QEMU starts, naming both files; no log is written', async () => {
  const keys = join(dir, 'keys-esl');
  mkdirSync(keys);
  const der: Record<string, Buffer> = {};
  for (const role of ['PK', 'KEK', 'db']) {
    execFileSync('openssl', ['req', '-new', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650', '-subj', `/CN=${role}`, '-keyout', join(dir, `${role}.key`), '-outform', 'DER', '-out', join(keys, `${role}.cer`)], { stdio: 'ignore' });
    der[role] = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', join(keys, `${role}.cer`), '-outform', 'DER']);
    rmSync(join(dir, `${role}.key`));
  }
  writeFileSync(join(keys, 'db.esl'), x509SignatureList(der['KEK']!, 'e1d9a7f0-5e7a-4c1e-9a51-ed9e1a9e0001'));
  const log = join(dir, 'console-esl.log');
  const r = await run(['boot-test', image, '--secure-boot', '--secure-boot-keys', keys, '--log', log]);
  expect(r.status).toBe(1);
  expect(r.err).toMatch(/keys-esl\/db\.esl: its certificate is not the one in \S*keys-esl\/db\.cer: expected the DER with SHA-256 [0-9a-f]{64} \(\d+ bytes\), found SHA-256 [0-9a-f]{64} \(\d+ bytes\) \[ERR_SECURE_BOOT_KEYS\]/);
  expect(readdirSync(dir).sort()).toEqual(['disk.img', 'keys', 'keys-esl']);
});

test('without --secure-boot-keys the folder next to the image is used: its empty db is named before QEMU starts', async () => {
  const img = join(dir, 'verified.img');
  writeFileSync(img, Buffer.alloc(4096));
  mkdirSync(join(dir, 'verified.boot-keys'));
  const r = await run(['boot-test', img, '--secure-boot']);
  expect(r.status).not.toBe(0);
  expect(r.err).toContain(join(dir, 'verified.boot-keys'));
});
