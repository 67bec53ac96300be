import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrivateKey, PublicKey } from '../crypto/index.js';
import { KeyError } from '../errors.js';

const NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

export interface KeyInfo {
  name: string;
  /** snapd's key id (sha3-384 of the public key packet), as `sign-key-sha3-384` carries it; '' when unknown (encrypted key without its .pub). */
  keyId: string;
  bits: number;
  /** Whether the private key file is encrypted with a passphrase. */
  encrypted: boolean;
}

/**
 * A directory of signing keys: `NAME.key` (PKCS#8 PEM, mode 0600, encrypted when a passphrase is
 * given) and `NAME.pub` (the public key, SPKI PEM, so listing needs no passphrase).
 *
 * ```ts
 * const ring = new Keyring('signing-keys');
 * await ring.create('brand', { bits: 4096, passphrase: process.env.EDGEIMAGE_KEY_PASSPHRASE });
 * const key = ring.load('brand', process.env.EDGEIMAGE_KEY_PASSPHRASE);
 * ```
 */
export class Keyring {
  constructor(readonly dir: string) {}

  privatePath(name: string): string {
    return join(this.dir, `${name}.key`);
  }

  publicPath(name: string): string {
    return join(this.dir, `${name}.pub`);
  }

  private checkName(name: string): void {
    if (!NAME.test(name)) {
      throw new KeyError('ERR_KEY_NAME', `invalid key name ${JSON.stringify(name)}: expected lower-case letters, digits and dashes (e.g. "brand-2026")`);
    }
  }

  private requireKey(name: string): void {
    this.checkName(name);
    if (!existsSync(this.privatePath(name)) && !existsSync(this.publicPath(name))) {
      const have = this.names();
      throw new KeyError('ERR_KEY_NOT_FOUND', `no key "${name}" in keyring ${this.dir} (keys there: ${have.length ? have.join(', ') : 'none'}; create one with "edgeimage key create ${name}")`, this.privatePath(name));
    }
  }

  names(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.key') || f.endsWith('.pub'))
      .map((f) => f.replace(/\.(key|pub)$/, ''))
      .filter((n, i, all) => NAME.test(n) && all.indexOf(n) === i)
      .sort();
  }

  /** Generates a key and writes it; refuses to overwrite an existing one. */
  async create(name: string, opts: { bits?: number; passphrase?: string } = {}): Promise<KeyInfo> {
    this.checkName(name);
    if (existsSync(this.privatePath(name))) {
      throw new KeyError('ERR_KEY_EXISTS', `key "${name}" already exists in ${this.dir}; delete it first with "edgeimage key delete ${name}"`, this.privatePath(name));
    }
    const key = await PrivateKey.generate(opts.bits ?? 4096);
    return this.import(name, key, opts.passphrase);
  }

  /** Stores an existing private key under `name`. */
  import(name: string, key: PrivateKey, passphrase?: string): KeyInfo {
    this.checkName(name);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // Written under a temporary name with 0600 from the first byte, then renamed: no moment
    // where the key is readable by others or half-written.
    writeAtomic(this.privatePath(name), key.toPem(passphrase || undefined), 0o600);
    writeAtomic(this.publicPath(name), key.publicKey.toPem(), 0o644);
    return { name, keyId: key.publicKey.id, bits: key.publicKey.bits, encrypted: Boolean(passphrase) };
  }

  /** Loads a private key, refusing a file that others can read. */
  load(name: string, passphrase?: string): PrivateKey {
    this.requireKey(name);
    const file = this.privatePath(name);
    if (!existsSync(file)) throw new KeyError('ERR_KEY_NOT_FOUND', `key "${name}" in ${this.dir} has only a public part; signing needs ${file}`, file);
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new KeyError(
        'ERR_KEY_PERMISSIONS',
        `private key ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}, expected 0600); fix it with: chmod 600 ${file}`,
        file,
      );
    }
    const pem = readFileSync(file, 'utf8');
    try {
      return PrivateKey.fromPem(pem, passphrase || undefined);
    } catch (e) {
      if (e instanceof KeyError) throw new KeyError(e.code, `${file}: ${e.message}`, file);
      throw e;
    }
  }

  publicKey(name: string): PublicKey {
    this.requireKey(name);
    const pub = this.publicPath(name);
    if (existsSync(pub)) return PublicKey.fromPem(readFileSync(pub, 'utf8'));
    throw new KeyError('ERR_KEY_NOT_FOUND', `public key file ${pub} is missing`, pub);
  }

  /**
   * What `key list` shows. A key whose NAME.pub is missing is described from its private half
   * when that is not encrypted; otherwise its id is left out rather than failing the whole list.
   */
  info(name: string): KeyInfo {
    this.requireKey(name);
    const priv = this.privatePath(name);
    const encrypted = existsSync(priv) && readFileSync(priv, 'utf8').includes('ENCRYPTED PRIVATE KEY');
    let pk: PublicKey | undefined;
    if (existsSync(this.publicPath(name))) pk = this.publicKey(name);
    else if (!encrypted) pk = PrivateKey.fromPem(readFileSync(priv, 'utf8')).publicKey;
    return { name, keyId: pk?.id ?? '', bits: pk?.bits ?? 0, encrypted };
  }

  list(): KeyInfo[] {
    return this.names().map((n) => this.info(n));
  }

  delete(name: string): void {
    this.requireKey(name);
    rmSync(this.privatePath(name), { force: true });
    rmSync(this.publicPath(name), { force: true });
  }
}

export function writeAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
