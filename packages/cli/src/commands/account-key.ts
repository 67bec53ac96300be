import { accountKeyHeaders, POINTER_ONLY_CONSTRAINTS, signAssertion, writeAtomic } from '@edgeimage/assertions';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { keyringOption, openKeyring, parseTime, passphrase, type Context } from './common.js';

export function accountKeyCommand(ctx: Context) {
  return {
    command: 'account-key <name>',
    describe: "make an account-key assertion for key NAME's public key, signed by another key (or itself, for a root)",
    builder: (y: Argv) =>
      keyringOption(y)
        .positional('name', { type: 'string', demandOption: true, describe: 'the key to certify' })
        .option('account-id', { type: 'string', demandOption: true, describe: 'the account that owns key NAME' })
        .option('authority-id', { type: 'string', demandOption: true, describe: 'the account that vouches for it (signs)' })
        .option('key', { type: 'string', demandOption: true, describe: 'the signing key (of the authority)' })
        .option('since', { type: 'string', describe: 'start of validity (RFC 3339; default now)' })
        .option('until', { type: 'string', describe: 'end of validity (RFC 3339; default none)' })
        .option('revision', { type: 'number', describe: 'revision, to replace an earlier account-key' })
        .option('key-name', { type: 'string', describe: 'the "name" header (default NAME)' })
        .option('pointer-only', { type: 'boolean', default: false, describe: 'constrain the key to sign channel pointers only (constraints: type channel-pointer): it can sign no model or other assertion, so the model key can stay offline while this one re-signs the channel pointers of update release' })
        .option('output', { alias: 'o', type: 'string', describe: 'write here (atomically) instead of stdout' })
        .example('$0 account-key root --account-id acme --authority-id acme --key root -o root.account-key', 'a self-signed root of trust')
        .example('$0 account-key brand --account-id acme --authority-id acme --key root -o brand.account-key', 'the brand key, vouched for by the root')
        .example('$0 account-key pointer --account-id acme --authority-id acme --key root --pointer-only -o pointer.account-key', "the brand's channel-pointer key (update release --pointer-key pointer)"),
    handler: async (a: { name: string; accountId: string; authorityId: string; key: string; since?: string; until?: string; revision?: number; keyName?: string; pointerOnly?: boolean; output?: string; keyring?: string }) => {
      const ring = openKeyring(a.keyring);
      const signer = ring.load(a.key, passphrase());
      const { headers, body } = accountKeyHeaders(ring.publicKey(a.name), {
        accountId: a.accountId,
        authorityId: a.authorityId,
        name: a.keyName ?? a.name,
        since: parseTime(a.since, '--since'),
        until: parseTime(a.until, '--until'),
        revision: a.revision,
        ...(a.pointerOnly ? { constraints: POINTER_ONLY_CONSTRAINTS } : {}),
      });
      const assertion = signAssertion(headers, body, signer);
      if (a.output) {
        writeAtomic(resolve(a.output), assertion.encode(), 0o644);
        ctx.io.err(`account-key for "${a.name}" (${headers['public-key-sha3-384']}) of "${a.accountId}"${a.pointerOnly ? ' (channel pointers only)' : ''}, signed by "${a.key}" → ${a.output}`);
      } else {
        ctx.io.out(assertion.encode().toString('utf8'));
      }
    },
  };
}
