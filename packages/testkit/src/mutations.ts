/**
 * fast-check arbitraries for property tests of parsers of untrusted input: random text and bytes,
 * and mutations of real inputs (a byte flipped, a range cut out, duplicated or replaced, the end cut
 * off, a line repeated), which reach much deeper into a parser than noise does.
 */
import fc from 'fast-check';

type Mutation =
  | { op: 'flip'; at: number; to: number }
  | { op: 'cut'; at: number; len: number }
  | { op: 'dup'; at: number; len: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'truncate'; at: number }
  | { op: 'line'; at: number; times: number };

const SPECIAL = [0x0a, 0x20, 0x3a, 0x2d, 0x7b, 0x5b, 0x26, 0x2a, 0x21, 0x22, 0x27, 0x23, 0x7c, 0x3e, 0x09, 0x00, 0xff, 0xc3];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), to: fc.oneof(fc.constantFrom(...SPECIAL), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('line' as const), at: fc.nat(), times: fc.integer({ min: 2, max: 50 }) }),
);

function apply(input: Buffer, m: Mutation): Buffer {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + 1);
  switch (m.op) {
    case 'flip': {
      if (n === 0) return input;
      const b = Buffer.from(input);
      b[at % n] = m.to;
      return b;
    }
    case 'cut':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.len)]);
    case 'dup':
      return Buffer.concat([input.subarray(0, at + m.len), input.subarray(at, at + m.len), input.subarray(at + m.len)]);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), Buffer.from(m.bytes), input.subarray(at)]);
    case 'truncate':
      return input.subarray(0, at);
    case 'line': {
      const start = input.lastIndexOf(0x0a, at - 1) + 1;
      let end = input.indexOf(0x0a, at);
      end = end === -1 ? n : end + 1;
      const line = input.subarray(start, end);
      return Buffer.concat([input.subarray(0, start), ...Array<Buffer>(m.times).fill(line), input.subarray(end)]);
    }
  }
}

/** One of `inputs` with 1 to 4 mutations applied. */
export function mutated(inputs: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...inputs), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([input, ms]) => ms.reduce(apply, input));
}

/** Random input: unicode text, text over the parser's punctuation, or raw bytes. */
export function noise(alphabet = 'abc-: \n[]{}&*!|>#\'"\t0123'): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 300 }).map((s) => Buffer.from(s)),
    fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 300 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  );
}

/**
 * Runs `parse`: a value, or an error with a code `ERR_…`, passes; anything else (an untyped Error,
 * a TypeError from deep inside) fails the property with what was thrown.
 */
export function resultOrTypedError(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (e instanceof Error && typeof code === 'string' && code.startsWith('ERR_')) return true;
    throw new Error(`not a typed error: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`, { cause: e });
  }
}

/** `n` runs, times EDGEIMAGE_FC_SCALE (default 1): `EDGEIMAGE_FC_SCALE=50` for a long local hunt. */
export function runs(n: number): number {
  const scale = Number(process.env.EDGEIMAGE_FC_SCALE ?? 1);
  return Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
