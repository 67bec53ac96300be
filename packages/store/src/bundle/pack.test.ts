import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EdgeimageError } from '@edgeimage/assertions';
import { SnapYamlError, StoreError } from '../errors.js';
import { fileDigest } from './digest.js';
import { readSnapYaml } from './inspect.js';
import { bundleFileName, MINIMUM_BUNDLE_SIZE, pack } from './pack.js';
import { fakeTool, helloTree, inDir, isRoot, listing, opensslSha3_384, useTempDirs, withEnv, writeTree, type Entry } from '@edgeimage/testkit/bundle-trees';
import { requires } from '@edgeimage/testkit/skips';

const tempDir = useTempDirs();

/** A fresh hello-kiosk tree in its own temp dir. */
function helloDir(extra: Record<string, Entry> = {}): string {
  return writeTree(join(tempDir(), 'hello-kiosk'), { ...helloTree(), ...extra });
}

async function packError(dir: string, output?: string): Promise<StoreError> {
  try {
    await pack(dir, { output });
  } catch (e) {
    // A missing host tool is @edgeimage/host-tools' error, of the same base class.
    if (e instanceof EdgeimageError) return e as StoreError;
    throw e;
  }
  throw new Error('pack succeeded');
}

/** Every file and directory under `root`, for "nothing was left behind" checks. */
function allPaths(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
}

describe('pack: the bundle file', () => {
  it('writes NAME_VERSION_ARCH.snap into the current directory and returns its path, size and sha3-384', async () => {
    const src = helloDir();
    const out = tempDir();
    const r = await inDir(out, () => pack(src));
    expect(r.path).toBe(join(out, 'hello-kiosk_1.0_all.snap'));
    expect(readdirSync(out)).toEqual(['hello-kiosk_1.0_all.snap']);
    expect(r.size).toBe(statSync(r.path).size);
    expect(r.sha3_384).toBe(opensslSha3_384(r.path));
    expect(r.snap).toMatchObject({ name: 'hello-kiosk', version: '1.0', type: 'app', architectures: ['all'] });
    expect(statSync(r.path).mode & 0o777).toBe(0o644);
  });

  it('joins several architectures with dashes in the default name', async () => {
    const src = helloDir({ 'meta/snap.yaml': 'name: multi\nversion: 2.1\narchitectures: [amd64, arm64]\n' });
    const r = await pack(src, { output: tempDir() });
    expect(basename(r.path)).toBe('multi_2.1_amd64-arm64.snap');
    expect(bundleFileName({ name: 'k', version: '6.1', architectures: ['arm64'] })).toBe('k_6.1_arm64.snap');
  });

  it('puts the default name inside an output directory', async () => {
    const out = tempDir();
    const r = await pack(helloDir(), { output: out });
    expect(r.path).toBe(join(out, 'hello-kiosk_1.0_all.snap'));
    expect(existsSync(r.path)).toBe(true);
  });

  it('writes the file named by output, replacing an older one', async () => {
    const out = tempDir();
    const target = join(out, 'my.snap');
    writeFileSync(target, 'old');
    const r = await pack(helloDir(), { output: target });
    expect(r.path).toBe(target);
    expect(readdirSync(out)).toEqual(['my.snap']);
    expect((await fileDigest(target)).sha3_384).toBe(r.sha3_384);
  });

  it('holds the tree with root owners, 1970 times, modes, symlinks and empty directories; xz, no fragments, no xattrs', async () => {
    const r = await pack(helloDir(), { output: tempDir() });
    const lines = listing(r.path);
    expect(lines.map((l) => l.replace(/^\S+ \S+ +\d+ \S+ \S+ squashfs-root/, '').trim()).sort()).toEqual(
      ['', '/bin', '/bin/hello', '/bin/hello-kiosk', '/meta', '/meta/snap.yaml', '/share', '/share/hello', '/share/hello/empty', '/share/hello/greeting.txt', '/share/hello/latest -> greeting.txt'].sort(),
    );
    for (const l of lines) expect(l).toMatch(/^\S+ 0\/0 +\d+ 1970-01-01 00:00 squashfs-root/);
    expect(lines.find((l) => l.endsWith('/bin/hello-kiosk'))).toMatch(/^-rwxr-xr-x /);
    expect(lines.find((l) => l.endsWith('/meta/snap.yaml'))).toMatch(/^-rw-r--r-- /);
    const sb = execFileSync('unsquashfs', ['-s', r.path], { encoding: 'utf8' });
    expect(sb).toContain('Compression xz');
    expect(sb).toContain('Fragments are not stored');
    expect(sb).toContain('Xattrs are not stored');
    expect(execFileSync('unsquashfs', ['-mkfs-time', r.path], { encoding: 'utf8' }).trim()).toBe('0');
  });

  it(`pads a small bundle to ${MINIMUM_BUNDLE_SIZE} bytes as snapd does, and it still reads`, async () => {
    const r = await pack(writeTree(join(tempDir(), 'tiny'), { 'meta/snap.yaml': "name: tiny\nversion: '1'\n" }), { output: tempDir() });
    expect(r.size).toBe(MINIMUM_BUNDLE_SIZE);
    expect((await readSnapYaml(r.path)).name).toBe('tiny');
  });
});

