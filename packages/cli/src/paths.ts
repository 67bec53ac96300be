import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root (the folder with lerna.json above this package), or undefined when installed elsewhere. */
export function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'lerna.json')) && existsSync(join(dir, 'packages'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** `--keyring`, else `$EDGEIMAGE_KEYRING`, else `signing-keys/` in the repository (git-ignored). */
export function defaultKeyring(): string {
  if (process.env['EDGEIMAGE_KEYRING']) return resolve(process.env['EDGEIMAGE_KEYRING']);
  return join(repoRoot() ?? process.cwd(), 'signing-keys');
}
