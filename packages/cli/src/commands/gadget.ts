import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EdgeimageError } from '@edgeimage/assertions';
import { checkABRoles, checkGadgetContent, GadgetError, layoutGadget, parseGadgetYaml, readGadgetYaml, type GadgetInfo, type LaidOutVolume } from '@edgeimage/gadget';
import { hostToolEnv } from '@edgeimage/host-tools';
import { execa } from 'execa';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import type { Context } from './common.js';

/** gadget.yaml files are small; anything larger is not one. */
const MAX_GADGET_YAML = 1024 * 1024;

interface LoadedGadget {
  gadget: GadgetInfo;
  /** How the content paths were checked, for the summary. */
  content: string;
}

/**
 * PATH is a gadget.yaml, a folder with meta/gadget.yaml (an unpacked gadget: its content paths
 * are checked too) or gadget.yaml, or a gadget .snap (read with `unsquashfs -cat`; unpacked into a
 * temporary folder to check its content paths).
 */
async function loadGadget(path: string): Promise<LoadedGadget> {
  const st = statSync(path);
  if (st.isDirectory()) {
    const meta = join(path, 'meta', 'gadget.yaml');
    if (existsSync(meta)) {
      const gadget = readGadgetYaml(meta);
      return { gadget, content: checkContent(gadget, path) };
    }
    const plain = join(path, 'gadget.yaml');
    if (existsSync(plain)) return { gadget: readGadgetYaml(plain), content: 'not checked (a gadget.yaml without its gadget)' };
    throw new EdgeimageError('ERR_GADGET_NOT_FOUND', `${path}: no meta/gadget.yaml or gadget.yaml in this folder`, { path });
  }
  if (isSquashfs(path)) return loadSnap(path);
  return { gadget: readGadgetYaml(path), content: 'not checked (a gadget.yaml without its gadget)' };
}

function checkContent(g: GadgetInfo, dir: string): string {
  checkGadgetContent(g, dir);
  const n = g.volumeOrder.reduce((sum, v) => sum + g.volumes[v]!.structures.reduce((k, s) => k + s.content.filter((c) => c.kind === 'image' || !c.source.startsWith('$kernel:')).length, 0), 0);
  return `${n} path${n === 1 ? '' : 's'} found inside the gadget`;
}

function isSquashfs(file: string): boolean {
  const b = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'hsqs';
  } finally {
    closeSync(fd);
  }
}

async function unsquashfs(args: string[]) {
  const r = await execa('unsquashfs', args, { reject: false, maxBuffer: MAX_GADGET_YAML, stripFinalNewline: false, env: hostToolEnv(), extendEnv: false });
  if (r.failed && r.code === 'ENOENT') {
    throw new EdgeimageError('ERR_HOST_TOOL', 'unsquashfs is not installed (not found on PATH); install the Debian package squashfs-tools (apt-get install squashfs-tools)', {
      tool: 'unsquashfs',
      package: 'squashfs-tools',
    });
  }
  return r;
}

