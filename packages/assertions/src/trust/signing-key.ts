import type { Assertion } from '../assertion.js';
import { PublicKey } from '../crypto/index.js';
import { AssertionValidationError } from '../errors.js';
import { accountKeyType } from '../types/account-key.js';
import { parseRFC3339 } from '../types/checks.js';
import { refOf } from '../types/registry.js';
import { KeyConstraints } from './constraints.js';
import { PatternError } from './pattern.js';

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
    /** Absent: the key may sign whatever its account may sign. */
    readonly constraints: KeyConstraints | undefined,
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
    const declared = accountKeyType.assemble(a).constraints;
    let constraints: KeyConstraints | undefined;
    try {
      constraints = declared ? KeyConstraints.compile(declared) : undefined;
    } catch (e) {
      // A constraint this module cannot enforce exactly must not be read as "no constraint".
      if (e instanceof PatternError) throw new AssertionValidationError(refOf(a), 'constraints', `${e.message}: the key's constraints cannot be enforced, so the key is refused`, a.source, e.code);
      throw e;
    }
    return new SigningKey(a, id, a.header('account-id')!, a.header('name'), parseRFC3339(a.header('since')!)!, until ? parseRFC3339(until) : undefined, publicKey, constraints);
  }

  /** snapd's isValidAt: since ≤ t < until (no until: forever). */
  isValidAt(t: Date): boolean {
    return t >= this.since && (this.until === undefined || t < this.until);
  }
}
