import type { Assertion } from '../assertion.js';
import { AssertionValidationError } from '../errors.js';
import { HeaderChecks, describeValue } from './checks.js';
import { assertionType, primaryKeyValue, type AssertionType } from './registry.js';

/**
 * The checks snapd's `assemble` (asserts.go) runs on every assertion before the type's own rules:
 * they guard the headers every later stage relies on (the primary key to index it, the revision to
 * order it, the signing key to verify it) whatever the type.
 */
export function checkCommonHeaders(t: AssertionType, a: Assertion): void {
  const c: HeaderChecks = HeaderChecks.of(a);
  c.string('authority-id');

  const format = c.optionalInt('format') ?? 0;
  if (format > t.maxFormat) {
    c.fail(
      'format',
      `"format" header is ${format} but edgeimage supports ${t.name} assertions up to format ${t.maxFormat}; ` +
        'the assertion uses features this version does not understand',
      'ERR_ASSERTION_UNSUPPORTED_FORMAT',
    );
  }

  for (const key of t.primaryKey) {
    const v = primaryKeyValue(t, a, key);
    const label = `"${key}" primary key header`;
    const raw = a.headers[key];
    if (raw !== undefined && typeof raw !== 'string') c.fail(key, `${label} must be a string, found ${describeValue(raw)}`);
    if (v === undefined) c.fail(key, `${label} is mandatory`);
    if (v === '') c.fail(key, `${label} must not be empty`);
    // '/' would make the key ambiguous where snapd joins it into paths and sequence keys.
    if (v.includes('/')) c.fail(key, `${label} must not contain '/', found ${JSON.stringify(v)}`);
  }

  c.optionalInt('revision');

  // The decoder checks body-length too; this covers assertions built in memory.
  const bodyLength = c.optionalInt('body-length') ?? 0;
  const actual = a.body?.length ?? 0;
  if (bodyLength !== actual) c.fail('body-length', `"body-length" header is ${bodyLength} but the body has ${actual} bytes`);

  c.digest('sign-key-sha3-384');
}

/**
 * Validates an assertion completely, common rules first and then its type's, and returns the typed
 * view. Which type it is comes from its own `type` header.
 *
 * ```ts
 * const { type, view } = assembleAssertion(a);
 * if (type === modelType) useModel(view as ModelView);
 * ```
 */
export function assembleAssertion(a: Assertion): { type: AssertionType; view: unknown } {
  const c: HeaderChecks = HeaderChecks.of(a);
  const name = c.string('type');
  const t = assertionType(name);
  if (!t) {
    throw new AssertionValidationError(name, 'type', `unknown assertion type ${JSON.stringify(name)}`, a.source, 'ERR_ASSERTION_UNKNOWN_TYPE');
  }
  checkCommonHeaders(t, a);
  return { type: t, view: t.assemble(a) };
}

/**
 * Like `assembleAssertion`, but for a caller that expects one type (a model file, a key): anything
 * else is an error naming both types, and the view comes back typed.
 */
export function assembleAs<T>(t: AssertionType<T>, a: Assertion): T {
  const c: HeaderChecks = HeaderChecks.of(a);
  const name = c.string('type');
  if (name !== t.name) {
    throw new AssertionValidationError(c.ref, 'type', `expected a ${t.name} assertion, found ${JSON.stringify(name)}`, a.source, 'ERR_ASSERTION_WRONG_TYPE');
  }
  checkCommonHeaders(t, a);
  return t.assemble(a);
}

/** The parts every view repeats: who signed it and which revision it is. */
export interface ViewBase {
  authorityId: string;
  /** 0 when absent. */
  revision: number;
  /** 0 when absent. */
  format: number;
}

export function viewBase(c: HeaderChecks): ViewBase {
  return { authorityId: c.string('authority-id'), revision: c.optionalInt('revision') ?? 0, format: c.optionalInt('format') ?? 0 };
}
