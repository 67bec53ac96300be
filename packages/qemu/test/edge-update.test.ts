/**
 * The device's edge-update, run for real — busybox sh, Debian's openssl and the base bundle's own
 * files — in a chroot of the amd64 busybox-base bundle (root needed; CI runs as root). The slot it
 * sees is a folder standing in for the mounted active slot; no disk is touched: every update here
 * is refused before writing, except the valid ones, which pass verification and then stop at the
 * missing slot partition (the refuse scenario under QEMU checks slot b's bytes on a real disk).
 * The source is read once (a FIFO works). Entries with absolute paths, `..`, `.` or empty
 * components (aliases of the manifest), twice, not in the manifest, links; a manifest that does
 * not verify, a key id that is not one, a key of another account, another model, an older or
 * equal revision, a wrong digest, a missing or an extra file: each is REFUSED (exit 3) with the
 * reason, and the work folder on /writable is gone.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync, sign as rsaSign, type KeyObject } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BootKeys, Keyring } from '@edgeimage/assertions';
import { encodeUpdateManifest, signManifest, type SlotFile } from '@edgeimage/composer';
import { REPO as ROOT } from '@edgeimage/testkit/repo';
import { isRoot, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { missingRoot, requires } from '@edgeimage/testkit/skips';

const keys = new Keyring(join(ROOT, 'signing-keys.example'));

let work: string;
let chroot: string;
const brand = () => keys.load('brand');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MODEL = (rev: number, model = 'pc-amd64') => Buffer.from(`type: model\nauthority-id: example-brand\nbrand-id: example-brand\nmodel: ${model}\nrevision: ${rev}\n\nSIGNATURE\n`);
const APP = Buffer.from('the app bundle, unchanged\n');
const NEW = Buffer.from('a new bundle\n');

const ready = useBaseChroot('edgeimage-edge-update-', isRoot, (w, c) => {
  work = w;
  chroot = c;
  // the running system as the initramfs leaves it: slot a mounted, with the brand's key in its trust store
  const run = join(chroot, 'run/edgeimage');
  mkdirSync(join(run, 'slot/trust'), { recursive: true });
  mkdirSync(join(run, 'slot/bundles'), { recursive: true });
  writeFileSync(join(run, 'slot/model.assert'), MODEL(1));
  writeFileSync(join(run, 'slot/bundles/app_1.snap'), APP);
  writeFileSync(join(run, 'slot/trust', `example-brand-${brand().publicKey.id.slice(0, 12)}.pem`), brand().publicKey.toPem());
  writeFileSync(join(run, 'slot-name'), 'a\n');
  writeFileSync(join(run, 'devices'), 'slot_dev=/dev/vda2\ndata_dev=/dev/vda4\nboot_dev=\n');
});

interface Case {
  revision?: number;
  model?: string;
  signer?: string;
  files?: { path: string; data: Buffer; inTar: boolean }[];
  /** Changes the manifest after signing. */
  tamperManifest?: boolean;
  /** Changes a payload file after the manifest was made. */
  tamperPayload?: boolean;
  extraEntries?: (dir: string) => string[];
}

/** Builds the update tar with GNU tar (which can write the hostile entries archiver would not). */
function makeUpdate(name: string, c: Case = {}): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  const top = join(dir, 'edgeimage-update');
  mkdirSync(join(top, 'slot'), { recursive: true });
  const files = c.files ?? [
    { path: 'model.assert', data: MODEL(c.revision ?? 2, c.model), inTar: true },
    { path: 'bundles/app_1.snap', data: APP, inTar: false },
    { path: 'bundles/new_1.snap', data: NEW, inTar: true },
  ];
  const signer = keys.load(c.signer ?? 'brand');
  const slotFiles: SlotFile[] = files.map((f) => ({ path: f.path, sha256: sha(f.data), size: f.data.length }));
  let manifest = encodeUpdateManifest({ 'brand-id': 'example-brand', model: c.model ?? 'pc-amd64', revision: c.revision ?? 2, 'sign-key-sha3-384': signer.publicKey.id, files: slotFiles });
  const sig = signManifest(manifest, signer);
  if (c.tamperManifest) manifest = Buffer.from(manifest.toString().replace('revision: 2', 'revision: 9'));
  writeFileSync(join(top, 'manifest'), manifest);
  writeFileSync(join(top, 'manifest.sig'), sig);
  const entries = ['edgeimage-update/manifest', 'edgeimage-update/manifest.sig'];
  for (const f of files.filter((x) => x.inTar)) {
    const p = join(top, 'slot', f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, c.tamperPayload ? Buffer.concat([f.data, Buffer.from('!')]) : f.data);
    entries.push(`edgeimage-update/slot/${f.path}`);
  }
  entries.push(...(c.extraEntries?.(dir) ?? []));
  const tar = join(chroot, 'tmp', `${name}.tar`);
  execFileSync('tar', ['--format=ustar', '-P', '-C', dir, '-cf', tar, ...entries]);
  return `/tmp/${name}.tar`;
}

