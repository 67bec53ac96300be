import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cpioBytes, writeCpio, type CpioEntry } from './cpio.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const temp = (): string => { const d = mkdtempSync(join(tmpdir(), 'edgeimage-cpio-')); dirs.push(d); return d; };

const ENTRIES: CpioEntry[] = [
  { path: '/init', type: 'file', mode: 0o755, data: '#!/bin/sh\necho hi\n' },
  { path: 'bin/busybox', type: 'file', mode: 0o755, data: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]) },
  { path: 'bin/sh', type: 'symlink', target: '/bin/busybox' },
  { path: 'etc/modules.order', type: 'file', data: '' },
  { path: 'lib/modules/6.1/kernel/a.ko', type: 'file', data: 'x'.repeat(5) },
  { path: 'dev', type: 'dir' },
  { path: 'bin-extra', type: 'file', data: 'y' },
];

const cpioList = (archive: Buffer, verbose = false): string => {
  const r = spawnSync('cpio', [verbose ? '-itv' : '-it', '--quiet'], { input: archive, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
};

describe('cpio', () => {
  test('cpio -it lists exactly the entries (with implied parents), sorted, parents first', () => {
    const names = cpioList(cpioBytes(ENTRIES)).trim().split('\n');
    expect(names).toEqual(['bin', 'bin/busybox', 'bin/sh', 'bin-extra', 'dev', 'etc', 'etc/modules.order', 'init', 'lib', 'lib/modules', 'lib/modules/6.1', 'lib/modules/6.1/kernel', 'lib/modules/6.1/kernel/a.ko']);
  });

  test('modes, owners, link targets, mtime and contents come back', () => {
    const d = temp();
    const archive = cpioBytes(ENTRIES, { mtime: new Date('2024-03-01T12:34:56Z') });
    const v = cpioList(archive, true);
    expect(v).toMatch(/^-rwxr-xr-x\s+1 root\s+root\s+7 Mar\s+1\s+2024 bin\/busybox$/m);
    expect(v).toMatch(/^lrwxrwxrwx\s+1 root\s+root\s+12 Mar\s+1\s+2024 bin\/sh -> \/bin\/busybox$/m);
    expect(v).toMatch(/^drwxr-xr-x\s+2 root\s+root\s+0 Mar\s+1\s+2024 dev$/m);
    const r = spawnSync('cpio', ['-id', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: d });
    expect(r.status).toBe(0);
    expect(readFileSync(join(d, 'init'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(readFileSync(join(d, 'lib/modules/6.1/kernel/a.ko'), 'utf8')).toBe('xxxxx');
  });

  test('newc framing: magic, sequential inodes, 4-byte alignment, trailer', () => {
    const raw = cpioBytes(ENTRIES);
    expect(raw.subarray(0, 6).toString()).toBe('070701');
    expect(raw.length % 4).toBe(0);
    const inodes: number[] = [];
    let off = 0;
    for (;;) {
      const h = raw.subarray(off, off + 110).toString('ascii');
      expect(h.slice(0, 6)).toBe('070701');
      const f = (i: number): number => parseInt(h.slice(6 + 8 * i, 14 + 8 * i), 16);
      const nameLen = f(11);
      const name = raw.subarray(off + 110, off + 110 + nameLen - 1).toString();
      expect([f(2), f(3)]).toEqual([0, 0]);
      off = (off + 110 + nameLen + 3) & ~3;
      off = (off + f(6) + 3) & ~3;
      if (name === 'TRAILER!!!') break;
      inodes.push(f(0));
    }
    expect(off).toBe(raw.length);
    expect(inodes).toEqual(inodes.map((_, i) => i + 1));
  });

  test('two writes give identical bytes, gzip too; gzip header has no mtime or name', () => {
    const d = temp();
    writeCpio(ENTRIES, join(d, '1.cpio.gz'), { gzip: true });
    writeCpio([...ENTRIES].reverse(), join(d, '2.cpio.gz'), { gzip: true });
    const a = readFileSync(join(d, '1.cpio.gz'));
    expect(a.equals(readFileSync(join(d, '2.cpio.gz')))).toBe(true);
    expect(a.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(a.readUInt32LE(4)).toBe(0); // MTIME
    expect(a[3]! & 0x08).toBe(0); // no FNAME
    expect(gunzipSync(a).equals(cpioBytes(ENTRIES))).toBe(true);
  });

  test('refuses duplicate and unsafe paths, and a path under a file', () => {
    expect(() => cpioBytes([{ path: 'a', type: 'dir' }, { path: '/a', type: 'dir' }])).toThrow(expect.objectContaining({ code: 'ERR_FS_OPTIONS' }));
    expect(() => cpioBytes([{ path: '../etc', type: 'dir' }])).toThrow(expect.objectContaining({ code: 'ERR_FS_OPTIONS' }));
    expect(() => cpioBytes([{ path: 'a', type: 'file', data: '' }, { path: 'a/b', type: 'file', data: '' }])).toThrow(expect.objectContaining({ code: 'ERR_FS_OPTIONS' }));
  });
});
