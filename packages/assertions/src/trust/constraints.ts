import type { Assertion, HeaderValue } from '../assertion.js';
import { LinearPattern, PatternError } from './pattern.js';

/**
 * An account-key's `constraints` as snapd enforces them (asserts/constraint.go, used by
 * AccountKey.canSign): the key may sign an assertion only if its headers match at least one
 * constraint's `headers`. Matching, per snapd's attribute matchers:
 * - a map matches a map when every listed header is present and matches (`$MISSING`: absent);
 * - a string is a regexp matched against the whole value (`^(...)$`);
 * - a list is alternatives, one of which must match;
 * - a constraint applied to a list value must match every element.
 */
type Matcher =
  | { k: 'map'; entries: [string, Matcher][] }
  | { k: 're'; re: LinearPattern }
  | { k: 'missing' }
  | { k: 'alt'; alts: Matcher[] };

function compileMatcher(c: unknown, inMap: boolean, wasAlt: boolean, path: string): Matcher {
  if (Array.isArray(c)) {
    if (wasAlt) throw new PatternError(path, 'alternatives cannot be nested directly in alternatives');
    return { k: 'alt', alts: c.map((x, i) => compileMatcher(x, inMap, true, `${path}/alt#${i + 1}`)) };
  }
  if (typeof c === 'string') {
    if (!inMap) throw new PatternError(c, 'the first level of a constraint must be a map of headers');
    if (c === '$MISSING') return { k: 'missing' };
    if (c.startsWith('$')) throw new PatternError(c, `${path}: no $OP() or $REF constraints are supported in account-key constraints`);
    return { k: 're', re: LinearPattern.compile(c) };
  }
  if (c && typeof c === 'object') {
    return { k: 'map', entries: Object.entries(c as Record<string, unknown>).map(([key, v]) => [key, compileMatcher(v, true, false, path ? `${path}.${key}` : key)]) };
  }
  throw new PatternError(String(c), `${path || 'top constraint'} must be a map, a regexp or a list of alternatives`);
}

function matches(m: Matcher, v: HeaderValue | undefined): boolean {
  if (m.k === 'missing') return v === undefined;
  if (v === undefined) return false;
  if (Array.isArray(v)) return v.every((e) => matches(m, e));
  switch (m.k) {
    case 'alt':
      return m.alts.some((a) => matches(a, v));
    case 're':
      return typeof v === 'string' && m.re.matches(v);
    case 'map':
      if (typeof v === 'string') return false;
      return m.entries.every(([key, sub]) => matches(sub, (v as Record<string, HeaderValue>)[key]));
  }
}

/**
 * The `type` of a constraint that admits channel pointers (`edgeimage update release`): not an
 * assertion type, so a key whose every constraint names it can sign no assertion at all, only the
 * pointers that edgeimage checks against these constraints itself (brand-id, model, channel).
 */
export const CHANNEL_POINTER_TYPE = 'channel-pointer';

/** The constraints of a key that signs channel pointers only, for any model of its brand. */
export const POINTER_ONLY_CONSTRAINTS: readonly { headers: Record<string, string> }[] = [{ headers: { type: CHANNEL_POINTER_TYPE } }];

/** The compiled constraints of one key; `undefined` constraints mean it may sign anything. */
export class KeyConstraints {
  private constructor(
    private readonly matchers: Matcher[],
    /** Every constraint's `type`, as written (a plain name: account-key checks that). */
    readonly types: readonly string[],
  ) {}

  /** Compiles the `constraints` header's entries; throws PatternError for a pattern it cannot run safely. */
  static compile(constraints: readonly { headers: Readonly<Record<string, unknown>> }[]): KeyConstraints {
    return new KeyConstraints(
      constraints.map((c) => compileMatcher(c.headers, false, false, '')),
      constraints.map((c) => String(c.headers['type'])),
    );
  }

  /** Whether some constraint admits `a` (snapd: AccountKey.canSign). */
  allows(a: Assertion): boolean {
    return this.allowsHeaders(a.headers);
  }

  /** Whether some constraint admits these headers (a channel pointer's, which is no assertion). */
  allowsHeaders(headers: Readonly<Record<string, HeaderValue>>): boolean {
    return this.matchers.some((m) => matches(m, headers as HeaderValue));
  }

  /** A key that signs channel pointers only: every constraint is of type `channel-pointer`. */
  get pointerOnly(): boolean {
    return this.types.length > 0 && this.types.every((t) => t === CHANNEL_POINTER_TYPE);
  }
}
