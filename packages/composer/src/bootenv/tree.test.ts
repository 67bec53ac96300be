import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanUp, tempDir } from '@edgeimage/testkit/fs-trees';
import { decodeGrubEnv, encodeGrubEnv, ENV_FILES, initialEnv } from './env.js';
import { writeEnvTree } from './tree.js';

afterAll(cleanUp);

describe('writeEnvTree', () => {
  test('writes both copies and both locks (editing=0) as 1024-byte GRUB blocks', () => {
    const d = tempDir();
    writeEnvTree(d, initialEnv());
    expect(readdirSync(join(d, 'EFI/edgeimage')).sort()).toEqual(['env1', 'env2']);
    for (const f of [ENV_FILES.env1, ENV_FILES.env2]) {
      const b = readFileSync(join(d, f));
      expect(b.length).toBe(1024);
      expect(b.equals(encodeGrubEnv(initialEnv()))).toBe(true);
      expect(decodeGrubEnv(b)).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' });
    }
    for (const f of [ENV_FILES.lock1, ENV_FILES.lock2]) expect(decodeGrubEnv(readFileSync(join(d, f)))).toEqual({ editing: '0' });
  });

  test('is deterministic and refuses a state the bootloaders cannot act on', () => {
    const a = tempDir();
    const b = tempDir();
    writeEnvTree(a, { ...initialEnv(), extra: 'x' });
    writeEnvTree(b, { extra: 'x', ...initialEnv() });
    for (const f of Object.values(ENV_FILES)) expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f)))).toBe(true);
    expect(() => writeEnvTree(tempDir(), { ...initialEnv(), edge_slot: 'c' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    expect(() => writeEnvTree(tempDir(), { edge_status: '' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_STATE' }));
  });
});
