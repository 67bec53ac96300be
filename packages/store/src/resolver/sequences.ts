import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../errors.js';

/** The record's size bound: one small entry per validation-set ever resolved with this cache. */
const MAX_RECORD_BYTES = 1 << 20;

/**
 * The highest sequence seen per validation-set, kept next to the bundle cache
 * (`validation-sets.json`: `{"16/acme/world": 3}`), so that a store cannot later serve an older
 * sequence of a set (one pinning old revisions) as if it were the newest. Written only with
 * sequences that verified, atomically (temp file + rename).
 */
export class SequenceRecord {
  readonly file: string;

  constructor(dir: string) {
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

  /** Raises the recorded sequences to these (never lowers one). */
  record(sequences: ReadonlyMap<string, number>): void {
    const current = this.read();
    let changed = false;
    for (const [k, seq] of sequences) {
      if ((current[k] ?? 0) < seq) {
        current[k] = seq;
        changed = true;
      }
    }
    if (!changed) return;
    const sorted = Object.fromEntries(Object.entries(current).sort(([a], [b]) => a.localeCompare(b)));
    mkdirSync(join(this.file, '..'), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(sorted, null, 2)}\n`);
      renameSync(tmp, this.file);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}
