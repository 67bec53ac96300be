import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGpt } from '../partition/index.js';
import { bootPartitionOffset, sniffFilesystem } from './inspect.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-inspect-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('an image without a system-boot partition: the boot environment cannot be found, and says why', () => {
  const img = join(dir, 'no-boot.img');
  writeFileSync(img, '');
  truncateSync(img, 8 << 20);
  writeGpt(img, {
    diskSize: 8 << 20,
    diskGuid: '11111111-2222-5333-8444-555555555555',
    partitions: [{ firstLba: 2048, lastLba: 4095, typeGuid: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', partGuid: '11111111-2222-5333-8444-666666666666', name: 'other' }],
  });
  expect(() => bootPartitionOffset(img)).toThrow(expect.objectContaining({ code: 'ERR_NO_BOOT_PARTITION', message: expect.stringMatching(/no-boot\.img: no system-boot partition \(GPT partition named system-boot/) }));
});

test('a region without a known filesystem reads as unknown', () => {
  const img = join(dir, 'blank.img');
  writeFileSync(img, Buffer.alloc(8192));
  expect(sniffFilesystem(img, 0)).toEqual({ type: 'unknown' });
});
