import type { Assertion } from '../assertion.js';

/**
 * The key id of the example root in `signing-keys.example/` (TEST ONLY: its private half is public
 * in the repository, so anything that chains to it proves nothing).
 */
export const EXAMPLE_ROOT_KEY_ID = '79L2dwdtbsr-VENMd2rpI6pqqTwKEbRNVVGdS-cRL23dT8AoNQbjE8gZY6i_gkQ4';

/** Chains are root → key → … → assertion; a verified one is a few links long. */
const MAX_CHAIN = 8;

/**
 * The id of the self-signed key at the end of `a`'s chain of signing keys among `pool` (the
 * verified assertions and the trusted ones), or undefined when the chain leaves the pool.
 */
export function chainRootKeyId(a: Assertion, pool: readonly Assertion[]): string | undefined {
  const keys = new Map(pool.filter((x) => x.type === 'account-key').map((k) => [k.header('public-key-sha3-384') ?? '', k]));
  let keyId = a.signKeyId;
  for (let i = 0; i < MAX_CHAIN; i++) {
    const key = keys.get(keyId);
    if (!key) return undefined;
    if (key.signKeyId === keyId) return keyId;
    keyId = key.signKeyId;
  }
  return undefined;
}

/** Whether `a` verifies only through the example (test-only) root. */
export function signedWithTestKeys(a: Assertion, pool: readonly Assertion[]): boolean {
  return chainRootKeyId(a, pool) === EXAMPLE_ROOT_KEY_ID;
}
