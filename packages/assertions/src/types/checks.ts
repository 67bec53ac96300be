import type { Assertion, HeaderValue } from '../assertion.js';
import { AssertionValidationError, type AssertionRef, type SourceRef } from '../errors.js';
import { refOf } from './registry.js';

/**
 * Header checks shared by every assertion type, following snapd's `header_checks.go`: every
 * scalar on the wire is a string, so integers, dates, booleans and digests are all interpreted
 * here, with one set of rules and one style of message (`"<name>" <what> must be …, found …`).
 */

export type HeaderMap = Readonly<Record<string, HeaderValue>>;

/** Largest integer we accept: past it a JS number cannot hold the value exactly. */
const MAX_INT = Number.MAX_SAFE_INTEGER;

// Names and identifiers, as snapd spells them (asserts/, snap/naming/).
/** `validAccountID` (account.go): store-made ids or short nice names. */
export const ACCOUNT_ID = /^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$/;
/** `naming.ValidSnapID`. */
export const SNAP_ID = /^[a-z0-9A-Z]{32}$/;
/** `validValidationSetName` (validation_set.go). */
export const VALIDATION_SET_NAME = /^[a-z0-9](?:-?[a-z0-9])*$/;
/**
 * `validAccountKeyName` (account_key.go): runs of lower-case letters and digits joined by single
 * dashes, at least one letter. snapd's `^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$` nests quantifiers
 * and backtracks exponentially on a long name that fails at its end (30 characters: seconds); this
 * form accepts the same names in linear time (the dash is required between runs, so every
 * character is matched one way, and the anchored lookahead scans once).
 */
