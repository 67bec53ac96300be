import { createHash, randomBytes } from 'node:crypto';
import { sha3_384Hasher, WORKER_MIN_BYTES, WorkerHasher } from './hasher.js';

const expected = (chunks: Uint8Array[]) => createHash('sha3-384').update(Buffer.concat(chunks)).digest();

describe('sha3-384 hashers', () => {
  test('the worker hashes exactly the bytes of each view, in order, even a slice of a larger buffer', async () => {
    const big = randomBytes(1 << 20);
    // Views into one buffer, as a socket's pooled chunks are: only the viewed bytes count.
    const chunks = [big.subarray(10, 5000), big.subarray(0, 1), randomBytes(70_000), big.subarray(5000, big.length - 3)];
    const h = new WorkerHasher();
    for (const c of chunks) await h.update(c);
    expect((await h.digest()).equals(expected(chunks))).toBe(true);
    // The caller's chunks are copied, not moved: still readable afterwards.
    expect(chunks[2]!.length).toBe(70_000);
  });

  test('an owned whole buffer is moved to the worker; an owned slice of a pooled buffer is copied', async () => {
    const whole = new Uint8Array(randomBytes(100_000));
    const pooled = Buffer.from('a slice of the pool');
    const expectedDigest = expected([whole, pooled]);
    const h = new WorkerHasher();
    await h.update(whole, true);
    await h.update(pooled, true);
    expect(whole.byteLength).toBe(0);
    expect(pooled.toString()).toBe('a slice of the pool');
    expect((await h.digest()).equals(expectedDigest)).toBe(true);
  });

  test('a batch moves its whole buffers in one message; a buffer given twice is copied the second time', async () => {
    const a = new Uint8Array(randomBytes(70_000));
    const b = new Uint8Array(randomBytes(5_000));
    const digest = expected([a, b, a]);
    const h = new WorkerHasher();
    await h.updateAll([a, b, a], true);
    expect(a.byteLength).toBe(0);
    expect(b.byteLength).toBe(0);
    expect((await h.digest()).equals(digest)).toBe(true);
  });

  test('a producer faster than the worker is held back once 8 MiB wait, and nothing is lost', async () => {
    const h = new WorkerHasher();
    const chunks = Array.from({ length: 12 }, () => randomBytes(1 << 20));
    let waited = 0;
    for (const c of chunks) {
      const w = h.update(c);
      if (w) {
        waited++;
        await w;
      }
    }
    expect(waited).toBeGreaterThan(0);
    expect((await h.digest()).equals(expected(chunks))).toBe(true);
  });

  test('streams sharing the pool keep their own hashes; one dropped midway leaves the others whole', async () => {
    const parts = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => randomBytes(300_000)));
    const hashers = parts.map(() => new WorkerHasher());
    for (let i = 0; i < 4; i++) for (const [k, h] of hashers.entries()) await h.update(parts[k]![i]!);
    await hashers[1]!.close();
    expect((await hashers[0]!.digest()).equals(expected(parts[0]!))).toBe(true);
    expect((await hashers[2]!.digest()).equals(expected(parts[2]!))).toBe(true);
  });

  test('a file that cannot be opened for writing: the inline hasher throws at once, the worker\'s failure is thrown by settled() with its code, and no digest comes out', async () => {
    const nowhere = { path: '/nonexistent-edgeimage-dir/x.part', append: false };
    expect(() => sha3_384Hasher(100).writeTo(nowhere)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const h = new WorkerHasher();
    h.writeTo(nowhere);
    await h.update(randomBytes(1000));
    await expect(h.settled()).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(h.digest()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('small files hash inline, large ones on a worker; both give the same digest', async () => {
    const data = randomBytes(300_000);
    for (const size of [data.length, WORKER_MIN_BYTES]) {
      const h = sha3_384Hasher(size);
      expect(h instanceof WorkerHasher).toBe(size >= WORKER_MIN_BYTES);
      await h.update(data);
      expect((await h.digest()).equals(expected([data]))).toBe(true);
    }
  });
});
