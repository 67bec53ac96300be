import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianPackage, debianPackageOf, HostToolMissingError, hostTools } from './table.js';
import { runTool } from './run.js';

const PACKAGES = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    if (n === 'node_modules' || n === 'dist') continue;
    const p = join(dir, n);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (n.endsWith('.ts') && !n.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

describe('the host-tool table', () => {
  test('a missing tool is ERR_HOST_TOOL naming its Debian package from the table', async () => {
    const e = await runTool('mdir', ['-V'], { env: { PATH: '/nonexistent' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HostToolMissingError);
    expect(e).toMatchObject({ code: 'ERR_HOST_TOOL', context: { tool: 'mdir', package: 'mtools' } });
    expect((e as Error).message).toBe('mdir is not installed (not found on PATH); install the Debian package mtools (apt-get install mtools)');
  });

  test('a tool the table does not list is still named, without a package', async () => {
    const e = await runTool('edgeimage-no-such-tool', []).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_HOST_TOOL', message: 'edgeimage-no-such-tool is not installed (not found on PATH)' });
  });

  test('every tool the packages run by name is in the table, once', () => {
    const run = new Set<string>();
    for (const d of readdirSync(PACKAGES)) {
      const src = join(PACKAGES, d, 'src');
      if (!statSync(join(PACKAGES, d)).isDirectory() || !readdirSync(join(PACKAGES, d)).includes('src')) continue;
      for (const f of sources(src)) for (const m of readFileSync(f, 'utf8').matchAll(/\brunTool\(\s*'([^']+)'/g)) run.add(m[1]!);
    }
    run.delete('env');
    expect(run.size).toBeGreaterThan(10);
    expect([...run].filter((t) => !debianPackageOf(t))).toEqual([]);
    expect(() => debianPackage('edgeimage-no-such-tool')).toThrow(/edgeimage-no-such-tool is not in .*host-tools\.tsv/);
    const tools = hostTools().map((t) => t.tool);
    expect(tools.filter((t, i) => tools.indexOf(t) !== i)).toEqual([]);
  });
});
