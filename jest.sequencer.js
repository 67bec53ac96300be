// The QEMU test files run on every core (scripts/test), each worker taking the next file of this
// order. Jest's own order (the last run's times from its cache, else the file size) puts the
// scenario files last on a clean clone — they are short files that boot for many minutes — and the
// run then ends with one core idle. So the files whose boots take longest go first (longest
// processing time first), by the weights below: seconds measured on a clean clone, 2 cores, with
// the QEMU files on both (2026-12-04). A file not listed keeps jest's order, after them.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import TestSequencer from '@jest/test-sequencer';

// CommonJS seen from ESM: the class is the module's default export
const Sequencer = TestSequencer.default ?? TestSequencer;

const ROOT = fileURLToPath(new URL('.', import.meta.url));
export const SECONDS = {
  'packages/qemu/test/scenarios-pc-amd64.qemu.test.ts': 1400,
  'packages/qemu/test/boards.qemu.test.ts': 570,
  'packages/qemu/test/robot.qemu.test.ts': 500,
  'packages/qemu/test/scenarios-arm64.qemu.test.ts': 500,
  'packages/qemu/test/scenarios-ota.qemu.test.ts': 650,
  'packages/qemu/test/scenarios-robot.qemu.test.ts': 450,
  // the kiosk's two bases (arm64's under qemu-user) on a clean clone, then 5 boots: ~550 s
  'packages/qemu/test/kiosk.qemu.test.ts': 550,
  'packages/qemu/test/bootloaders.qemu.test.ts': 320,
  'packages/base/src/build.qemu.test.ts': 175,
};

export default class LongestFirst extends Sequencer {
  async sort(tests) {
    const ordered = await super.sort(tests);
    const weight = (t) => SECONDS[relative(ROOT, t.path)] ?? 0;
    // stable: files without a weight keep jest's order
    return ordered.map((t, i) => ({ t, i })).sort((a, b) => weight(b.t) - weight(a.t) || a.i - b.i).map((x) => x.t);
  }
}
