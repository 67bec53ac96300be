import { bootPartitionOffset, inspectImage, readImageEnv, writeImageEnv } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import type { Context } from './common.js';

export function inspectCommand(ctx: Context) {
  return {
    command: 'inspect <image>',
    describe: 'show an image: partition table, filesystems, slot contents and model, boot environment (no root)',
    builder: (y: Argv) =>
      y
        .positional('image', { type: 'string', demandOption: true })
        .option('json', { type: 'boolean', describe: 'print everything as JSON' })
        .example('$0 inspect images/pc-amd64.img', ''),
    handler: async (a: { image: string; json?: boolean }) => {
      const r = await inspectImage(a.image);
      if (a.json) return printJson(ctx.io, r);
      const out = (l: string) => ctx.io.out(l);
      out(`${r.image}: ${r.table.kind.toUpperCase()}${r.table.diskGuid ? ` disk ${r.table.diskGuid}` : ''}${r.table.diskId !== undefined ? ` disk id ${r.table.diskId.toString(16).padStart(8, '0')}` : ''}`);
      for (const w of r.table.warnings) out(`  warning: ${w}`);
      for (const p of r.partitions) {
        out(`  ${String(p.index).padStart(2)} ${(p.name ?? '').padEnd(14)} ${String(p.start).padStart(11)} ${String(p.size).padStart(11)}  ${p.filesystem.type.padEnd(7)} ${p.filesystem.label ?? ''}`);
      }
      for (const s of r.slots) {
        if (s.empty) {
          out(`slot ${s.slot}: empty`);
          continue;
        }
        out(`slot ${s.slot}: model ${s.model!['brand-id']}/${s.model!.model} revision ${s.model!.revision}${s['test-keys'] ? '  [test keys: signed through the example root, whose private key is public; not for devices]' : ''}`);
        for (const b of s.bundles ?? []) out(`  ${b.name.padEnd(22)} ${b.type.padEnd(7)} revision ${b.revision}  ${b['sha3-384']}`);
        const boot = s['verified-boot'] ? `verified boot (${s['verified-boot'].kind === 'uefi' ? 'UEFI' : 'U-Boot FIT'}): ${s['verified-boot'].files.join(', ')}` : `kernel: ${(s.kernel ?? []).join(', ')}`;
        out(`  ${boot}; trust store: ${(s['trust-store'] ?? []).length} key(s)`);
      }
      if (r.bootEnvironment) {
        out(`boot environment (from ${r.bootEnvironment.from}${r.bootEnvironment.reason ? `: ${r.bootEnvironment.reason}` : ''}):`);
        for (const [k, v] of Object.entries(r.bootEnvironment.vars)) out(`  ${k}=${v}`);
      }
    },
  };
}

export function envCommand(ctx: Context) {
  return {
    command: 'env <command>',
    describe: "read or change an image's A/B boot environment offline (redundant, power-cut safe)",
    builder: (y: Argv) =>
      y
        .command(
          'get <image> [key]',
          'print KEY=VALUE lines (all variables, or one)',
          (c) => c.positional('image', { type: 'string', demandOption: true }).positional('key', { type: 'string' }).example('$0 env get images/pc-amd64.img edge_slot', 'edge_slot=a'),
          async (a) => {
            const env = await readImageEnv(a.image, bootPartitionOffset(a.image));
            if (a.key !== undefined) {
              if (!(a.key in env.vars)) throw new UsageError(`${a.image}: no variable ${a.key} in the boot environment (it has ${Object.keys(env.vars).join(', ')})`);
              ctx.io.out(`${a.key}=${env.vars[a.key]}`);
            } else ctx.io.out(Object.entries(env.vars).map(([k, v]) => `${k}=${v}`).join('\n'));
          },
        )
        .command(
          'set <image> <assignments..>',
          'set variables (KEY=VALUE; KEY= to empty), writing both copies in the redundant order',
          (c) =>
            c
              .positional('image', { type: 'string', demandOption: true })
              .positional('assignments', { type: 'string', array: true, demandOption: true })
              .example('$0 env set images/pc-amd64.img edge_try_slot=b edge_status=try', 'make the next boot try slot b'),
          async (a) => {
            const changes: Record<string, string> = {};
            for (const kv of a.assignments) {
              const i = kv.indexOf('=');
              if (i <= 0) throw new UsageError(`expected KEY=VALUE, found ${JSON.stringify(kv)}`);
              changes[kv.slice(0, i)] = kv.slice(i + 1);
            }
            const vars = await writeImageEnv(a.image, bootPartitionOffset(a.image), changes);
            ctx.io.out(Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n'));
          },
        )
        .demandCommand(1, 'name an env command: get or set')
        .example('$0 env get images/pc-amd64.img', ''),
    handler: () => {},
  };
}
