import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { cpioBytes, type CpioEntry } from '../initramfs/cpio.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifiedInitrd, verifiedInitrdPart, type VerifiedInitrdOptions } from './initrd.js';
import type { BundleVerityEntry } from '../verity/index.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const entry = (file: string, blocks: number, fill: string): BundleVerityEntry => ({
  file: `${file}.verity`, version: 1, 'hash-algorithm': 'sha256', 'data-block-size': 4096, 'hash-block-size': 4096,
  'data-blocks': blocks, salt: fill.repeat(64), 'root-hash': `${'0123456789abcdef'.repeat(3)}${fill.repeat(16)}`,
});

const OPTS: VerifiedInitrdOptions = {
  grade: 'signed',
  base: 'bundles/busybox-base_1.snap',
  agent: 'bundles/edge-agent_4.snap',
  kernel: 'bundles/pc-kernel_2.snap',
  apps: ['bundles/hello-kiosk_12.snap', 'bundles/x2_3.snap'],
  verity: [
    entry('bundles/pc_1.snap', 10, 'f'),
    entry('bundles/x2_3.snap', 1, 'c'),
    entry('bundles/busybox-base_1.snap', 1059, 'a'),
    entry('bundles/hello-kiosk_12.snap', 3, 'b'),
    entry('bundles/edge-agent_4.snap', 7, 'e'),
    entry('bundles/pc-kernel_2.snap', 9, 'd'),
  ],
};

