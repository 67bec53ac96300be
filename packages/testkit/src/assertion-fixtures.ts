import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requires } from './skips.js';

/** The shared real-world fixtures: read from there, never copied into the repository. */
export const FIXTURES_DIR = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
export const ASSERTIONS_DIR = `${FIXTURES_DIR}assertions/`;
export const haveFixtures = existsSync(ASSERTIONS_DIR);

/** `describe` whose tests are skipped, naming the missing folder, when the fixtures are absent. */
export const describeFixtures = requires(haveFixtures ? undefined : `${ASSERTIONS_DIR} is absent (the shared fixtures folder is not checked out next to the repository)`).describe;

export function assertionFixture(name: string): Buffer {
  return readFileSync(`${ASSERTIONS_DIR}${name}`);
}

export function assertionFixtureNames(): string[] {
  return haveFixtures ? readdirSync(ASSERTIONS_DIR).filter((f) => !f.endsWith('.txt')).sort() : [];
}
