import type { Assertion } from '../assertion.js';
import { AssertionValidationError, EdgeimageError } from '../errors.js';
import { ACCOUNT_KEY_NAME, HeaderChecks, describeValue } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

/** One entry of `constraints` (format 1): the headers an assertion signed by this key must match. */
export interface AccountKeyConstraint {
  /** The `headers` map as written; `type` is always a plain type name. */
  headers: Readonly<Record<string, unknown>>;
}

export interface AccountKeyView extends ViewBase {
  accountId: string;
  /** snapd still accepts keys without a name (older assertions predate it). */
  name?: string;
  /** The key id, from the `public-key-sha3-384` header (not recomputed here; see checkAccountKeyBody). */
  publicKeyId: string;
  since: Date;
  /** Absent: the key does not expire. */
  until?: Date;
  /** The encoded public key, as in the body. */
  body: string;
  /** Absent when the key may sign anything its account may sign. */
  constraints?: AccountKeyConstraint[];
}

/** Characters that would make a constraint's `type` a regexp rather than a type name (Go's QuoteMeta set). */
const REGEXP_META = /[\\.+*?()|[\]{}^$]/;

function checkConstraints(c: HeaderChecks): AccountKeyConstraint[] | undefined {
  const raw = c.raw('constraints');
  if (raw === undefined) return undefined;
  const list = c.mapList('constraints')!;
  if (list.length === 0) c.failAbout('constraints', 'must not be empty');
  return list.map((entry, i) => {
    const e: HeaderChecks = c.within('constraints', entry, `of constraint ${i + 1} in "constraints" header`);
    const headers = e.map('headers');
    if (!headers) e.failAbout('headers', 'is mandatory: a constraint says which headers signed assertions must have');
    const type = headers['type'];
    if (type === undefined) e.fail('headers', `"type" in "headers" of constraint ${i + 1} in "constraints" header is mandatory`);
    if (typeof type !== 'string') e.fail('headers', `"type" in "headers" of constraint ${i + 1} in "constraints" header must be a string, found ${describeValue(type)}`);
    if (REGEXP_META.test(type)) {
      e.fail('headers', `"type" in "headers" of constraint ${i + 1} in "constraints" header must be a plain type name, not a regexp, found ${JSON.stringify(type)}`);
    }
    return { headers };
  });
}

/**
 * `account-key` (snapd account_key.go). The body is required but not decoded here: the trust layer
 * decodes it with the crypto module and calls `checkAccountKeyBody`, so this module stays free of
 * crypto and can describe a key it cannot parse.
 */
export const accountKeyType: AssertionType<AccountKeyView> = {
  name: 'account-key',
  primaryKey: ['public-key-sha3-384'],
  maxFormat: 1,
  // A key has a validity window instead; its own signer's window is checked through the chain.
  hasTimestamp: false,
  assemble(a: Assertion): AccountKeyView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const publicKeyId = c.digest('public-key-sha3-384');
    const accountId = c.string('account-id');
    const name = c.has('name') ? c.matching('name', ACCOUNT_KEY_NAME, 'lower-case letters, digits and single dashes with at least one letter (e.g. "models")') : undefined;
    const since = c.date('since');
    const until = c.optionalDate('until');
    if (until && until.getTime() < since.getTime()) {
      c.failAbout('until', `must not be before "since" (${c.string('since')}), found ${JSON.stringify(c.string('until'))}`);
    }
    const body = a.body?.toString('utf8') ?? '';
    if (body === '') {
      throw new AssertionValidationError(c.ref, 'body-length', 'the body must contain the public key, found no body ("body-length" header absent or 0)', a.source);
    }
    const constraints = checkConstraints(c);
    return {
      ...viewBase(c),
      accountId,
      ...(name !== undefined ? { name } : {}),
      publicKeyId,
      since,
      ...(until ? { until } : {}),
      body,
      ...(constraints ? { constraints } : {}),
    };
  },
};

registerType(accountKeyType);

/**
 * Checks that the key in the body is the one the `public-key-sha3-384` header names (snapd's
 * `checkPublicKey`): without it, a signer could publish one key id and verify with another key.
 * `decode` is the crypto module's body decoder; its typed errors pass through unchanged.
 */
export function checkAccountKeyBody(a: Assertion, decode: (body: string) => { id: string }): void {
  const c: HeaderChecks = HeaderChecks.of(a);
  const want = c.string('public-key-sha3-384');
  const body = a.body?.toString('utf8') ?? '';
  let id: string;
  try {
    id = decode(body).id;
  } catch (e) {
    if (e instanceof EdgeimageError) throw e;
    throw new AssertionValidationError(c.ref, 'body-length', `the body is not a valid public key: ${(e as Error).message}`, a.source);
  }
  if (id !== want) {
    c.fail(
      'public-key-sha3-384',
      `"public-key-sha3-384" header names key ${want} but the body holds key ${id}`,
      'ERR_ACCOUNT_KEY_MISMATCH',
    );
  }
}
