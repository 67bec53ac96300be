import type { Assertion } from '../assertion.js';
import { EdgeimageError, RevisionError, TrustError } from '../errors.js';
import { assembleAssertion } from '../types/index.js';
import { assertionType, primaryKeyValue, refOf, type AssertionType } from '../types/registry.js';
import { DEFAULT_CHECKERS, type Checker, type TrustView } from './checkers.js';
import { SigningKey } from './signing-key.js';

export interface TrustDatabaseOptions {
  /** Trust anchors: root account-keys and their accounts. Taken as given, not checked for a signer. */
  trusted?: Iterable<Assertion>;
  /** The time of checking key validity; default now. */
  at?: Date;
  checkers?: readonly Checker[];
}

/** The outcome of `addAll` for one assertion. */
export interface AddResult {
  assertion: Assertion;
  ref: string;
  /** Set when the assertion was refused. */
  error?: EdgeimageError;
  /** The key it was checked against. */
  signKey?: string;
}

function primaryKeyOf(t: AssertionType, a: Assertion): string[] {
  return t.primaryKey.map((k) => primaryKeyValue(t, a, k) ?? '');
}
const isSelfSigned = (a: Assertion) => a.signKeyId === a.header('public-key-sha3-384') && a.authorityId === a.header('account-id');
const slot = (type: string, pk: string[]) => `${type}\u0000${pk.join('\u0000')}`;

/**
 * snapd's assertion database, in memory: trust anchors, then assertions added only after their
 * whole chain checks. Per primary key the highest revision is current; an older or equal revision
 * is refused.
 *
 * ```ts
 * const db = new TrustDatabase({ trusted: canonicalAnchors() });
 * const results = db.addAll(decodeStream(bytes, { file }));
 * const failed = results.filter((r) => r.error);
 * ```
 */
export class TrustDatabase implements TrustView {
  readonly at: Date;
  private readonly checkers: readonly Checker[];
  private readonly trusted = new Map<string, Assertion>();
  private readonly stored = new Map<string, Assertion>();
  private readonly keys = new Map<string, SigningKey>();

  constructor(opts: TrustDatabaseOptions = {}) {
    this.at = opts.at ?? new Date();
    this.checkers = opts.checkers ?? DEFAULT_CHECKERS;
    for (const a of opts.trusted ?? []) this.addTrusted(a);
  }

  /** Adds a trust anchor. It must be well-formed; its signature is not what makes it trusted. */
  addTrusted(a: Assertion): void {
    const { type } = assembleAssertion(a);
    if (a.type !== 'account' && a.type !== 'account-key') {
      throw new TrustError(refOf(a), `only account and account-key assertions can be trust anchors, not ${a.type}`, a.source, 'ERR_BAD_ANCHOR');
    }
    const key = slot(a.type, primaryKeyOf(type, a));
    if (this.trusted.get(key)?.content.equals(a.content)) return;
    this.trusted.set(key, a);
    if (a.type === 'account-key') this.keys.set(a.header('public-key-sha3-384')!, SigningKey.fromAccountKey(a));
  }

  isTrustedAccount(accountId: string): boolean {
    return accountId !== '' && this.trusted.has(slot('account', [accountId]));
  }

  /** A root: a trusted account with a self-signed account-key among the trusted assertions. */
  isRootAccount(accountId: string): boolean {
    return this.isTrustedAccount(accountId) && [...this.trusted.values()].some((a) => a.type === 'account-key' && isSelfSigned(a) && a.header('account-id') === accountId);
  }

  /** A self-signed trusted account-key: the root key itself, which signs only accounts and account-keys. */
  isRootKey(keyId: string): boolean {
    const a = this.trusted.get(slot('account-key', [keyId]));
    return a !== undefined && isSelfSigned(a);
  }

  /** The current (highest revision) assertion for a primary key, trusted ones included. */
  find(type: string, primaryKey: Record<string, string>): Assertion | undefined {
    const t = assertionType(type);
    if (!t) return undefined;
    const pk = t.primaryKey.map((k) => primaryKey[k] ?? t.optionalPrimaryKeyDefaults?.[k] ?? '');
    const key = slot(type, pk);
    return this.trusted.get(key) ?? this.stored.get(key);
  }

  /** Every stored (not anchor) assertion of a type. */
  all(type?: string): Assertion[] {
    return [...this.stored.values()].filter((a) => type === undefined || a.type === type);
  }

  findAccountKeys(accountId: string, name: string): SigningKey[] {
    return [...this.keys.values()].filter((k) => k.accountId === accountId && k.name === name);
  }

  /** The key that signed `a`, which must belong to `a`'s authority. */
  private signingKeyFor(a: Assertion): SigningKey {
    const key = this.keys.get(a.signKeyId);
    if (!key) {
      throw new TrustError(
        refOf(a),
        `signed by unknown key ${a.signKeyId} of "${a.authorityId}": no account-key for it in the input or among the trusted assertions`,
        a.source,
        'ERR_UNKNOWN_KEY',
      );
    }
    if (key.accountId !== a.authorityId) {
      throw new TrustError(
        refOf(a),
        `signed by key ${key.id}, which belongs to "${key.accountId}", but authority-id is "${a.authorityId}"`,
        a.source,
        'ERR_KEY_AUTHORITY_MISMATCH',
      );
    }
    return key;
  }

  /** Checks `a` against the chain without storing it. Returns the typed view. */
  check(a: Assertion): { view: unknown; key: SigningKey } {
    const { type, view } = assembleAssertion(a);
    const key = this.signingKeyFor(a);
    for (const checker of this.checkers) checker({ assertion: a, type, view, key }, this);
    return { view, key };
  }

  /** Checks and stores `a`; refuses an older or equal revision of a known assertion. */
  add(a: Assertion): SigningKey {
    const { type } = assembleAssertion(a);
    const key = slot(a.type, primaryKeyOf(type, a));
    const anchor = this.trusted.get(key);
    if (anchor) {
      if (anchor.content.equals(a.content)) return this.signingKeyFor(a);
      throw new TrustError(refOf(a), 'has the primary key of a trusted assertion and differs from it', a.source, 'ERR_TRUSTED_CLASH');
    }
    const current = this.stored.get(key);
    if (current?.content.equals(a.content)) return this.signingKeyFor(a);
    const { key: signer } = this.check(a);
    if (current && current.revision >= a.revision) throw new RevisionError(refOf(a), current.revision, a.revision, a.source);
    this.stored.set(key, a);
    if (a.type === 'account-key') this.keys.set(a.header('public-key-sha3-384')!, SigningKey.fromAccountKey(a));
    return signer;
  }

  /**
   * Adds a batch in any order: an assertion whose signing key or account comes later in the
   * batch is retried once that arrives. Never throws for one bad assertion; each result says.
   */
  addAll(assertions: Iterable<Assertion>): AddResult[] {
    const results = [...assertions].map((assertion): AddResult => ({ assertion, ref: refOf(assertion) }));
    let pending = results;
    for (;;) {
      const retry: AddResult[] = [];
      for (const r of pending) {
        try {
          r.signKey = this.add(r.assertion).id;
          r.error = undefined;
        } catch (e) {
          if (!(e instanceof EdgeimageError)) throw e;
          r.error = e;
          if (['ERR_UNKNOWN_KEY', 'ERR_MISSING_ACCOUNT', 'ERR_MISSING_DECLARATION'].includes(e.code)) retry.push(r);
        }
      }
      if (retry.length === 0 || retry.length === pending.length) break;
      pending = retry;
    }
    return results;
  }
}
