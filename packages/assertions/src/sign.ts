import { Assertion, type Headers, type HeaderValue } from './assertion.js';
import { PrivateKey, PublicKey } from './crypto/index.js';
import { AssertionValidationError } from './errors.js';
import { decodeOne } from './format/decode.js';
import { encodeContent, encodeSigned } from './format/encode.js';
import { isValidHeaderName } from './format/headers.js';
import { assembleAssertion } from './types/index.js';
import { assertionType } from './types/registry.js';

export interface SignOptions {
  /**
   * Used for `timestamp` when the type needs one and the headers have none, and as the
   * signature's creation time. Default: the assertion's own `timestamp` (or `since`), else now,
   * so that signing the same headers with the same key gives the same bytes.
   */
  now?: Date;
  /** Named in errors: the file the headers came from. */
  file?: string;
}

/** RFC 3339 without milliseconds, the form snapd writes. */
export function formatTimestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Signs headers (and an optional body) into an assertion in snapd's exact form: header order,
 * `body-length`, `sign-key-sha3-384`, signature. The result is decoded and validated again
 * before it is returned, so an invalid assertion is never produced.
 *
 * ```ts
 * const model = signAssertion({ type: 'model', 'authority-id': 'acme', ... }, undefined, key);
 * writeFileSync('model.assert', model.encode(), { mode: 0o644 });
 * ```
 */
export function signAssertion(headers: Headers, body: string | Uint8Array | undefined, key: PrivateKey, opts: SignOptions = {}): Assertion {
  const typeName = headers['type'];
  const t = typeof typeName === 'string' ? assertionType(typeName) : undefined;
  if (!t) {
    throw new AssertionValidationError(String(typeName ?? '<no type>'), 'type', `cannot sign: unknown or missing assertion type ${JSON.stringify(typeName ?? null)}`, {}, 'ERR_ASSERTION_UNKNOWN_TYPE');
  }
  for (const name of Object.keys(headers)) {
    if (!isValidHeaderName(name)) {
      throw new AssertionValidationError(typeName as string, name, `invalid header name ${JSON.stringify(name)}: expected lower-case letters, digits and single dashes, starting with a letter`, { file: opts.file });
    }
  }
  const h: Headers = { ...headers };
  delete h['body-length'];
  h['sign-key-sha3-384'] = key.publicKey.id;
  if (t.hasTimestamp && h['timestamp'] === undefined) h['timestamp'] = formatTimestamp(opts.now ?? new Date());
  const bodyBytes = body === undefined ? undefined : Buffer.from(body);
  const content = encodeContent(t, h, bodyBytes);
  const signedAt = opts.now ?? dateHeader(h['timestamp']) ?? dateHeader(h['since']) ?? new Date();
  const encoded = decodeOne(encodeSigned(content, key.sign(content, signedAt)));
  // Errors name the headers file, not a line of output the user never wrote.
  const signed = new Assertion(encoded.headers, encoded.body, encoded.content, encoded.signature, opts.file ? { file: opts.file } : {});
  assembleAssertion(signed);
  return signed;
}

function dateHeader(v: HeaderValue | undefined): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export interface AccountKeyOptions {
  /** The account that owns the key. */
  accountId: string;
  /** The account whose key signs this account-key (the root, or the key's own account for a self-signed root). */
  authorityId: string;
  name?: string;
  since?: Date;
  until?: Date;
  revision?: number;
  /**
   * The `constraints` header: what the key may sign. `POINTER_ONLY_CONSTRAINTS` makes a key that
   * signs channel pointers only (see trust/constraints.ts); absent, the key signs what its account may.
   */
  constraints?: readonly { headers: Record<string, string> }[];
}

/** Headers and body of an account-key assertion for `publicKey`, ready for `signAssertion`. */
export function accountKeyHeaders(publicKey: PublicKey, opts: AccountKeyOptions): { headers: Headers; body: string } {
  const headers: Record<string, HeaderValue> = {
    type: 'account-key',
    'authority-id': opts.authorityId,
    'account-id': opts.accountId,
    'public-key-sha3-384': publicKey.id,
    since: formatTimestamp(opts.since ?? new Date()),
  };
  if (opts.name) headers['name'] = opts.name;
  if (opts.until) headers['until'] = formatTimestamp(opts.until);
  if (opts.revision) headers['revision'] = String(opts.revision);
  // `constraints` is a format 1 header (snapd).
  if (opts.constraints) headers['format'] = '1';
  if (opts.constraints) headers['constraints'] = opts.constraints.map((c) => ({ headers: { ...c.headers } }));
  return { headers, body: publicKey.encodeAccountKeyBody() };
}
