import { EdgeimageError } from '@edgeimage/assertions';

/** Exit codes: 0 success, 1 the operation failed (bad input, failed check), 2 usage error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends EdgeimageError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** JSON output; 64-bit values (GPT attributes) are written as decimal strings. */
export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
}

/** One line per error, prefixed so scripts can grep it; the code lets them switch on it. */
export function reportError(io: Io, e: unknown): number {
  if (e instanceof UsageError) {
    io.err(`edgeimage: ${e.message}\nRun with --help for usage.`);
    return EXIT_USAGE;
  }
  if (e instanceof EdgeimageError) {
    io.err(`edgeimage: error: ${e.message} [${e.code}]`);
    return EXIT_FAILURE;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.path) {
    io.err(`edgeimage: error: ${err.path}: ${err.message.replace(/^[A-Z]+: /, '')} [${err.code}]`);
    return EXIT_FAILURE;
  }
  io.err(`edgeimage: internal error: ${err?.stack ?? String(e)}`);
  return EXIT_FAILURE;
}