/** The archive extracted by GNU cpio (what the kernel's unpacker reads too: newc). */
function extract(archive: Buffer): { dir: string; listing: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-verified-initrd-'));
  dirs.push(dir);
  const r = spawnSync('cpio', ['-idv', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: dir, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const l = spawnSync('cpio', ['-itv', '--quiet'], { input: archive, encoding: 'utf8' });
  return { dir, listing: l.stdout };
}

test('verified.env and verity.list (base first, then the agent, the kernel, then the apps; the gadget entry left out) in an uncompressed newc cpio, mtime 0, same bytes twice', () => {
  const a = verifiedInitrdPart(OPTS);
  expect(a.subarray(0, 6).toString('latin1')).toBe('070701');
  expect(a.equals(verifiedInitrdPart(OPTS))).toBe(true);
  const { dir, listing } = extract(a);
  expect(readFileSync(join(dir, 'etc/edgeimage/verified.env'), 'utf8')).toBe(
    'EDGE_VERIFIED=1\nEDGE_BASE=bundles/busybox-base_1.snap\nEDGE_AGENT=bundles/edge-agent_4.snap\nEDGE_KERNEL=bundles/pc-kernel_2.snap\nEDGE_APPS="bundles/hello-kiosk_12.snap bundles/x2_3.snap"\nEDGE_GRADE=signed\n');
  const h = '0123456789abcdef'.repeat(3);
  expect(readFileSync(join(dir, 'etc/edgeimage/verity.list'), 'utf8')).toBe(
    `bundles/busybox-base_1.snap 1059 ${h}${'a'.repeat(16)} ${'a'.repeat(64)}\n` +
    `bundles/edge-agent_4.snap 7 ${h}${'e'.repeat(16)} ${'e'.repeat(64)}\n` +
    `bundles/pc-kernel_2.snap 9 ${h}${'d'.repeat(16)} ${'d'.repeat(64)}\n` +
    `bundles/hello-kiosk_12.snap 3 ${h}${'b'.repeat(16)} ${'b'.repeat(64)}\n` +
    `bundles/x2_3.snap 1 ${h}${'c'.repeat(16)} ${'c'.repeat(64)}\n`);
  expect(listing).toMatch(/^-rw-r--r-- +1 root +root +\d+ Jan +1 +1970 etc\/edgeimage\/verity.list$/m);
  expect(listing).toMatch(/^drwxr-xr-x .* etc\/edgeimage$/m);
  // no apps: an empty EDGE_APPS, one line
  const none = extract(verifiedInitrdPart({ ...OPTS, apps: [] })).dir;
  expect(readFileSync(join(none, 'etc/edgeimage/verified.env'), 'utf8')).toContain('EDGE_APPS=""\n');
  expect(readFileSync(join(none, 'etc/edgeimage/verity.list'), 'utf8').split('\n')).toHaveLength(4);
});

const bad = (patch: Partial<VerifiedInitrdOptions>, entryPatch?: Partial<BundleVerityEntry> & { index?: number }) => {
  const verity = OPTS.verity.map((e, i) => (entryPatch && i === (entryPatch.index ?? 2) ? { ...e, ...entryPatch, index: undefined } as BundleVerityEntry : e));
  return () => verifiedInitrdPart({ ...OPTS, verity, ...patch });
};

test.each([
  ['a grade', bad({ grade: 'unset' }), 'grade: expected one of secured, signed, dangerous, found "unset"'],
  ['a base outside bundles/', bad({ base: '../etc/busybox-base_1.snap' }), 'base: expected a bundle path bundles/<name>_<revision>.snap (a snap name: 2-40 lower-case letters, digits and single inner dashes), found "../etc/busybox-base_1.snap"'],
  ['a base with a shell word in it', bad({ base: 'bundles/a b_1.snap' }), 'base: expected a bundle path'],
  ['an app whose name is no snap name', bad({ apps: ['bundles/hello--kiosk_12.snap'] }), 'apps[0]: expected a bundle path bundles/<name>_<revision>.snap'],
  ['an app that is no string', bad({ apps: [7 as unknown as string] }), 'apps[0]: expected a bundle path bundles/<name>_<revision>.snap, found 7'],
  ['two bundles of one name', bad({ apps: ['bundles/busybox-base_2.snap'], verity: [...OPTS.verity, entry('bundles/busybox-base_2.snap', 1, 'd')] }), 'apps: two bundles of one name (bundles/busybox-base_1.snap and bundles/busybox-base_2.snap)'],
  ['no agent', bad({ agent: undefined as unknown as string }), 'agent: expected a bundle path bundles/<name>_<revision>.snap, found undefined'],
  ['an agent outside bundles/', bad({ agent: 'bundles/../edge-agent_4.snap' }), 'agent: expected a bundle path'],
  ['an agent without an entry', bad({ agent: 'bundles/edge-agent_5.snap' }), 'agent: no verity entry for bundles/edge-agent_5.snap.verity, found "bundles/edge-agent_5.snap"'],
  ['an agent that is also an app', bad({ apps: ['bundles/edge-agent_4.snap'] }), 'apps: two bundles of one name (bundles/edge-agent_4.snap and bundles/edge-agent_4.snap)'],
  ['no kernel', bad({ kernel: undefined as unknown as string }), 'kernel: expected a bundle path bundles/<name>_<revision>.snap, found undefined'],
  ['a kernel without an entry', bad({ kernel: 'bundles/pc-kernel_3.snap' }), 'kernel: no verity entry for bundles/pc-kernel_3.snap.verity, found "bundles/pc-kernel_3.snap"'],
  ['a bundle without an entry', bad({ apps: ['bundles/other_1.snap'] }), 'apps[0]: no verity entry for bundles/other_1.snap.verity, found "bundles/other_1.snap"'],
  ['an entry whose file is not a tree', bad({}, { index: 0, file: 'bundles/pc_1.snap' }), 'verity[0] file: expected the bundle path with .verity appended, found "bundles/pc_1.snap"'],
  ['two entries for one tree', bad({ verity: [...OPTS.verity, entry('bundles/x2_3.snap', 1, 'c')] }), 'verity[6] file: a second entry for the same tree'],
  ['a short root hash', bad({}, { 'root-hash': 'ab'.repeat(31) }), 'verity[2] (bundles/busybox-base_1.snap.verity) root-hash: expected 64 lower-case hex digits (sha256), found "abab'],
  ['an upper-case root hash', bad({}, { 'root-hash': 'AB'.repeat(32) }), 'root-hash: expected 64 lower-case hex digits'],
  ['a salt with a space', bad({}, { salt: `${'a'.repeat(63)} ` }), 'verity[2] (bundles/busybox-base_1.snap.verity) salt: expected 64 lower-case hex digits'],
  ['zero data blocks', bad({}, { 'data-blocks': 0 }), 'verity[2] (bundles/busybox-base_1.snap.verity) data-blocks: expected a whole number of blocks from 1 to 4194304, found 0'],
  ['a fraction of a block', bad({}, { 'data-blocks': 1.5 }), 'verity[2] (bundles/busybox-base_1.snap.verity) data-blocks: expected a whole number of blocks from 1 to 4194304, found 1.5'],
  ['too many blocks', bad({}, { 'data-blocks': 4194305 }), 'found 4194305'],
  ['another block size', bad({}, { 'data-block-size': 512 as 4096 }), 'verity[2] (bundles/busybox-base_1.snap.verity) data-block-size: expected 4096, found 512'],
  ['another hash block size', bad({}, { 'hash-block-size': 1024 as 4096 }), 'verity[2] (bundles/busybox-base_1.snap.verity) hash-block-size: expected 4096, found 1024'],
  ['another algorithm', bad({}, { 'hash-algorithm': 'sha1' as 'sha256' }), 'verity[2] (bundles/busybox-base_1.snap.verity) hash-algorithm: expected sha256, found "sha1"'],
  ['another format', bad({}, { version: 0 as 1 }), 'verity[2] (bundles/busybox-base_1.snap.verity) version: expected dm-verity format 1, found 0'],
  ['a bad entry of an app', bad({}, { index: 3, salt: 'x' }), 'verity[3] (bundles/hello-kiosk_12.snap.verity) salt'],
])('refuses %s (ERR_VERIFIED_PAYLOAD naming the field)', (_what, run, message) => {
  expect(run).toThrow(expect.objectContaining({ code: 'ERR_VERIFIED_PAYLOAD', message: expect.stringMatching(/^verified boot payload: /) }));
  expect(run).toThrow(message);
});

test('an entry of a bundle the device does not mount is checked too (a bad value is a bug upstream)', () => {
  expect(bad({}, { index: 0, 'root-hash': 'not hex' })).toThrow('verified boot payload: verity[0] (bundles/pc_1.snap.verity) root-hash: expected 64 lower-case hex digits (sha256), found "not hex"');
});

/** A kernel bundle's initrd as buildInitramfs makes it: gzip of a newc cpio with /init and the features file. */
const kernelInitrdOf = (extra: CpioEntry[] = [], features: string | null = 'verified-boot\n') =>
  gzipSync(cpioBytes([{ path: 'init', type: 'file', mode: 0o755, data: '#!/bin/sh\n' }, ...(features === null ? [] : [{ path: 'etc/edgeimage/initramfs.features', type: 'file' as const, mode: 0o644, data: features }]), ...extra], { mtime: 0 }));

test('an initramfs whose /init does not honour the signed part (no verified-boot feature: an older kernel bundle) is refused: it would boot the slot unverified', () => {
  expect(() => verifiedInitrd(kernelInitrdOf([], null), OPTS)).toThrow(expect.objectContaining({ code: 'ERR_VERIFIED_PAYLOAD', message: expect.stringContaining('etc/edgeimage/initramfs.features saying verified-boot') }));
  expect(() => verifiedInitrd(kernelInitrdOf([], 'something-else\n'), OPTS)).toThrow(/found "something-else"/);
  expect(() => verifiedInitrd(Buffer.from('not an initramfs at all, long enough for a header'.repeat(4)), OPTS)).toThrow(/no cpio header/);
});

test.each(['etc/edgeimage/verified.env', 'etc/edgeimage/verity.list', 'etc/edgeimage/payload-key.pem'])('a kernel bundle initrd carrying %s (unpacked second, it would replace the signed one) is refused', (name) => {
  expect(() => verifiedInitrd(kernelInitrdOf([{ path: name, type: 'file', mode: 0o644, data: 'EDGE_VERIFIED=1\n' }]), OPTS)).toThrow(`no ${name} in the kernel bundle's initrd`);
});

test('the boot key goes into the signed part as etc/edgeimage/payload-key.pem; anything but one PEM public key is refused', () => {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
  expect(verifiedInitrdPart({ ...OPTS, payloadKey: pem }).includes(Buffer.from(`etc/edgeimage/payload-key.pem\0`))).toBe(true);
  expect(() => verifiedInitrdPart({ ...OPTS, payloadKey: `${pem}EDGE_GRADE=dangerous\n` })).toThrow('payloadKey: expected one PEM public key');
});

test('verifiedInitrd: the signed part first, then the kernel bundle\'s initrd as it is; an empty initrd is refused', () => {
  const kernelInitrd = kernelInitrdOf();
  const all = verifiedInitrd(kernelInitrd, OPTS);
  const part = verifiedInitrdPart(OPTS);
  expect(part.length % 4).toBe(0);
  expect(all.equals(Buffer.concat([part, kernelInitrd]))).toBe(true);
  expect(() => verifiedInitrd(Buffer.alloc(0), OPTS)).toThrow('verified boot payload: initrd: expected the kernel bundle\'s initrd, found "an empty file"');
});
