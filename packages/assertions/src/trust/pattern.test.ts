import { LinearPattern, MAX_PATTERN_LENGTH } from './pattern.js';

// The linear matcher must agree with an ordinary regexp engine on the subset it accepts (these
// patterns are harmless for a backtracking engine, so Node's RegExp is the oracle here).
const PATTERNS = ['kiosk-.*', 'kiosk', 'a|b|', '(ab)+c?', '[a-z0-9-]+', '[^-]+-[0-9]', 'x\\.y', '\\d+\\w*', '(?:pc|pi)-(amd64|arm64)', 'a*?b+?', '.*', '', '[-a]', '[a\\]]+', 'é+', '[^-]+', 'line\\sbreak', 'a??b', '(a*)*b', '(a+?)?'];
const VALUES = ['', 'kiosk', 'kiosk-', 'kiosk-1', 'xkiosk-1', 'a', 'b', 'ab', 'ababc', 'abcc', 'x.y', 'xzy', '12ab', 'pc-amd64', 'pi-arm64', 'pc-arm', 'a-1', '-1', 'aab', 'b', 'a]', 'éé', 'line\nbreak'];

describe('LinearPattern', () => {
  test.each(PATTERNS)('agrees with a whole-string regexp: %s', (p) => {
    const re = new RegExp(`^(?:${p})$`, 'u');
    const mine = LinearPattern.compile(p);
    for (const v of VALUES) expect({ p, v, m: mine.matches(v) }).toEqual({ p, v, m: re.test(v) });
  });

  test.each([
    ['a{2}', /counted repetition/],
    ['^a', /anchors are not supported/],
    ['a$', /anchors are not supported/],
    ['(a', /missing \)/],
    ['a)', /unexpected "\)"|unmatched \)/],
    ['*a', /nothing to repeat/],
    ['[a', /missing \]/],
    ['[[:alpha:]]', /POSIX classes/],
    ['(?i)a', /only \(…\) and \(\?:…\) groups/],
    ['\\1', /escape \\1 is not supported/],
    ['x'.repeat(MAX_PATTERN_LENGTH + 1), /at most 512 are accepted/],
  ] as const)('refuses %s', (p, message) => {
    expect(() => LinearPattern.compile(p)).toThrow(message);
  });

  // Go's regexp refuses a repetition operator stacked on another ("invalid nested repetition
  // operator"), so snapd refuses a key whose constraint has one; only one lazy `?` may follow.
  test.each(['a**', 'a*??', 'a+*', 'a?+', 'a??*', 'a+?+', 'a*{2}', '(ab)*+'])('refuses the nested repetition %s, as Go does', (p) => {
    expect(() => LinearPattern.compile(p)).toThrow(/invalid nested repetition operator/);
    expect(() => LinearPattern.compile(p)).toThrow(expect.objectContaining({ code: 'ERR_CONSTRAINT_PATTERN' }));
  });

  test('a nested-quantifier pattern on a long value finishes (linear time)', () => {
    const p = LinearPattern.compile('(a|aa)*(a+)+b');
    expect(p.matches('a'.repeat(20_000))).toBe(false);
    expect(p.matches(`${'a'.repeat(20_000)}b`)).toBe(true);
  });
});
