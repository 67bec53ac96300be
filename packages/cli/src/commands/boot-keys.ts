import { BootKeys, type BootKeySet } from '@edgeimage/assertions';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { keyringOption, openKeyring, passphrase, type Context } from './common.js';

function bootKeys(keyring: string | undefined): BootKeys {
  return new BootKeys(openKeyring(keyring).dir);
}

function describeSet(set: BootKeySet): string {
  const head = `boot keys of brand "${set.brand}" in ${set.dir}\nEFI signature owner: ${set.owner}\nFIT key name: ${set.fitKeyName}`;
  const rows = set.keys.map(
    (k) => `${k.role.padEnd(4)} ${k.subject}\n     RSA-${k.bits}${k.encrypted ? ', encrypted' : ''}, not after ${k.notAfter}\n     SHA-256 ${k.fingerprint}`,
  );
  return [head, ...rows].join('\n');
}

/** Named on stderr, so a set that may be the only copy of enrolled keys is not forgotten. */
function warnLeftovers(ctx: Context, set: BootKeySet): void {
  for (const l of set.leftovers) {
    ctx.io.err(`edgeimage: warning: ${l} is left from an interrupted (or still running) create or rotation and may hold private keys: keep it as boot.retired-<date> if devices are enrolled with it, otherwise delete it`);
  }
}

export function bootKeysCommand(ctx: Context) {
  return {
    command: 'boot-keys <command>',
    describe: "create, show and export the brand's boot keys (UEFI Secure Boot PK, KEK, db; U-Boot FIT key)",
    builder: (y: Argv) =>
      y
        .command(
          'create',
          'make the boot keys in <keyring>/boot/: RSA-2048 keys (mode 0600; encrypted when $EDGEIMAGE_KEY_PASSPHRASE is set) with self-signed certificates',
          (c) =>
            keyringOption(c)
              .option('brand', { type: 'string', demandOption: true, describe: "the model's brand-id (names the certificates and the FIT key <brand>-fit)" })
              .option('force', { type: 'boolean', default: false, describe: 'replace an existing set (rotation: devices enrolled with the old keys no longer boot new images); the old set is kept as <keyring>/boot.retired-<UTC time>' })
              .example('$0 boot-keys create --brand acme', 'PK, KEK, db and acme-fit in signing-keys/boot/')
              .example('EDGEIMAGE_KEY_PASSPHRASE=... $0 boot-keys create --brand acme --keyring /secure/keys', 'encrypted keys elsewhere')
              .example('$0 boot-keys create --brand acme --force', 'rotate: a whole new set is put in use, the old one kept in boot.retired-<UTC time>'),
          async (a) => {
            const boot = bootKeys(a.keyring);
            const set = await boot.create(a.brand, { force: a.force, passphrase: passphrase() });
            ctx.io.out(`created boot keys (PK, KEK, db, ${set.fitKeyName}) in ${set.dir}\n${describeSet(set)}\nexport them for the factory with "edgeimage boot-keys export DIR"`);
            if (set.retired) {
              ctx.io.out(
                `the old set is kept in ${set.retired} (mode 0700, keys 0600): devices in the field still trust its PK and KEK, so the updates that enrol the new keys must be signed with it (new PK and KEK with its pk.key, new db with its kek.key), e.g. "sign-efi-sig-list -k ${set.retired}/pk.key -c ${set.retired}/pk.crt KEK KEK.esl KEK.auth" (efitools); do not delete it while such devices exist`,
              );
            }
            warnLeftovers(ctx, set);
          },
        )
        .command(
          'export <dir>',
          'write what a factory enrols: certificates (.cer DER, .crt PEM), EFI signature lists (.esl), the FIT certificate and README.txt; never a private key',
          (c) =>
            keyringOption(c)
              .positional('dir', { type: 'string', demandOption: true, describe: 'a new (or empty) folder' })
              .example('$0 boot-keys export factory/acme', 'PK.esl KEK.esl db.esl … for the firmware, acme-fit.crt for U-Boot'),
          (a) => {
            const r = bootKeys(a.keyring).export(a.dir);
            ctx.io.out(`exported ${r.files.length} files to ${r.dir}: ${r.files.join(' ')}`);
          },
        )
        .command(
          'show',
          'print the boot keys: subjects, SHA-256 fingerprints, key sizes, expiry (no passphrase needed)',
          (c) => keyringOption(c).option('json', { type: 'boolean', describe: 'print JSON' }).example('$0 boot-keys show --json', ''),
          (a) => {
            const set = bootKeys(a.keyring).show();
            warnLeftovers(ctx, set);
            if (a.json) return printJson(ctx.io, set);
            ctx.io.out(describeSet(set));
          },
        )
        .demandCommand(1, 'name a boot-keys command: create, show or export')
        .example('$0 boot-keys create --brand acme', 'make the keys')
        .example('$0 boot-keys export factory/acme', 'the files to enrol in the firmware'),
    handler: () => {},
  };
}
