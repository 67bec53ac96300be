import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rsaNumbers } from '../crypto/rsa-numbers.js';
import { KeyError } from '../errors.js';
import { BootKeys } from './boot-keys.js';
import { EFI_CERT_X509_GUID, brandOwnerGuid, guidBytes } from './esl.js';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-bootkeys-test-'));
  made.push(d);
  return d;
}

const NOW = new Date('2026-03-04T15:16:17Z');

function openssl(args: string[], env: Record<string, string> = {}): { status: number | null; out: string; err: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

function opensslOk(args: string[], env: Record<string, string> = {}): string {
  const r = openssl(args, env);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}: ${r.err}`);
  return r.out;
}

/** Every file of a folder tree with its bytes and mode, to prove a refusal changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) {
        out[`${rel}${e.name}`] = `-> ${readlinkSync(p)}`;
        continue;
      }
      const st = statSync(p);
      if (e.isDirectory()) {
        out[`${rel}${e.name}/`] = (st.mode & 0o777).toString(8);
        walk(p, `${rel}${e.name}/`);
      } else out[`${rel}${e.name}`] = `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${readFileSync(p).toString('base64')}`;
    }
  };
  walk(dir, '');
  return out;
}

function thrown(fn: () => unknown): KeyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KeyError) return e;
    throw e;
  }
  throw new Error('expected a KeyError');
}

async function rejected(p: Promise<unknown>): Promise<KeyError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KeyError) return e;
    throw e;
  }
  throw new Error('expected a KeyError');
}

const SET_FILES = ['acme-fit.crt', 'acme-fit.key', 'acme-fit.pub', 'brand-id', 'db.crt', 'db.key', 'db.pub', 'kek.crt', 'kek.key', 'kek.pub', 'pk.crt', 'pk.key', 'pk.pub'];
const STEMS = ['pk', 'kek', 'db', 'acme-fit'] as const;

/** One set made once for the read-only checks (four RSA-2048 keys take about a second). */
let shared: { ring: string; boot: BootKeys };
beforeAll(async () => {
  const ring = join(tempDir(), 'keys');
  const boot = new BootKeys(ring);
  const old = process.umask(0);
  try {
    await boot.create('acme', { now: NOW });
  } finally {
    process.umask(old);
  }
  shared = { ring, boot };
});

/** The shared set, copied with its links as they are, to spoil without making four keys again. */
function copyOfShared(): { ring: string; boot: BootKeys; set: string } {
  const ring = join(tempDir(), 'keys');
  cpSync(shared.ring, ring, { recursive: true, verbatimSymlinks: true });
  const boot = new BootKeys(ring);
  return { ring, boot, set: boot.show().setDir };
}

describe('BootKeys.create', () => {
  it('writes PK, KEK, db and <brand>-fit into <keyring>/boot: keys PKCS#8 mode 0600, certificates and public keys 0644, even under umask 000', () => {
    const dir = join(shared.ring, 'boot');
    expect(readdirSync(dir).sort()).toEqual(SET_FILES);
    expect(readdirSync(shared.ring).sort()).toEqual(['boot', 'boot.sets']);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(shared.ring, 'boot.sets')).mode & 0o777).toBe(0o700);
    for (const stem of STEMS) {
      expect(statSync(join(dir, `${stem}.key`)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, `${stem}.key`), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(statSync(join(dir, `${stem}.crt`)).mode & 0o777).toBe(0o644);
      expect(readFileSync(join(dir, `${stem}.crt`), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
      expect(statSync(join(dir, `${stem}.pub`)).mode & 0o777).toBe(0o644);
    }
  });

  it.each([
    ['pk', 'acme Secure Boot PK', false],
    ['kek', 'acme Secure Boot KEK', false],
    ['db', 'acme Secure Boot db', true],
    ['acme-fit', 'acme FIT signing', true],
  ])('%s.crt is a self-signed X.509 v3 certificate of an RSA-2048 key with its subject, keyUsage and a fixed 30-year validity (openssl x509 -text)', (stem, cn, codeSigning) => {
    const text = opensslOk(['x509', '-in', join(shared.ring, 'boot', `${stem}.crt`), '-noout', '-text']);
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain(`Subject: CN = ${cn}, O = acme`);
    expect(text).toContain(`Issuer: CN = ${cn}, O = acme`);
    expect(text).toContain('Public-Key: (2048 bit)');
    expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(text).toContain('Not Before: Mar  4 00:00:00 2026 GMT');
    expect(text).toContain('Not After : Mar  4 00:00:00 2056 GMT');
    if (codeSigning) expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+Code Signing\n/);
    else expect(text).not.toContain('Code Signing');
    const serial = opensslOk(['x509', '-in', join(shared.ring, 'boot', `${stem}.crt`), '-noout', '-serial']).trim();
    expect(serial).toMatch(/^serial=[4-7][0-9A-F]{31}$/);
  });

  it.each(STEMS)('openssl verify accepts %s.crt as its own issuer, and the certificate holds the public key of the private key beside it', (stem) => {
    const crt = join(shared.ring, 'boot', `${stem}.crt`);
    expect(opensslOk(['verify', '-CAfile', crt, crt]).trim()).toBe(`${crt}: OK`);
    const fromCert = opensslOk(['x509', '-in', crt, '-noout', '-pubkey']);
    const fromKey = opensslOk(['pkey', '-in', join(shared.ring, 'boot', `${stem}.key`), '-pubout']);
    expect(fromCert).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(fromCert).toBe(fromKey);
  });

  it('gives every certificate its own random serial', () => {
    const serials = STEMS.map((s) => opensslOk(['x509', '-in', join(shared.ring, 'boot', `${s}.crt`), '-noout', '-serial']));
    expect(new Set(serials).size).toBe(4);
  });

  it('show lists subjects, SHA-256 fingerprints, sizes and expiry as openssl reads them', () => {
    const set = shared.boot.show();
    expect(set.brand).toBe('acme');
    expect(set.fitKeyName).toBe('acme-fit');
    expect(set.keys.map((k) => [k.role, k.name, k.subject, k.bits, k.notAfter, k.encrypted])).toEqual([
      ['PK', 'pk', 'CN=acme Secure Boot PK, O=acme', 2048, '2056-03-04T00:00:00Z', false],
      ['KEK', 'kek', 'CN=acme Secure Boot KEK, O=acme', 2048, '2056-03-04T00:00:00Z', false],
      ['db', 'db', 'CN=acme Secure Boot db, O=acme', 2048, '2056-03-04T00:00:00Z', false],
      ['FIT', 'acme-fit', 'CN=acme FIT signing, O=acme', 2048, '2056-03-04T00:00:00Z', false],
    ]);
    for (const k of set.keys) {
      expect(`sha256 Fingerprint=${k.fingerprint}\n`).toBe(opensslOk(['x509', '-in', k.certificate, '-noout', '-fingerprint', '-sha256']));
    }
  });

  it('refuses to overwrite an existing set with ERR_BOOT_KEYS_EXIST naming the folder, and changes nothing', async () => {
    const before = snapshot(shared.ring);
    const e = await rejected(shared.boot.create('acme'));
    expect(e.code).toBe('ERR_BOOT_KEYS_EXIST');
    expect(e.message).toContain(`boot keys already exist in ${join(shared.ring, 'boot')}`);
    expect(e.message).toContain('--force');
    expect(snapshot(shared.ring)).toEqual(before);
  });

  it('refuses a set that appears while its own is being made (ERR_BOOT_KEYS_EXIST), keeping the other one and leaving no staging folder', async () => {
    const ring = join(tempDir(), 'keys');
    const making = new BootKeys(ring).create('acme', { now: NOW });
    // create() has checked and is now generating keys: another process makes the folder first.
    mkdirSync(join(ring, 'boot'));
    writeFileSync(join(ring, 'boot', 'pk.key'), 'theirs');
    const e = await rejected(making);
    expect(e.code).toBe('ERR_BOOT_KEYS_EXIST');
    expect(readdirSync(ring).sort()).toEqual(['boot', 'boot.sets']);
    expect(readdirSync(join(ring, 'boot.sets'))).toEqual([]);
    expect(readdirSync(join(ring, 'boot'))).toEqual(['pk.key']);
    expect(readFileSync(join(ring, 'boot', 'pk.key'), 'utf8')).toBe('theirs');
  });

  it('force rotates the whole set by renaming a new link over <keyring>/boot: every key and fingerprint is new, the modes are kept', async () => {
    const ring = join(tempDir(), 'keys');
    const boot = new BootKeys(ring);
    const first = await boot.create('acme', { now: NOW });
    const linkBefore = readlinkSync(join(ring, 'boot'));
    const second = await boot.create('acme', { now: NOW, force: true });
    // The switch is one rename(2) of a link: `boot` is never missing, as it was between two folder renames.
    expect(lstatSync(join(ring, 'boot')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(ring, 'boot'))).toMatch(/^boot\.sets\/[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/);
    expect(readlinkSync(join(ring, 'boot'))).not.toBe(linkBefore);
    expect(readdirSync(join(ring, 'boot.sets'))).toEqual([readlinkSync(join(ring, 'boot')).slice('boot.sets/'.length)]);
    expect(second.setDir).toBe(join(ring, readlinkSync(join(ring, 'boot'))));
    expect(second.leftovers).toEqual([]);
    expect(readdirSync(join(ring, 'boot')).sort()).toEqual(SET_FILES);
    second.keys.forEach((k, i) => {
      expect(k.fingerprint).not.toBe(first.keys[i]!.fingerprint);
      expect(statSync(join(ring, 'boot', `${k.name}.key`)).mode & 0o777).toBe(0o600);
      expect(statSync(join(ring, 'boot', `${k.name}.crt`)).mode & 0o777).toBe(0o644);
      const crt = join(ring, 'boot', `${k.name}.crt`);
      expect(opensslOk(['x509', '-in', crt, '-noout', '-pubkey'])).toBe(opensslOk(['pkey', '-in', join(ring, 'boot', `${k.name}.key`), '-pubout']));
    });
  });

  it('force keeps the old set, private keys and all, as <keyring>/boot.retired-<UTC stamp> (0700, keys 0600) and says where', async () => {
    const ring = join(tempDir(), 'keys');
    const boot = new BootKeys(ring);
    const first = await boot.create('acme', { now: NOW });
    const oldFiles = snapshot(first.setDir);
    const second = await boot.create('acme', { now: NOW, force: true });
    const retired = readdirSync(ring).filter((n) => n.startsWith('boot.retired-'));
    expect(retired).toHaveLength(1);
    expect(retired[0]).toMatch(/^boot\.retired-[0-9]{8}T[0-9]{6}Z$/);
    expect(readdirSync(ring).sort()).toEqual(['boot', retired[0], 'boot.sets']);
    expect(second.retired).toBe(join(ring, retired[0]!));
    const kept = join(ring, retired[0]!);
    expect(statSync(kept).mode & 0o777).toBe(0o700);
    // The very keys that devices enrolled with the first set trust, unchanged.
    expect(snapshot(kept)).toEqual(oldFiles);
    for (const stem of STEMS) expect(statSync(join(kept, `${stem}.key`)).mode & 0o777).toBe(0o600);
    first.keys.forEach((k) => expect(opensslOk(['x509', '-in', join(kept, `${k.name}.crt`), '-noout', '-fingerprint', '-sha256'])).toBe(`sha256 Fingerprint=${k.fingerprint}\n`));
    // A retired set is not a leftover: show and the next rotation go on.
    expect(boot.show().leftovers).toEqual([]);
    const third = await boot.create('acme', { now: NOW, force: true });
    expect(readdirSync(ring).filter((n) => n.startsWith('boot.retired-'))).toHaveLength(2);
    expect(third.retired).toBeDefined();
  }, 60_000);

  it('force over a plain boot folder (a set made before sets were linked) links the new set and retires the folder', async () => {
    const { ring, boot, set } = copyOfShared();
    const before = snapshot(set);
    rmSync(join(ring, 'boot'));
    renameSync(set, join(ring, 'boot'));
    expect(boot.show().setDir).toBe(join(ring, 'boot'));
    const r = await boot.create('acme', { now: NOW, force: true });
    expect(lstatSync(join(ring, 'boot')).isSymbolicLink()).toBe(true);
    expect(snapshot(r.retired!)).toEqual(before);
    expect(r.leftovers).toEqual([]);
  });

  it('encrypts every private key with the passphrase: openssl reads each only with it, show needs none', async () => {
    const ring = join(tempDir(), 'keys');
    const boot = new BootKeys(ring);
    await boot.create('acme', { passphrase: 'correct horse', now: NOW });
    for (const stem of STEMS) {
      const key = join(ring, 'boot', `${stem}.key`);
      expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      expect(statSync(key).mode & 0o777).toBe(0o600);
      expect(openssl(['pkey', '-in', key, '-noout', '-passin', 'pass:wrong']).status).not.toBe(0);
      const pub = opensslOk(['pkey', '-in', key, '-pubout', '-passin', 'env:BOOT_KEY_PW'], { BOOT_KEY_PW: 'correct horse' });
      expect(pub).toBe(opensslOk(['x509', '-in', join(ring, 'boot', `${stem}.crt`), '-noout', '-pubkey']));
    }
    expect(boot.show().keys.every((k) => k.encrypted)).toBe(true);
  });

  it.each([
    ['Bad_Brand'],
    ['-acme'],
    ['acme-'],
    ['a'],
    ['x'.repeat(29)],
    ['../etc'],
    ['acme corp'],
  ])('refuses the brand %j with ERR_BOOT_KEYS_BRAND and writes nothing', async (brand) => {
    const ring = join(tempDir(), 'keys');
    const e = await rejected(new BootKeys(ring).create(brand));
    expect(e.code).toBe('ERR_BOOT_KEYS_BRAND');
    expect(e.message).toContain(`invalid brand id ${JSON.stringify(brand)}`);
    expect(e.message).toContain('lower-case letters, digits and dashes');
    expect(existsSync(ring)).toBe(false);
  });

  it('accepts a 32-character store account id and names the FIT key after it in lower case', async () => {
    const ring = join(tempDir(), 'keys');
    const set = await new BootKeys(ring).create('AbCdEfGhIjKlMnOpQrStUvWxYz012345', { now: NOW });
    expect(set.fitKeyName).toBe('abcdefghijklmnopqrstuvwxyz012345-fit');
    expect(existsSync(join(ring, 'boot', 'abcdefghijklmnopqrstuvwxyz012345-fit.key'))).toBe(true);
  });

  const fitTools = ['mkimage', 'dtc'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
  (fitTools ? it : it.skip)(
    `mkimage -k <keyring>/boot signs a FIT configuration with acme-fit and writes that key into U-Boot's control dtb${fitTools ? '' : ' [skipped: mkimage (u-boot-tools) or dtc (device-tree-compiler) is not installed]'}`,
    () => {
      const work = tempDir();
      writeFileSync(join(work, 'kernel'), Buffer.alloc(4096, 7));
      writeFileSync(
        join(work, 'fit.its'),
        `/dts-v1/;
/ {
  description = "boot-keys test"; #address-cells = <1>;
  images { kernel-1 { data = /incbin/("kernel"); type = "kernel"; arch = "arm64"; os = "linux"; compression = "none"; load = <0x40400000>; entry = <0x40400000>; hash-1 { algo = "sha256"; }; }; };
  configurations { default = "conf-1"; conf-1 { kernel = "kernel-1"; signature-1 { algo = "sha256,rsa2048"; key-name-hint = "acme-fit"; sign-images = "kernel"; }; }; };
};
`,
      );
      writeFileSync(join(work, 'ctl.dts'), '/dts-v1/;\n/ { };\n');
      expect(spawnSync('dtc', ['-I', 'dts', '-O', 'dtb', '-o', join(work, 'ctl.dtb'), join(work, 'ctl.dts')]).status).toBe(0);
      const r = spawnSync('mkimage', ['-f', 'fit.its', '-k', join(shared.ring, 'boot'), '-K', 'ctl.dtb', '-r', 'fit.itb'], { cwd: work, encoding: 'utf8', timeout: 30_000, env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain("Public key written to 'ctl.dtb', node '/signature/key-acme-fit'");
      const dts = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', join(work, 'ctl.dtb')], { encoding: 'utf8' }).stdout;
      const words = /key-acme-fit \{[^}]*?rsa,modulus = <([^>]*)>/.exec(dts)?.[1]?.trim().split(/\s+/) ?? [];
      const modulus = Buffer.from(words.map((w) => w.replace(/^0x/, '').padStart(8, '0')).join(''), 'hex');
      const { n } = rsaNumbers(createPublicKey(readFileSync(join(shared.ring, 'boot', 'acme-fit.crt'))));
      expect(modulus.length).toBe(256);
      expect(modulus.equals(n)).toBe(true);
    },
  );

  it('show without a set: ERR_BOOT_KEYS_NOT_FOUND naming the folder', () => {
    const ring = join(tempDir(), 'keys');
    const e = thrown(() => new BootKeys(ring).show());
    expect(e.code).toBe('ERR_BOOT_KEYS_NOT_FOUND');
    expect(e.message).toContain(`no boot keys in ${join(ring, 'boot')}`);
  });

  it('show refuses a set whose certificate is not its key\'s (ERR_BOOT_KEYS_MISMATCH), and export then writes nothing', async () => {
    const ring = join(tempDir(), 'keys');
    const boot = new BootKeys(ring);
    await boot.create('acme', { now: NOW });
    const dir = boot.show().setDir;
    renameSync(join(dir, 'pk.crt'), join(dir, 'swap'));
    renameSync(join(dir, 'kek.crt'), join(dir, 'pk.crt'));
    renameSync(join(dir, 'swap'), join(dir, 'kek.crt'));
    const e = thrown(() => boot.show());
    expect(e.code).toBe('ERR_BOOT_KEYS_MISMATCH');
    expect(e.message).toContain(`${join(dir, 'pk.crt')} is not the certificate of the key in ${join(dir, 'pk.pub')}`);
    const out = join(tempDir(), 'factory');
    expect(thrown(() => boot.export(out)).code).toBe('ERR_BOOT_KEYS_MISMATCH');
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ['a link to a good certificate elsewhere', (crt: string, other: string) => symlinkSync(other, crt), 'found a symbolic link'],
    ['a FIFO', (crt: string) => expect(spawnSync('mkfifo', [crt]).status).toBe(0), 'found a FIFO, device, socket or folder'],
    ['a link to a FIFO', (crt: string, other: string) => (expect(spawnSync('mkfifo', [`${other}.fifo`]).status).toBe(0), symlinkSync(`${other}.fifo`, crt)), 'found a symbolic link'],
    ['a link to /dev/zero', (crt: string) => symlinkSync('/dev/zero', crt), 'found a symbolic link'],
  ])('show and export refuse a certificate that is %s (ERR_BOOT_KEYS_FORMAT) without blocking or reading it, and export writes nothing', (_what, spoil, found) => {
    const { boot, set } = copyOfShared();
    const crt = join(set, 'pk.crt');
    const other = join(tempDir(), 'elsewhere.crt');
    writeFileSync(other, readFileSync(crt));
    rmSync(crt);
    spoil(crt, other);
    const e = thrown(() => boot.show());
    expect(e.code).toBe('ERR_BOOT_KEYS_FORMAT');
    expect(e.message).toBe(`${crt}: expected a regular file as "edgeimage boot-keys create" writes it, ${found}`);
    const out = join(tempDir(), 'factory');
    expect(thrown(() => boot.export(out)).code).toBe('ERR_BOOT_KEYS_FORMAT');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a certificate bigger than 64 KiB (ERR_BOOT_KEYS_FORMAT) by its size', () => {
    const { boot, set } = copyOfShared();
    const crt = join(set, 'pk.crt');
    writeFileSync(crt, Buffer.concat([readFileSync(crt), Buffer.alloc(64 * 1024, 10)]));
    const e = thrown(() => boot.show());
    expect(e.code).toBe('ERR_BOOT_KEYS_FORMAT');
    expect(e.message).toBe(`${crt} is ${statSync(crt).size} bytes, more than a boot key file can be (65536)`);
  });
});

