import { assembleAssertion, type Assertion, AssertionValidationError, decodeStream } from '@edgeimage/assertions';

/** A well-formed key id; nothing here checks signatures, so any 64-character digest will do. */
export const TEST_KEY_ID = 'd-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa';
/** A syntactically plausible signature: the types module never looks inside it. */
const SIGNATURE = 'AcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY';

/**
 * The text of one assertion from its headers (without sign-key or body-length, which are added)
 * and optional body, so tests read like the files they stand for.
 */
export function assertionText(headers: string, body?: string): string {
  let head = headers.replace(/\n+$/, '');
  if (body) head += `\nbody-length: ${Buffer.byteLength(body)}`;
  if (!/^sign-key-sha3-384:/m.test(head)) head += `\nsign-key-sha3-384: ${TEST_KEY_ID}`;
  return `${head}\n\n${body ? `${body}\n\n` : ''}${SIGNATURE}\n`;
}

/** Decodes the assertion with the real decoder, so tests feed the types what the decoder gives them. */
export function build(headers: string, body?: string): Assertion {
  const [a] = decodeStream(Buffer.from(assertionText(headers, body)), { file: 'test.assert' });
  return a!;
}

/**
 * Changes top-level headers of a header text: `null` removes the header, a value starting with a
 * newline replaces it with that block (`"\n  - a"`), any other string sets a scalar. Headers not
 * present are added at the end.
 */
export function edit(headers: string, changes: Record<string, string | null>): string {
  const lines = headers.replace(/\n+$/, '').split('\n');
  const entries: { name: string; lines: string[] }[] = [];
  for (const line of lines) {
    if (/^\S/.test(line)) entries.push({ name: line.slice(0, line.indexOf(':')), lines: [line] });
    else entries.at(-1)!.lines.push(line);
  }
  const render = (name: string, v: string) => (v.startsWith('\n') ? [`${name}:${v}`] : [`${name}: ${v}`]);
  for (const [name, v] of Object.entries(changes)) {
    const i = entries.findIndex((e) => e.name === name);
    if (v === null) {
      if (i !== -1) entries.splice(i, 1);
    } else if (i === -1) entries.push({ name, lines: render(name, v) });
    else entries[i] = { name, lines: render(name, v) };
  }
  return entries.flatMap((e) => e.lines).join('\n');
}

/** Runs `fn`, which must throw AssertionValidationError, and returns the error. */
export function validationError(fn: () => unknown): AssertionValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AssertionValidationError) return e;
    throw e;
  }
  throw new Error('expected an AssertionValidationError, but nothing was thrown');
}

/**
 * Assembles the assertion and expects it to be refused for `header` with `code`, the message
 * naming the header in quotes as every check does. Returns the error for further expectations.
 */
export function expectRefused(headers: string, header: string, code = 'ERR_ASSERTION_INVALID', body?: string): AssertionValidationError {
  const e = validationError(() => assembleAssertion(build(headers, body)));
  expect({ code: e.code, header: e.header }).toEqual({ code, header });
  expect(e.message).toContain(`"${header}"`);
  return e;
}