export const ACCOUNT_KEY_NAME = /^(?=[a-z0-9-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*$/;
/** `naming.ValidProvenance`. */
export const PROVENANCE = /^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$/;
/** `naming.ValidAlias`. */
export const ALIAS = /^[a-zA-Z0-9][-_.a-zA-Z0-9]*$/;
/** `naming.ValidApp`. */
export const APP_NAME = /^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$/;

/**
 * `naming.ValidateSnap`: 2–40 characters of lower-case letters, digits and single inner dashes,
 * with at least one letter. snapd checks the dashes apart from the regexp to stay linear-time.
 */
export function isValidSnapName(name: string): boolean {
  if (name.length < 2 || name.length > 40) return false;
  if (!/^[a-z0-9-]*[a-z][a-z0-9-]*$/.test(name)) return false;
  return !name.startsWith('-') && !name.endsWith('-') && !name.includes('--');
}

/** How a found value is shown in messages: strings quoted, structures by kind (they can be long). */
export function describeValue(v: HeaderValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  return Array.isArray(v) ? 'a list' : 'a map';
}

export function isMap(v: HeaderValue | undefined): v is { [key: string]: HeaderValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|([+-])(\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses a date as Go's `time.Parse(time.RFC3339, …)` does: upper-case `T` and `Z`, optional
 * fractional seconds of any length (after `.` or `,`), `Z` or a `±hh:mm` offset, and range checks on
 * every field (no leap seconds, no 30 February). Returns undefined for anything Go would refuse.
 * Precision stops at milliseconds, which is all a JS Date holds.
 */
export function parseRFC3339(s: string): Date | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return new Date(d.getTime() - offsetMinutes * 60_000);
}

export interface IntBounds {
  min?: number;
  max?: number;
}

/**
 * Reads headers, or the members of one map nested in a header, and throws
 * AssertionValidationError naming the header on the first rule broken.
 *
 * The top-level reader names each header itself (`"timestamp" header …`); a nested reader made
 * with `within` reports every error against its top-level header (`snaps`) and describes the
 * member with `what` (`"id" of snap "pc" in "snaps" …`).
 *
 * ```ts
 * const c = HeaderChecks.of(a);
 * const ts = c.date('timestamp');
 * for (const [i, m] of (c.mapList('snaps') ?? []).entries()) c.within('snaps', m, `of snap ${i + 1} in "snaps"`).string('name');
 * ```
 */
export class HeaderChecks {
  private constructor(
    readonly ref: AssertionRef,
    readonly source: SourceRef,
    readonly values: HeaderMap,
    /** The top-level header errors are filed under; undefined at the top level (each name is its own). */
    private readonly header: string | undefined,
    private readonly what: string,
  ) {}

  static of(a: Assertion): HeaderChecks {
    return new HeaderChecks(refOf(a), a.source, a.headers, undefined, 'header');
  }

  /** A reader over a map nested in the top-level header `header`. */
  within(header: string, map: HeaderMap, what: string): HeaderChecks {
    return new HeaderChecks(this.ref, this.source, map, this.header ?? header, what);
  }

  /** `"name" header` or `"name" of snap "pc" in "snaps"`: how messages refer to a member. */
  label(name: string): string {
    return `${JSON.stringify(name)} ${this.what}`;
  }

  fail(name: string, message: string, code?: string): never {
    throw new AssertionValidationError(this.ref, this.header ?? name, message, this.source, code);
  }

  /** Fails with `"<name>" <what> <rest>`. */
  failAbout(name: string, rest: string, code?: string): never {
    return this.fail(name, `${this.label(name)} ${rest}`, code);
  }

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  raw(name: string): HeaderValue | undefined {
    return this.values[name];
  }

  /** Present and a string, possibly empty (snapd `checkExistsString`). */
  existingString(name: string): string {
    const v = this.values[name];
    if (v === undefined) this.failAbout(name, 'is mandatory');
    if (typeof v !== 'string') this.failAbout(name, `must be a string, found ${describeValue(v)}`);
    return v;
  }

  /** Present, a string, and not empty (snapd `checkNotEmptyString`). */
  string(name: string): string {
    const v = this.existingString(name);
    if (v === '') this.failAbout(name, 'must not be empty');
    return v;
  }

  /** Absent, or a string (possibly empty). */
  optionalString(name: string): string | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.failAbout(name, `must be a string, found ${describeValue(v)}`);
    return v;
  }

  /** Absent or empty gives undefined; snapd treats an empty optional string as unset. */
  optionalNonEmptyString(name: string): string | undefined {
    const v = this.optionalString(name);
    return v === '' ? undefined : v;
  }

  /** A non-empty string matching `pattern`; `expected` says in words what a valid value looks like. */
  matching(name: string, pattern: RegExp, expected: string): string {
    const v = this.string(name);
    if (!pattern.test(v)) this.failAbout(name, `must be ${expected}, found ${JSON.stringify(v)}`);
    return v;
  }

  /** Parses snapd's integer syntax: digits only (no sign, no spaces), no leading zeros. */
  private decimal(name: string, v: string, bounds: IntBounds): number {
    if (!/^[0-9]+$/.test(v)) this.failAbout(name, `must be a decimal integer (digits only, no sign), found ${JSON.stringify(v)}`);
    if (v.length > 1 && v.startsWith('0')) this.failAbout(name, `must be an integer without leading zeros, found ${JSON.stringify(v)}`);
    const n = Number(v);
    const max = bounds.max ?? MAX_INT;
    if (!Number.isSafeInteger(n) || n > max) this.failAbout(name, `is out of range: must be at most ${max}, found ${JSON.stringify(v)}`);
    if (bounds.min !== undefined && n < bounds.min) this.failAbout(name, `must be >= ${bounds.min}, found ${v}`);
    return n;
  }

  /** A mandatory integer (snapd `checkInt`, `checkUint`) within `bounds`. */
  int(name: string, bounds: IntBounds = {}): number {
    return this.decimal(name, this.string(name), bounds);
  }

  /** An integer that may be absent (snapd `checkIntWithDefault`); present-but-empty is an error. */
  optionalInt(name: string, bounds: IntBounds = {}): number | undefined {
    const v = this.optionalString(name);
    return v === undefined ? undefined : this.decimal(name, v, bounds);
  }

  /** An unsigned integer of `bits` bits, capped where a JS number stops being exact. */
  uint(name: string, bits: 8 | 16 | 32 | 64 = 64, bounds: IntBounds = {}): number {
    return this.int(name, { min: bounds.min ?? 0, max: Math.min(bounds.max ?? MAX_INT, 2 ** bits - 1) });
  }

  date(name: string): Date {
    const v = this.string(name);
    const d = parseRFC3339(v);
    if (!d) this.failAbout(name, `must be an RFC3339 date such as "2024-01-31T12:00:00Z" or "2024-01-31T12:00:00.0+01:00", found ${JSON.stringify(v)}`);
    return d;
  }

  /** A date that may be absent; present-but-empty is an error, as in snapd. */
  optionalDate(name: string): Date | undefined {
    const v = this.optionalString(name);
    if (v === undefined) return undefined;
    const d = parseRFC3339(v);
    if (!d) this.failAbout(name, `must be an RFC3339 date such as "2024-01-31T12:00:00Z" or "2024-01-31T12:00:00.0+01:00", found ${JSON.stringify(v)}`);
    return d;
  }

  /** Absent means false; otherwise exactly "true" or "false" (no "yes", no "True"). */
  bool(name: string): boolean {
    const v = this.values[name];
    if (v === undefined) return false;
    if (v !== 'true' && v !== 'false') this.failAbout(name, `must be "true" or "false", found ${describeValue(v)}`);
    return v === 'true';
  }

  /** Absent gives undefined; otherwise a list of strings, each matching `pattern` when given. */
  stringList(name: string, pattern?: { re: RegExp; expected: string }): string[] | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.failAbout(name, `must be a list of strings, found ${describeValue(v)}`);
    return v.map((item, i) => {
      if (typeof item !== 'string') this.failAbout(name, `must be a list of strings, found ${describeValue(item)} at entry ${i + 1}`);
      if (pattern && !pattern.re.test(item)) this.failAbout(name, `entries must be ${pattern.expected}, found ${JSON.stringify(item)} at entry ${i + 1}`);
      return item;
    });
  }

  /** Absent gives undefined; otherwise a list whose every entry is a map. */
  mapList(name: string): HeaderMap[] | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.failAbout(name, `must be a list of maps, found ${describeValue(v)}`);
    return v.map((item, i) => {
      if (!isMap(item)) this.failAbout(name, `must be a list of maps, found ${describeValue(item)} at entry ${i + 1}`);
      return item;
    });
  }

  /** Absent gives undefined; otherwise a map. */
  map(name: string): HeaderMap | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (!isMap(v)) this.failAbout(name, `must be a map, found ${describeValue(v)}`);
    return v;
  }

  /**
   * A SHA3-384 digest as snapd writes key ids and file hashes: unpadded base64url of 48 bytes
   * (so exactly 64 characters).
   */
  digest(name: string): string {
    const v = this.string(name);
    if (!/^[A-Za-z0-9_-]+$/.test(v) || v.length % 4 === 1) {
      this.failAbout(name, `must be an unpadded base64url SHA3-384 digest (64 characters of A-Z a-z 0-9 - _), found ${JSON.stringify(v)}`);
    }
    const bytes = Math.floor((v.length * 6) / 8);
    if (bytes !== 48) this.failAbout(name, `must be a SHA3-384 digest of 48 bytes (64 base64url characters), found ${bytes} bytes in ${JSON.stringify(v)}`);
    return v;
  }
}
