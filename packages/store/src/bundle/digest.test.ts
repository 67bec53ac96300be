import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileDigest } from './digest.js';
import { opensslSha3_384, useTempDirs } from '@edgeimage/testkit/bundle-trees';

const tempDir = useTempDirs();

describe('fileDigest', () => {
  it('gives the known SHA3-384 of an empty file, in base64url without padding', async () => {
    const f = join(tempDir(), 'empty');
    writeFileSync(f, '');
    const hex = '0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004';
    expect(await fileDigest(f)).toEqual({ sha3_384: Buffer.from(hex, 'hex').toString('base64url'), size: 0 });
  });

  it('equals openssl dgst -sha3-384 over a file of many read chunks, with its exact size', async () => {
    const f = join(tempDir(), 'big');
    const size = 5 * 1024 * 1024 + 123;
    writeFileSync(f, randomBytes(size));
    const d = await fileDigest(f);
    expect(d.size).toBe(size);
    expect(d.sha3_384).toBe(opensslSha3_384(f));
  });

  it('is always 64 characters of the URL alphabet, whatever the bytes', async () => {
    const dir = tempDir();
    for (let i = 0; i < 20; i++) {
      const f = join(dir, `f${i}`);
      writeFileSync(f, randomBytes(i * 37));
      expect((await fileDigest(f)).sha3_384).toMatch(/^[A-Za-z0-9_-]{64}$/);
    }
  });

  it('rejects with ENOENT for a missing file', async () => {
    await expect(fileDigest(join(tempDir(), 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
