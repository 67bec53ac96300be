import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { runTool } from '../fs/tool.js';

/** A loadable module: its canonical name (`-` folded to `_`) and its path under `lib/modules/VER`. */
export interface ModuleFile {
  name: string;
  /** Relative to `lib/modules/VER`, as in modules.dep, e.g. `kernel/fs/ext4/ext4.ko`. */
  path: string;
}

export interface ModulePlan {
  /** Every module to load, each after all of its dependencies, no duplicates. */
  load: ModuleFile[];
  /** Requested names that are built into the kernel (nothing to load). */
  builtin: string[];
}

/** `crc32c-intel` and `crc32c_intel` are the same module to the kernel. */
export const moduleName = (nameOrPath: string): string =>
  (nameOrPath.split('/').pop() ?? nameOrPath).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');

/** Parses modules.dep text: module path → its dependency paths (all of them, transitively). */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) break; // `depmod -n` output: modules.dep comes first, then other sections
    const m = /^(\S+\.ko(?:\.\w+)?):\s*(.*)$/.exec(line);
    if (m?.[1] !== undefined) deps.set(m[1], (m[2] ?? '').split(/\s+/).filter(Boolean));
  }
  return deps;
}

/**
 * modules.dep of an extracted kernel tree (`kernelTree/lib/modules/VER`). `dpkg-deb -x` does not
 * run depmod: when modules.dep is absent, `depmod -n` computes it (to stdout, so the tree is
 * read-only to us and no copy is needed).
 */
export async function readModulesDep(kernelTree: string, version: string): Promise<Map<string, string[]>> {
  const dir = join(kernelTree, 'lib/modules', version);
  if (!existsSync(dir)) throw new ComposeError('ERR_FS_SOURCE', `no kernel modules directory ${dir}`, { path: dir });
  const file = join(dir, 'modules.dep');
  if (existsSync(file)) return parseModulesDep(readFileSync(file, 'utf8'));
  const { stdout } = await runTool('depmod', ['-n', '-b', kernelTree, version]);
  return parseModulesDep(stdout.toString('utf8'));
}

/**
 * The load order for `names`: dependencies first (depth-first over modules.dep), deduplicated,
 * requested modules otherwise in the order given. Built-in names (modules.builtin) are reported,
 * not loaded; an unknown name is ERR_FS_SOURCE.
 */
export async function resolveModules(kernelTree: string, version: string, names: readonly string[]): Promise<ModulePlan> {
  const deps = await readModulesDep(kernelTree, version);
  const byName = new Map<string, string>();
  for (const p of deps.keys()) byName.set(moduleName(p), p);
  const builtinFile = join(kernelTree, 'lib/modules', version, 'modules.builtin');
  const builtinNames = new Set(existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map(moduleName) : []);

  const load: ModuleFile[] = [];
  const done = new Set<string>();
  const builtin: string[] = [];
  const visit = (path: string, stack: string[]): void => {
    if (done.has(path)) return;
    if (stack.includes(path)) throw new ComposeError('ERR_FS_SOURCE', `dependency cycle in modules.dep: ${[...stack, path].join(' → ')}`, { cycle: [...stack, path] });
    for (const d of deps.get(path) ?? []) visit(d, [...stack, path]);
    done.add(path);
    load.push({ name: moduleName(path), path });
  };
  for (const n of names) {
    const name = moduleName(n);
    const path = byName.get(name);
    if (path !== undefined) visit(path, []);
    else if (builtinNames.has(name)) { if (!builtin.includes(name)) builtin.push(name); }
    else throw new ComposeError('ERR_FS_SOURCE', `kernel ${version} has no module ${n} (neither loadable nor built in)`, { module: n, version });
  }
  return { load, builtin };
}
