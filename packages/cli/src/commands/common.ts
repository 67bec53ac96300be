import { readFileSync } from 'node:fs';
import { Keyring, decodeStream, parseRFC3339, type Assertion } from '@edgeimage/assertions';
import { removeInProgress } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { UsageError, type Io } from '../output.js';
import { defaultKeyring } from '../paths.js';

export interface Context {
  io: Io;
  /** Set by a handler: the process exit code. */
  exitCode: number;
}

export function keyringOption<T>(y: Argv<T>) {
  return y.option('keyring', {
    type: 'string',
    describe: 'folder of signing keys (default: $EDGEIMAGE_KEYRING, else signing-keys/ in the repository)',
  });
}

export function openKeyring(dir: string | undefined): Keyring {
  return new Keyring(dir ?? defaultKeyring());
}

/** The passphrase of encrypted keys comes only from the environment, never from argv (visible in ps). */
export function passphrase(): string | undefined {
  return process.env['EDGEIMAGE_KEY_PASSPHRASE'] || undefined;
}

export function readAssertions(file: string): Assertion[] {
  return decodeStream(readFileSync(file), { file });
}

/** Parses `--at`: an RFC 3339 time. */
export function parseTime(value: string | undefined, option: string): Date | undefined {
  if (value === undefined) return undefined;
  // The same RFC 3339 rules as assertion headers: no 30 February, no hour 24.
  const d = parseRFC3339(value);
  if (!d) throw new UsageError(`${option}: expected an RFC 3339 time such as 2026-01-31T12:00:00Z, found ${JSON.stringify(value)}`);
  return d;
}

/**
 * Runs `fn` so that Ctrl-C or SIGTERM removes every output still under its temporary name (a
 * build or an update; `also`: another package's, such as a base build's) and exits 130: an
 * interrupted command leaves nothing half-written.
 */
export async function cleanOnInterrupt<T>(fn: () => Promise<T>, also?: () => void): Promise<T> {
  const onSignal = () => {
    removeInProgress();
    also?.();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
