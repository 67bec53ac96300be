import { EdgeimageError } from '@edgeimage/assertions';
import { ComposeError } from '../errors.js';
import { deterministicGuid, GPT_TYPES, guidFromBytes, guidToBytes, isGuid, normalizeGuid } from './guid.js';

describe('GUID encoding', () => {
  test('stores the first three fields little-endian and the rest in text order', () => {
    expect(guidToBytes(GPT_TYPES.esp).toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
    expect(guidToBytes(GPT_TYPES.linuxFilesystem).toString('hex')).toBe('af3dc60f838472478e793d69d8477de4');
  });

  test('round-trips through the on-disk bytes, in upper case', () => {
    const text = '0fc63daf-8483-4772-8e79-3d69d8477de4';
    expect(guidFromBytes(guidToBytes(text))).toBe(text.toUpperCase());
    const buf = Buffer.concat([Buffer.alloc(7), guidToBytes(GPT_TYPES.esp)]);
    expect(guidFromBytes(buf, 7)).toBe(GPT_TYPES.esp);
  });

  test('rejects text that is not a GUID', () => {
    for (const bad of ['', 'C12A7328F81F11D2BA4B00A0C93EC93B', '{C12A7328-F81F-11D2-BA4B-00A0C93EC93B}', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93G']) {
      expect(isGuid(bad)).toBe(false);
      let err: unknown;
      try {
        guidToBytes(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ComposeError);
      expect(err).toBeInstanceOf(EdgeimageError);
      expect((err as ComposeError).code).toBe('ERR_GUID_INVALID');
      expect((err as ComposeError).message).toContain('is not a GUID');
    }
    expect(normalizeGuid('c12a7328-f81f-11d2-ba4b-00a0c93ec93b')).toBe(GPT_TYPES.esp);
  });
});

describe('deterministicGuid', () => {
  test('gives the same GUID for the same parts, on every run and every version', () => {
    // Pinned (and checked with Python's hashlib): changing the derivation would change the GUIDs of every rebuilt image.
    expect(deterministicGuid('acme', 'kiosk', 'pc')).toBe('4A9269D5-7703-50E7-88FF-C1457856FC2A');
    expect(deterministicGuid('acme', 'kiosk', 'pc', 'system-a')).toBe(deterministicGuid('acme', 'kiosk', 'pc', 'system-a'));
  });

  test('sets the version (5) and RFC 4122 variant bits', () => {
    for (const name of ['system-boot', 'system-a', 'system-b', 'system-data', 'x', '']) {
      const g = deterministicGuid('acme', 'kiosk', 'pc', name);
      expect(isGuid(g)).toBe(true);
      expect(g[14]).toBe('5');
      expect('89AB').toContain(g[19]);
    }
  });

  test('gives different GUIDs for different parts, and part boundaries matter', () => {
    const names = ['system-boot', 'system-a', 'system-b', 'system-data'];
    const guids = new Set(names.map((n) => deterministicGuid('acme', 'kiosk', 'pc', n)));
    expect(guids.size).toBe(4);
    expect(deterministicGuid('ab', 'c')).not.toBe(deterministicGuid('a', 'bc'));
    expect(deterministicGuid('a', '')).not.toBe(deterministicGuid('a'));
  });
});
