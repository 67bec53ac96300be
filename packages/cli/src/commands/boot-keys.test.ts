import { cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pemBody, run, runOk, transcript, useTempDirs, withEnv } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-boot-keys-test-');

interface ShownSet {
  brand: string;
  dir: string;
  owner: string;
  fitKeyName: string;
  leftovers: string[];
  keys: { role: string; name: string; subject: string; fingerprint: string; bits: number; notAfter: string; encrypted: boolean }[];
}

const showJson = async (ring: string) => JSON.parse((await runOk(['boot-keys', 'show', '--json', '--keyring', ring])).out) as ShownSet;

/** The base64 lines of every private key this file made, for the "never printed" check. */
const privateBodies: string[] = [];
function remember(ring: string): void {
  for (const f of readdirSync(join(ring, 'boot')).filter((n) => n.endsWith('.key'))) privateBodies.push(...pemBody(readFileSync(join(ring, 'boot', f), 'utf8')));
}

describe('edgeimage boot-keys', () => {
  beforeEach(() => {
    delete process.env['EDGEIMAGE_KEY_PASSPHRASE'];
    delete process.env['EDGEIMAGE_KEYRING'];
  });

  it('create makes the set in <keyring>/boot and prints it; show prints subjects, fingerprints, sizes and expiry; export writes the factory folder', async () => {
    const ring = join(tempDir(), 'keys');
    const c = await runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]);
    remember(ring);
    expect(c.out).toContain(`created boot keys (PK, KEK, db, acme-fit) in ${join(ring, 'boot')}`);
    for (const f of ['pk', 'kek', 'db', 'acme-fit']) expect(statSync(join(ring, 'boot', `${f}.key`)).mode & 0o777).toBe(0o600);

    const set = await showJson(ring);
    expect(set.brand).toBe('acme');
    expect(set.keys.map((k) => [k.role, k.subject, k.bits, k.encrypted])).toEqual([
      ['PK', 'CN=acme Secure Boot PK, O=acme', 2048, false],
      ['KEK', 'CN=acme Secure Boot KEK, O=acme', 2048, false],
      ['db', 'CN=acme Secure Boot db, O=acme', 2048, false],
      ['FIT', 'CN=acme FIT signing, O=acme', 2048, false],
    ]);
    for (const k of set.keys) expect(k.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const text = (await runOk(['boot-keys', 'show', '--keyring', ring])).out;
    for (const k of set.keys) {
      expect(text).toContain(`SHA-256 ${k.fingerprint}`);
      expect(text).toContain(`not after ${k.notAfter}`);
    }
    expect(text).toContain(`EFI signature owner: ${set.owner}`);

    const out = join(tempDir(), 'factory');
    const e = await runOk(['boot-keys', 'export', out, '--keyring', ring]);
    expect(e.out).toContain(`exported 11 files to ${out}: KEK.cer KEK.crt KEK.esl PK.cer PK.crt PK.esl README.txt acme-fit.crt db.cer db.crt db.esl`);
    for (const f of readdirSync(out)) expect(readFileSync(join(out, f)).includes('PRIVATE KEY')).toBe(false);
  });

  it('the keyring comes from $EDGEIMAGE_KEYRING when --keyring is not given', async () => {
    const ring = join(tempDir(), 'env-keys');
    await withEnv({ EDGEIMAGE_KEYRING: ring }, async () => {
      await runOk(['boot-keys', 'create', '--brand', 'acme']);
      expect((await showJson(ring)).dir).toBe(join(ring, 'boot'));
    });
    remember(ring);
  });

  it('with $EDGEIMAGE_KEY_PASSPHRASE every private key is encrypted; show and export need no passphrase', async () => {
    const ring = join(tempDir(), 'keys');
    await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'correct horse' }, () => runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]));
    remember(ring);
    for (const f of ['pk', 'kek', 'db', 'acme-fit']) expect(readFileSync(join(ring, 'boot', `${f}.key`), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    expect((await showJson(ring)).keys.every((k) => k.encrypted)).toBe(true);
    expect((await run(['boot-keys', 'show', '--keyring', ring])).out).toContain('RSA-2048, encrypted');
    await runOk(['boot-keys', 'export', join(tempDir(), 'factory'), '--keyring', ring]);
  });

  it('refuses to overwrite a set (exit 1, ERR_BOOT_KEYS_EXIST naming the folder, keys unchanged); --force rotates every key', async () => {
    const ring = join(tempDir(), 'keys');
    await runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]);
    remember(ring);
    const before = await showJson(ring);
    const keyBefore = readFileSync(join(ring, 'boot', 'db.key'), 'utf8');
    const r = await run(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`edgeimage: error: boot keys already exist in ${join(ring, 'boot')}; refusing to overwrite them`);
    expect(r.err).toContain('[ERR_BOOT_KEYS_EXIST]');
    expect(await showJson(ring)).toEqual(before);
    expect(readFileSync(join(ring, 'boot', 'db.key'), 'utf8')).toBe(keyBefore);

    const f = await runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring, '--force']);
    remember(ring);
    const after = await showJson(ring);
    after.keys.forEach((k, i) => expect(k.fingerprint).not.toBe(before.keys[i]!.fingerprint));
    expect(statSync(join(ring, 'boot', 'db.key')).mode & 0o777).toBe(0o600);
    const retired = readdirSync(ring).filter((n) => n.startsWith('boot.retired-'));
    expect(readdirSync(ring).sort()).toEqual(['boot', ...retired, 'boot.sets']);
    expect(retired).toHaveLength(1);
    const kept = join(ring, retired[0]!);
    // The old private keys are kept, not destroyed: devices enrolled with them take updates only signed by them.
    expect(readFileSync(join(kept, 'db.key'), 'utf8')).toBe(keyBefore);
    expect(statSync(join(kept, 'db.key')).mode & 0o777).toBe(0o600);
    expect(statSync(kept).mode & 0o777).toBe(0o700);
    expect(f.out).toContain(`the old set is kept in ${kept} (mode 0700, keys 0600): devices in the field still trust its PK and KEK`);
    expect(f.out).toContain(`"sign-efi-sig-list -k ${kept}/pk.key -c ${kept}/pk.crt KEK KEK.esl KEK.auth" (efitools)`);
  });

  it('show warns on stderr, by name, about a set an interrupted run left; create refuses (exit 1, ERR_BOOT_KEYS_LEFTOVER) and writes nothing', async () => {
    const ring = join(tempDir(), 'keys');
    await runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]);
    remember(ring);
    // What a rotation that died after making its set and before switching the link leaves, made by hand.
    const orphan = join(ring, 'boot.sets', '20260304T151617Z-0badf00d');
    cpSync(join(ring, 'boot'), orphan, { recursive: true });
    const s = await run(['boot-keys', 'show', '--keyring', ring]);
    expect(s.status).toBe(0);
    expect(s.err).toBe(`edgeimage: warning: ${orphan} is left from an interrupted (or still running) create or rotation and may hold private keys: keep it as boot.retired-<date> if devices are enrolled with it, otherwise delete it\n`);
    expect((await showJson(ring)).leftovers).toEqual([orphan]);
    const before = readdirSync(join(ring, 'boot.sets')).sort();
    for (const force of [[], ['--force']]) {
      const r = await run(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring, ...force]);
      expect(r.status).toBe(1);
      expect(r.err).toContain(`edgeimage: error: an interrupted (or still running) "boot-keys create" left ${orphan}; they may hold private keys`);
      expect(r.err).toContain('[ERR_BOOT_KEYS_LEFTOVER]');
      expect(readdirSync(join(ring, 'boot.sets')).sort()).toEqual(before);
      expect(readdirSync(ring).sort()).toEqual(['boot', 'boot.sets']);
    }
  });

  it('a bad --brand is refused with a message that says what a brand id is, exit 1, and nothing is written', async () => {
    const ring = join(tempDir(), 'keys');
    const r = await run(['boot-keys', 'create', '--brand', 'Acme Corp', '--keyring', ring]);
    expect(r.status).toBe(1);
    expect(r.err).toBe(
      'edgeimage: error: invalid brand id "Acme Corp": expected the model\'s brand-id, 2 to 28 lower-case letters, digits and dashes not at either end (e.g. "acme"), or a 32-character store account id [ERR_BOOT_KEYS_BRAND]\n',
    );
    expect(existsSync(ring)).toBe(false);
  });

  it('export to a folder that has files is refused (exit 1, ERR_BOOT_KEYS_EXPORT_EXISTS); show and export without a set name the folder', async () => {
    const ring = join(tempDir(), 'keys');
    const s = await run(['boot-keys', 'show', '--keyring', ring]);
    expect(s.status).toBe(1);
    expect(s.err).toContain(`no boot keys in ${join(ring, 'boot')}; make them with "edgeimage boot-keys create --brand ID" [ERR_BOOT_KEYS_NOT_FOUND]`);
    const out = join(tempDir(), 'factory');
    expect((await run(['boot-keys', 'export', out, '--keyring', ring])).status).toBe(1);
    expect(existsSync(out)).toBe(false);

    await runOk(['boot-keys', 'create', '--brand', 'acme', '--keyring', ring]);
    remember(ring);
    await runOk(['boot-keys', 'export', out, '--keyring', ring]);
    const again = await run(['boot-keys', 'export', out, '--keyring', ring]);
    expect(again.status).toBe(1);
    expect(again.err).toContain(`${out} already exists and is not an empty folder; export to a new folder [ERR_BOOT_KEYS_EXPORT_EXISTS]`);
  });

  it.each([
    [['boot-keys'], 'Not enough non-option arguments'],
    [['boot-keys', 'create'], 'Missing required argument: brand'],
    [['boot-keys', 'export'], 'Not enough non-option arguments'],
    [['boot-keys', 'rotate'], 'Did you mean create?'],
  ])('usage error %j exits 2 and says what is missing', async (argv, message) => {
    const ring = join(tempDir(), 'keys');
    const r = await run([...argv, '--keyring', ring]);
    expect(r.status).toBe(2);
    expect(r.err).toContain(message);
    expect(existsSync(ring)).toBe(false);
  });

  it.each([
    ['create', 'edgeimage boot-keys create', ['--brand', '--force', '--keyring', 'EDGEIMAGE_KEY_PASSPHRASE'], 'edgeimage boot-keys create --brand acme --force'],
    ['export', 'edgeimage boot-keys export <dir>', ['--keyring', 'never a private key'], 'edgeimage boot-keys export factory/acme'],
    ['show', 'edgeimage boot-keys show', ['--json', 'fingerprints'], 'edgeimage boot-keys show --json'],
  ])('`boot-keys %s --help` teaches: usage, options and examples', async (sub, usage, words, example) => {
    const r = await run(['boot-keys', sub, '--help']);
    expect(r.status).toBe(0);
    expect(r.out.startsWith(`${usage}\n`)).toBe(true);
    for (const w of words) expect(r.out).toContain(w);
    expect(r.out.slice(r.out.indexOf('Examples:'))).toContain(example);
  });

  it('the top-level help lists boot-keys', async () => {
    expect((await run(['--help'])).out).toMatch(/^\s+edgeimage boot-keys <command>\s/m);
  });

  afterAll(() => {
    // No command printed a private key, in any test of this file.
    expect(privateBodies.length).toBeGreaterThan(0);
    const printed = transcript.join('');
    expect(printed).not.toContain('PRIVATE KEY');
    for (const line of privateBodies) expect(printed).not.toContain(line);
  });
});
