import { signAssertion, writeAtomic } from '@edgeimage/assertions';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { readHeadersFile } from '../headers-file.js';
import { keyringOption, openKeyring, passphrase, type Context } from './common.js';

export function signCommand(ctx: Context) {
  return {
    command: 'sign <headers-file>',
    describe: "sign headers (YAML or JSON) into an assertion in snapd's format",
    builder: (y: Argv) =>
      keyringOption(y)
        .positional('headers-file', { type: 'string', demandOption: true, describe: 'YAML/JSON map of headers (strings, lists, maps); optional "body"' })
        .option('key', { type: 'string', demandOption: true, describe: 'name of the signing key in the keyring' })
        .option('output', { alias: 'o', type: 'string', describe: 'write here (atomically) instead of stdout' })
        .example('$0 sign models/pc-amd64.yaml --key brand -o pc-amd64.model', 'sign a model')
        .epilog('sign-key-sha3-384 is filled from the key, and timestamp with the current time when the type has one and it is absent. Headers are written in snapd\'s order.'),
    handler: async (a: { headersFile: string; key: string; output?: string; keyring?: string }) => {
      const { headers, body } = readHeadersFile(a.headersFile);
      const key = openKeyring(a.keyring).load(a.key, passphrase());
      const assertion = signAssertion(headers, body, key, { file: a.headersFile });
      if (a.output) {
        writeAtomic(resolve(a.output), assertion.encode(), 0o644);
        ctx.io.err(`signed ${assertion.type} with key "${a.key}" (${key.publicKey.id}) → ${a.output}`);
      } else {
        ctx.io.out(assertion.encode().toString('utf8'));
      }
    },
  };
}
