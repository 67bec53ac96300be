import { EdgeimageError } from '../errors.js';

/**
 * Whole-string patterns from untrusted account-key `constraints`, matched in linear time.
 *
 * snapd compiles each constraint string as the Go regexp `^(...)$` (RE2: no backtracking). Node's
 * RegExp backtracks, so a hostile key could stall a build with `(a+)+$`; this module instead
 * compiles a safe subset of the syntax to a Thompson NFA and runs it state-set by state-set:
 * time O(pattern × value), whatever the pattern. The subset: literals, `\`-escaped punctuation,
 * `\d \w \s`, `.`, classes `[a-z0-9_-]` / `[^…]`, groups `(…)` / `(?:…)`, `|`, and `* + ?`, one per atom
 * (a trailing lazy `?` changes nothing for a whole-string match). Anything else (`{n,m}`, anchors,
 * back-references, flags, POSIX classes) is refused, so a key using it is refused rather than
 * read more loosely than snapd would.
 */

/** Longest pattern accepted: constraint patterns are short (`kiosk-.*`); this bounds the NFA. */
export const MAX_PATTERN_LENGTH = 512;

export class PatternError extends EdgeimageError {
  constructor(pattern: string, message: string) {
    super('ERR_CONSTRAINT_PATTERN', `constraint pattern ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern)}: ${message}`, { pattern });
  }
}

type CharTest = (c: string) => boolean;
type Node =
  | { k: 'char'; test: CharTest }
  | { k: 'cat'; parts: Node[] }
  | { k: 'alt'; alts: Node[] }
  | { k: 'rep'; node: Node; min: 0 | 1; max: 1 | typeof Infinity }
  | { k: 'empty' };

