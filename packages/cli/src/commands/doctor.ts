import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { hostToolEnv, hostTools } from '@edgeimage/host-tools';
import { execa } from 'execa';
import type { Argv } from 'yargs';
import { EXIT_FAILURE, printJson } from '../output.js';
import type { Context } from './common.js';

function which(tool: string): string | undefined {
  // Firmware files and other data are named by their absolute path.
  if (tool.startsWith('/')) return existsSync(tool) ? tool : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const p = join(dir, tool);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

export function doctorCommand(ctx: Context) {
  return {
    command: 'doctor',
    describe: 'list every host tool edgeimage uses: found or not, its version, which command needs it',
    builder: (y: Argv) => y.option('json', { type: 'boolean' }).example('$0 doctor', '').epilog('Install what is missing with ./scripts/setup (apt-get, as root).'),
    handler: async (a: { json?: boolean }) => {
      const rows = await Promise.all(
        hostTools().map(async (t) => {
          const path = which(t.tool);
          let version: string | undefined;
          if (path && t.versionArgs.length > 0) {
            const r = await execa(path, t.versionArgs, { reject: false, all: true, timeout: 10_000, env: hostToolEnv(), extendEnv: false });
            version = (r.all ?? '').split('\n').find((l) => l.trim())?.trim();
          }
          return { tool: t.tool, found: Boolean(path), path, version, package: t.package, 'needed-by': t.neededBy };
        }),
      );
      if (a.json) printJson(ctx.io, rows);
      else {
        for (const r of rows) {
          ctx.io.out(`${r.found ? 'ok     ' : 'MISSING'} ${r.tool.padEnd(22)} ${(r.found ? (r.version ?? '') : `apt-get install ${r.package}`).padEnd(40)} needed by: ${r['needed-by']}`);
        }
      }
      if (rows.some((r) => !r.found)) ctx.exitCode = EXIT_FAILURE;
    },
  };
}
