import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRegularFile, type RegularFileProblem } from './read-regular.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-read-regular-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The problem the reader reported for `path`, or the bytes. */
function read(path: string, max = 16): RegularFileProblem | Buffer {
  try {
    return readRegularFile(path, max, (p) => Object.assign(new Error(p.kind), { problem: p }));
  } catch (e) {
    return (e as { problem: RegularFileProblem }).problem;
  }
}

describe('readRegularFile', () => {
  test('reads a regular file of at most max bytes, and refuses one byte more', () => {
    writeFileSync(join(dir, 'ok'), 'sixteen bytes!!\n');
    expect(read(join(dir, 'ok'))).toEqual(Buffer.from('sixteen bytes!!\n'));
    writeFileSync(join(dir, 'big'), 'seventeen bytes!\n');
    expect(read(join(dir, 'big'))).toEqual({ kind: 'too-large', size: 17 });
  });

  test('a missing file, a link (even to a good file), a FIFO and a device are refused, none waited on or read', () => {
    expect(read(join(dir, 'absent'))).toEqual({ kind: 'missing' });
    writeFileSync(join(dir, 'target'), 'fine');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    expect(read(join(dir, 'link'))).toEqual({ kind: 'link' });
    expect(spawnSync('mkfifo', [join(dir, 'fifo')]).status).toBe(0);
    expect(read(join(dir, 'fifo'))).toEqual({ kind: 'not-regular' });
    expect(read('/dev/zero')).toEqual({ kind: 'not-regular' });
    expect(read(dir)).toEqual({ kind: 'not-regular' });
  });
});
