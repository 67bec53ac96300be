/**
 * Property: whatever bytes an update file holds — random, or a valid update with bytes flipped,
 * header fields rewritten (checksums made right again, so the entry checks are reached), cut
 * short, or entries drawn from hostile names and types — readUpdate ends in a result or a typed
 * UpdateError (`ERR_UPDATE_…`), never another exception or a hang; and what it accepts holds only
 * regular files with canonical, distinct names the manifest lists.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { UpdateError } from './errors.js';
import { readUpdate, readUpdateLayout } from './info.js';
import { slotPathProblem } from './manifest.js';
import { readTar } from './tar.js';
import { manifestFor, SLOT, ustar, validEntries, type RawEntry } from '@edgeimage/testkit/update-tar';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-update-prop-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Reads `bytes` as an update: 'ok' or the error's code; any other throw fails the property. */
async function outcome(bytes: Uint8Array): Promise<string> {
  const f = join(dir, `p${n++ % 4}.update`);
  writeFileSync(f, bytes);
  try {
    const u = await readUpdate(f);
    // what is accepted is what the device accepts
    const names = readTar(f).map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(slotPathProblem(name)).toBeUndefined();
    const listed = new Set(u.manifest.files.map((x) => x.path));
    for (const path of readUpdateLayout(f).carried.keys()) expect(listed.has(path)).toBe(true);
    return 'ok';
  } catch (e) {
    if (!(e instanceof UpdateError) || !/^ERR_UPDATE_[A-Z_]+$/.test(e.code)) throw new Error(`not a typed update error: ${String((e as Error)?.stack ?? e)}`);
    return e.code;
  }
}

/** Rewrites the checksum of every 512-byte block that looks like a header, as a forger would. */
function fixChecksums(b: Buffer): Buffer {
  for (let at = 0; at + 512 <= b.length; at += 512) {
    const h = b.subarray(at, at + 512);
    if (h.subarray(257, 262).toString('latin1') !== 'ustar') continue;
    h.fill(32, 148, 156);
    h.write(`${h.reduce((s, x) => s + x, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  }
  return b;
}

const valid = ustar(validEntries());
const RUNS = { numRuns: 250 };

test('random bytes', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 3 * 1024 }), async (b) => void (await outcome(b))), RUNS);
});

test('a valid update with bytes changed (header checksums fixed or not) and cut short', async () => {
  const mutation = fc.record({
    flips: fc.array(fc.record({ at: fc.nat({ max: valid.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
    // the interesting bytes: name, size, type flag, magic of each header
    fields: fc.array(fc.record({ block: fc.nat({ max: 8 }), at: fc.constantFrom(0, 1, 50, 99, 124, 130, 135, 156, 257, 262, 345), value: fc.constantFrom(0, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x35, 0x37, 0x78, 0x4c, 0x20, 0xff) }), { maxLength: 4 }),
    fix: fc.boolean(),
    cut: fc.option(fc.nat({ max: valid.length }), { nil: undefined }),
  });
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const b = Buffer.from(valid);
      for (const f of m.flips) b[f.at] = f.value;
      for (const f of m.fields) if (f.block * 512 + f.at < b.length) b[f.block * 512 + f.at] = f.value;
      if (m.fix) fixChecksums(b);
      await outcome(m.cut === undefined ? b : b.subarray(0, m.cut));
    }),
    RUNS,
  );
});

test('entries drawn from hostile names and types, in any order', async () => {
  const EVIL = Buffer.from('evil\n');
  const names = ['edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/./manifest', 'edgeimage-update//manifest', 'edgeimage-update/slot/model.assert', 'edgeimage-update/slot/bundles/app_1.snap', 'edgeimage-update/slot/bundles/', 'edgeimage-update/slot/../x', '/etc/passwd', 'edgeimage-update/slot/bundles/evil_1.snap', 'x'];
  const data = [manifestFor(SLOT), manifestFor({ ...SLOT, 'bundles/evil_1.snap': EVIL }), Buffer.alloc(256, 7), SLOT['model.assert'], SLOT['bundles/app_1.snap'], EVIL, Buffer.alloc(0)];
  const entry: fc.Arbitrary<RawEntry> = fc.record({ name: fc.constantFrom(...names), data: fc.constantFrom(...data), type: fc.constantFrom('0', '0', '0', '\0', '1', '2', '5', 'x', 'L', 'g'), link: fc.constantFrom('edgeimage-update/manifest', '') });
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.array(entry, { maxLength: 6 }), async (validFirst, extra) => {
      const entries = validFirst ? [...validEntries(), ...extra] : extra;
      if ((await outcome(ustar(entries))) === 'ok') accepted++;
    }),
    RUNS,
  );
  // the generator reaches the accepting path too, not only refusals
  expect(accepted).toBeGreaterThan(0);
});