const DIGIT: CharTest = (c) => c >= '0' && c <= '9';
const WORD: CharTest = (c) => DIGIT(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
// Go's Perl classes: ASCII only; \s is [\t\n\f\r ] (no \v).
const SPACE: CharTest = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
const CLASS_ESCAPES: Record<string, CharTest> = { d: DIGIT, w: WORD, s: SPACE };
const isPunct = (c: string) => /^[!-/:-@[-`{-~]$/.test(c);

class Parser {
  private i = 0;
  private readonly s: string[];
  constructor(private readonly src: string) {
    this.s = Array.from(src);
  }
  private fail(msg: string): never {
    throw new PatternError(this.src, msg);
  }
  parse(): Node {
    const n = this.alt();
    if (this.i < this.s.length) this.fail(`unexpected ${JSON.stringify(this.s[this.i])} at position ${this.i + 1}`);
    return n;
  }
  private alt(): Node {
    const alts = [this.cat()];
    while (this.s[this.i] === '|') {
      this.i++;
      alts.push(this.cat());
    }
    return alts.length === 1 ? alts[0]! : { k: 'alt', alts };
  }
  private cat(): Node {
    const parts: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') parts.push(this.repeat());
    return parts.length === 0 ? { k: 'empty' } : parts.length === 1 ? parts[0]! : { k: 'cat', parts };
  }
  private repeat(): Node {
    const node = this.atom();
    const q = this.s[this.i];
    if (q === '{') this.fail('counted repetition {n,m} is not supported');
    if (q !== '*' && q !== '+' && q !== '?') return node;
    const opStart = this.i++;
    if (this.s[this.i] === '?') this.i++;
    // Go's regexp (Perl syntax) refuses a repetition stacked on another (`a**`, `a*??`, `a+*`:
    // "invalid nested repetition operator"); snapd would refuse such a key, so it is refused here.
    const next = this.s[this.i];
    if (next === '*' || next === '+' || next === '?' || next === '{') {
      this.fail(`invalid nested repetition operator ${JSON.stringify(this.s.slice(opStart, this.i + 1).join(''))} at position ${opStart + 1}`);
    }
    return { k: 'rep', node, min: q === '+' ? 1 : 0, max: q === '?' ? 1 : Infinity };
  }
  private atom(): Node {
    const c = this.s[this.i++];
    switch (c) {
      case '(': {
        if (this.s[this.i] === '?') {
          if (this.s[this.i + 1] !== ':') this.fail('only (…) and (?:…) groups are supported');
          this.i += 2;
        }
        const inner = this.alt();
        if (this.s[this.i] !== ')') this.fail('missing )');
        this.i++;
        return inner;
      }
      case '[':
        return { k: 'char', test: this.charClass() };
      case '.':
        return { k: 'char', test: (x) => x !== '\n' };
      case '\\':
        return { k: 'char', test: this.escape() };
      case '*':
      case '+':
      case '?':
        return this.fail(`nothing to repeat before ${JSON.stringify(c)}`);
      case '^':
      case '$':
        return this.fail('anchors are not supported (the whole value is always matched)');
      case ')':
        return this.fail('unmatched )');
      default:
        return { k: 'char', test: (x) => x === c };
    }
  }
  private escape(): CharTest {
    const e = this.s[this.i++];
    if (e === undefined) this.fail('trailing \\');
    const cls = CLASS_ESCAPES[e];
    if (cls) return cls;
    if (!isPunct(e)) this.fail(`escape \\${e} is not supported`);
    return (x) => x === e;
  }
  private charClass(): CharTest {
    const negate = this.s[this.i] === '^';
    if (negate) this.i++;
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      let c = this.s[this.i++];
      if (c === undefined) this.fail('missing ]');
      if (c === ']' && !first) break;
      first = false;
      if (c === '[' && this.s[this.i] === ':') this.fail('POSIX classes [:…:] are not supported');
      let lo: string;
      if (c === '\\') {
        const e = this.s[this.i++];
        if (e === undefined) this.fail('trailing \\');
        const cls = CLASS_ESCAPES[e];
        if (cls) {
          tests.push(cls);
          continue;
        }
        if (!isPunct(e)) this.fail(`escape \\${e} is not supported`);
        lo = e;
      } else {
        lo = c;
      }
      if (this.s[this.i] === '-' && this.s[this.i + 1] !== undefined && this.s[this.i + 1] !== ']') {
        this.i++;
        c = this.s[this.i++]!;
        let hi = c;
        if (c === '\\') {
          const e = this.s[this.i++];
          if (e === undefined || !isPunct(e)) this.fail('bad range end');
          hi = e;
        }
        if (hi < lo) this.fail(`bad range ${lo}-${hi}`);
        tests.push((x) => x >= lo && x <= hi);
      } else {
        tests.push((x) => x === lo);
      }
    }
    // Go's regexp.Compile sets ClassNL: a negated class matches a newline (only `.` does not).
    return negate ? (x) => !tests.some((t) => t(x)) : (x) => tests.some((t) => t(x));
  }
}

// NFA states: `test` consumes one character and goes to `out`; a state without test is a split
// to `out` and `out2` (either may be absent); MATCH accepts.
interface State {
  test?: CharTest;
  out: number;
  out2: number;
}
const NONE = -1;
const MATCH = -2;

function compile(root: Node): { states: State[]; start: number } {
  const states: State[] = [];
  const add = (s: State) => states.push(s) - 1;
  // Builds `n` so that it continues to `next`; returns its entry state.
  const build = (n: Node, next: number): number => {
    switch (n.k) {
      case 'empty':
        return next;
      case 'char':
        return add({ test: n.test, out: next, out2: NONE });
      case 'cat':
        return n.parts.reduceRight((acc, p) => build(p, acc), next);
      case 'alt':
        return n.alts.map((a) => build(a, next)).reduce((acc, entry) => add({ out: acc, out2: entry }));
      case 'rep': {
        if (n.max === 1) return add({ out: build(n.node, next), out2: next });
        const loop = add({ out: NONE, out2: next });
        const body = build(n.node, loop);
        states[loop]!.out = body;
        return n.min === 1 ? body : loop;
      }
    }
  };
  return { states, start: build(root, MATCH) };
}

/** A compiled constraint pattern; `matches` is anchored at both ends, as snapd's `^(...)$`. */
export class LinearPattern {
  private constructor(
    readonly source: string,
    private readonly states: State[],
    private readonly start: number,
  ) {}

  static compile(pattern: string): LinearPattern {
    if (pattern.length > MAX_PATTERN_LENGTH) throw new PatternError(pattern, `is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH} are accepted`);
    const { states, start } = compile(new Parser(pattern).parse());
    return new LinearPattern(pattern, states, start);
  }

  matches(value: string): boolean {
    const seen = new Int32Array(this.states.length).fill(-1);
    let gen = 0;
    let matched = false;
    // Adds `s` and everything reachable from it without consuming a character.
    const close = (s: number, into: number[]) => {
      const stack = [s];
      while (stack.length) {
        const x = stack.pop()!;
        if (x === MATCH) {
          matched = true;
          continue;
        }
        if (x === NONE || seen[x] === gen) continue;
        seen[x] = gen;
        const st = this.states[x]!;
        if (st.test) into.push(x);
        else stack.push(st.out2, st.out);
      }
    };
    let current: number[] = [];
    close(this.start, current);
    for (const c of value) {
      gen++;
      matched = false;
      const next: number[] = [];
      for (const x of current) {
        const st = this.states[x]!;
        if (st.test!(c)) close(st.out, next);
      }
      current = next;
      if (current.length === 0 && !matched) return false;
    }
    return matched;
  }
}
