import { join } from 'node:path';
import { crossPackageImports, packageSourceFiles, repoCrossImports } from './import-boundaries.js';
import { REPO } from './repo.js';

const at = (p: string) => join(REPO, p);

describe('cross-package relative imports', () => {
  test('no file of any package imports another package by a relative path (use @edgeimage/<name>)', () => {
    const found = repoCrossImports(REPO).map((c) => `${c.file}:${c.line}: '${c.specifier}' reaches into ${c.target}`);
    expect(found).toEqual([]);
  });

  test('the scan covers tests, test/ folders and testkit itself', () => {
    const files = packageSourceFiles(REPO).map((f) => f.slice(REPO.length));
    expect(files).toEqual(expect.arrayContaining(['packages/composer/src/compose/compose.test.ts', 'packages/testkit/src/image-world.ts']));
    expect(files.some((f) => f.startsWith('packages/qemu/test/'))).toBe(true);
    expect(files.some((f) => f.includes('/dist/') || f.includes('/node_modules/'))).toBe(false);
  });

  test('a relative path into another package is found, with its line; one inside the package, a package name or a node: module is not', () => {
    const text = [
      "import { makeImageWorld } from '../../../composer/src/compose/test-helpers/image-world.js';",
      "import { pack } from '../bundle/pack.js';",
      "import { Store } from '@edgeimage/store';",
      "import { join } from 'node:path';",
      "export { withEnv } from '../../../store/src/bundle/test-helpers/bundles.js';",
      "const m = await import('../../../qemu/src/index.js');",
    ].join('\n');
    expect(crossPackageImports(REPO, at('packages/store/src/resolver/x.test.ts'), text)).toEqual([
      { file: 'packages/store/src/resolver/x.test.ts', line: 1, specifier: '../../../composer/src/compose/test-helpers/image-world.js', target: 'composer' },
      { file: 'packages/store/src/resolver/x.test.ts', line: 6, specifier: '../../../qemu/src/index.js', target: 'qemu' },
    ]);
  });

  test('an import shown in a comment is not one; lines are counted across block comments', () => {
    const text = ["/**", " * import { x } from '../../composer/src/index.js'; or await import('../../store/src/index.js')", " */", "// import { y } from '../../../store/src/index.js';", "import { z } from '../../qemu/src/index.js';"].join('\n');
    expect(crossPackageImports(REPO, at('packages/cli/src/x.test.ts'), text).map((c) => [c.target, c.line])).toEqual([['qemu', 5]]);
  });

  test('a qemu test/ file reaching into composer/src and testkit/src by path is found', () => {
    const text = "import { GRUB_ENV_HEADER } from '../../composer/src/index.js';\nimport { REPO } from '../../testkit/src/repo.js';\n";
    expect(crossPackageImports(REPO, at('packages/qemu/test/bootloaders.test.ts'), text).map((c) => c.target)).toEqual(['composer', 'testkit']);
  });
});