describe('pack: deterministic', () => {
  it('gives the same bytes for the same tree packed twice', async () => {
    const src = helloDir();
    const a = await pack(src, { output: join(tempDir(), 'a.snap') });
    const b = await pack(src, { output: join(tempDir(), 'b.snap') });
    expect(b.sha3_384).toBe(a.sha3_384);
    expect(readFileSync(b.path).equals(readFileSync(a.path))).toBe(true);
  });

  it('gives the same bytes for a copy made elsewhere, in reverse order, with other times and owners', async () => {
    const a = await pack(helloDir(), { output: tempDir() });
    const entries = Object.entries(helloTree()).reverse();
    const copy = writeTree(join(tempDir(), 'elsewhere', 'other-name'), Object.fromEntries(entries));
    let t = 1_000_000_000;
    for (const p of ['', ...allPaths(copy)]) {
      const full = join(copy, p);
      if (lstatSync(full).isSymbolicLink()) continue; // utimes and chown would follow the link
      utimesSync(full, t, (t += 86_400 * 97));
      if (isRoot) chownSync(full, 1234, 5678);
    }
    const b = await pack(copy, { output: tempDir() });
    expect(b.sha3_384).toBe(a.sha3_384);
  });

  it('gives different bytes when one byte of content changes', async () => {
    const a = await pack(helloDir(), { output: tempDir() });
    const b = await pack(helloDir({ 'share/hello/greeting.txt': 'hello, kiosk!\n' }), { output: tempDir() });
    expect(b.sha3_384).not.toBe(a.sha3_384);
  });

  it('ignores SOURCE_DATE_EPOCH (which makes mksquashfs refuse fixed times)', async () => {
    const src = helloDir();
    const a = await pack(src, { output: tempDir() });
    const b = await withEnv({ SOURCE_DATE_EPOCH: '1700000000' }, () => pack(src, { output: tempDir() }));
    expect(b.sha3_384).toBe(a.sha3_384);
  });

  it('repacking in the bundle directory itself leaves the earlier bundle out and gives the same bytes', async () => {
    const src = helloDir();
    const a = await inDir(src, () => pack('.'));
    const b = await inDir(src, () => pack('.'));
    expect(b.path).toBe(join(src, 'hello-kiosk_1.0_all.snap'));
    expect(b.sha3_384).toBe(a.sha3_384);
    expect(listing(b.path).some((l) => l.includes('.snap'))).toBe(false);
  });
});

