import type { Assertion } from '../assertion.js';
import { SignatureError, TrustError, EdgeimageError } from '../errors.js';
import type { AssertionType } from '../types/registry.js';
import { refOf } from '../types/registry.js';
import type { SigningKey } from './signing-key.js';

/** What a checker may ask of the database: lookups, never changes. */
export interface TrustView {
  isTrustedAccount(accountId: string): boolean;
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

/** The RSA signature over the exact content bytes (snapd: CheckSignature). */
export const checkSignature: Checker = ({ assertion, key }) => {
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
      requireDirectlyTrusted(a, db, 'an account');
      return;
    case 'account-key': {
      requireDirectlyTrusted(a, db, 'an account-key');
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
      if ((a.header('provenance') ?? 'global-upload') === 'global-upload') requireDirectlyTrusted(a, db, 'a snap-revision');
      requireAccount(a, db, a.header('developer-id')!, 'developer');
      const snapId = a.header('snap-id')!;
      if (!db.find('snap-declaration', { series: '16', 'snap-id': snapId })) {
        throw new TrustError(refOf(a), `no snap-declaration for snap-id "${snapId}"`, a.source, 'ERR_MISSING_DECLARATION');
      }
      return;
    }
    default:
      return;
  }
};

/** snapd's DefaultCheckers, in snapd's order. */
export const DEFAULT_CHECKERS: readonly Checker[] = [checkKeyValidNow, checkSignature, checkTimestampInKeyValidity, checkCrossConsistency];