/** A ustar archive written header by header: the hostile entries (aliases, duplicates, links, pax records) tar tools normalise or will not write. */
function ustar(entries: { name: string; data?: Buffer; type?: string; link?: string; size?: number }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'latin1');
    h.write('0000644\0', 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${(e.size ?? data.length).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write('00000000000\0', 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write(e.type ?? '0', 156, 'latin1');
    if (e.link) h.write(e.link, 157, 100, 'latin1');
    h.write('ustar\u000000', 257, 'latin1');
    const sum = h.reduce((n, b) => n + b, 0);
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const EVIL = Buffer.from('a bundle nobody signed\n');
const file = (path: string, data: Buffer): SlotFile => ({ path, sha256: sha(data), size: data.length });
const slotFiles = [file('model.assert', MODEL(2)), file('bundles/app_1.snap', APP), file('bundles/new_1.snap', NEW)];
const manifestOf = (files: SlotFile[], keyId = brand().publicKey.id) => encodeUpdateManifest({ 'brand-id': 'example-brand', model: 'pc-amd64', revision: 2, 'sign-key-sha3-384': keyId, files });
/** A manifest the brand signed, with the key id line replaced before signing (a key id encodeUpdateManifest would not write). */
function signedWithKeyId(keyId: string): Buffer {
  return Buffer.from(manifestOf(slotFiles).toString().replace(`sign-key-sha3-384: ${brand().publicKey.id}\n`, `sign-key-sha3-384: ${keyId}\n`));
}
/** The valid update's entries (its manifest as given, signed by the brand), then `extra`; written to /tmp/NAME.tar in the chroot. */
function writeHostile(name: string, extra: Parameters<typeof ustar>[0], manifest = manifestOf(slotFiles)): string {
  const tar = ustar([
    { name: 'edgeimage-update/manifest', data: manifest },
    { name: 'edgeimage-update/manifest.sig', data: signManifest(manifest, brand()) },
    { name: 'edgeimage-update/slot/bundles/new_1.snap', data: NEW },
    { name: 'edgeimage-update/slot/model.assert', data: MODEL(2) },
    ...extra,
  ]);
  writeFileSync(join(chroot, 'tmp', `${name}.tar`), tar);
  return `/tmp/${name}.tar`;
}
/** An unsigned manifest that lists a bundle of its own besides the signed ones: what an alias of the manifest would smuggle in. */
const unsigned = () => manifestOf([...slotFiles, file('bundles/evil_1.snap', EVIL)].sort((a, b) => (a.path < b.path ? -1 : 1)));

function apply(source: string): { status: number | null; out: string } {
  // the timeout only stops a run that waits for a second read of a FIFO no one writes to any more
  const r = spawnSync('chroot', [chroot, '/usr/bin/edge-update', 'apply', source], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 120_000, killSignal: 'SIGKILL' });
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error ? `\n(${r.error.message})` : ''}` };
}

/**
 * Runs `inner` (a shell command) in the chroot with /proc mounted, in a mount namespace of its own:
 * with /proc, the stale-folder cleanup sees that the pid of a planted folder is edge-update's own.
 */
function inChrootWithProc(inner: string): { status: number | null; out: string } {
  const script = ['set -e', 'mount -t proc proc "$1/proc"', 'set +e', 'chroot "$1" /bin/sh -c "$2"'].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', chroot, inner], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 120_000, killSignal: 'SIGKILL' });
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error ? `\n(${r.error.message})` : ''}` };
}