describe('pack: bad input and failures leave no file behind', () => {
  it('a missing meta/snap.yaml is ERR_SNAP_YAML naming the path', async () => {
    const src = writeTree(join(tempDir(), 'no-yaml'), { 'bin/x': 'x', 'meta/gadget.yaml': 'volumes: {}\n' });
    const out = tempDir();
    const e = await packError(src, out);
    expect(e).toBeInstanceOf(SnapYamlError);
    expect(e.code).toBe('ERR_SNAP_YAML');
    expect(e.message).toBe(`${join(src, 'meta/snap.yaml')}: missing: a bundle directory needs meta/snap.yaml (at least name and version)`);
    expect(allPaths(out)).toEqual([]);
  });

  it('a tree without meta/ at all is the same error', async () => {
    const e = await packError(writeTree(join(tempDir(), 'bare'), { 'bin/x': 'x' }), tempDir());
    expect(e.code).toBe('ERR_SNAP_YAML');
    expect(e.message).toContain('meta/snap.yaml: missing');
  });

  it('an invalid meta/snap.yaml is ERR_SNAP_YAML with its line and column, and nothing is built', async () => {
    const src = helloDir({ 'meta/snap.yaml': "name: hello\nversion: '1'\ntype: widget\n" });
    const out = tempDir();
    const e = await packError(src, out);
    expect(e.message).toBe(`${join(src, 'meta/snap.yaml')}:3:7: type: invalid snap type "widget"; expected one of app, base, kernel, gadget, snapd, os`);
    expect(allPaths(out)).toEqual([]);
  });

  it('a meta/snap.yaml that is a symbolic link is refused (the bundle would hold the link, not the file)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'real.yaml'), "name: hello\nversion: '1'\n");
    const src = writeTree(join(dir, 'tree'), { 'meta/snap.yaml': { symlink: join(dir, 'real.yaml') } });
    const e = await packError(src, tempDir());
    expect(e.code).toBe('ERR_SNAP_YAML');
    expect(e.message).toContain('is a symbolic link');
  });

  it('a DIR that is not a directory is ERR_BUNDLE_SOURCE', async () => {
    const f = join(tempDir(), 'file');
    writeFileSync(f, 'x');
    expect((await packError(f)).code).toBe('ERR_BUNDLE_SOURCE');
    expect((await packError(join(tempDir(), 'missing'))).message).toContain('not a directory');
  });

  it('an output directory that does not exist is ERR_PACK_OUTPUT', async () => {
    const out = join(tempDir(), 'nope');
    const e = await packError(helloDir(), `${out}/`);
    expect(e.code).toBe('ERR_PACK_OUTPUT');
    expect(e.message).toBe(`${out}: no such directory to write hello-kiosk_1.0_all.snap into`);
    expect(existsSync(out)).toBe(false);
  });

  it('a missing mksquashfs is ERR_HOST_TOOL naming the tool and its Debian package', async () => {
    const out = tempDir();
    const e = await withEnv({ PATH: tempDir() }, () => packError(helloDir(), out));
    expect(e.code).toBe('ERR_HOST_TOOL');
    expect(e.message).toBe('mksquashfs is not installed (not found on PATH); install the Debian package squashfs-tools (apt-get install squashfs-tools)');
    expect(e.context).toEqual({ tool: 'mksquashfs', package: 'squashfs-tools' });
    expect(allPaths(out)).toEqual([]);
  });

  it('mksquashfs failing half-way leaves neither a partial bundle nor a temp file, and an older bundle intact', async () => {
    const bin = tempDir();
    // Writes part of an image to its output argument ($2), then fails as a full disk would.
    fakeTool(bin, 'mksquashfs', 'printf "hsqs partial image" > "$2"\necho "Write failed because No space left on device" >&2\nexit 1');
    const out = tempDir();
    const target = join(out, 'hello-kiosk_1.0_all.snap');
    writeFileSync(target, 'the previous bundle');
    const e = await withEnv({ PATH: `${bin}:${process.env['PATH']}` }, () => packError(helloDir(), out));
    expect(e.code).toBe('ERR_MKSQUASHFS');
    expect(e.message).toMatch(/^mksquashfs exited 1 packing .*hello-kiosk: Write failed because No space left on device$/);
    expect(readdirSync(out)).toEqual(['hello-kiosk_1.0_all.snap']);
    expect(readFileSync(target, 'utf8')).toBe('the previous bundle');
  });

  it('mksquashfs killed by a signal is an error too, with nothing left', async () => {
    const bin = tempDir();
    fakeTool(bin, 'mksquashfs', 'printf "hsqs" > "$2"\nkill -9 $$');
    const out = tempDir();
    const e = await withEnv({ PATH: `${bin}:${process.env['PATH']}` }, () => packError(helloDir(), out));
    expect(e.message).toContain('mksquashfs was stopped by SIGKILL');
    expect(allPaths(out)).toEqual([]);
  });

  // Permissions do not stop root: these two run only as an ordinary user.
  requires(isRoot ? 'root writes into a read-only directory: run as another user to see the refusal' : undefined).test('packing into a read-only directory fails and leaves nothing there', async () => {
    const out = tempDir();
    chmodSync(out, 0o555);
    const e = await packError(helloDir(), out);
    expect(e.code).toBe('ERR_MKSQUASHFS');
    expect(allPaths(out)).toEqual([]);
  });

  requires(isRoot ? 'root reads an unreadable file: run as another user to see the refusal' : undefined).test('an unreadable file in the tree fails the build instead of being left out', async () => {
    const src = helloDir({ 'secret': { data: 'x', mode: 0o000 } });
    const out = tempDir();
    expect((await packError(src, out)).code).toBe('ERR_MKSQUASHFS');
    expect(allPaths(out)).toEqual([]);
  });
});
