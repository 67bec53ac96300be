import { crc32, crc32Table } from './crc32.js';
import { pattern } from '@edgeimage/testkit/partition-image';

describe('crc32', () => {
  test('gives the IEEE check value for "123456789"', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  test('is zero for no bytes', () => {
    expect(crc32(Buffer.alloc(0))).toBe(0);
    expect(crc32Table(Buffer.alloc(0))).toBe(0);
  });

  test('the table-driven implementation agrees with zlib on random data of many lengths', () => {
    for (const n of [1, 2, 3, 7, 92, 511, 512, 16384, 100003]) {
      const data = pattern(n, n);
      expect(crc32Table(data)).toBe(crc32(data));
    }
  });

  test('can be computed in pieces', () => {
    const data = pattern(5000, 42);
    const whole = crc32(data);
    expect(crc32(data.subarray(1234), crc32(data.subarray(0, 1234)))).toBe(whole);
    expect(crc32Table(data.subarray(1234), crc32Table(data.subarray(0, 1234)))).toBe(whole);
  });

  test('returns an unsigned 32-bit number', () => {
    for (let seed = 1; seed < 50; seed++) {
      const c = crc32(pattern(64, seed));
      expect(Number.isInteger(c) && c >= 0 && c <= 0xffffffff).toBe(true);
    }
  });
});
