import type { Assertion } from '../assertion.js';
import { SignatureError, TrustError, EdgeimageError } from '../errors.js';
import type { AssertionType } from '../types/registry.js';
import { refOf } from '../types/registry.js';
import { snapDeclarationType } from '../types/snap-declaration.js';
import { DEFAULT_PROVENANCE } from '../types/snap-revision.js';
import type { SigningKey } from './signing-key.js';

/** What a checker may ask of the database: lookups, never changes. */
export interface TrustView {
  isTrustedAccount(accountId: string): boolean;
  /** A trusted account with a self-signed account-key among the trusted: it vouches for accounts and keys. */
  isRootAccount(accountId: string): boolean;
  /** The self-signed trusted key of a root. */
  isRootKey(keyId: string): boolean;
  find(type: string, primaryKey: Record<string, string>): Assertion | undefined;
  findAccountKeys(accountId: string, name: string): SigningKey[];
  /** The time of checking: now, or `--at`. */
  readonly at: Date;
}

export interface CheckInput {
  assertion: Assertion;
  type: AssertionType;
  view: unknown;
  key: SigningKey;
}

/** One rule of snapd's chain check; adding a rule means adding a function to the list. */
export type Checker = (input: CheckInput, db: TrustView) => void;

const iso = (d: Date) => d.toISOString();
const window = (k: SigningKey) => `valid since ${iso(k.since)}${k.until ? ` until ${iso(k.until)}` : ''}`;

/** The signing key must be valid at the time of checking (snapd: CheckSigningKeyIsNotExpired). */
export const checkKeyValidNow: Checker = ({ assertion, key }, db) => {
  if (key.isValidAt(db.at)) return;
  const code = db.at < key.since ? 'ERR_KEY_NOT_YET_VALID' : 'ERR_KEY_EXPIRED';
  const what = db.at < key.since ? 'is not yet valid' : 'has expired';
  throw new TrustError(
    refOf(assertion),
    `signing key ${key.id} of "${key.accountId}" ${what} at ${iso(db.at)} (${window(key)}); use --at to check at another time`,
    assertion.source,
    code,
  );
};

/**
 * The key's `constraints` admit the assertion, then the RSA signature over the exact content
 * bytes verifies (snapd: CheckSignature, which runs canSign before verifying).
 */
export const checkSignature: Checker = ({ assertion, key }) => {
  if (key.constraints && !key.constraints.allows(assertion)) {
    const declared = JSON.stringify(key.assertion.headers['constraints']);
    if (key.constraints.pointerOnly) {
      throw new TrustError(
        refOf(assertion),
        `signing key ${key.id} of "${key.accountId}" signs channel pointers only (its constraints ${declared}), not a ${assertion.type}: sign it with a key whose constraints admit it (the brand's model key)`,
        assertion.source,
        'ERR_KEY_POINTER_ONLY',
      );
    }
    throw new TrustError(
      refOf(assertion),
      `signing key ${key.id} of "${key.accountId}" may not sign it: the assertion's headers match none of the key's constraints ${declared}`,
      assertion.source,
      'ERR_KEY_CONSTRAINTS',
    );
  }
  try {
    key.publicKey.verify(assertion.content, assertion.signature);
  } catch (e) {
    if (e instanceof EdgeimageError) {
      throw new SignatureError(refOf(assertion), `${e.message} (key ${key.id} of "${key.accountId}")`, assertion.source, e.code);
    }
    throw e;
  }
};

/** An assertion's timestamp must fall in its key's validity (snapd: CheckTimestampVsSigningKeyValidity). */
export const checkTimestampInKeyValidity: Checker = ({ assertion, type, view, key }) => {
  if (!type.hasTimestamp) return;
  const ts = (view as { timestamp?: Date }).timestamp;
  if (ts && key.isValidAt(ts)) return;
  throw new TrustError(
    refOf(assertion),
    `timestamp ${assertion.header('timestamp')} is outside the validity of signing key ${key.id} (${window(key)})`,
    assertion.source,
    'ERR_KEY_VALIDITY',
  );
};

/** What the self-signed root key signs; its account's other keys may sign more (as Canonical's store key does). */
const ROOT_KEY_SIGNS = ['account', 'account-key'];
/** What a trusted account that is not a root (a store) signs. */
const STORE_SIGNS = ['snap-declaration', 'snap-revision'];

/**
 * Each key signs only what its role allows, the roles coming from the trusted assertions: the
 * root key vouches for accounts and keys and nothing else, and a trusted account that is not a
 * root (a store) signs snap-declarations and snap-revisions only, never a key or a model. What an
 * account outside the trusted set may sign is bounded by the cross-checks (no accounts, keys,
 * declarations or global-upload revisions).
 */
