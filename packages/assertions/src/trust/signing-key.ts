import type { Assertion } from '../assertion.js';
import { PublicKey } from '../crypto/index.js';
import { AssertionValidationError } from '../errors.js';
import { parseRFC3339 } from '../types/checks.js';
import { refOf } from '../types/registry.js';

/** An account-key assertion read as a usable key: who owns it, when it is valid, the RSA key. */
export class SigningKey {
  private constructor(
    readonly assertion: Assertion,
    readonly id: string,
    readonly accountId: string,
    readonly name: string | undefined,
    readonly since: Date,
    readonly until: Date | undefined,
    readonly publicKey: PublicKey,
  ) {}

  /** Reads an (already assembled) account-key and checks its body is the key its header names. */
  static fromAccountKey(a: Assertion): SigningKey {
    const id = a.header('public-key-sha3-384')!;
    const publicKey = PublicKey.fromAccountKeyBody(a.body?.toString('utf8') ?? '');
    if (publicKey.id !== id) {
      throw new AssertionValidationError(
        refOf(a),
        'public-key-sha3-384',
        `the body holds key ${publicKey.id}, not the key ${id} named by "public-key-sha3-384"`,
        a.source,
        'ERR_ACCOUNT_KEY_MISMATCH',
      );
    }
    const until = a.header('until');
    return new SigningKey(a, id, a.header('account-id')!, a.header('name'), parseRFC3339(a.header('since')!)!, until ? parseRFC3339(until) : undefined, publicKey);
  }

  /** snapd's isValidAt: since ≤ t < until (no until: forever). */
  isValidAt(t: Date): boolean {
    return t >= this.since && (this.until === undefined || t < this.until);
  }
}
