import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EdgeimageError } from '@edgeimage/assertions';

/** The table's file: shipped next to src/ and dist/, so the same path serves both. */
export const HOST_TOOLS_TSV = fileURLToPath(new URL('../host-tools.tsv', import.meta.url));

export interface HostTool {
  /** A command on PATH, or an absolute path for a data file (firmware). */
  tool: string;
  package: string;
  versionArgs: string[];
  neededBy: string;
}

let table: HostTool[] | undefined;

/** Every row of host-tools.tsv, in its order. */
export function hostTools(): HostTool[] {
  table ??= readFileSync(HOST_TOOLS_TSV, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [tool = '', pkg = '', args = '', neededBy = ''] = l.split('\t');
      return { tool, package: pkg, versionArgs: args.split(' ').filter(Boolean), neededBy };
    });
  return table;
}

/** The Debian package that installs `tool`, or undefined when the table does not list it. */
export function debianPackageOf(tool: string): string | undefined {
  return hostTools().find((t) => t.tool === tool)?.package;
}

/** The Debian package of a tool the code names; a tool missing from the table is a mistake of ours, found at load time. */
export function debianPackage(tool: string): string {
  const pkg = debianPackageOf(tool);
  if (!pkg) throw new Error(`${tool} is not in ${HOST_TOOLS_TSV}: add it with its Debian package`);
  return pkg;
}

/** A host tool failed to start or run; `code` says how (`ERR_HOST_TOOL`: not installed). */
export class HostToolError extends EdgeimageError {}

/** `ERR_HOST_TOOL`: the tool is not on PATH; the message names the Debian package to install. */
export class HostToolMissingError extends HostToolError {
  constructor(readonly tool: string) {
    const pkg = debianPackageOf(tool);
    super('ERR_HOST_TOOL', `${tool} is not installed (not found on PATH)${pkg ? `; install the Debian package ${pkg} (apt-get install ${pkg})` : ''}`, { tool, package: pkg });
  }
}