export const checkSignerRole: Checker = ({ assertion: a, key }, db) => {
  if (db.isRootKey(key.id) && !ROOT_KEY_SIGNS.includes(a.type)) {
    throw new TrustError(
      refOf(a),
      `signed by the root key ${key.id} of "${key.accountId}", which signs only accounts and account-keys, not a ${a.type}; sign it with a key the root vouches for`,
      a.source,
      'ERR_SIGNER_ROLE',
    );
  }
  if (db.isTrustedAccount(key.accountId) && !db.isRootAccount(key.accountId) && !STORE_SIGNS.includes(a.type)) {
    throw new TrustError(
      refOf(a),
      `signed by "${key.accountId}", a trusted account that is not a root (no self-signed account-key of it among the trusted), which signs only snap-declarations and snap-revisions, not a ${a.type}`,
      a.source,
      'ERR_SIGNER_ROLE',
    );
  }
};

function requireRoot(a: Assertion, db: TrustView, what: string): void {
  const authority = a.authorityId ?? '';
  if (db.isRootAccount(authority)) return;
  requireDirectlyTrusted(a, db, what);
  throw new TrustError(
    refOf(a),
    `${what} must be signed by a root (a trusted account with a self-signed account-key among the trusted), but "${authority}" is not one`,
    a.source,
    'ERR_SIGNER_ROLE',
  );
}

/**
 * A snap-revision of another provenance than global-upload is accepted only when the snap's
 * declaration delegates that provenance to its signer, within the revision range (snapd:
 * SnapRevision.checkConsistency with RevisionAuthority.Check; device scope is not a database-level
 * check in snapd either).
 */
function requireRevisionAuthority(a: Assertion, decl: Assertion, provenance: string): void {
  const authority = a.authorityId ?? '';
  const revision = Number(a.header('snap-revision'));
  const ras = snapDeclarationType.assemble(decl).revisionAuthorities.filter((ra) => ra.provenance.includes(provenance));
  const ok = ras.some((ra) => ra.accountId === authority && revision >= ra.minRevision && (ra.maxRevision === undefined || revision <= ra.maxRevision));
  if (ok) return;
  const allowed = ras.length
    ? ras.map((ra) => `"${ra.accountId}" for revisions ${ra.minRevision}..${ra.maxRevision ?? '∞'}`).join(', ')
    : 'nobody';
  throw new TrustError(
    refOf(a),
    `provenance "${provenance}" revision ${revision} signed by "${authority}" is not allowed by the revision-authority of the snap-declaration for snap-id ${decl.header('snap-id')} (it allows ${allowed} for that provenance)`,
    a.source,
    'ERR_REVISION_AUTHORITY',
  );
}

function requireDirectlyTrusted(a: Assertion, db: TrustView, what: string): void {
  const authority = a.authorityId ?? '';
  if (db.isTrustedAccount(authority)) return;
  throw new TrustError(
    refOf(a),
    `${what} must be signed by a directly trusted authority, but "${authority}" is not trusted (pass its account and account-key with --trusted)`,
    a.source,
    'ERR_NOT_DIRECTLY_TRUSTED',
  );
}

function requireAccount(a: Assertion, db: TrustView, accountId: string, role: string): void {
  if (db.find('account', { 'account-id': accountId })) return;
  throw new TrustError(refOf(a), `no account assertion for the ${role} "${accountId}" (add it to the input or --trusted)`, a.source, 'ERR_MISSING_ACCOUNT');
}

/** Per-type consistency with what the database knows (snapd: CheckCrossConsistency). */
export const checkCrossConsistency: Checker = ({ assertion: a }, db) => {
  switch (a.type) {
    case 'account':
      requireRoot(a, db, 'an account');
      return;
    case 'account-key': {
      requireRoot(a, db, 'an account-key');
      const accountId = a.header('account-id')!;
      requireAccount(a, db, accountId, 'key owner');
      const name = a.header('name');
      if (!name) return;
      const clash = db.findAccountKeys(accountId, name).find((k) => k.id !== a.header('public-key-sha3-384'));
      if (clash) {
        throw new TrustError(refOf(a), `account "${accountId}" already has a different key named "${name}" (${clash.id})`, a.source, 'ERR_DUPLICATE_KEY_NAME');
      }
      return;
    }
    case 'snap-declaration':
      requireDirectlyTrusted(a, db, 'a snap-declaration');
      requireAccount(a, db, a.header('publisher-id')!, 'publisher');
      return;
    case 'snap-revision': {
      const provenance = a.header('provenance') ?? DEFAULT_PROVENANCE;
      if (provenance === DEFAULT_PROVENANCE) requireDirectlyTrusted(a, db, 'a snap-revision of provenance global-upload');
      requireAccount(a, db, a.header('developer-id')!, 'developer');
      const snapId = a.header('snap-id')!;
      const decl = db.find('snap-declaration', { series: '16', 'snap-id': snapId });
      if (!decl) {
        throw new TrustError(refOf(a), `no snap-declaration for snap-id "${snapId}"`, a.source, 'ERR_MISSING_DECLARATION');
      }
      if (provenance !== DEFAULT_PROVENANCE) requireRevisionAuthority(a, decl, provenance);
      return;
    }
    default:
      return;
  }
};

/** snapd's DefaultCheckers, in snapd's order, with the signer's role checked before the cross-checks. */
export const DEFAULT_CHECKERS: readonly Checker[] = [checkKeyValidNow, checkSignature, checkTimestampInKeyValidity, checkSignerRole, checkCrossConsistency];
