/**
 * Which imports of a file cross into another package by a relative path: a package is imported by
 * its name (`@edgeimage/composer`, `@edgeimage/testkit/image-world`), never as `../../composer/src/…`,
 * so each package's tests see only what the package exports and helpers live in one place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface CrossImport {
  /** The importing file, relative to the repository. */
  file: string;
  line: number;
  specifier: string;
  /** The package the specifier lands in. */
  target: string;
}

/**
 * `import … from '…'` and `export … from '…'` (statements start a line), `import '…'`, and
 * `import('…')` anywhere.
 */
const SPECIFIER = /^[ \t]*(?:import|export)\b[^;'"]{0,2000}?\bfrom\s*(['"])([^'"\n]{1,500})\1|^[ \t]*import\s*(['"])([^'"\n]{1,500})\3|\bimport\(\s*(['"])([^'"\n]{1,500})\5\s*\)/gm;

/** This module's own test, whose sample texts hold the imports it must find. */
const SAMPLES = 'import-boundaries.test.ts';

/** The package folder name of a repository-relative path under `packages/`, if any. */
function packageOf(repoRelative: string): string | undefined {
  const parts = repoRelative.split(sep);
  return parts[0] === 'packages' && parts.length > 2 ? parts[1] : undefined;
}

/**
 * The module specifiers a source text imports or re-exports, with the line of each. Comments may
 * show imports as examples: block comments and whole-line // comments are blanked first (their
 * line breaks kept, so lines still count right).
 */
export function importSpecifiers(source: string): { specifier: string; line: number }[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/^[ \t]*\/\/.*$/gm, '');
  return [...text.matchAll(SPECIFIER)].map((m) => ({ specifier: (m[2] ?? m[4] ?? m[6])!, line: text.slice(0, m.index).split('\n').length }));
}

/** The relative imports of `text` (the file `file`, inside `repo`) that land in another package. */
export function crossPackageImports(repo: string, file: string, text: string): CrossImport[] {
  const rel = relative(repo, file);
  const own = packageOf(rel);
  const found: CrossImport[] = [];
  for (const { specifier, line } of importSpecifiers(text)) {
    if (!specifier.startsWith('.')) continue;
    const target = packageOf(relative(repo, resolve(dirname(file), specifier)));
    if (target === own) continue;
    found.push({ file: rel, line, specifier, target: target ?? '(outside packages/)' });
  }
  return found;
}

/** TypeScript and ES module files under each package's `src/` and `test/` (not dist or node_modules). */
export function packageSourceFiles(repo: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 20) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'dist') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  const packages = join(repo, 'packages');
  for (const pkg of readdirSync(packages, { withFileTypes: true })) {
    if (!pkg.isDirectory()) continue;
    for (const sub of ['src', 'test']) {
      try {
        walk(join(packages, pkg.name, sub), 0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  return out.sort();
}

/** Every cross-package relative import in the repository's packages. */
export function repoCrossImports(repo: string): CrossImport[] {
  return packageSourceFiles(repo)
    .filter((f) => !f.endsWith(`${sep}${SAMPLES}`))
    .flatMap((f) => crossPackageImports(repo, f, readFileSync(f, 'utf8')));
}
