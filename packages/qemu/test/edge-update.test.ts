/**
 * The device's edge-update, run for real — busybox sh, Debian's openssl and the base bundle's own
 * files — in a chroot of the amd64 busybox-base bundle (root needed; CI runs as root). The slot it
 * sees is a folder standing in for the mounted active slot; no disk is touched: every update here
 * is refused before writing, except the valid one, which passes verification and then stops at
 * the missing slot partition. Entries with absolute paths, `..` or links, a manifest that does not
 * verify, a key of another account, another model, an older or equal revision, a wrong digest, a
 * missing or an extra file: each is REFUSED (exit 3) with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Keyring } from '@edgeimage/assertions';
import { encodeUpdateManifest, signManifest, type SlotFile } from '@edgeimage/composer';
import { ROOT, isRoot, unpackBase } from './helpers-base-chroot.js';

const keys = new Keyring(join(ROOT, 'signing-keys.example'));

let work: string;
let chroot: string;
let setupError: string | undefined;
const brand = () => keys.load('brand');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MODEL = (rev: number, model = 'pc-amd64') => Buffer.from(`type: model\nauthority-id: example-brand\nbrand-id: example-brand\nmodel: ${model}\nrevision: ${rev}\n\nSIGNATURE\n`);
const APP = Buffer.from('the app bundle, unchanged\n');
const NEW = Buffer.from('a new bundle\n');

beforeAll(() => {
  if (!isRoot) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-edge-update-'));
  chroot = join(work, 'root');
  try {
    unpackBase(chroot);
  } catch (e) {
    setupError = (e as Error).message;
    return;
  }
  // the running system as the initramfs leaves it: slot a mounted, with the brand's key in its trust store
  const run = join(chroot, 'run/edgeimage');
  mkdirSync(join(run, 'slot/trust'), { recursive: true });
  mkdirSync(join(run, 'slot/bundles'), { recursive: true });
  writeFileSync(join(run, 'slot/model.assert'), MODEL(1));
  writeFileSync(join(run, 'slot/bundles/app_1.snap'), APP);
  writeFileSync(join(run, 'slot/trust', `example-brand-${brand().publicKey.id.slice(0, 12)}.pem`), brand().publicKey.toPem());
  writeFileSync(join(run, 'slot-name'), 'a\n');
  writeFileSync(join(run, 'devices'), 'slot_dev=/dev/vda2\ndata_dev=/dev/vda4\nboot_dev=\n');
}, 15 * 60_000);

afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

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

function apply(tarInChroot: string): { status: number | null; out: string } {
  const r = spawnSync('chroot', [chroot, '/usr/bin/edge-update', 'apply', tarInChroot], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const ready = () => {
  if (setupError) throw new Error(setupError);
};

(isRoot ? describe : describe.skip)('edge-update apply on the device (chroot of the amd64 base)', () => {
  test('a valid delta update verifies (signature, model, revision, every digest, the unchanged bundle taken from the running slot), then goes on to write slot b', () => {
    ready();
    const r = apply(makeUpdate('valid'));
    expect(r.out).toContain('edge-update: update example-brand/pc-amd64 revision 2 verified: 3 files; writing slot b');
    // this chroot has no slot b partition: the first write step is where it stops
    expect(r.out).toContain('edge-update: FAILED: no partition for slot b');
    expect(r.status).toBe(1);
  });

  const refused: [string, Case, RegExp][] = [
    // busybox tar lists these names already stripped of the leading / and of the ../ (as it would
    // extract them): what is left lies outside edgeimage-update/, and is refused as such
    ['an entry with an absolute path', { extraEntries: (dir) => { writeFileSync(join(dir, 'evil'), 'x'); return [join(dir, 'evil')]; } }, /REFUSED: entry tmp\/.*\/evil is outside edgeimage-update\//],
    ['an entry with ..', { extraEntries: (dir) => { mkdirSync(join(dir, 'edgeimage-update/slot/x'), { recursive: true }); writeFileSync(join(dir, 'edgeimage-update/evil'), 'x'); return ['edgeimage-update/slot/x/../../evil']; } }, /REFUSED: entry evil is outside edgeimage-update\//],
    ['a symlink entry', { extraEntries: (dir) => { symlinkSync('/etc/passwd', join(dir, 'edgeimage-update/slot/link')); return ['edgeimage-update/slot/link']; } }, /REFUSED: entry edgeimage-update\/slot\/link: links and names with spaces are not allowed/],
    ['a manifest changed after signing', { tamperManifest: true }, /REFUSED: the signature of the manifest does not verify with example-brand's key/],
    ['a manifest signed by the store, not the brand', { signer: 'store' }, /REFUSED: signed with key \S+, which is not a key of brand example-brand in the device's trust store/],
    ['an update for another model of the brand', { model: 'pc-amd64-lab' }, /REFUSED: the update is for model example-brand\/pc-amd64-lab; this device is example-brand\/pc-amd64/],
    ['the installed revision again', { revision: 1 }, /REFUSED: revision 1 is not higher than the installed revision 1 \(anti-rollback\)/],
    ['an older revision', { revision: 0 }, /REFUSED: revision 0 is not higher than the installed revision 1 \(anti-rollback\)/],
    ['a payload file whose bytes differ from the signed digest', { tamperPayload: true }, /REFUSED: (model\.assert|bundles\/new_1\.snap): digest or size does not match the signed manifest/],
    ['a file neither in the update nor in the running slot', { files: [{ path: 'model.assert', data: MODEL(2), inTar: true }, { path: 'bundles/gone_3.snap', data: NEW, inTar: false }] }, /REFUSED: bundles\/gone_3\.snap is neither in the update nor in slot a/],
    ['a payload file the signed manifest does not list', { extraEntries: (dir) => { writeFileSync(join(dir, 'edgeimage-update/slot/unlisted'), 'x'); return ['edgeimage-update/slot/unlisted']; } }, /REFUSED: slot\/unlisted is in the update but not in its signed manifest/],
  ];
  test.each(refused)('refused before writing anything: %s', (name, c, message) => {
    ready();
    const r = apply(makeUpdate(name.replace(/\W+/g, '-'), c));
    expect(r.out).toMatch(message);
    expect(r.out).not.toContain('writing slot');
    expect(r.status).toBe(3);
  });

  test('not a tar at all', () => {
    ready();
    writeFileSync(join(chroot, 'tmp/garbage.tar'), 'this is not a tar archive\n'.repeat(40));
    const r = apply('/tmp/garbage.tar');
    expect(r.out).toMatch(/REFUSED: \/tmp\/garbage\.tar is not a tar stream/);
    expect(r.status).toBe(3);
  });
});

if (!isRoot) test.skip('edge-update runs in a chroot of the base bundle, which needs root: skipped', () => undefined);
