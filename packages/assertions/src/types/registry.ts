import type { Assertion } from '../assertion.js';

/**
 * One assertion type, as snapd's type registry knows it: its name, primary key, the highest format
 * it supports, and the assemble step that runs all of the type's validation and returns a typed view.
 */
export interface AssertionType<T = unknown> {
  readonly name: string;
  readonly primaryKey: readonly string[];
  /** Optional primary-key headers and the value they take when absent (snap-revision `provenance`). */
  readonly optionalPrimaryKeyDefaults?: Readonly<Record<string, string>>;
  readonly maxFormat: number;
  /** Whether the type has a `timestamp` that must fall in the signing key's validity window. */
  readonly hasTimestamp: boolean;
  /** Validates the headers and body by the type's rules; throws AssertionValidationError. */
  assemble(a: Assertion): T;
}

const registry = new Map<string, AssertionType>();

export function registerType(t: AssertionType): void {
  registry.set(t.name, t);
}

export function assertionType(name: string): AssertionType | undefined {
  return registry.get(name);
}

export function knownTypes(): string[] {
  return [...registry.keys()].sort();
}

/** The value of a primary-key header, with the type's default for optional ones. */
export function primaryKeyValue(t: AssertionType, a: Assertion, name: string): string | undefined {
  return a.header(name) ?? t.optionalPrimaryKeyDefaults?.[name];
}

/**
 * How messages name an assertion: its type and primary key, as `snap known` would select it.
 * `model series=16 brand-id=acme model=kiosk`
 */
export function refOf(a: Assertion): string {
  const type = a.header('type') ?? '<no type>';
  const t = registry.get(type);
  if (!t) return type;
  const keys = t.primaryKey.map((k) => `${k}=${primaryKeyValue(t, a, k) ?? '?'}`);
  return [type, ...keys].join(' ');
}
