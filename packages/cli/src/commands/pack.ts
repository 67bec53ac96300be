import { pack, readBundleInfo, type SnapYaml } from '@edgeimage/store';
import type { Argv } from 'yargs';
import { printJson, type Io } from '../output.js';
import type { Context } from './common.js';

interface Described {
  path: string;
  size: number;
  sha3_384: string;
  snap: SnapYaml;
}

/** The JSON of `pack --json` and `bundle info --json`: one object per bundle file. */
export function bundleJson(b: Described): Record<string, unknown> {
  const s = b.snap;
  return {
    path: b.path,
    name: s.name,
    version: s.version,
    type: s.type,
    architectures: s.architectures,
    ...(s.base !== undefined ? { base: s.base } : {}),
    ...(s.summary !== undefined ? { summary: s.summary } : {}),
    apps: s.apps,
    size: b.size,
    'sha3-384': b.sha3_384,
  };
}

/** `key:  value` lines, values aligned; a row without a key continues the one above (apps). */
function printFields(io: Io, rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length)) + 3;
  io.out(rows.map(([k, v]) => `${(k ? `${k}:` : '').padEnd(w)}${v}`).join('\n'));
}

/** One line per app: name, command, and its daemon type when it is a service. */
function appLines(snap: SnapYaml): string[] {
  const names = Object.keys(snap.apps).sort();
  const w = Math.max(0, ...names.map((n) => n.length)) + 2;
  return names.map((n) => {
    const app = snap.apps[n]!;
    return `${n.padEnd(w)}${app.command ?? ''}${app.daemon ? `  (daemon: ${app.daemon})` : ''}`;
  });
}

export function packCommand(ctx: Context) {
  return {
    command: 'pack <dir>',
    describe: 'build a bundle (snap file) from a directory holding meta/snap.yaml; the same tree always gives the same bytes',
    builder: (y: Argv) =>
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'the bundle tree: meta/snap.yaml plus content' })
        .option('output', {
          alias: 'o',
          type: 'string',
          describe: 'the bundle file to write, or an existing directory to put NAME_VERSION_ARCH.snap in (default: that name in the current directory)',
        })
        .option('json', { type: 'boolean', describe: 'print path, snap.yaml fields, size and sha3-384 as JSON' })
        .example('$0 pack bundles/hello-kiosk', 'writes hello-kiosk_1.0_all.snap here')
        .example('$0 pack bundles/pc -o images/bundles/', 'into a directory, named from meta/snap.yaml')
        .example('$0 pack build/tree -o my.snap --json', 'a chosen name; JSON for scripts')
        .epilog(
          'meta/snap.yaml is checked first (errors name FILE:LINE:COL and the field). The squashfs is built with ' +
            'mksquashfs (xz, no fragments, as snapd) with every file owned by root, dated 1970-01-01, without xattrs, ' +
            'so it does not depend on who packs it or when; permission bits, symlinks and hard links are kept as in the tree. ' +
            'The file appears only when complete (atomic rename). ' +
            'sha3-384 is written as snapd writes it: base64url without padding.',
        ),
    handler: async (a: { dir: string; output?: string; json?: boolean }) => {
      const r = await pack(a.dir, { output: a.output });
      if (a.json) return printJson(ctx.io, bundleJson(r));
      printFields(ctx.io, [
        ['path', r.path],
        ['size', `${r.size} bytes`],
        ['sha3-384', r.sha3_384],
      ]);
    },
  };
}

export function bundleCommand(ctx: Context) {
  return {
    command: 'bundle <command>',
    describe: 'inspect bundle (snap) files',
    builder: (y: Argv) =>
      y
        .command(
          'info <file>',
          "show a bundle's meta/snap.yaml fields, size and sha3-384, read without mounting it",
          (c) =>
            c
              .positional('file', { type: 'string', demandOption: true, describe: 'a bundle (.snap) file' })
              .option('json', { type: 'boolean', describe: 'print a JSON object' })
              .example('$0 bundle info hello-kiosk_1.0_all.snap', 'name, version, type, architectures, apps, size, sha3-384')
              .example('$0 bundle info pc_0.1_amd64.snap --json', 'the same as JSON')
              .epilog('Reads meta/snap.yaml with unsquashfs -cat (squashfs-tools): no mounting, no root. Real .snap files work too.'),
          async (a) => {
            const info = await readBundleInfo(a.file);
            if (a.json) return printJson(ctx.io, bundleJson(info));
            const s = info.snap;
            const rows: [string, string][] = [
              ['name', s.name],
              ['version', s.version],
              ['type', s.type],
              ['architectures', s.architectures.join(', ')],
            ];
            if (s.base !== undefined) rows.push(['base', s.base]);
            if (s.summary !== undefined) rows.push(['summary', s.summary]);
            const apps = appLines(s);
            if (apps.length === 0) rows.push(['apps', 'none']);
            apps.forEach((line, i) => rows.push([i === 0 ? 'apps' : '', line]));
            rows.push(['path', info.path], ['size', `${info.size} bytes`], ['sha3-384', info.sha3_384]);
            printFields(ctx.io, rows);
          },
        )
        .demandCommand(1, 'name a bundle command: info')
        .example('$0 bundle info hello-kiosk_1.0_all.snap', 'what a bundle file holds'),
    handler: () => {},
  };
}
