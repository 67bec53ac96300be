// OVMF's variable store as a started board has it (firmware/nvram.ts): made once by a real OVMF
// boot with an empty disk, kept in the cache, and used by bootTest for amd64 UEFI boots.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { initializedOvmfVars } from '../src/index.js';

const CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const BLANK = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const missing = firstMissing(existsSync(CODE) && existsSync(BLANK) ? undefined : 'no OVMF (ovmf)', existsSync('/usr/bin/qemu-system-x86_64') ? undefined : 'no qemu-system-x86_64');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-nvram-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const utf16 = (s: string) => Buffer.from(s, 'utf16le');

requires(missing).test('OVMF started once leaves its boot options in the store: the store is kept in the cache (same size as the blank one) and reused without another boot', async () => {
  const cacheDir = join(dir, 'cache');
  const made = await initializedOvmfVars(CODE, BLANK, { cacheDir });
  expect(made).toBeDefined();
  expect(made!.startsWith(`${cacheDir}/ovmf-vars-initialized-`)).toBe(true);
  const bytes = readFileSync(made!);
  expect(bytes.length).toBe(statSync(BLANK).size);
  expect(bytes.equals(readFileSync(BLANK))).toBe(false);
  // The boot options OVMF wrote on its first start: the disk slot's removable-media option and its shell.
  expect(bytes.includes(utf16('UEFI Misc Device'))).toBe(true);
  expect(bytes.includes(utf16('EFI Internal Shell'))).toBe(true);
  expect(readFileSync(BLANK).includes(utf16('UEFI Misc Device'))).toBe(false);
  const mtime = statSync(made!).mtimeMs;
  const again = await initializedOvmfVars(CODE, BLANK, { cacheDir });
  expect(again).toBe(made);
  expect(statSync(again!).mtimeMs).toBe(mtime);
}, 120_000);
