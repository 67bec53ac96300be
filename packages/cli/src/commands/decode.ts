import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { readAssertions, type Context } from './common.js';

export function decodeCommand(ctx: Context) {
  return {
    command: 'decode <files..>',
    describe: 'print assertions as JSON: exact header values and body (no signature check)',
    builder: (y: Argv) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true })
        .option('json', { type: 'boolean', default: true, describe: 'JSON output (the only form)' })
        .example('$0 decode model.assert --json | jq -r ".[0].headers.model"', ''),
    handler: (a: { files: string[] }) => {
      const all = a.files.flatMap(readAssertions);
      printJson(
        ctx.io,
        all.map((x) => (x.body ? { headers: x.headers, body: x.body.toString('utf8') } : { headers: x.headers })),
      );
    },
  };
}