describe('the boot link and leftovers of an interrupted run', () => {
  it.each([
    ['outside the keyring', (ring: string, elsewhere: string) => symlinkSync(elsewhere, join(ring, 'boot')), (elsewhere: string) => `a link to ${JSON.stringify(elsewhere)}`],
    ['up and out of boot.sets', (ring: string) => symlinkSync('boot.sets/../../other', join(ring, 'boot')), () => 'a link to "boot.sets/../../other"'],
    ['nowhere: it is a file', (ring: string) => writeFileSync(join(ring, 'boot'), 'x'), () => 'neither a link nor a folder'],
  ])('show and create refuse a boot link that points %s (ERR_BOOT_KEYS_LINK) and read nothing there', async (_what, make, found) => {
    const { ring, boot, set } = copyOfShared();
    const elsewhere = join(tempDir(), 'elsewhere');
    cpSync(set, elsewhere, { recursive: true });
    rmSync(join(ring, 'boot'));
    make(ring, elsewhere);
    const before = snapshot(ring);
    const e = thrown(() => boot.show());
    expect(e.code).toBe('ERR_BOOT_KEYS_LINK');
    expect(e.message).toBe(`${join(ring, 'boot')}: expected a link to boot.sets/<id> inside the keyring (as "edgeimage boot-keys create" makes it), found ${found(elsewhere)}; refusing to read boot keys from there`);
    expect((await rejected(boot.create('acme', { force: true }))).code).toBe('ERR_BOOT_KEYS_LINK');
    expect(snapshot(ring)).toEqual(before);
  });

  it('refuses a boot.sets that is itself a link (ERR_BOOT_KEYS_LINK)', () => {
    const { ring, boot } = copyOfShared();
    const moved = join(tempDir(), 'sets');
    renameSync(join(ring, 'boot.sets'), moved);
    symlinkSync(moved, join(ring, 'boot.sets'));
    const e = thrown(() => boot.show());
    expect(e.code).toBe('ERR_BOOT_KEYS_LINK');
    expect(e.message).toBe(`${join(ring, 'boot.sets')}: expected a folder, found a link; refusing to read boot keys through it`);
  });

  it('after a crash between the two renames of the earlier swap (no boot, the old set in .boot.old-*): show names it, create refuses and writes nothing', async () => {
    const { ring, boot, set } = copyOfShared();
    // The state the two-rename swap left when it died after its first rename, made by hand.
    const old = join(ring, '.boot.old-4242-0badf00d');
    const staged = join(ring, '.boot.new-4242-0badf00d');
    renameSync(set, old);
    cpSync(old, staged, { recursive: true });
    rmSync(join(ring, 'boot'));
    const before = snapshot(ring);
    const s = thrown(() => boot.show());
    expect(s.code).toBe('ERR_BOOT_KEYS_NOT_FOUND');
    expect(s.message).toBe(
      `no boot keys in ${join(ring, 'boot')}; make them with "edgeimage boot-keys create --brand ID"; but an interrupted (or still running) create or rotation left ${staged}, ${old}, which may hold the keys devices are enrolled with: look at them before making a new set`,
    );
    for (const force of [false, true]) {
      const e = await rejected(boot.create('acme', { now: NOW, force }));
      expect(e.code).toBe('ERR_BOOT_KEYS_LEFTOVER');
      expect(e.message).toContain(`an interrupted (or still running) "boot-keys create" left ${staged}, ${old}; they may hold private keys`);
      expect(e.message).toContain(`keep a set you need as ${join(ring, 'boot.retired-<date>')}`);
      expect(snapshot(ring)).toEqual(before);
    }
    // Once the old set is put back by hand, it is the set again.
    rmSync(staged, { recursive: true });
    renameSync(old, join(ring, 'boot'));
    expect(boot.show().leftovers).toEqual([]);
  });

  it('after a crash of a rotation (boot names one set, another is in boot.sets, an unused link): show lists them, create refuses until they are dealt with', async () => {
    const { ring, boot, set } = copyOfShared();
    const orphan = join(ring, 'boot.sets', '20260304T151617Z-0badf00d');
    cpSync(set, orphan, { recursive: true });
    const link = join(ring, '.boot.link-20260304T151617Z-0badf00d');
    symlinkSync('boot.sets/20260304T151617Z-0badf00d', link);
    const shown = boot.show();
    expect(shown.setDir).toBe(set);
    expect(shown.leftovers).toEqual([link, orphan]);
    const before = snapshot(ring);
    const e = await rejected(boot.create('acme', { now: NOW, force: true }));
    expect(e.code).toBe('ERR_BOOT_KEYS_LEFTOVER');
    expect(e.message).toContain(`left ${link}, ${orphan};`);
    expect(snapshot(ring)).toEqual(before);
    // Kept as a retired set and the link removed: no longer a leftover, and rotation works.
    renameSync(orphan, join(ring, 'boot.retired-20260304T151617Z'));
    rmSync(link);
    expect(boot.show().leftovers).toEqual([]);
    expect((await boot.create('acme', { now: NOW, force: true })).retired).toBeDefined();
  });
});

