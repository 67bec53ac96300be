/**
 * Access to the real Canonical assertions in /work/shared/fixtures/assertions, read in place
 * (never copied: the signatures cover the exact bytes). Tests that need them skip with a
 * visible warning when the folder is absent, so a green run never hides missing coverage.
 */
import { pathToFileURL } from 'node:url';
import { ASSERTIONS_DIR, assertionFixture, describeFixtures, haveFixtures } from './assertion-fixtures.js';

// The crypto tests split assertions themselves (below) so that they do not depend on the decoder.
export const FIXTURES = pathToFileURL(ASSERTIONS_DIR);
export const fixturesAvailable = haveFixtures;
export const describeWithFixtures = (name: string, fn: () => void): void => describeFixtures(name, fn);
export const readFixture = assertionFixture;

export interface SplitAssertion {
  /** The signed bytes: everything before the last "\n\n". */
  content: Buffer;
  /** The signature text after the last "\n\n" (may end with '\n'). */
  signature: string;
  /** Header text (before the first "\n\n"). */
  headers: string;
  /** The body, `body-length` bytes after the first "\n\n" (empty when there is none). */
  body: string;
}

/** Splits an assertion the way snapd does, with just enough header parsing for tests. */
export function splitAssertion(bytes: Buffer): SplitAssertion {
  const last = bytes.lastIndexOf('\n\n');
  const first = bytes.indexOf('\n\n');
  if (last < 0 || first < 0) throw new Error('not an assertion: no blank line');
  const headers = bytes.subarray(0, first).toString('utf8');
  const m = /^body-length: (\d+)$/m.exec(headers);
  const bodyLength = m ? Number(m[1]) : 0;
  const body = bytes.subarray(first + 2, first + 2 + bodyLength).toString('utf8');
  return { content: bytes.subarray(0, last), signature: bytes.subarray(last + 2).toString('utf8'), headers, body };
}

/** The value of a single-line header. */
export function header(headers: string, name: string): string | undefined {
  const m = new RegExp(`^${name}: (.*)$`, 'm').exec(headers);
  return m?.[1];
}
