/**
 * Every workspace package declares what it imports: a module that resolves today only because
 * another package (or a tool) hoisted it into node_modules breaks the day that one drops it, and
 * `npm ls` cannot see an undeclared import. Shipped code must find its imports in `dependencies`;
 * tests and their helpers also in `devDependencies` or the root's (jest, fast-check, openpgp…).
 */
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importSpecifiers } from '@edgeimage/testkit/import-boundaries';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** This file: its examples of imports are strings, not imports. */
const SELF = fileURLToPath(import.meta.url);
const PACKAGES = join(ROOT, 'packages');
const SOURCE = /\.(ts|mts|js|mjs)$/;
/** Sources are small; a file larger than this is not one of ours and is not scanned. */
const MAX_SOURCE_BYTES = 4 * 1024 * 1024;

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

function sources(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (n === 'node_modules' || n === 'dist') continue;
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isDirectory()) sources(p, out);
    else if (SOURCE.test(n) && !n.endsWith('.d.ts') && st.size <= MAX_SOURCE_BYTES) out.push(p);
  }
  return out;
}

/** The package a module specifier names (`@scope/name/sub` → `@scope/name`), or undefined for relative paths and Node's own modules. */
export function packageOf(spec: string): string | undefined {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) return undefined;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtinModules.includes(name) ? undefined : name;
}

/** The module specifiers of static imports, re-exports, side-effect imports and `import('x')` with a literal. */
export const importsOf = (source: string): string[] => importSpecifiers(source).map((i) => i.specifier);

const isTestCode = (file: string) => /\.test\.[mc]?[jt]s$/.test(file) || /(^|\/)test-helpers\//.test(file) || /(^|\/)test\//.test(file);

describe('package.json dependencies', () => {
  test('the import scanner sees every form of import and keeps only package names', () => {
    const text = [
      "import { a } from 'yaml';",
      'import {',
      '  b,',
      "} from '@scope/pkg/sub';",
      "import type { Z } from 'zod';",
      "export { c } from 'execa';",
      "import 'side-effect';",
      "const m = await import('dyn');",
      "import { x } from './local.js';",
      "import { y } from 'node:fs';",
      "import { w } from 'path';",
      "const s = 'from \"not-an-import\"';",
      "/** import { q } from 'in-a-comment'; import('in-a-comment-too') */",
      "// import { r } from 'line-comment';",
    ].join('\n');
    expect(importsOf(text).map(packageOf).filter(Boolean).sort()).toEqual(['@scope/pkg', 'dyn', 'execa', 'side-effect', 'yaml', 'zod']);
  });

  const root = readManifest(ROOT);
  const dirs = readdirSync(PACKAGES).filter((d) => statSync(join(PACKAGES, d)).isDirectory() && readdirSync(join(PACKAGES, d)).includes('package.json'));

  test.each(dirs)('packages/%s declares every package its code imports', (d) => {
    const dir = join(PACKAGES, d);
    const m = readManifest(dir);
    const deps = new Set(Object.keys(m.dependencies ?? {}));
    const testDeps = new Set([...deps, ...Object.keys(m.devDependencies ?? {}), ...Object.keys(root.devDependencies ?? {})]);
    const missing: string[] = [];
    for (const file of sources(dir)) {
      if (file === SELF) continue;
      const rel = relative(dir, file);
      const test = isTestCode(rel);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const pkg = packageOf(spec);
        if (!pkg || pkg === m.name) continue;
        if (!(test ? testDeps : deps).has(pkg)) missing.push(`${rel} imports ${pkg}: not in ${test ? 'dependencies or devDependencies (here or at the root)' : 'dependencies'}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test.each(dirs)('packages/%s uses every runtime dependency it declares', (d) => {
    const dir = join(PACKAGES, d);
    const m = readManifest(dir);
    const used = new Set(sources(dir).filter((f) => f !== SELF).flatMap((f) => importsOf(readFileSync(f, 'utf8')).map(packageOf)));
    expect(Object.keys(m.dependencies ?? {}).filter((p) => !used.has(p))).toEqual([]);
  });
});
