/**
 * A brand's boot keys: the UEFI Secure Boot chain (PK → KEK → db) and the key U-Boot checks FIT
 * images with, kept in `<keyring>/boot/` by the keyring's own code (so the same 0600, atomic-write
 * and passphrase rules hold), each with a self-signed certificate beside it.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PrivateKey, rsaNumbers } from '../crypto/index.js';
import { KeyError } from '../errors.js';
import { Keyring, writeAtomic } from '../keyring/index.js';
import { readRegularFile } from '../files/read-regular.js';
import { ACCOUNT_ID } from '../types/checks.js';
import { selfSignedCertificate } from './certificate.js';
import { brandOwnerGuid, x509SignatureList } from './esl.js';

/**
 * RSA-2048 for every boot key: edk2 (OVMF/AAVMF) verifies Authenticode and variable signatures with
 * 2048-bit keys and the shim-era tooling (sbsign, sbverify, efitools) and firmware in the field are
 * tested with 2048; U-Boot supports rsa2048 in every build that has FIT_SIGNATURE, larger sizes not
 * always. The keyring's 4096 default is snapd's rule for assertions, not the firmware's.
 */
export const BOOT_KEY_BITS = 2048;

export type BootKeyRole = 'PK' | 'KEK' | 'db' | 'FIT';

/** The UEFI keys, in enrolment order (db and KEK first, PK last ends setup mode). */
const UEFI_ROLES = [
  { role: 'PK', stem: 'pk' },
  { role: 'KEK', stem: 'kek' },
  { role: 'db', stem: 'db' },
] as const;

/** Certificates and the brand file are small; anything bigger is not ours. */
const MAX_FILE = 64 * 1024;
const BRAND_FILE = 'brand-id';

/**
 * `<keyring>/boot` is a link to `boot.sets/<id>`: a rotation writes the new set in full, then renames
 * a new link over the old one, so a reader or signer always finds one whole set (two folder renames
 * would leave a moment with no `boot` at all). The set it replaced moves to `boot.retired-<stamp>`.
 */
const SETS = 'boot.sets';
const SET_ID = '[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}';
const LINK_TARGET = new RegExp(`^${SETS.replace('.', '\\.')}/${SET_ID}$`);
/** Leftovers listed in a message; a keyring with more has bigger problems than the list shows. */
const MAX_LISTED = 8;

/** `20261204T001502Z`: sorts by time, and is a valid file name everywhere. */
function utcStamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.[0-9]{3}Z$/, 'Z');
}

