import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { PublicKey, rsaNumbers } from '@edgeimage/assertions';
import { accountYaml, pemBody, run, runOk, transcript, useTempDirs, withEnv } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-key-test-');
const NO_PASSPHRASE = { EDGEIMAGE_KEY_PASSPHRASE: undefined, EDGEIMAGE_KEYRING: undefined };

/** The base64 body of every private key file this test file made (plain and decrypted forms). */
const privateBodies: string[][] = [];
function rememberPrivateKey(file: string, passphrase?: string): void {
  const pem = readFileSync(file, 'utf8');
  privateBodies.push(pemBody(pem));
  if (passphrase) {
    const plain = createPrivateKey({ key: pem, format: 'pem', passphrase }).export({ type: 'pkcs8', format: 'pem' }).toString();
    privateBodies.push(pemBody(plain));
  }
}

async function createKey(ring: string, name: string, extra: string[] = []) {
  const r = await runOk(['key', 'create', name, '--bits', '2048', '--keyring', ring, ...extra]);
  rememberPrivateKey(join(ring, `${name}.key`), process.env['EDGEIMAGE_KEY_PASSPHRASE']);
  return r;
}

const listJson = async (ring: string) => JSON.parse((await runOk(['key', 'list', '--json', '--keyring', ring])).out) as { name: string; 'key-id': string; bits: number; encrypted: boolean }[];

/** A headers file any key can sign (an account is signed by whoever; verification is not asked). */
function accountFile(dir: string): string {
  const f = join(dir, 'acme.yaml');
  writeFileSync(f, accountYaml('acme'));
  return f;
}