async function loadSnap(file: string): Promise<LoadedGadget> {
  // An absolute path: a file named "-x.snap" must not read as an option.
  const abs = resolve(file);
  const r = await unsquashfs(['-cat', abs, 'meta/gadget.yaml']);
  if (r.failed) {
    const why = r.isMaxBuffer ? `meta/gadget.yaml is larger than ${MAX_GADGET_YAML} bytes` : /no matches for/i.test(r.stderr) ? 'it has no meta/gadget.yaml (not a gadget snap?)' : `unsquashfs failed: ${r.stderr.trim().split('\n').slice(-2).join('; ')}`;
    throw new EdgeimageError('ERR_GADGET_NOT_FOUND', `${file}: cannot read meta/gadget.yaml: ${why}`, { path: file });
  }
  const gadget = parseGadgetYaml(r.stdout, `${file}:meta/gadget.yaml`);
  // Unpack (as this user, into a private folder) to check the content paths against the files.
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-gadget-'));
  try {
    const x = await unsquashfs(['-no-xattrs', '-quiet', '-no-progress', '-f', '-d', join(dir, 'root'), abs]);
    if (x.failed) throw new EdgeimageError('ERR_GADGET_NOT_FOUND', `${file}: cannot unpack: ${x.stderr.trim().split('\n').slice(-2).join('; ')}`, { path: file });
    return { gadget, content: checkContent(gadget, join(dir, 'root')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const human = (n: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[i]}`;
};

/** The JSON of `gadget layout --json`: offsets and sizes in bytes; null when a structure has no name, role or filesystem. */
export function layoutJson(layouts: Record<string, LaidOutVolume>) {
  const volumes: Record<string, { name: string | null; role: string | null; type: string; offset: number; size: number; filesystem: string | null }[]> = {};
  for (const [name, v] of Object.entries(layouts)) {
    volumes[name] = v.structures.map((s) => ({
      name: s.name ?? null,
      role: s.role ?? null,
      type: s.type,
      offset: s.startOffset,
      size: s.size,
      filesystem: s.filesystem === 'none' ? null : s.filesystem,
    }));
  }
  return { volumes };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const right = new Set([4, 5]);
  return rows.map((r) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function warn(ctx: Context, layouts: Record<string, LaidOutVolume>): void {
  for (const v of Object.values(layouts)) for (const w of v.warnings ?? []) ctx.io.err(`edgeimage: warning: ${w}`);
}

export function gadgetCommand(ctx: Context) {
  return {
    command: 'gadget <command>',
    describe: 'check a gadget.yaml and show the disk layout it gives',
    builder: (y: Argv) =>
      y
        .command(
          'validate <path>',
          "check a gadget with snapd's rules and edgeimage's A/B roles; print a summary",
          (c) =>
            c
              .positional('path', { type: 'string', demandOption: true, describe: 'a gadget.yaml, a folder with meta/gadget.yaml (or gadget.yaml), or a gadget .snap' })
              .example('$0 gadget validate bundles/pc', 'an unpacked gadget: gadget.yaml and its content paths')
              .example('$0 gadget validate pc_0.1_amd64.snap', 'a gadget bundle (read with unsquashfs, no mounting)')
              .example('$0 gadget validate ../pc-gadget/gadget.yaml', 'a gadget.yaml on its own')
              .epilog(
                'Rules that need a model apply in `build`. A gadget without the A/B roles (system-boot, system-a, system-b, system-data) is valid, ' +
                  'and the summary says what `build` would want added. Errors name FILE:LINE:COL and the structure; see packages/gadget/README.md.',
              ),
          async (a) => {
            const { gadget: g, content } = await loadGadget(a.path);
            const layouts = layoutGadget(g);
            warn(ctx, layouts);
            const lines = [`valid: ${g.file}`];
            for (const name of g.volumeOrder) {
              const v = layouts[name]!;
              const parts = v.structures.filter((s) => s.partitionIndex !== undefined).length;
              lines.push(
                `volume ${name}: schema ${v.schema}${v.bootloader ? `, bootloader ${v.bootloader}` : ''}, ${v.structures.length} structure${v.structures.length === 1 ? '' : 's'} (${parts} partition${parts === 1 ? '' : 's'}), ` +
                  `needs ${v.minSize} bytes (${human(v.minSize)})`,
              );
            }
            try {
              const ab = checkABRoles(g);
              lines.push(`A/B roles: system-boot, system-a, system-b, system-data on volume ${ab.name}`);
            } catch (e) {
              if (!(e instanceof GadgetError) || e.code !== 'ERR_GADGET_NOT_AB') throw e;
              const why = e.message.startsWith(`${g.file}: `) ? e.message.slice(g.file.length + 2) : e.message;
              lines.push(`A/B roles: none; \`edgeimage build\` refuses this gadget: ${why}`);
            }
            lines.push(`content: ${content}`);
            ctx.io.out(lines.join('\n'));
          },
        )
        .command(
          'layout <path>',
          'print where every structure goes on the disk: offsets and sizes in bytes',
          (c) =>
            c
              .positional('path', { type: 'string', demandOption: true, describe: 'a gadget.yaml, a folder with meta/gadget.yaml (or gadget.yaml), or a gadget .snap' })
              .option('json', { type: 'boolean', describe: 'print {"volumes": {NAME: [{name, role, type, offset, size, filesystem}…]}} (null for no name, role or filesystem)' })
              .example('$0 gadget layout bundles/pc', 'a table: volume, structure, role, type, offset, size, filesystem')
              .example('$0 gadget layout pc_0.1_amd64.snap --json', 'the same as JSON, in disk order')
              .epilog(
                "Offsets follow snapd: a structure without an offset starts where the previous one ends, but not before 1 MiB (the mbr excepted). " +
                  'The disk needs at least "min size" bytes: the end of the last structure, plus 16896 bytes (33 sectors) for the backup GPT on gpt volumes.',
              ),
          async (a) => {
            const { gadget: g } = await loadGadget(a.path);
            const layouts = layoutGadget(g);
            warn(ctx, layouts);
            if (a.json) return printJson(ctx.io, layoutJson(layouts));
            const rows = [['VOLUME', 'STRUCTURE', 'ROLE', 'TYPE', 'OFFSET', 'SIZE', 'FILESYSTEM']];
            for (const name of g.volumeOrder) {
              for (const s of layouts[name]!.structures) {
                rows.push([name, s.name ?? `#${s.yamlIndex}`, s.role ?? '-', s.type, String(s.startOffset), String(s.size), s.filesystem === 'none' ? '-' : s.filesystem]);
              }
            }
            const footer = g.volumeOrder.map((name) => {
              const v = layouts[name]!;
              return `volume ${name}: min size ${v.minSize} bytes (${human(v.minSize)})${v.schema === 'gpt' ? ', with the backup GPT' : ''}`;
            });
            ctx.io.out(`${table(rows)}\n\n${footer.join('\n')}`);
          },
        )
        .demandCommand(1, 'name a gadget command: validate or layout')
        .example('$0 gadget validate bundles/pc', 'check the example pc gadget')
        .example('$0 gadget layout bundles/pc --json', 'its layout as JSON'),
    handler: () => {},
  };
}
