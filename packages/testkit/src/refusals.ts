import { listFiles } from './image-read.js';

/**
 * What is left in `dir` once it is empty or `ms` have passed: builders of other structures may
 * still be finishing (and removing their own temp folders) when a build has already failed.
 */
export async function leftAfter(dir: string, ms = 10_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = listFiles(dir);
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The code and message of what `p` rejects with (fails the test when it resolves). */
export async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string; context: Record<string, unknown>; error: Error }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code?: unknown; context?: Record<string, unknown> };
    return { code: String(err.code), message: err.message, context: err.context ?? {}, error: err };
  }
  throw new Error('expected a refusal, but it succeeded');
}

/**
 * The error of class `type` that `f` throws; any other error is rethrown, and a call that
 * returns fails the test (the synchronous twin of `refusal`).
 */
export function thrownBy<E extends Error>(f: () => unknown, type: abstract new (...args: never[]) => E): E {
  try {
    f();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected a ${type.name}, but the call returned`);
}