describe('edgeimage key', () => {
  beforeEach(() => {
    // The developer's own environment must not leak into the tests.
    delete process.env['EDGEIMAGE_KEY_PASSPHRASE'];
    delete process.env['EDGEIMAGE_KEYRING'];
  });

  describe('create', () => {
    it('writes NAME.key (PKCS#8, mode 0600) and NAME.pub (SPKI, mode 0644) and prints the key id', async () => {
      const ring = join(tempDir(), 'keys');
      const r = await createKey(ring, 'brand');
      const priv = join(ring, 'brand.key');
      const pub = join(ring, 'brand.pub');
      expect(statSync(priv).mode & 0o777).toBe(0o600);
      expect(statSync(pub).mode & 0o777).toBe(0o644);
      expect(readFileSync(priv, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(readFileSync(pub, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      const id = PublicKey.fromPem(readFileSync(pub, 'utf8')).id;
      expect(r.out).toContain(`created key "brand" (RSA-2048) in ${ring}`);
      expect(r.out).toContain(`key id: ${id}`);
      expect(readdirSync(ring).sort()).toEqual(['brand.key', 'brand.pub']);
    });

    it('gives the private key mode 0600 even under umask 000', async () => {
      const ring = join(tempDir(), 'keys');
      const old = process.umask(0);
      try {
        await createKey(ring, 'loose');
      } finally {
        process.umask(old);
      }
      expect(statSync(join(ring, 'loose.key')).mode & 0o777).toBe(0o600);
    });

    it('makes a key of the requested size', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const [k] = await listJson(ring);
      expect(k!.bits).toBe(2048);
      expect(rsaNumbers(createPublicKey(readFileSync(join(ring, 'brand.pub'), 'utf8'))).bits).toBe(2048);
    });

    it('refuses a name that already exists with ERR_KEY_EXISTS and keeps the old key', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const before = readFileSync(join(ring, 'brand.key'));
      const r = await run(['key', 'create', 'brand', '--bits', '2048', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain('key "brand" already exists');
      expect(r.err).toContain('[ERR_KEY_EXISTS]');
      expect(readFileSync(join(ring, 'brand.key')).equals(before)).toBe(true);
    });

    it.each(['Brand', 'brand_1', 'brand 1', 'brand-', '../escape', 'a/b', 'a.b'])('refuses the invalid name %j with ERR_KEY_NAME and writes nothing', async (name) => {
      const dir = tempDir();
      const ring = join(dir, 'keys');
      const r = await run(['key', 'create', name, '--bits', '2048', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain(`invalid key name ${JSON.stringify(name)}`);
      expect(r.err).toContain('[ERR_KEY_NAME]');
      expect(readdirSync(dir)).toEqual([]);
    });

    it('refuses fewer than 2048 bits with ERR_KEY_BITS', async () => {
      const ring = join(tempDir(), 'keys');
      const r = await run(['key', 'create', 'weak', '--bits', '1024', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain('[ERR_KEY_BITS]');
      expect(existsSync(join(ring, 'weak.key'))).toBe(false);
    });

    it('uses $EDGEIMAGE_KEYRING when --keyring is absent', async () => {
      const ring = join(tempDir(), 'from-env');
      await withEnv({ EDGEIMAGE_KEYRING: ring }, async () => {
        const r = await runOk(['key', 'create', 'brand', '--bits', '2048']);
        rememberPrivateKey(join(ring, 'brand.key'));
        expect(r.out).toContain(`in ${ring}`);
        expect((await runOk(['key', 'list'])).out).toContain('brand');
      });
      expect(existsSync(join(ring, 'brand.key'))).toBe(true);
      expect(existsSync(join(ring, 'brand.pub'))).toBe(true);
    });

    it('prefers --keyring over $EDGEIMAGE_KEYRING', async () => {
      const dir = tempDir();
      const envRing = join(dir, 'from-env');
      const argRing = join(dir, 'from-arg');
      await withEnv({ EDGEIMAGE_KEYRING: envRing }, () => createKey(argRing, 'brand'));
      expect(existsSync(join(argRing, 'brand.key'))).toBe(true);
      expect(existsSync(envRing)).toBe(false);
    });
  });

  describe('list', () => {
    it('prints one line per key, sorted, with its key id and size', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'store');
      await createKey(ring, 'brand');
      const ids = Object.fromEntries(['brand', 'store'].map((n) => [n, PublicKey.fromPem(readFileSync(join(ring, `${n}.pub`), 'utf8')).id]));
      const r = await runOk(['key', 'list', '--keyring', ring]);
      const lines = r.out.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(new RegExp(`^brand\\s+${ids['brand']!.replace(/-/g, '\\-')}\\s+RSA-2048$`));
      expect(lines[1]).toMatch(new RegExp(`^store\\s+${ids['store']!.replace(/-/g, '\\-')}\\s+RSA-2048$`));
    });

    it('--json prints an array with name, key-id, bits and encrypted', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const id = PublicKey.fromPem(readFileSync(join(ring, 'brand.pub'), 'utf8')).id;
      expect(await listJson(ring)).toEqual([{ name: 'brand', 'key-id': id, bits: 2048, encrypted: false }]);
    });

    it('says so when the keyring is empty or absent, and succeeds', async () => {
      const ring = join(tempDir(), 'nothing-here');
      const r = await runOk(['key', 'list', '--keyring', ring]);
      expect(r.out).toContain(`no keys in ${ring}`);
      expect(JSON.parse((await runOk(['key', 'list', '--json', '--keyring', ring])).out)).toEqual([]);
    });
  });

  describe('export', () => {
    it('prints a public-key PEM that node accepts and whose key id is the one list shows', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const r = await runOk(['key', 'export', 'brand', '--keyring', ring]);
      expect(r.out).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
      const node = createPublicKey(r.out);
      expect(node.type).toBe('public');
      expect(node.asymmetricKeyType).toBe('rsa');
      const [listed] = await listJson(ring);
      expect(PublicKey.fromPem(r.out).id).toBe(listed!['key-id']);
      expect(r.out).not.toContain('PRIVATE');
    });

    it('fails with ERR_KEY_NOT_FOUND for an unknown key, naming the keys there', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const r = await run(['key', 'export', 'nope', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain('no key "nope"');
      expect(r.err).toContain('keys there: brand');
      expect(r.err).toContain('[ERR_KEY_NOT_FOUND]');
    });
  });

  describe('delete', () => {
    it('removes both files and the key from the list, leaving other keys', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      await createKey(ring, 'store');
      const r = await runOk(['key', 'delete', 'brand', '--keyring', ring]);
      expect(r.out).toContain('deleted key "brand"');
      expect(existsSync(join(ring, 'brand.key'))).toBe(false);
      expect(existsSync(join(ring, 'brand.pub'))).toBe(false);
      expect((await listJson(ring)).map((k) => k.name)).toEqual(['store']);
    });

    it('fails with ERR_KEY_NOT_FOUND for an unknown key', async () => {
      const ring = join(tempDir(), 'keys');
      await createKey(ring, 'brand');
      const r = await run(['key', 'delete', 'nope', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain('[ERR_KEY_NOT_FOUND]');
      expect(existsSync(join(ring, 'brand.key'))).toBe(true);
    });

    it('refuses a name that would reach outside the keyring', async () => {
      const dir = tempDir();
      const ring = join(dir, 'keys');
      await createKey(join(dir, 'other'), 'victim');
      const r = await run(['key', 'delete', '../other/victim', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain('[ERR_KEY_NAME]');
      expect(existsSync(join(dir, 'other', 'victim.key'))).toBe(true);
    });
  });

  describe('encrypted keys ($EDGEIMAGE_KEY_PASSPHRASE)', () => {
    const PASS = 'correct horse battery staple';

    async function encryptedKey() {
      const dir = tempDir();
      const ring = join(dir, 'keys');
      await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: PASS }, () => createKey(ring, 'secret'));
      return { dir, ring, file: join(ring, 'secret.key') };
    }

    it('writes an ENCRYPTED PRIVATE KEY, still mode 0600, and list says encrypted', async () => {
      const { ring, file } = await encryptedKey();
      const pem = readFileSync(file, 'utf8');
      expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
      expect(pem).not.toContain('BEGIN PRIVATE KEY');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(() => createPrivateKey(pem)).toThrow();
      expect(createPrivateKey({ key: pem, format: 'pem', passphrase: PASS }).asymmetricKeyType).toBe('rsa');
      const [k] = await listJson(ring);
      expect(k!.encrypted).toBe(true);
      expect((await runOk(['key', 'list', '--keyring', ring])).out).toMatch(/^secret\s+\S+\s+RSA-2048 encrypted$/m);
    });

    it('list and export need no passphrase', async () => {
      const { ring } = await encryptedKey();
      await withEnv(NO_PASSPHRASE, async () => {
        await runOk(['key', 'list', '--keyring', ring]);
        createPublicKey((await runOk(['key', 'export', 'secret', '--keyring', ring])).out);
      });
    });

    it('signs with the right passphrase', async () => {
      const { dir, ring } = await encryptedKey();
      const r = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: PASS }, () => runOk(['sign', accountFile(dir), '--key', 'secret', '--keyring', ring]));
      const [k] = await listJson(ring);
      expect(r.out).toContain(`sign-key-sha3-384: ${k!['key-id']}`);
    });

    it('refuses a wrong passphrase: exit 1, naming the key file, [ERR_KEY_PASSPHRASE]', async () => {
      const { dir, ring, file } = await encryptedKey();
      const r = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'not the passphrase' }, () => run(['sign', accountFile(dir), '--key', 'secret', '--keyring', ring]));
      expect(r.status).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(file);
      expect(r.err).toContain('wrong passphrase');
      expect(r.err).toMatch(/\[ERR_KEY_PASSPHRASE\]\n$/);
    });

    it('refuses to sign without a passphrase: exit 1, [ERR_KEY_PASSPHRASE]', async () => {
      const { dir, ring, file } = await encryptedKey();
      const r = await withEnv(NO_PASSPHRASE, () => run(['sign', accountFile(dir), '--key', 'secret', '--keyring', ring]));
      expect(r.status).toBe(1);
      expect(r.err).toContain(file);
      expect(r.err).toContain('[ERR_KEY_PASSPHRASE]');
    });

    it('account-key also needs the passphrase of an encrypted signing key', async () => {
      const { ring } = await encryptedKey();
      const bad = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'nope' }, () => run(['account-key', 'secret', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'secret', '--keyring', ring]));
      expect(bad.status).toBe(1);
      expect(bad.err).toContain('[ERR_KEY_PASSPHRASE]');
      const good = await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: PASS }, () => runOk(['account-key', 'secret', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'secret', '--keyring', ring]));
      expect(good.out).toMatch(/^type: account-key\n/);
    });
  });

  describe('key file permissions', () => {
    it.each(['644', '640', '604'])('refuses to sign with a key file of mode %s: [ERR_KEY_PERMISSIONS], "chmod 600 <file>"', async (octal) => {
      const mode = parseInt(octal, 8);
      const dir = tempDir();
      const ring = join(dir, 'keys');
      await createKey(ring, 'brand');
      const file = join(ring, 'brand.key');
      chmodSync(file, mode);
      const r = await run(['sign', accountFile(dir), '--key', 'brand', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(`chmod 600 ${file}`);
      expect(r.err).toContain(`mode 0${mode.toString(8)}`);
      expect(r.err).toContain('[ERR_KEY_PERMISSIONS]');
      // Fixing it as told makes signing work.
      chmodSync(file, 0o600);
      await runOk(['sign', accountFile(dir), '--key', 'brand', '--keyring', ring]);
    });

    it('refuses a world-readable key for account-key too', async () => {
      const dir = tempDir();
      const ring = join(dir, 'keys');
      await createKey(ring, 'root');
      chmodSync(join(ring, 'root.key'), 0o644);
      const r = await run(['account-key', 'root', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--keyring', ring]);
      expect(r.status).toBe(1);
      expect(r.err).toContain('[ERR_KEY_PERMISSIONS]');
    });
  });

  describe('the private key never appears in any output', () => {
    it('is absent from everything printed by every command, including when the key file is passed by mistake', async () => {
      const dir = tempDir();
      const ring = join(dir, 'keys');
      await createKey(ring, 'brand');
      const file = join(ring, 'brand.key');
      const headers = accountFile(dir);
      await runOk(['key', 'list', '--keyring', ring]);
      await runOk(['key', 'list', '--json', '--keyring', ring]);
      await runOk(['key', 'export', 'brand', '--keyring', ring]);
      await runOk(['sign', headers, '--key', 'brand', '--keyring', ring]);
      await runOk(['sign', headers, '--key', 'brand', '--keyring', ring, '-o', join(dir, 'acme.account')]);
      await runOk(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'brand', '--keyring', ring]);
      // The private key file handed to commands that read other files: they fail, without quoting it.
      expect((await run(['sign', file, '--key', 'brand', '--keyring', ring])).status).toBe(1);
      expect((await run(['decode', file])).status).toBe(1);
      expect((await run(['verify', file])).status).toBe(1);
      expect((await run(['verify', join(dir, 'acme.account'), '--trusted', file])).status).toBe(1);
      chmodSync(file, 0o644);
      expect((await run(['sign', headers, '--key', 'brand', '--keyring', ring])).status).toBe(1);
      chmodSync(file, 0o600);
      await withEnv({ EDGEIMAGE_KEY_PASSPHRASE: 'x' }, () => run(['key', 'create', 'brand', '--keyring', ring]));
      await runOk(['key', 'delete', 'brand', '--keyring', ring]);

      // Every key of this test file, against everything printed in this test file.
      const printed = transcript.join('');
      const flat = printed.replace(/\s+/g, '');
      expect(privateBodies.length).toBeGreaterThan(5);
      for (const body of privateBodies) {
        expect(flat).not.toContain(body.join(''));
        // Whole lines (short last lines could occur by chance in the base64 of signatures).
        for (const l of body.filter((x) => x.length >= 40)) expect(printed).not.toContain(l);
      }
      expect(printed).not.toContain('PRIVATE KEY-----');
    });
  });
});
