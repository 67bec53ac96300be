/**
 * Test helpers: the real gadgets in /work/shared/fixtures/gadgets (read in place, never copied),
 * and an expectation for GadgetErrors (code, line, column, structure, message).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GadgetError } from '@edgeimage/gadget';
import { requires } from './skips.js';

export const GADGET_FIXTURES_DIR = fileURLToPath(new URL('../../../../shared/fixtures/gadgets/', import.meta.url));
export const haveGadgetFixtures = existsSync(GADGET_FIXTURES_DIR);

/** Why the fixture gadgets cannot be read here, or undefined. */
export const missingGadgetFixtures = haveGadgetFixtures ? undefined : `${GADGET_FIXTURES_DIR} is absent (the shared fixtures folder is not checked out next to the repository)`;

/** `describe` whose tests are skipped, naming the missing folder, when the fixtures are absent. */
export const describeFixtures = requires(missingGadgetFixtures).describe;

/** Folder names of the fixture gadgets (each has gadget.yaml). */
export function fixtureGadgets(): string[] {
  if (!haveGadgetFixtures) return [];
  return readdirSync(GADGET_FIXTURES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(`${GADGET_FIXTURES_DIR}${d.name}/gadget.yaml`))
    .map((d) => d.name)
    .sort();
}

export const fixtureFile = (name: string, file = 'gadget.yaml') => `${GADGET_FIXTURES_DIR}${name}/${file}`;

/** snapd-layout.txt: volume name → [name, start, size] per structure, in disk order. */
export function snapdLayout(name: string): Map<string, [string, number, number][]> | undefined {
  const f = fixtureFile(name, 'snapd-layout.txt');
  if (!existsSync(f)) return undefined;
  const out = new Map<string, [string, number, number][]>();
  let cur: [string, number, number][] | undefined;
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    if (line === '') continue;
    const vol = /^volume (.+)$/.exec(line);
    if (vol) {
      cur = [];
      out.set(vol[1]!, cur);
      continue;
    }
    // "NAME START SIZE": the name may hold spaces ("BIOS Boot") or be empty.
    const m = /^(.*) (\d+) (\d+)$/.exec(line);
    if (!m || !cur) throw new Error(`${f}: unexpected line ${JSON.stringify(line)}`);
    cur.push([m[1]!, Number(m[2]), Number(m[3])]);
  }
  return out;
}

export interface Expected {
  code: string;
  line?: number;
  col?: number;
  structure?: string;
  /** Every one must occur in the message. */
  message: (string | RegExp)[];
}

/** Runs `fn`, which must throw a GadgetError matching `want`; returns it. */
export function expectGadgetError(fn: () => unknown, want: Expected): GadgetError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (!(thrown instanceof GadgetError)) throw new Error(`expected a GadgetError ${want.code}, got ${thrown === undefined ? 'no error' : String((thrown as Error).stack ?? thrown)}`);
  const e = thrown;
  // col and structure are compared when the expectation names them ('structure' in want, even undefined).
  expect({ code: e.code, line: e.line, col: want.col === undefined ? undefined : e.col, structure: 'structure' in want ? e.structure : undefined, message: e.message }).toEqual({
    code: want.code,
    line: want.line,
    col: want.col,
    structure: want.structure,
    message: e.message,
  });
  for (const m of want.message) {
    if (typeof m === 'string') expect(e.message).toContain(m);
    else expect(e.message).toMatch(m);
  }
  return e;
}

/** Joins lines with "\n" and a final newline: line N of the YAML is the Nth argument. */
export const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;
