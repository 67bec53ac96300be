import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ubootEnvFlash } from './uboot-env.js';
import { requires } from '@edgeimage/testkit/skips';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgeimage-uboot-env-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

requires(existsSync(UBOOT) ? undefined : `no ${UBOOT} (u-boot-qemu)`).test("the bootdelay=0 flash equals mkenvimage's (u-boot-tools) for the same environment, and is cached", () => {
  const mine = ubootEnvFlash(UBOOT, { cacheDir: join(dir, 'cache') });
  const theirs = join(dir, 'theirs.img');
  execFileSync(join(ROOT, 'bundles/bootloader/uboot-env-image'), [theirs, '0', UBOOT]);
  expect(readFileSync(mine).equals(readFileSync(theirs))).toBe(true);
  expect(readFileSync(mine).subarray(4, 0x40000).toString('latin1')).toContain('\0bootdelay=0\0');
  expect(ubootEnvFlash(UBOOT, { cacheDir: join(dir, 'cache') })).toBe(mine);
});

test('a binary without a U-Boot default environment is ERR_FIRMWARE_UNSUPPORTED, naming it', () => {
  const bogus = join(dir, 'not-u-boot.bin');
  execFileSync('sh', ['-c', `head -c 4096 /dev/zero > ${bogus}`]);
  expect(() => ubootEnvFlash(bogus, { cacheDir: join(dir, 'cache2') })).toThrow(/not-u-boot\.bin: no default environment found/);
});
