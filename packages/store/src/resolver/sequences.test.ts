import { spawn, spawnSync } from 'node:child_process';
/**
 * The validation-set sequence record when builds share a cache: each record is a merge into what
 * is on disk at the moment it is renamed, never a write-back of an older read.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeSequences, SequenceRecord } from './sequences.js';
import type { StoreError } from '../errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-sequences-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const onDisk = (r: SequenceRecord) => JSON.parse(readFileSync(r.file, 'utf8')) as Record<string, number>;
const seqs = (o: Record<string, number>) => new Map(Object.entries(o));

test('a merge with a stale read raises what it brings and never lowers what is there', () => {
  expect(mergeSequences({ '16/acme/a': 4 }, seqs({ '16/acme/a': 3 }))).toBeUndefined();
  expect(mergeSequences({ '16/acme/a': 4 }, seqs({ '16/acme/a': 3, '16/acme/b': 1 }))).toEqual({ '16/acme/a': 4, '16/acme/b': 1 });
  expect(mergeSequences({ '16/acme/b': 2 }, seqs({ '16/acme/a': 5 }))).toEqual({ '16/acme/a': 5, '16/acme/b': 2 });
});

test('a build recording while another holds the record waits, then keeps what the other wrote', async () => {
  const mine = new SequenceRecord(dir);
  await mine.record(seqs({ '16/acme/a': 3 }));
  // Another build is between its read ({a: 3}) and its rename: it holds the lock.
  writeFileSync(`${mine.file}.lock`, `${process.pid}\n`);
  const pending = mine.record(seqs({ '16/acme/b': 5 }));
  await new Promise((r) => setImmediate(r));
  // That build renames its record (a raised to 4, from its read) and lets go.
  writeFileSync(mine.file, `${JSON.stringify({ '16/acme/a': 4 })}\n`);
  rmSync(`${mine.file}.lock`);
  await pending;
  // Neither is lowered: this build's b and the other's a both stand.
  expect(onDisk(mine)).toEqual({ '16/acme/a': 4, '16/acme/b': 5 });
  expect(readdirSync(dir).sort()).toEqual(['validation-sets.json']);
});

test('two records of different sets and sequences at once: both stand, none lowered', async () => {
  const first = new SequenceRecord(dir);
  await first.record(seqs({ '16/acme/a': 2, '16/acme/b': 9 }));
  await Promise.all([new SequenceRecord(dir).record(seqs({ '16/acme/a': 7 })), new SequenceRecord(dir).record(seqs({ '16/acme/a': 6, '16/acme/b': 1, '16/acme/c': 2 }))]);
  expect(onDisk(first)).toEqual({ '16/acme/a': 7, '16/acme/b': 9, '16/acme/c': 2 });
});

test('a lock held by a running process: refused after the bounded wait, naming the lock and its holder, and the record is unchanged', async () => {
  const r = new SequenceRecord(dir, 100);
  await r.record(seqs({ '16/acme/a': 1 }));
  const before = readFileSync(r.file);
  const holder = spawn('sleep', ['30']);
  let error: StoreError | undefined;
  try {
    writeFileSync(`${r.file}.lock`, `${holder.pid}\n`);
    await r.record(seqs({ '16/acme/a': 2 }));
  } catch (e) {
    error = e as StoreError;
  } finally {
    holder.kill();
  }
  expect(error?.code).toBe('ERR_SEQUENCE_RECORD_LOCKED');
  expect(error?.message).toContain(`${r.file}.lock: another build (process ${holder.pid}, still running) has held the lock on the validation-set record for 100 ms`);
  expect(readFileSync(r.file).equals(before)).toBe(true);
  expect(readdirSync(dir).sort()).toEqual(['validation-sets.json', 'validation-sets.json.lock']);
  expect(existsSync(`${r.file}.${process.pid}.tmp`)).toBe(false);
});

test('a lock left over from a crash (its process is gone) is taken over at once: the record is written and the lock removed', async () => {
  const r = new SequenceRecord(dir, 100);
  await r.record(seqs({ '16/acme/a': 1 }));
  const gone = spawnSync('true');
  writeFileSync(`${r.file}.lock`, `${gone.pid}\n`);
  await r.record(seqs({ '16/acme/a': 2 }));
  expect(onDisk(r)).toEqual({ '16/acme/a': 2 });
  expect(existsSync(`${r.file}.lock`)).toBe(false);
});

test('a lock that names no process (empty, or being written) is waited for, not taken over', async () => {
  const r = new SequenceRecord(dir, 100);
  writeFileSync(`${r.file}.lock`, '');
  await expect(r.record(seqs({ '16/acme/a': 2 }))).rejects.toMatchObject({ code: 'ERR_SEQUENCE_RECORD_LOCKED' });
  expect(existsSync(r.file)).toBe(false);
});