describe('BootKeys.export', () => {
  let out: string;
  beforeAll(() => {
    out = join(tempDir(), 'factory', 'acme');
    shared.boot.export(out);
  });

  it('writes per UEFI key a .cer (DER), .crt (PEM) and .esl, the FIT certificate and README.txt, all 0644', () => {
    expect(readdirSync(out).sort()).toEqual(['KEK.cer', 'KEK.crt', 'KEK.esl', 'PK.cer', 'PK.crt', 'PK.esl', 'README.txt', 'acme-fit.crt', 'db.cer', 'db.crt', 'db.esl']);
    for (const f of readdirSync(out)) expect(statSync(join(out, f)).mode & 0o777).toBe(0o644);
    for (const [role, stem] of [['PK', 'pk'], ['KEK', 'kek'], ['db', 'db']] as const) {
      const kept = readFileSync(join(shared.ring, 'boot', `${stem}.crt`), 'utf8');
      expect(readFileSync(join(out, `${role}.crt`), 'utf8')).toBe(kept);
      expect(opensslOk(['x509', '-inform', 'DER', '-in', join(out, `${role}.cer`), '-outform', 'PEM'])).toBe(kept);
    }
    expect(readFileSync(join(out, 'acme-fit.crt'), 'utf8')).toBe(readFileSync(join(shared.ring, 'boot', 'acme-fit.crt'), 'utf8'));
    const readme = readFileSync(join(out, 'README.txt'), 'utf8');
    for (const want of ['PK.esl', 'KEK.esl', 'db.esl', 'PK.cer', 'acme-fit.crt', brandOwnerGuid('acme'), 'No private key', ...shared.boot.show().keys.map((k) => k.fingerprint)]) expect(readme).toContain(want);
  });

  it('contains no private key material: no "PRIVATE KEY" and none of the keys\' bytes', () => {
    // The secret numbers themselves (d, p, q), in case something wrote them in another encoding.
    const secrets = STEMS.flatMap((s) => {
      // jwk-ok: keys read from PEM files (a mutex of their own: rsa-numbers.ts)
      const jwk = createPrivateKey(readFileSync(join(shared.ring, 'boot', `${s}.key`))).export({ format: 'jwk' });
      return [jwk.d!, jwk.p!, jwk.q!].map((v) => Buffer.from(v, 'base64url'));
    });
    const privateBodies = STEMS.flatMap((s) => readFileSync(join(shared.ring, 'boot', `${s}.key`), 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')));
    for (const f of readdirSync(out)) {
      const bytes = readFileSync(join(out, f));
      expect(bytes.includes('PRIVATE KEY')).toBe(false);
      for (const line of privateBodies) expect(bytes.includes(line)).toBe(false);
      for (const secret of secrets) expect(bytes.includes(secret.subarray(0, 32))).toBe(false);
    }
  });

  it.each(['PK', 'KEK', 'db'])('%s.esl is one EFI_SIGNATURE_LIST of type X.509 holding the certificate, owned by the brand (byte by byte, UEFI 2.10 §32.4.1)', (role) => {
    const esl = readFileSync(join(out, `${role}.esl`));
    const der = readFileSync(join(out, `${role}.cer`));
    // EFI_CERT_X509_GUID in memory order, as edk2's headers spell it: {0xa5c059a1, 0x94e4, 0x4aa7, {0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}}.
    expect(esl.subarray(0, 16).toString('hex')).toBe('a159c0a5e494a74a87b5ab155c2bf072');
    expect(esl.readUInt32LE(16)).toBe(esl.length);
    expect(esl.readUInt32LE(20)).toBe(0);
    expect(esl.readUInt32LE(24)).toBe(16 + der.length);
    expect(esl.length).toBe(28 + 16 + der.length);
    expect(esl.subarray(28, 44).equals(guidBytes(brandOwnerGuid('acme')))).toBe(true);
    expect(esl.subarray(44).equals(der)).toBe(true);
  });

  const efitools = existsSync('/usr/bin/sig-list-to-certs') && existsSync('/usr/bin/cert-to-efi-sig-list');
  (efitools ? it : it.skip).each(['PK', 'KEK', 'db'])(
    `efitools reads %s.esl back: sig-list-to-certs gives the certificate and the brand's owner GUID, cert-to-efi-sig-list -g makes the same bytes${efitools ? '' : ' [skipped: efitools is not installed (apt-get install efitools)]'}`,
    (role) => {
      const work = tempDir();
      // sig-list-to-certs loops for ever on a list whose sizes are wrong: a timeout turns that into a failure.
      const r = spawnSync('sig-list-to-certs', [join(out, `${role}.esl`), join(work, 'back')], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Guid ${brandOwnerGuid('acme')}`);
      expect(readFileSync(join(work, 'back-0.der')).equals(readFileSync(join(out, `${role}.cer`)))).toBe(true);
      const again = spawnSync('cert-to-efi-sig-list', ['-g', brandOwnerGuid('acme'), join(out, `${role}.crt`), join(work, 'again.esl')], { encoding: 'utf8', timeout: 10_000 });
      expect(again.status).toBe(0);
      expect(readFileSync(join(work, 'again.esl')).equals(readFileSync(join(out, `${role}.esl`)))).toBe(true);
    },
  );

  it('refuses a folder that is not empty (ERR_BOOT_KEYS_EXPORT_EXISTS) and leaves it as it was; an empty folder is fine', () => {
    const dest = join(tempDir(), 'factory');
    mkdirSync(dest);
    writeFileSync(join(dest, 'PK.esl'), 'older');
    const before = snapshot(dest);
    const e = thrown(() => shared.boot.export(dest));
    expect(e.code).toBe('ERR_BOOT_KEYS_EXPORT_EXISTS');
    expect(e.message).toContain(`${dest} already exists`);
    expect(snapshot(dest)).toEqual(before);
    expect(readdirSync(join(dest, '..'))).toEqual(['factory']);
    const empty = join(tempDir(), 'empty');
    mkdirSync(empty);
    expect(shared.boot.export(empty).files).toHaveLength(11);
  });
});

describe('the EFI signature owner', () => {
  it('is the version-5 UUID of urn:edgeimage:brand:<id> in the URL name space (as Python\'s uuid.uuid5 computes it), one per brand', () => {
    expect(brandOwnerGuid('acme')).toBe('1a95da78-e654-5e86-a822-45e498e04ab0');
    expect(brandOwnerGuid('globex')).toBe('9680325c-9ac0-5050-8eff-c0ce494dfcb1');
  });

  it('is written with Data1, Data2 and Data3 little-endian', () => {
    expect(guidBytes(EFI_CERT_X509_GUID).toString('hex')).toBe('a159c0a5e494a74a87b5ab155c2bf072');
    expect(() => guidBytes('not-a-guid')).toThrow(RangeError);
  });
});

describe('BootKeys.signer', () => {
  it('gives db and the FIT key with their certificates; what it signs verifies with the certificate', () => {
    for (const role of ['db', 'FIT'] as const) {
      const s = shared.boot.signer(role);
      expect(s.name).toBe(role === 'db' ? 'db' : 'acme-fit');
      expect(s.brand).toBe('acme');
      const cert = new X509Certificate(s.certPem);
      expect(cert.raw.equals(s.certDer)).toBe(true);
      const sig = sign('sha256', Buffer.from('payload'), s.key);
      expect(verify('sha256', Buffer.from('payload'), cert.publicKey, sig)).toBe(true);
    }
  });

  it('refuses a db key that is not the certificate\'s (ERR_BOOT_KEYS_MISMATCH)', () => {
    const { ring, set } = copyOfShared();
    // kek.key in db.key's place: a mixed-up set that show() cannot see (it compares .pub only)
    cpSync(join(set, 'kek.key'), join(set, 'db.key'));
    expect(() => new BootKeys(ring).signer('db')).toThrow(expect.objectContaining({ code: 'ERR_BOOT_KEYS_MISMATCH', message: expect.stringContaining('db.key is not the private key of') }));
  });

  it('refuses a private key others can read (ERR_KEY_PERMISSIONS) and an encrypted one without its passphrase (ERR_KEY_PASSPHRASE)', async () => {
    const { ring, set } = copyOfShared();
    chmodSync(join(set, 'db.key'), 0o644);
    expect(() => new BootKeys(ring).signer('db')).toThrow(expect.objectContaining({ code: 'ERR_KEY_PERMISSIONS' }));
    const enc = join(tempDir(), 'keys');
    const boot = new BootKeys(enc);
    await boot.create('acme', { now: NOW, passphrase: 'secret' });
    expect(() => boot.signer('FIT')).toThrow(expect.objectContaining({ code: 'ERR_KEY_PASSPHRASE' }));
    expect(boot.signer('FIT', 'secret').name).toBe('acme-fit');
  });
});
