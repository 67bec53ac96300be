/**
 * A test that cannot run on this machine (a tool, root, a network fetch is missing) is skipped
 * through jest, decided when the test is defined, with the reason in its name: jest then reports
 * it as skipped and `scripts/test` names it, where an early `return` inside it would count as a pass.
 *
 *   const { test: kernelTest } = requires(kernel.missing);
 *   kernelTest('boots', async () => { … });   // "boots [skipped: cannot fetch linux-image-amd64: …]"
 */

type TestBody = jest.ProvidesCallback;

export interface Gated {
  test(name: string, fn: TestBody, timeout?: number): void;
  describe(name: string, fn: () => void): void;
}

/** A test's name with why it was skipped; `%` is doubled so `test.each` placeholders stay intact. */
export const skippedName = (name: string, reason: string): string => `${name} [skipped: ${reason.replace(/%/g, '%%').replace(/\s+/g, ' ').trim()}]`;

/** `test` and `describe` that run when `missing` is undefined, and are skipped naming `missing` otherwise. */
export function requires(missing: string | undefined): Gated {
  if (missing === undefined) return { test: (name, fn, timeout) => test(name, fn, timeout), describe: (name, fn) => describe(name, fn) };
  return {
    test: (name, fn, timeout) => test.skip(skippedName(name, missing), fn, timeout),
    describe: (name, fn) => describe.skip(skippedName(name, missing), fn),
  };
}

/** The first reason of several that is not undefined: a test that needs root and a tool. */
export const firstMissing = (...missing: (string | undefined)[]): string | undefined => missing.find((m) => m !== undefined);

/** Why a root-only test cannot run here, or undefined as root. */
export const missingRoot = (what: string): string | undefined => (process.getuid?.() === 0 ? undefined : `${what} needs root`);
