import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../errors.js';

/** The record's size bound: one small entry per validation-set ever resolved with this cache. */
const MAX_RECORD_BYTES = 1 << 20;
/** How often a record waiting for another build's lock tries again. */
const LOCK_POLL_MS = 50;
/** How long a record waits for another build's lock by default (a record holds it for milliseconds). */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

/**
 * `current` raised to `add` (never lowered); undefined when nothing is raised. Builds sharing a
 * cache each merge into what is on disk, so one build's record never undoes another's.
 */
export function mergeSequences(current: Readonly<Record<string, number>>, add: ReadonlyMap<string, number>): Record<string, number> | undefined {
  const merged = { ...current };
  let changed = false;
  for (const [k, seq] of add) {
    if ((merged[k] ?? 0) < seq) {
      merged[k] = seq;
      changed = true;
    }
  }
  return changed ? Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b))) : undefined;
}

/**
 * The highest sequence seen per validation-set, kept next to the bundle cache
 * (`validation-sets.json`: `{"16/acme/world": 3}`), so that a store cannot later serve an older
 * sequence of a set (one pinning old revisions) as if it were the newest. Written only with
 * sequences that verified, and only once the output built from them is in place (the caller of
 * resolveModel calls `Resolution.recordSequences`), atomically (temp file + rename) and as a
 * merge that never lowers a sequence another build recorded.
 */
export class SequenceRecord {
  readonly file: string;

  /** `lockWaitMs`: how long `record` waits for another build's lock before refusing. */
  constructor(
    dir: string,
    private readonly lockWaitMs = DEFAULT_LOCK_WAIT_MS,
  ) {
    this.file = join(dir, 'validation-sets.json');
  }

  static key(accountId: string, name: string): string {
    return `16/${accountId}/${name}`;
  }

  private read(): Record<string, number> {
    if (!existsSync(this.file)) return {};
    const raw = readFileSync(this.file);
    const bad = (why: string) =>
      new StoreError('ERR_SEQUENCE_RECORD', `${this.file}: ${why}; it records the validation-set sequences already seen, so it is not ignored: repair or remove it knowingly`, { file: this.file });
    if (raw.length > MAX_RECORD_BYTES) throw bad(`is ${raw.length} bytes, more than ${MAX_RECORD_BYTES}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw bad(`is not JSON (${(e as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('is not a JSON object');
    for (const [k, v] of Object.entries(parsed)) {
      if (!Number.isSafeInteger(v) || (v as number) < 1) throw bad(`the sequence of ${JSON.stringify(k)} is ${JSON.stringify(v)}, not a positive integer`);
    }
    return parsed as Record<string, number>;
  }

  /** The highest sequence of the set seen so far, or 0. */
  seen(accountId: string, name: string): number {
    return this.read()[SequenceRecord.key(accountId, name)] ?? 0;
  }

  /**
   * Raises the recorded sequences to these (never lowers one). Builds sharing the cache take
   * turns through an O_EXCL lock file next to the record, and each reads the record under the
   * lock, just before its rename: a read made earlier (at resolve time) could be stale, and
   * writing it back would lower what another build recorded meanwhile.
   */
  async record(sequences: ReadonlyMap<string, number>): Promise<void> {
    if (!mergeSequences(this.read(), sequences)) return;
    mkdirSync(join(this.file, '..'), { recursive: true });
    const release = await this.lock();
    try {
      const merged = mergeSequences(this.read(), sequences);
      if (!merged) return;
      const tmp = `${this.file}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, `${JSON.stringify(merged, null, 2)}\n`);
        renameSync(tmp, this.file);
      } finally {
        rmSync(tmp, { force: true });
      }
    } finally {
      release();
    }
  }

  private async lock(): Promise<() => void> {
    const lockFile = `${this.file}.lock`;
    for (let waited = 0; ; waited += LOCK_POLL_MS) {
      let fd: number;
      try {
        fd = openSync(lockFile, 'wx', 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A build that crashed holding the lock would block this cache for ever: a lock whose
        // process is gone is taken over at once (a live holder keeps it for milliseconds).
        if (lockHolderGone(lockFile)) {
          rmSync(lockFile, { force: true });
          continue;
        }
        if (waited >= this.lockWaitMs) {
          throw new StoreError(
            'ERR_SEQUENCE_RECORD_LOCKED',
            `${lockFile}: another build (process ${readHolder(lockFile) ?? '?'}, still running) has held the lock on the validation-set record for ${this.lockWaitMs} ms; if no build is using the cache ${join(this.file, '..')}, remove the lock`,
            { file: lockFile },
          );
        }
        await sleep(LOCK_POLL_MS);
        continue;
      }
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => rmSync(lockFile, { force: true });
    }
  }
}

/** The pid written in a lock file, or undefined when the file is gone, empty or not a pid. */
function readHolder(lockFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lockFile, 'utf8');
  } catch {
    return undefined;
  }
  const pid = /^[1-9][0-9]{0,9}\n?$/.test(text) ? Number(text.trim()) : undefined;
  return pid;
}

/** True when the lock names a process that no longer exists on this host (a crashed build). */
function lockHolderGone(lockFile: string): boolean {
  const pid = readHolder(lockFile);
  // An unreadable or half-written lock (its holder is between open and write) is left alone.
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
