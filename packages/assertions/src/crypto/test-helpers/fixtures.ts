/**
 * Access to the real Canonical assertions in /work/shared/fixtures/assertions, read in place
 * (never copied: the signatures cover the exact bytes). Tests that need them skip with a
 * visible warning when the folder is absent, so a green run never hides missing coverage.
 */
import { existsSync, readFileSync } from 'node:fs';

/** Relative to this helper: src/crypto/test-helpers/ → /work/shared/fixtures/assertions/. */
export const FIXTURES = new URL('../../../../../../shared/fixtures/assertions/', import.meta.url);

export const fixturesAvailable = existsSync(FIXTURES);

/** `describe` when the fixtures exist; otherwise `describe.skip` plus a console.warn saying why. */
export function describeWithFixtures(name: string, fn: () => void): void {
  if (fixturesAvailable) {
    describe(name, fn);
  } else {
    console.warn(`[crypto tests] SKIPPED "${name}": fixtures not found at ${FIXTURES.pathname}`);
    describe.skip(name, fn);
  }
}

export function readFixture(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

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
