import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shared real-world fixtures: read from there, never copied into the repository. */
export const FIXTURES_DIR = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
export const ASSERTIONS_DIR = `${FIXTURES_DIR}assertions/`;
export const haveFixtures = existsSync(ASSERTIONS_DIR);

if (!haveFixtures) {
  console.warn(`SKIPPING fixture tests: ${ASSERTIONS_DIR} is absent (the shared fixtures folder is not checked out next to the repository)`);
}

/** `describe` that skips visibly when the fixtures folder is absent. */
export const describeFixtures = haveFixtures ? describe : describe.skip;

export function assertionFixture(name: string): Buffer {
  return readFileSync(`${ASSERTIONS_DIR}${name}`);
}

export function assertionFixtureNames(): string[] {
  return haveFixtures ? readdirSync(ASSERTIONS_DIR).filter((f) => !f.endsWith('.txt')).sort() : [];
}
