import yargs from 'yargs';
import { accountKeyCommand } from './commands/account-key.js';
import { baseCommand } from './commands/base.js';
import { buildCommand } from './commands/build.js';
import { channelCommand } from './commands/channel.js';
import { bootTestCommand } from './commands/boot-test.js';
import { bootKeysCommand } from './commands/boot-keys.js';
import { envCommand, inspectCommand } from './commands/image.js';
import type { Context } from './commands/common.js';
import { decodeCommand } from './commands/decode.js';
import { doctorCommand } from './commands/doctor.js';
import { gadgetCommand } from './commands/gadget.js';
import { initramfsCommand } from './commands/initramfs.js';
import { keyCommand } from './commands/key.js';
import { bundleCommand, packCommand } from './commands/pack.js';
import { resolveCommand } from './commands/resolve.js';
import { signCommand } from './commands/sign.js';
import { storeCommand } from './commands/store.js';
import { updateCommand } from './commands/update.js';
import { verifyCommand } from './commands/verify.js';
import { EXIT_USAGE, processIo, reportError, UsageError, type Io } from './output.js';

/**
 * Runs the `edgeimage` command line and returns the exit status; never calls process.exit, so
 * tests can run it in-process.
 *
 * ```ts
 * const status = await main(['verify', 'model.assert'], io);
 * ```
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const ctx: Context = { io, exitCode: 0 };
  const cli = yargs(argv)
    .scriptName('edgeimage')
    .usage('$0 <command> [options]\n\nBuild signed, A/B-updatable disk images for edge devices.')
    .command(keyCommand(ctx))
    .command(bootKeysCommand(ctx))
    .command(signCommand(ctx))
    .command(accountKeyCommand(ctx))
    .command(verifyCommand(ctx))
    .command(decodeCommand(ctx))
    .command(packCommand(ctx))
    .command(bundleCommand(ctx))
    .command(storeCommand(ctx))
    .command(resolveCommand(ctx))
    .command(buildCommand(ctx))
    .command(updateCommand(ctx))
    .command(channelCommand(ctx))
    .command(inspectCommand(ctx))
    .command(envCommand(ctx))
    .command(gadgetCommand(ctx))
    .command(initramfsCommand(ctx))
    .command(baseCommand(ctx))
    .command(doctorCommand(ctx))
    .command(bootTestCommand(ctx))
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .example('$0 key create brand', 'make a signing key')
    .example('$0 sign models/pc-amd64.yaml --key brand -o pc-amd64.model', 'sign a model')
    .example('$0 verify pc-amd64.model --trusted root.account-key', 'check it through its chain')
    .epilog('Every command has --help with examples. Errors end with a [CODE] scripts can match.')
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  try {
    let output = '';
    await cli.parseAsync(argv, {}, (_err, _args, out) => {
      output = out;
    });
    if (output) {
      // Help and version text go to stdout; yargs' own usage errors are raised through fail().
      io.out(output);
    }
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof UsageError) return reportError(io, e);
    const status = reportError(io, e);
    return status === EXIT_USAGE ? EXIT_USAGE : status;
  }
}