function kind(path: string): 'missing' | 'dir' | 'link' | 'other' {
  try {
    const st = lstatSync(path);
    return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

export interface BootKeyInfo {
  role: BootKeyRole;
  /** The file stem in the boot folder: `<stem>.key`, `<stem>.pub`, `<stem>.crt`. */
  name: string;
  /** `CN=acme Secure Boot PK, O=acme`. */
  subject: string;
  /** SHA-256 of the DER certificate, colon-separated hex as openssl prints it. */
  fingerprint: string;
  bits: number;
  /** ISO 8601 UTC. */
  notAfter: string;
  encrypted: boolean;
  certificate: string;
}

export interface BootKeySet {
  brand: string;
  /** The boot folder, `<keyring>/boot` (a link to the set in use). */
  dir: string;
  /** The folder the keys are in: `<keyring>/boot.sets/<id>`. */
  setDir: string;
  /** Sets or parts of sets in the keyring that `boot` does not name: an interrupted create or rotation. Each may hold private keys. */
  leftovers: string[];
  /** The SignatureOwner GUID of the brand's EFI signature list entries. */
  owner: string;
  /** The name U-Boot looks the key up by (`key-name-hint`, `/signature/key-<name>`). */
  fitKeyName: string;
  keys: BootKeyInfo[];
}

/**
 * What signs a boot payload: one boot key's private key, in memory only, with its certificate.
 * `db` signs what UEFI firmware starts (GRUB, unified kernel images); `FIT` signs U-Boot's FIT images.
 */
export interface BootSigner {
  role: 'db' | 'FIT';
  /** The file stem in the set (`db`, `<brand>-fit`); for FIT also U-Boot's key name. */
  name: string;
  brand: string;
  key: KeyObject;
  certPem: string;
  certDer: Buffer;
}

export interface CreateBootKeysOptions {
  /** Encrypts every private key (PKCS#8, AES-256-CBC), as for signing keys. */
  passphrase?: string;
  /** Replace an existing set: the new set is written in full beside it, then swapped in; the old one is kept as `boot.retired-<stamp>`. */
  force?: boolean;
  /** Start of the certificates' validity (default: today). */
  now?: Date;
}

/**
 * The FIT key's name: `mkimage -k DIR` reads `<name>.key` and `<name>.crt`. Lower-cased so a
 * store-made 32-character brand id is a valid keyring name too.
 */
export function fitKeyName(brand: string): string {
  return `${brand.toLowerCase()}-fit`;
}

function checkBrand(brand: string): void {
  if (typeof brand !== 'string' || brand.length > 64 || !ACCOUNT_ID.test(brand) || brand.startsWith('-') || brand.endsWith('-')) {
    throw new KeyError(
      'ERR_BOOT_KEYS_BRAND',
      `invalid brand id ${JSON.stringify(String(brand).slice(0, 80))}: expected the model's brand-id, 2 to 28 lower-case letters, digits and dashes not at either end (e.g. "acme"), or a 32-character store account id`,
    );
  }
}

/**
 * A regular file of at most MAX_FILE bytes. Opened without following a link (a set is written as
 * plain files, so a link is someone else's doing) and without blocking (a FIFO would otherwise hang
 * the open), then checked on the open descriptor, so what is checked is what is read.
 */
function readSmall(file: string): Buffer {
  return readRegularFile(file, MAX_FILE, (p) => {
    if (p.kind === 'missing') return new KeyError('ERR_BOOT_KEYS_NOT_FOUND', `the boot key set in ${dirname(file)} is missing ${basename(file)}; make a new set with "edgeimage boot-keys create --brand ID --force"`, file);
    if (p.kind === 'too-large') return new KeyError('ERR_BOOT_KEYS_FORMAT', `${file} is ${p.size} bytes, more than a boot key file can be (${MAX_FILE})`, file);
    const found = p.kind === 'link' ? 'a symbolic link' : p.kind === 'not-regular' ? 'a FIFO, device, socket or folder' : `something that cannot be opened (${p.code})`;
    return new KeyError('ERR_BOOT_KEYS_FORMAT', `${file}: expected a regular file as "edgeimage boot-keys create" writes it, found ${found}`, file);
  });
}

function roles(brand: string): { role: BootKeyRole; stem: string }[] {
  return [...UEFI_ROLES, { role: 'FIT', stem: fitKeyName(brand) }];
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

/**
 * The boot keys of one keyring.
 *
 * ```ts
 * const boot = new BootKeys('signing-keys');
 * await boot.create('acme', { passphrase: process.env.EDGEIMAGE_KEY_PASSPHRASE });
 * boot.export('factory/acme');   // certificates and signature lists, never a private key
 * ```
 */
export class BootKeys {
  /** `<keyring>/boot`. */
  readonly dir: string;

  constructor(readonly keyringDir: string) {
    this.dir = join(keyringDir, 'boot');
  }

  /** Whether a set (or anything) is at `<keyring>/boot`. */
  exists(): boolean {
    const k = kind(this.dir);
    return k === 'dir' ? readdirSync(this.dir).length > 0 : k !== 'missing';
  }

  /**
   * The folder `boot` names. A set made before sets were linked is a plain folder and is read where
   * it is. A link is followed only to `boot.sets/<id>` of this keyring: keys are not read from
   * wherever a link someone put there points.
   */
  private current(): string | undefined {
    const k = kind(this.dir);
    if (k === 'missing') return undefined;
    if (k === 'dir') return this.dir;
    const target = k === 'link' ? readlinkSync(this.dir) : '';
    if (!LINK_TARGET.test(target)) {
      const found = k === 'link' ? `a link to ${JSON.stringify(target.slice(0, 200))}` : 'neither a link nor a folder';
      throw new KeyError('ERR_BOOT_KEYS_LINK', `${this.dir}: expected a link to ${SETS}/<id> inside the keyring (as "edgeimage boot-keys create" makes it), found ${found}; refusing to read boot keys from there`, this.dir);
    }
    for (const d of [join(this.keyringDir, SETS), join(this.keyringDir, target)]) {
      const dk = kind(d);
      if (dk !== 'dir' && dk !== 'missing') throw new KeyError('ERR_BOOT_KEYS_LINK', `${d}: expected a folder, found ${dk === 'link' ? 'a link' : 'something else'}; refusing to read boot keys through it`, d);
    }
    return join(this.keyringDir, target);
  }

  /**
   * What an interrupted create or rotation left: sets in `boot.sets` that `boot` does not name, and
   * `.boot.*` entries (an unused link, or the staging folders of the earlier two-rename swap).
   */
  leftovers(): string[] {
    let inUse: string | undefined;
    try {
      inUse = this.current();
    } catch {
      inUse = undefined;
    }
    const found: string[] = [];
    if (kind(this.keyringDir) === 'dir') {
      for (const n of readdirSync(this.keyringDir)) if (n.startsWith('.boot.')) found.push(join(this.keyringDir, n));
    }
    const sets = join(this.keyringDir, SETS);
    if (kind(sets) === 'dir') for (const n of readdirSync(sets)) if (join(sets, n) !== inUse) found.push(join(sets, n));
    return found.sort();
  }

  /**
   * Makes PK, KEK, db and the FIT key for `brand` in `boot.sets/<id>` and points `boot` at them.
   * Refuses (`ERR_BOOT_KEYS_EXIST`) when there is a set, unless `force`; then the old set is kept as
   * `boot.retired-<stamp>` (devices enrolled with it take KEK and db updates only signed by its keys)
   * and returned as `retired`. Refuses (`ERR_BOOT_KEYS_LEFTOVER`) while an interrupted run's
   * leftovers are there: one of them may be the only copy of keys that devices are enrolled with.
   */
  async create(brand: string, opts: CreateBootKeysOptions = {}): Promise<BootKeySet & { retired?: string }> {
    checkBrand(brand);
    // A boot link pointing elsewhere is reported as such first, not as the leftover set it orphaned.
    this.current();
    const left = this.leftovers();
    if (left.length > 0) throw this.leftoverError(left);
    if (this.exists() && !opts.force) throw this.existsError(brand);
    if (opts.passphrase === '') throw new KeyError('ERR_KEY_PASSPHRASE', 'refusing to encrypt boot keys with an empty passphrase');
    mkdirSync(this.keyringDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.keyringDir, SETS), { recursive: true, mode: 0o700 });
    const id = `${utcStamp()}-${randomBytes(4).toString('hex')}`;
    const staging = join(this.keyringDir, SETS, id);
    let linked = false;
    let retired: string | undefined;
    try {
      const ring = new Keyring(staging);
      const keys = await Promise.all(roles(brand).map(() => PrivateKey.generate(BOOT_KEY_BITS)));
      roles(brand).forEach(({ role, stem }, i) => {
        const key = keys[i]!;
        ring.import(stem, key, opts.passphrase);
        const commonName = role === 'FIT' ? `${brand} FIT signing` : `${brand} Secure Boot ${role}`;
        const cert = selfSignedCertificate(key, { commonName, organization: brand, codeSigning: role === 'db' || role === 'FIT', now: opts.now });
        writeAtomic(join(staging, `${stem}.crt`), cert.pem, 0o644);
      });
      writeAtomic(join(staging, BRAND_FILE), `${brand}\n`, 0o644);
      retired = this.switchTo(id, brand, opts.force ?? false);
      linked = true;
    } finally {
      if (!linked) rmSync(staging, { recursive: true, force: true });
    }
    return retired ? { ...this.show(), retired } : this.show();
  }

  private existsError(brand: string): KeyError {
    return new KeyError(
      'ERR_BOOT_KEYS_EXIST',
      `boot keys already exist in ${this.dir}; refusing to overwrite them (devices enrolled with them would no longer boot new images). Rotate them with "edgeimage boot-keys create --brand ${brand} --force"`,
      this.dir,
    );
  }

  private leftoverError(left: string[]): KeyError {
    const more = left.length > MAX_LISTED ? ` and ${left.length - MAX_LISTED} more` : '';
    return new KeyError(
      'ERR_BOOT_KEYS_LEFTOVER',
      `an interrupted (or still running) "boot-keys create" left ${left.slice(0, MAX_LISTED).join(', ')}${more}; they may hold private keys, and one may be the only copy of the keys devices are enrolled with. ` +
        `Compare their pk.crt with your records (openssl x509 -noout -fingerprint -sha256 -in DIR/pk.crt), keep a set you need as ${join(this.keyringDir, 'boot.retired-<date>')} (mv), delete the rest, then run again`,
      left[0],
    );
  }

  /** Points `boot` at `boot.sets/<id>`; with `force` over a set, which it retires and returns. */
  private switchTo(id: string, brand: string, force: boolean): string | undefined {
    const target = `${SETS}/${id}`;
    if (!force) {
      // symlink(2) makes the name only if nothing has it: a set made meanwhile by someone else is refused, not replaced.
      try {
        symlinkSync(target, this.dir);
        return undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw this.existsError(brand);
        throw e;
      }
    }
    let old = this.current();
    if (old === this.dir) {
      // A plain folder from before sets were linked: rename(2) cannot put a link over a folder, so it
      // moves into boot.sets first. This once, `boot` is missing between two renames.
      const moved = join(this.keyringDir, SETS, `${utcStamp()}-${randomBytes(4).toString('hex')}`);
      renameSync(this.dir, moved);
      old = moved;
    }
    const link = join(this.keyringDir, `.boot.link-${id}`);
    symlinkSync(target, link);
    try {
      renameSync(link, this.dir);
    } catch (e) {
      rmSync(link, { force: true });
      throw e;
    }
    return old === undefined ? undefined : this.retire(old);
  }

  /** Moves a set no longer in use to `boot.retired-<stamp>`, modes as they were (0700, keys 0600). */
  private retire(setDir: string): string {
    let dest = join(this.keyringDir, `boot.retired-${utcStamp()}`);
    if (existsSync(dest)) dest = `${dest}-${basename(setDir)}`;
    renameSync(setDir, dest);
    return dest;
  }

  /** Reads the set back (no passphrase needed): subjects, fingerprints, sizes, expiry; checks each certificate belongs to its key. */
  show(): BootKeySet {
    const setDir = this.current();
    const leftovers = this.leftovers();
    if (setDir === undefined) {
      const more = leftovers.length > MAX_LISTED ? ` and ${leftovers.length - MAX_LISTED} more` : '';
      const left = leftovers.length > 0 ? `; but an interrupted (or still running) create or rotation left ${leftovers.slice(0, MAX_LISTED).join(', ')}${more}, which may hold the keys devices are enrolled with: look at them before making a new set` : '';
      throw new KeyError('ERR_BOOT_KEYS_NOT_FOUND', `no boot keys in ${this.dir}; make them with "edgeimage boot-keys create --brand ID"${left}`, this.dir);
    }
    // Every file from the one folder the link named: a rotation meanwhile cannot mix two sets.
    const brand = readSmall(join(setDir, BRAND_FILE)).toString('utf8').trim();
    checkBrand(brand);
    const keys = roles(brand).map(({ role, stem }): BootKeyInfo => {
      const certFile = join(setDir, `${stem}.crt`);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(readSmall(certFile));
      } catch (e) {
        if (e instanceof KeyError) throw e;
        throw new KeyError('ERR_BOOT_KEYS_FORMAT', `${certFile}: not a PEM X.509 certificate (${(e as Error).message})`, certFile);
      }
      const pubFile = join(setDir, `${stem}.pub`);
      const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' });
      if (!spki(createPublicKey(readSmall(pubFile))).equals(spki(cert.publicKey))) {
        throw new KeyError('ERR_BOOT_KEYS_MISMATCH', `${certFile} is not the certificate of the key in ${pubFile}: the set is mixed up; make a new one with "edgeimage boot-keys create --brand ${brand} --force"`, certFile);
      }
      const keyFile = join(setDir, `${stem}.key`);
      return {
        role,
        name: stem,
        subject: subjectOf(cert),
        fingerprint: cert.fingerprint256,
        bits: cert.publicKey.asymmetricKeyType === 'rsa' ? rsaNumbers(cert.publicKey).bits : 0,
        notAfter: new Date(cert.validTo).toISOString().replace('.000Z', 'Z'),
        encrypted: readSmall(keyFile).includes('ENCRYPTED PRIVATE KEY'),
        certificate: certFile,
      };
    });
    return { brand, dir: this.dir, setDir, leftovers, owner: brandOwnerGuid(brand), fitKeyName: fitKeyName(brand), keys };
  }

  /**
   * The private key of `role` with its certificate, for signing boot payloads. Read from the one
   * set `boot` names (so a rotation meanwhile cannot pair one set's key with another's
   * certificate), through the keyring's loader (0600 or refused; passphrase for an encrypted key:
   * ERR_KEY_PASSPHRASE without or with a wrong one), and checked to be the certificate's key.
   */
  signer(role: 'db' | 'FIT', passphrase?: string): BootSigner {
    const set = this.show();
    const info = set.keys.find((k) => k.role === role)!;
    const certPem = readSmall(info.certificate).toString('utf8');
    const cert = new X509Certificate(certPem);
    const key = new Keyring(set.setDir).load(info.name, passphrase);
    const keyObject = createPrivateKey(key.toPem());
    const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (!spki(createPublicKey(keyObject)).equals(spki(cert.publicKey))) {
      throw new KeyError('ERR_BOOT_KEYS_MISMATCH', `${join(set.setDir, `${info.name}.key`)} is not the private key of ${info.certificate}: the set is mixed up; make a new one with "edgeimage boot-keys create --brand ${set.brand} --force"`, info.certificate);
    }
    return { role, name: info.name, brand: set.brand, key: keyObject, certPem: cert.toString(), certDer: cert.raw };
  }

  /**
   * Writes what a factory enrols to `outDir` (which must not exist or be empty): per UEFI key its
   * certificate as DER (`.cer`) and PEM (`.crt`) and an EFI signature list (`.esl`), the FIT
   * certificate, and README.txt. Only certificates are read: no private key can end up there.
   * Written in a sibling folder and renamed into place.
   */
  export(outDir: string): { dir: string; files: string[] } {
    const set = this.show();
    const dest = resolve(outDir);
    if (existsSync(dest) && (!statSync(dest).isDirectory() || readdirSync(dest).length > 0)) {
      throw new KeyError('ERR_BOOT_KEYS_EXPORT_EXISTS', `${dest} already exists and is not an empty folder; export to a new folder`, dest);
    }
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const files: string[] = [];
    const put = (name: string, data: string | Buffer) => {
      writeAtomic(join(tmp, name), data, 0o644);
      files.push(name);
    };
    try {
      mkdirSync(tmp, { mode: 0o755 });
      for (const k of set.keys) {
        const cert = new X509Certificate(readSmall(k.certificate));
        if (k.role === 'FIT') {
          put(`${k.name}.crt`, cert.toString());
          continue;
        }
        put(`${k.role}.cer`, cert.raw);
        put(`${k.role}.crt`, cert.toString());
        put(`${k.role}.esl`, x509SignatureList(cert.raw, set.owner));
      }
      put('README.txt', factoryReadme(set));
      renameSync(tmp, dest);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { dir: dest, files: files.sort() };
  }
}

function factoryReadme(set: BootKeySet): string {
  const line = (k: BootKeyInfo) => `  ${k.role.padEnd(4)} ${k.subject}\n       SHA-256 ${k.fingerprint}`;
  return `Boot keys of brand "${set.brand}" — public certificates for the factory. No private key is in this folder.

UEFI Secure Boot (boards pc-amd64, arm64-efi). Enrol db and KEK first, PK last (writing PK ends setup mode):
  PK.esl, KEK.esl, db.esl   EFI_SIGNATURE_LIST (one X.509 certificate each), the content of the PK, KEK
                            and db variables, e.g. "efi-updatevar -e -f db.esl db" in setup mode, or a
                            firmware setup tool's "enrol from file"
  PK.cer, KEK.cer, db.cer   the same certificates as DER, for firmware menus that enrol certificate files
  PK.crt, KEK.crt, db.crt   the same certificates as PEM
The entries' SignatureOwner GUID, derived from the brand id: ${set.owner}
The db key signs what the firmware may start (GRUB, unified kernel images); KEK signs db updates; PK
signs KEK updates. Enrol nothing else (no Microsoft keys) if only the brand's software may start;
on a PC whose graphics or storage option ROMs are signed by Microsoft's UEFI CA, check first that
it still starts them.

U-Boot (board arm64-uboot):
  ${`${set.fitKeyName}.crt`.padEnd(25)} the FIT signing key's certificate; its public key goes into U-Boot's control
                            device tree as /signature/key-${set.fitKeyName} with required = "conf"
                            (mkimage -k <keys> -K <u-boot.dtb> -r while signing).

Fingerprints (check them against "edgeimage boot-keys show" on the signing host):
${set.keys.map(line).join('\n')}
`;
}
