/**
 * The over-the-air scenario's reading of a pointer (which update the device at a revision takes):
 * the QEMU run itself is scenarios-ota.qemu.test.ts'.
 */
import { pointerUpdate } from './ota-scenario.js';

const SHA = (c: string) => c.repeat(64);
const POINTER = [
  'edgeimage-pointer: 1',
  'brand-id: example-brand',
  'model: pc-amd64-dangerous',
  'channel: latest/stable',
  'revision: 4',
  'sequence: 6',
  'expires: 2026-12-11T00:00:00Z',
  'rollout: 100',
  `sign-key-sha3-384: ${'k'.repeat(64)}`,
  `update: full ${SHA('a')} 9000 updates/example-brand.pc-amd64-dangerous.4.full.update`,
  `update: 1 ${SHA('b')} 300 updates/example-brand.pc-amd64-dangerous.4.from-1.update`,
  `update: 2 ${SHA('c')} 200 updates/example-brand.pc-amd64-dangerous.4.from-2.update`,
  '',
].join('\n');

test('the update line for an installed revision, or the full one; a revision the pointer has no delta for is an error naming it', () => {
  expect(pointerUpdate(POINTER, 2)).toEqual({ sha256: SHA('c'), size: 200, path: 'updates/example-brand.pc-amd64-dangerous.4.from-2.update' });
  expect(pointerUpdate(POINTER, 'full')).toEqual({ sha256: SHA('a'), size: 9000, path: 'updates/example-brand.pc-amd64-dangerous.4.full.update' });
  // "1" must not match the "full" line nor a longer revision's
  expect(pointerUpdate(POINTER, 1).size).toBe(300);
  expect(() => pointerUpdate(POINTER, 3)).toThrow('the pointer has no update from 3');
  expect(() => pointerUpdate(POINTER, 3, 'pointers/r4')).toThrow('pointers/r4: the pointer has no update from 3 (expected a line "update: 3 SHA256 SIZE PATH"; release that revision with --from 3)');
});
