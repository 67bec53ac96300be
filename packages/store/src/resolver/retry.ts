import { EdgeimageError } from '@edgeimage/assertions';
import { StoreError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts after the first. Default 4. */
  retries: number;
  /** First backoff; doubles each attempt. Default 250 ms ($EDGEIMAGE_RETRY_BASE_MS). */
  baseDelayMs: number;
}

export function defaultRetryPolicy(): RetryPolicy {
  const base = Number(process.env['EDGEIMAGE_RETRY_BASE_MS'] ?? 250);
  return { retries: 4, baseDelayMs: Number.isFinite(base) && base >= 0 ? base : 250 };
}

/** Failures worth another attempt: the network and the server's 5xx, never a 404 or a bad digest. */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof EdgeimageError)) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    return code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (e instanceof Error && /terminated|socket|other side closed|aborted/i.test(e.message));
  }
  if (e.code === 'ERR_STORE_UNREACHABLE' || e.code === 'ERR_DOWNLOAD_INTERRUPTED') return true;
  if (e.code === 'ERR_STORE_HTTP') {
    const status = Number((e.context as { status?: number }).status);
    return !(status >= 400 && status < 500) || status === 408 || status === 429;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` until it succeeds, retrying transient failures with exponential backoff. The last
 * failure is rethrown with how many attempts were made, so "store unreachable" says it tried.
 */
export async function withRetry<T>(what: string, policy: RetryPolicy, fn: (attempt: number) => Promise<T>, onRetry?: (e: unknown, attempt: number, delayMs: number) => void): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!isTransient(e)) throw e;
      if (attempt >= policy.retries) {
        const cause = e instanceof Error ? e.message : String(e);
        const code = e instanceof EdgeimageError ? e.code : 'ERR_STORE_UNREACHABLE';
        const context = e instanceof EdgeimageError ? e.context : {};
        throw new StoreError(code, `${what}: gave up after ${attempt + 1} attempts: ${cause}`, { ...context, attempts: attempt + 1 });
      }
      const delay = policy.baseDelayMs * 2 ** attempt;
      onRetry?.(e, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
