import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { keyringOption, openKeyring, passphrase, type Context } from './common.js';

export function keyCommand(ctx: Context) {
  return {
    command: 'key <command>',
    describe: 'create, list, export and delete signing keys',
    builder: (y: Argv) =>
      y
        .command(
          'create <name>',
          'generate an RSA signing key (PKCS#8 PEM, mode 0600; encrypted when $EDGEIMAGE_KEY_PASSPHRASE is set)',
          (c) =>
            keyringOption(c)
              .positional('name', { type: 'string', demandOption: true, describe: 'key name: lower-case letters, digits, dashes' })
              .option('bits', { type: 'number', default: 4096, describe: 'RSA modulus size (snapd requires 4096 to sign)' })
              .example('$0 key create brand', 'a 4096-bit key in signing-keys/brand.key')
              .example('EDGEIMAGE_KEY_PASSPHRASE=... $0 key create store --keyring /secure/keys', 'an encrypted key elsewhere'),
          async (a) => {
            const ring = openKeyring(a.keyring);
            const info = await ring.create(a.name, { bits: a.bits, passphrase: passphrase() });
            ctx.io.out(`created key "${info.name}" (RSA-${info.bits}${info.encrypted ? ', encrypted' : ''}) in ${ring.dir}\nkey id: ${info.keyId}`);
          },
        )
        .command(
          'list',
          'list the keys of a keyring with their key ids',
          (c) => keyringOption(c).option('json', { type: 'boolean', describe: 'print a JSON array' }).example('$0 key list --json', ''),
          (a) => {
            const ring = openKeyring(a.keyring);
            const keys = ring.list();
            if (a.json) return printJson(ctx.io, keys.map((k) => ({ name: k.name, 'key-id': k.keyId, bits: k.bits, encrypted: k.encrypted })));
            if (keys.length === 0) return ctx.io.out(`no keys in ${ring.dir} (create one with "edgeimage key create NAME")`);
            ctx.io.out(keys.map((k) => `${k.name.padEnd(20)} ${k.keyId}  RSA-${k.bits}${k.encrypted ? ' encrypted' : ''}`).join('\n'));
          },
        )
        .command(
          'export <name>',
          'print the public key as PEM (for device trust stores)',
          (c) => keyringOption(c).positional('name', { type: 'string', demandOption: true }).example('$0 key export brand > brand.pub.pem', ''),
          (a) => {
            ctx.io.out(openKeyring(a.keyring).publicKey(a.name).toPem());
          },
        )
        .command(
          'delete <name>',
          'delete a key (both its private and public files)',
          (c) => keyringOption(c).positional('name', { type: 'string', demandOption: true }).example('$0 key delete old-brand', ''),
          (a) => {
            const ring = openKeyring(a.keyring);
            ring.delete(a.name);
            ctx.io.out(`deleted key "${a.name}" from ${ring.dir}`);
          },
        )
        .demandCommand(1, 'name a key command: create, list, export or delete')
        .example('$0 key create brand', 'make a signing key')
        .example('$0 key list', 'show the keys and their ids'),
    handler: () => {},
  };
}
