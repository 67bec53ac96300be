import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the built CLI (`tsc -b` must have run). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI_BIN = join(REPO, 'packages/cli/bin/edgeimage.js');
