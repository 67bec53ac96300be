/**
 * `edgeimage boot-test --secure-boot`: usage errors (exit 2) and the key folder's refusals before
 * QEMU starts (exit 1, `[ERR_SECURE_BOOT_KEYS]`), in-process. The boots are in
 * packages/qemu/test/secure-boot.qemu.test.ts.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@edgeimage/testkit/cli-run';

let dir: string;
let image: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-sb-cli-'));
  image = join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc(4096));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('--help names --secure-boot, --secure-boot-keys and that images are not signed yet', async () => {
  const r = await run(['boot-test', '--help']);
  expect(r.status).toBe(0);
  expect(r.out).toContain('--secure-boot-keys');
  expect(r.out.replace(/\s+/g, ' ')).toMatch(/Images are not signed yet: today the firmware refuses the image's GRUB \(Access Denied\)/);
});

test.each([
  [['--secure-boot'], /--secure-boot needs --secure-boot-keys DIR/],
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