/** What a run may leave in the chroot's writable places: nothing of its own (its root-only parent folder of work folders aside). */
function leftBehind(): string[] {
  const spool = join(chroot, 'writable');
  const parent = join(spool, '.edgeimage');
  return [
    ...(existsSync(spool) ? readdirSync(spool).filter((f) => f !== '.edgeimage').map((f) => `writable/${f}`) : []),
    ...(existsSync(parent) ? readdirSync(parent).map((f) => `writable/.edgeimage/${f}`) : []),
    ...readdirSync(join(chroot, 'run/edgeimage')).filter((f) => !['agent', 'slot', 'slot-name', 'devices', 'verified.env', 'payload-key.pem'].includes(f)).map((f) => `run/edgeimage/${f}`),
  ];
}


requires(missingRoot('edge-update in a chroot of the base bundle')).describe('edge-update apply on the device (chroot of the amd64 base)', () => {
  test('a valid delta update verifies (signature, model, revision, every digest, the unchanged bundle taken from the running slot), then goes on to write slot b', () => {
    ready();
    const r = apply(makeUpdate('valid'));
    expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
    // this chroot has no slot b partition: the first write step is where it stops
    expect(r.out).toContain('edge-update: FAILED: no partition for slot b');
    expect(r.status).toBe(1);
    expect(leftBehind()).toEqual([]);
  });

  test('one apply at a time (the network poller, a stick, a run by hand would write the same slot): a live one stops the next before it reads anything; one whose process is gone is taken over', async () => {
    ready();
    const lock = join(chroot, 'run/edgeimage/edge-update.apply.lock');
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), `${other.pid}\n`);
      let r = apply(makeUpdate('valid'));
      expect(r.out).toContain(`edge-update: FAILED: another edge-update apply is running (pid ${other.pid}): not applied`);
      expect(r.out).not.toContain('verified');
      expect(r.status).toBe(1);
      // the other's lock is left as it was
      expect(readFileSync(join(lock, 'pid'), 'utf8')).toBe(`${other.pid}\n`);
      // (reaped: a zombie still answers kill -0)
      const gone = new Promise((done) => other.once('exit', done));
      other.kill('SIGKILL');
      await gone;
      r = apply(makeUpdate('valid'));
      expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
      expect(leftBehind()).toEqual([]);
    } finally {
      other.kill('SIGKILL');
      rmSync(lock, { recursive: true, force: true });
    }
  });

  const refused: [string, Case, RegExp][] = [
    // busybox tar lists these names already stripped of the leading / and of the ../ (as it would
    // extract them): what is left lies outside edgeimage-update/, and is refused as such
    ['an entry with an absolute path', { extraEntries: (dir) => { writeFileSync(join(dir, 'evil'), 'x'); return [join(dir, 'evil')]; } }, /REFUSED: entry \/tmp\/.*\/evil is not in canonical form/],
    ['an entry with ..', { extraEntries: (dir) => { mkdirSync(join(dir, 'edgeimage-update/slot/x'), { recursive: true }); writeFileSync(join(dir, 'edgeimage-update/evil'), 'x'); return ['edgeimage-update/slot/x/../../evil']; } }, /REFUSED: entry edgeimage-update\/slot\/x\/\.\.\/\.\.\/evil is not in canonical form/],
    ['a symlink entry', { extraEntries: (dir) => { symlinkSync('/etc/passwd', join(dir, 'edgeimage-update/slot/link')); return ['edgeimage-update/slot/link']; } }, /REFUSED: entry edgeimage-update\/slot\/link is a symbolic link: an update holds regular files only/],
    ['a manifest changed after signing', { tamperManifest: true }, /REFUSED: the signature of the manifest does not verify with example-brand's key/],
    ['a manifest signed by the store, not the brand', { signer: 'store' }, /REFUSED: signed with key \S+, which is not a key of brand example-brand in the device's trust store/],
    ['an update for another model of the brand', { model: 'pc-amd64-lab' }, /REFUSED: the update is for model example-brand\/pc-amd64-lab; this device is example-brand\/pc-amd64/],
    ['the installed revision again', { revision: 1 }, /REFUSED: revision 1 is not higher than the installed revision 1 \(anti-rollback\)/],
    ['an older revision', { revision: 0 }, /REFUSED: revision 0 is not higher than the installed revision 1 \(anti-rollback\)/],
    ['a payload file whose bytes differ from the signed digest', { tamperPayload: true }, /REFUSED: (model\.assert|bundles\/new_1\.snap): digest or size does not match the signed manifest/],
    ['a file neither in the update nor in the running slot', { files: [{ path: 'model.assert', data: MODEL(2), inTar: true }, { path: 'bundles/gone_3.snap', data: NEW, inTar: false }] }, /REFUSED: bundles\/gone_3\.snap is neither in the update nor in slot a/],
    ['a payload file the signed manifest does not list', { extraEntries: (dir) => { writeFileSync(join(dir, 'edgeimage-update/slot/unlisted'), 'x'); return ['edgeimage-update/slot/unlisted']; } }, /REFUSED: edgeimage-update\/slot\/unlisted is in the update but not in its signed manifest/],
  ];
  describe('on a verified device (its slot holds the boot key the firmware checks)', () => {
    const db = new BootKeys(join(ROOT, 'signing-keys.example')).signer('db');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const UKI = Buffer.from('a unified kernel image, as the firmware would load it\n');
    const keyFile = () => join(chroot, 'run/edgeimage/payload-key.pem');
    const verifiedEnv = () => join(chroot, 'run/edgeimage/verified.env');
    const payload = (key: KeyObject | undefined) => [
      { path: 'model.assert', data: MODEL(2), inTar: true },
      { path: 'bundles/app_1.snap', data: APP, inTar: false },
      { path: 'boot/uki.efi', data: UKI, inTar: true },
      ...(key ? [{ path: 'boot/payload.sig', data: rsaSign('sha256', UKI, key), inTar: true }] : []),
    ];
    const withKey = (run: () => void) => {
      ready();
      mkdirSync(dirname(keyFile()), { recursive: true });
      writeFileSync(keyFile(), new X509Certificate(db.certPem).publicKey.export({ type: 'spki', format: 'pem' }));
      writeFileSync(verifiedEnv(), 'EDGE_VERIFIED=1\nEDGE_BASE=bundles/base_1.snap\nEDGE_APPS=""\nEDGE_GRADE=signed\n');
      // a key planted on the slot partition is never used: only the one of the booted payload
      mkdirSync(join(chroot, 'run/edgeimage/slot/boot'), { recursive: true });
      writeFileSync(join(chroot, 'run/edgeimage/slot/boot/payload-key.pem'), generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }));
      try {
        run();
      } finally {
        rmSync(keyFile(), { force: true });
        rmSync(verifiedEnv(), { force: true });
        rmSync(join(chroot, 'run/edgeimage/slot/boot/payload-key.pem'), { force: true });
      }
    };
    test('an update whose payload is signed with the device\'s boot key goes on to write slot b', () =>
      withKey(() => {
        const r = apply(makeUpdate('vb-good', { files: payload(db.key) }));
        expect(r.out).toContain('verified: 4 files; writing slot b');
      }));
    test('a payload signed with another key is REFUSED before writing: the firmware would refuse it', () =>
      withKey(() => {
        const r = apply(makeUpdate('vb-other', { files: payload(other) }));
        expect(r.out).toMatch(/REFUSED: the update's boot payload boot\/uki\.efi is not signed with this device's boot key \(of the payload it booted\)/);
        expect(r.out).not.toContain('writing slot');
        expect(r.status).toBe(3);
        expect(leftBehind()).toEqual([]);
      }));
    test('a verified device without the boot key of its payload refuses every update (it cannot check one)', () =>
      withKey(() => {
        rmSync(keyFile());
        const r = apply(makeUpdate('vb-nokey', { files: payload(db.key) }));
        expect(r.out).toMatch(/REFUSED: this device booted a verified payload without a boot key/);
        expect(r.status).toBe(3);
      }));
    test('an update without a signed payload (made without --boot-keys) is REFUSED before writing', () =>
      withKey(() => {
        const r = apply(makeUpdate('vb-none', { files: payload(undefined) }));
        expect(r.out).toMatch(/REFUSED: this device boots only a signed boot payload, and the update has none/);
        expect(r.status).toBe(3);
        expect(leftBehind()).toEqual([]);
      }));
  });

  test.each(refused)('refused before writing anything: %s', (name, c, message) => {
    ready();
    const r = apply(makeUpdate(name.replace(/\W+/g, '-'), c));
    expect(r.out).toMatch(message);
    expect(r.out).not.toContain('writing slot');
    expect(r.status).toBe(3);
    expect(leftBehind()).toEqual([]);
  });

  test('a source that can be read only once (a FIFO, fed the update then endless zeros) is read once, up to the end-of-archive mark, and verifies', async () => {
    ready();
    const tar = makeUpdate('fifo');
    const fifo = join(chroot, 'tmp/update.fifo');
    rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    // cat ends on the broken pipe once edge-update closes its end: a second open would wait for a writer forever
    const writer = spawn('sh', ['-c', 'exec cat "$1" /dev/zero > "$2"', 'feed', join(chroot, tar), fifo], { stdio: 'ignore' });
    const fed = new Promise<number | null>((resolve) => writer.on('exit', (code) => resolve(code)));
    const r = apply('/tmp/update.fifo');
    writer.kill('SIGKILL');
    await fed;
    expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
    expect(r.out).toContain('edge-update: FAILED: no partition for slot b');
    expect(r.status).toBe(1);
    expect(leftBehind()).toEqual([]);
  });

  const hostile: [string, () => string, RegExp][] = [
    // an alias of the manifest after the signed one: tar would extract it over the verified manifest
    ['a second manifest under the alias edgeimage-update/./manifest', () => writeHostile('alias-dot', [{ name: 'edgeimage-update/./manifest', data: unsigned() }]), /REFUSED: entry edgeimage-update\/\.\/manifest is not in canonical form/],
    ['a second manifest under the alias edgeimage-update//manifest', () => writeHostile('alias-slash', [{ name: 'edgeimage-update//manifest', data: unsigned() }]), /REFUSED: entry edgeimage-update\/\/manifest is not in canonical form/],
    ['a slot entry with a trailing /', () => writeHostile('trailing', [{ name: 'edgeimage-update/slot/bundles/', data: EVIL }]), /REFUSED: entry edgeimage-update\/slot\/bundles\/ is not in canonical form/],
    ['the manifest twice', () => writeHostile('dup-manifest', [{ name: 'edgeimage-update/manifest', data: unsigned() }]), /REFUSED: entry edgeimage-update\/manifest appears twice/],
    ['a slot file twice, the second with other bytes', () => writeHostile('dup-slot', [{ name: 'edgeimage-update/slot/bundles/new_1.snap', data: EVIL }]), /REFUSED: entry edgeimage-update\/slot\/bundles\/new_1\.snap appears twice/],
    ['a slot file the signed manifest does not list', () => writeHostile('unlisted', [{ name: 'edgeimage-update/slot/bundles/evil_1.snap', data: EVIL }]), /REFUSED: edgeimage-update\/slot\/bundles\/evil_1\.snap is in the update but not in its signed manifest/],
    ['a hard link to the manifest', () => writeHostile('hardlink', [{ name: 'edgeimage-update/slot/bundles/app_1.snap', type: '1', link: 'edgeimage-update/manifest' }]), /REFUSED: entry edgeimage-update\/slot\/bundles\/app_1\.snap is a hard link: an update holds regular files only/],
    ['a pax record renaming the next entry', () => writeHostile('pax', [{ name: 'edgeimage-update/PaxHeaders/x', type: 'x', data: Buffer.from('35 path=edgeimage-update/manifest\n') }]), /REFUSED: entry edgeimage-update\/PaxHeaders\/x is of tar type x, not a regular file/],
    ['an entry outside edgeimage-update/', () => writeHostile('outside', [{ name: 'etc/passwd', data: EVIL }]), /REFUSED: entry etc\/passwd is neither the manifest, its signature nor a file under edgeimage-update\/slot\//],
    ['a signature before the manifest', () => { const m = manifestOf(slotFiles); writeFileSync(join(chroot, 'tmp/sig-first.tar'), ustar([{ name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/manifest', data: m }])); return '/tmp/sig-first.tar'; }, /REFUSED: entry edgeimage-update\/manifest\.sig comes first: expected edgeimage-update\/manifest/],
    ['a manifest bigger than 1 MiB (refused from its header, before its bytes are read)', () => { writeFileSync(join(chroot, 'tmp/big-manifest.tar'), ustar([{ name: 'edgeimage-update/manifest', data: Buffer.alloc((1 << 20) + 1, 0x61) }])); return '/tmp/big-manifest.tar'; }, /REFUSED: entry edgeimage-update\/manifest is 1048577 bytes, more than the 1048576 allowed/],
    // the signed manifest is checked before the slot files are read: an update for another model
    // is refused as such, whatever its slot files would cost
    ['an update for another model whose slot files would not fit: refused for its model', () => { const m = encodeUpdateManifest({ 'brand-id': 'example-brand', model: 'pc-amd64-lab', revision: 2, 'sign-key-sha3-384': brand().publicKey.id, files: slotFiles }); writeFileSync(join(chroot, 'tmp/other-model-big.tar'), ustar([{ name: 'edgeimage-update/manifest', data: m }, { name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/slot/bundles/new_1.snap', size: 0o77777777777 }])); return '/tmp/other-model-big.tar'; }, /REFUSED: the update is for model example-brand\/pc-amd64-lab; this device is example-brand\/pc-amd64/],
    ['an old revision whose slot file is cut short: refused for its revision', () => { const m = encodeUpdateManifest({ 'brand-id': 'example-brand', model: 'pc-amd64', revision: 1, 'sign-key-sha3-384': brand().publicKey.id, files: slotFiles }); const t = ustar([{ name: 'edgeimage-update/manifest', data: m }, { name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/slot/bundles/new_1.snap', data: NEW }]); writeFileSync(join(chroot, 'tmp/old-cut.tar'), t.subarray(0, t.length - 1024 - 512 + 4)); return '/tmp/old-cut.tar'; }, /REFUSED: revision 1 is not higher than the installed revision 1 \(anti-rollback\)/],
    // held to the verified manifest from its header: no byte of it is read (none follows here)
    ['a slot entry the signed manifest does not list, refused from its header', () => writeHostile('unlisted-header', [{ name: 'edgeimage-update/slot/bundles/evil_1.snap', size: 1 << 20 }]), /REFUSED: edgeimage-update\/slot\/bundles\/evil_1\.snap is in the update but not in its signed manifest/],
    ['a slot entry of another size than the signed manifest says, refused from its header', () => { const m = manifestOf(slotFiles); writeFileSync(join(chroot, 'tmp/size-header.tar'), ustar([{ name: 'edgeimage-update/manifest', data: m }, { name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/slot/bundles/new_1.snap', size: 1 << 20 }])); return '/tmp/size-header.tar'; }, /REFUSED: bundles\/new_1\.snap: digest or size does not match the signed manifest \(the entry is 1048576 bytes, the manifest says 13\)/],
    // a key id is printed before the signature is checked: never a terminal's control bytes
    ['a key id with terminal escapes', () => writeHostile('key-esc', [], signedWithKeyId('\x1b]0;owned\x07\x1b[2J')), /REFUSED: sign-key-sha3-384 '\?\?0\?owned\?\?\?2J' is not a key id/],
    ['a name with a space', () => writeHostile('space', [{ name: 'edgeimage-update/slot/a b', data: EVIL }]), /REFUSED: \/tmp\/space\.tar is not a tar stream of regular files: at byte \d+, a name with byte 0x20/],
    // the key id becomes part of a path in the trust store: only a key id may
    ['a key id that climbs out of the trust store (../../x)', () => writeHostile('key-dots', [], signedWithKeyId('../../x')), /REFUSED: sign-key-sha3-384 '\.\.\/\.\.\/x' is not a key id \(64 characters of A-Za-z0-9_-\)/],
    ['a key id of 63 characters (the brand key id, cut)', () => writeHostile('key-63', [], signedWithKeyId(brand().publicKey.id.slice(0, 63))), /REFUSED: sign-key-sha3-384 '\S{63}' is 63 characters, not a key id/],
  ];
  test.each(hostile)('refused while reading, before writing anything: %s', (_name, make, message) => {
    ready();
    const r = apply(make());
    expect(r.out).toMatch(message);
    expect(r.out).not.toContain('writing slot');
    expect(r.status).toBe(3);
    expect(leftBehind()).toEqual([]);
  });

  test('a full update too big for system-data, where it is received, is refused from its header as not fitting, not as a failed read halfway', () => {
    ready();
    const m = manifestOf(slotFiles);
    // the header claims 2 MiB; a 1 MiB system-data (a tmpfs over /writable, in a mount namespace of its own)
    writeFileSync(join(chroot, 'tmp/no-room.tar'), ustar([{ name: 'edgeimage-update/manifest', data: m }, { name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/slot/bundles/new_1.snap', size: 2 << 20 }]));
    const script = 'mount -t tmpfs -o size=1m,mode=0755 none "$1/writable" && chroot "$1" /usr/bin/edge-update apply /tmp/no-room.tar';
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', chroot], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 120_000, killSignal: 'SIGKILL' });
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toMatch(/REFUSED: entry edgeimage-update\/slot\/bundles\/new_1\.snap is 2097152 bytes, more than the \d+ allowed \(the free space of \/writable, where the update is received: a delta update \(update create --from\) carries only the files that changed\)/);
    expect(r.status).toBe(3);
  });

  test('many small slot files are bounded by the room they take once received (whole blocks), not by their bytes in the tar', () => {
    ready();
    // 300 one-byte files, all listed and signed: 300 KiB of tar, more than 1 MiB of blocks
    const small = Array.from({ length: 300 }, (_, i) => ({ path: `bundles/s${String(i).padStart(3, '0')}`, data: Buffer.from([0x61 + (i % 26)]) }));
    const files = [file('model.assert', MODEL(2)), ...small.map((f) => file(f.path, f.data))].sort((a, b) => (a.path < b.path ? -1 : 1));
    const m = manifestOf(files);
    writeFileSync(join(chroot, 'tmp/small.tar'), ustar([{ name: 'edgeimage-update/manifest', data: m }, { name: 'edgeimage-update/manifest.sig', data: signManifest(m, brand()) }, { name: 'edgeimage-update/slot/model.assert', data: MODEL(2) }, ...small.map((f) => ({ name: `edgeimage-update/slot/${f.path}`, data: f.data }))]));
    const script = 'mount -t tmpfs -o size=1m,mode=0755 none "$1/writable" && chroot "$1" /usr/bin/edge-update apply /tmp/small.tar';
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', chroot], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 120_000, killSignal: 'SIGKILL' });
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toMatch(/REFUSED: \/tmp\/small\.tar: the update would take more than \d+ bytes \(the free space of \/writable, where the update is received.*\) with entry edgeimage-update\/slot\/bundles\/s\d{3}: not read further/);
    expect(r.status).toBe(3);
  });

  test('a work folder left on /writable by a run that crashed (its process gone) is removed by the next run', () => {
    ready();
    mkdirSync(join(chroot, 'writable/.edgeimage/update.999999/e.0'), { recursive: true, mode: 0o700 });
    const r = apply(makeUpdate('after-crash', { revision: 1 }));
    expect(r.out).toMatch(/REFUSED: revision 1 is not higher/);
    expect(leftBehind()).toEqual([]);
    // the parent of the work folders: root's, 0700, so that nothing else on system-data can enter it
    const st = statSync(join(chroot, 'writable/.edgeimage'));
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o700]);
  });

  describe('the work folder cannot be planted by whatever else writes system-data', () => {
    /** A folder of the planter's, which the run must neither write to nor empty. */
    const victim = () => join(chroot, 'victim');
    const victimFiles = () => readdirSync(victim()).sort();
    const clear = () => {
      for (const f of readdirSync(join(chroot, 'writable'))) rmSync(join(chroot, 'writable', f), { recursive: true, force: true });
    };
    beforeEach(() => {
      clear();
      rmSync(victim(), { recursive: true, force: true });
      mkdirSync(victim());
      writeFileSync(join(victim(), 'planted'), 'the planter\'s file\n');
      chownSync(victim(), 1000, 1000);
    });
    afterEach(() => {
      clear();
      rmSync(victim(), { recursive: true, force: true });
    });

    test('a link at the work folder\'s path for the pid edge-update gets (the old /writable/.edge-update.PID and the new one): never written through, the link\'s target untouched', () => {
      ready();
      const tar = makeUpdate('planted-link');
      mkdirSync(join(chroot, 'writable/.edgeimage'), { mode: 0o700 });
      // $$ of this shell is edge-update's pid after exec
      const r = inChrootWithProc(`ln -s /victim /writable/.edge-update.$$ && ln -s /victim /writable/.edgeimage/update.$$ && exec /usr/bin/edge-update apply ${tar}`);
      expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
      expect(victimFiles()).toEqual(['planted']);
      // the link in edge-update's own folder is removed (the link alone), never followed
      expect(readdirSync(join(chroot, 'writable/.edgeimage'))).toEqual([]);
    });

    test('a folder of the planter\'s at the work folder\'s path for the pid edge-update gets: never used', () => {
      ready();
      const tar = makeUpdate('planted-dir');
      const r = inChrootWithProc(`mkdir /writable/.edge-update.$$ && echo x > /writable/.edge-update.$$/planted && chown -R 1000:1000 /writable/.edge-update.$$ && exec /usr/bin/edge-update apply ${tar}`);
      expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
      // neither written to nor removed: not edge-update's
      const planted = readdirSync(join(chroot, 'writable')).filter((f) => f.startsWith('.edge-update.'));
      expect(planted).toHaveLength(1);
      expect(readdirSync(join(chroot, 'writable', planted[0]!))).toEqual(['planted']);
      expect(readdirSync(join(chroot, 'writable/.edgeimage'))).toEqual([]);
    });

    test.each([
      ['a link to a folder of the planter\'s', () => symlinkSync('/victim', join(chroot, 'writable/.edgeimage')), /FAILED: \/writable\/\.edgeimage is a symbolic link, not edge-update's own folder: not used/],
      ['a folder of the planter\'s', () => { mkdirSync(join(chroot, 'writable/.edgeimage'), { mode: 0o755 }); chownSync(join(chroot, 'writable/.edgeimage'), 1000, 1000); }, /FAILED: \/writable\/\.edgeimage is not a folder of root's with mode 0700 \(found: directory, owner 1000, mode 755\): not used/],
      ['a folder of root\'s that others may enter (0777)', () => { mkdirSync(join(chroot, 'writable/.edgeimage')); chmodSync(join(chroot, 'writable/.edgeimage'), 0o777); }, /FAILED: \/writable\/\.edgeimage is not a folder of root's with mode 0700 \(found: directory, owner 0, mode 777\): not used/],
    ])('the parent of the work folders planted as %s: FAILED before reading the update, nothing written', (_name, plant, message) => {
      ready();
      const tar = makeUpdate('planted-parent');
      plant();
      const r = apply(tar);
      expect(r.out).toMatch(message);
      expect(r.out).not.toContain('verified');
      expect(r.status).toBe(1);
      expect(victimFiles()).toEqual(['planted']);
    });
  });

  test('scan looks at each other disk\'s first 512-byte header with the update reader only: a GNU long name or pax record busybox tar would list as edgeimage-update/manifest, another tar and garbage are passed over; the update is applied from its disk', () => {
    ready();
    // the boot disk as scan finds it without edgeimage.bootpart: the disk of the running slot's
    // partition (/dev/vda2, a folder standing in under /sys/class/block/block)
    mkdirSync(join(chroot, 'sys/class/block/vda2'), { recursive: true });
    writeFileSync(join(chroot, 'sys/class/block/vda2/partition'), '2\n');
    const valid = readFileSync(join(chroot, makeUpdate('scan')));
    const disks: Record<string, Buffer> = {
      // busybox tar lists these as edgeimage-update/manifest: a GNU long name, a pax path record
      sdv: ustar([{ name: '././@LongLink', type: 'L', data: Buffer.from('edgeimage-update/manifest\0') }, { name: 'x', data: NEW }]),
      sdw: ustar([{ name: 'edgeimage-update/PaxHeaders/x', type: 'x', data: Buffer.from('34 path=edgeimage-update/manifest\n') }, { name: 'x', data: NEW }]),
      sdx: Buffer.from('this is not a tar archive\n'.repeat(40)),
      sdy: ustar([{ name: 'photos/cat.jpg', data: Buffer.from('meow') }]),
      sdz: valid,
    };
    try {
      for (const [name, bytes] of Object.entries(disks)) {
        mkdirSync(join(chroot, 'sys/block', name), { recursive: true });
        writeFileSync(join(chroot, 'dev', name), bytes);
      }
      const r = spawnSync('chroot', [chroot, '/usr/bin/edge-update', 'scan'], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 120_000 });
      const out = `${r.stdout}${r.stderr}`;
      expect(out.match(/found an update on \S+/g)).toEqual(['found an update on /dev/sdz']);
      expect(out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
      expect(out).toContain('edge-update: FAILED: no partition for slot b');
      expect(leftBehind()).toEqual([]);
    } finally {
      rmSync(join(chroot, 'sys/block'), { recursive: true, force: true });
      rmSync(join(chroot, 'sys/class'), { recursive: true, force: true });
      for (const name of Object.keys(disks)) rmSync(join(chroot, 'dev', name), { force: true });
    }
  });

  test('not a tar at all', () => {
    ready();
    writeFileSync(join(chroot, 'tmp/garbage.tar'), 'this is not a tar archive\n'.repeat(40));
    const r = apply('/tmp/garbage.tar');
    expect(r.out).toMatch(/REFUSED: \/tmp\/garbage\.tar is not a tar stream/);
    expect(r.status).toBe(3);
    expect(leftBehind()).toEqual([]);
  });
});
