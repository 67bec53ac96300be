/**
 * jest.sequencer.js starts the longest QEMU files first by weights it names by path: a file
 * renamed or removed would silently lose its place (and the run a core at its end).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './repo.js';

const { default: LongestFirst, SECONDS } = (await import(join(REPO, 'jest.sequencer.js'))) as {
  default: new (o: { contexts: unknown[]; globalConfig: unknown }) => { sort(t: { path: string; context: unknown; duration?: number }[]): Promise<{ path: string }[]> };
  SECONDS: Record<string, number>;
};

test('every file the sequencer weighs exists, and is a QEMU test file', () => {
  const missing = Object.keys(SECONDS).filter((f) => !existsSync(join(REPO, f)) || !/\.qemu\.test\.ts$/.test(f));
  expect(missing).toEqual([]);
});

test('the weighed files come first, heaviest first; the others keep their order after them', async () => {
  const heaviest = Object.entries(SECONDS).sort((a, b) => b[1] - a[1]).map(([f]) => f);
  const context = { config: { cacheDirectory: join(REPO, '.test-results/no-cache') }, hasteFS: { getSize: () => 1 } };
  const tests = ['packages/z/other-a.qemu.test.ts', heaviest.at(-1)!, 'packages/z/other-b.qemu.test.ts', heaviest[0]!].map((f) => ({ path: join(REPO, f), context }));
  const sorted = await new LongestFirst({ contexts: [], globalConfig: {} }).sort(tests);
  const order = sorted.map((t) => t.path.slice(REPO.length));
  expect(order.slice(0, 2)).toEqual([heaviest[0], heaviest.at(-1)]);
  expect(new Set(order.slice(2))).toEqual(new Set(['packages/z/other-a.qemu.test.ts', 'packages/z/other-b.qemu.test.ts']));
});
