/**
 * Name checks on untrusted headers run in linear time: a hostile 100 kB name gets the right
 * answer at once. (snapd's form of the account-key name regexp backtracked exponentially: a
 * 30-character name that fails at its end took seconds, 100 kB would never finish.)
 */
import { ACCOUNT_KEY_NAME } from './checks.js';

/** snapd's original expression: the reference for short names, where its backtracking is cheap. */
const SNAPD_ACCOUNT_KEY_NAME = /^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$/;

describe('account-key name check', () => {
  test('hostile 100 kB names are refused (or accepted) correctly', () => {
    const n = 100_000;
    expect(ACCOUNT_KEY_NAME.test(`${'1'.repeat(n)}!`)).toBe(false);
    expect(ACCOUNT_KEY_NAME.test(`${'a'.repeat(n)}!`)).toBe(false);
    expect(ACCOUNT_KEY_NAME.test(`${'a1-'.repeat(n / 3)}-`)).toBe(false);
    expect(ACCOUNT_KEY_NAME.test('1'.repeat(n))).toBe(false); // no letter
    expect(ACCOUNT_KEY_NAME.test(`${'1'.repeat(n)}a`)).toBe(true);
    expect(ACCOUNT_KEY_NAME.test('a1-'.repeat(n / 3) + 'b')).toBe(true);
  });

  test("accepts exactly the names snapd's expression accepts (every string of up to 6 characters over a-, 1, -, !)", () => {
    const alphabet = ['a', 'z', '1', '-', '!', 'A'];
    const all: string[] = [''];
    let level = [''];
    for (let len = 1; len <= 6; len++) {
      level = level.flatMap((p) => alphabet.map((c) => p + c));
      all.push(...level);
    }
    const differ = all.filter((s) => ACCOUNT_KEY_NAME.test(s) !== SNAPD_ACCOUNT_KEY_NAME.test(s));
    expect(differ).toEqual([]);
    expect(all.filter((s) => ACCOUNT_KEY_NAME.test(s)).length).toBeGreaterThan(1000);
  });
});
