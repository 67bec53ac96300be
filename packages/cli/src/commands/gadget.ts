import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkABRoles, checkGadgetContent, GadgetError, layoutGadget, readGadget, unpackGadgetSnap, type GadgetInfo, type LaidOutVolume } from '@edgeimage/gadget';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import type { Context } from './common.js';

interface LoadedGadget {
  gadget: GadgetInfo;
  /** How the content paths were checked, for the summary. */
  content: string;
}

/**
 * PATH is read by @edgeimage/gadget's readGadget; an unpacked gadget has its content paths
 * checked too, and a gadget .snap is unpacked into a private temporary folder for that.
 */
async function loadGadget(path: string): Promise<LoadedGadget> {
  const { gadget, dir, snap } = await readGadget(path);
  if (dir) return { gadget, content: checkContent(gadget, dir) };
  if (!snap) return { gadget, content: 'not checked (a gadget.yaml without its gadget)' };
  const temp = mkdtempSync(join(tmpdir(), 'edgeimage-gadget-'));
  try {
    await unpackGadgetSnap(path, join(temp, 'root'));
    return { gadget, content: checkContent(gadget, join(temp, 'root')) };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

function checkContent(g: GadgetInfo, dir: string): string {
  checkGadgetContent(g, dir);
  const n = g.volumeOrder.reduce((sum, v) => sum + g.volumes[v]!.structures.reduce((k, s) => k + s.content.filter((c) => c.kind === 'image' || !c.source.startsWith('$kernel:')).length, 0), 0);
  return `${n} path${n === 1 ? '' : 's'} found inside the gadget`;
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
