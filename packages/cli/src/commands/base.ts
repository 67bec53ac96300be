import { BASE_ARCHITECTURES, buildBase, formatLockChanges, removeBaseInProgress, type BaseArch, type BuildStage } from '@edgeimage/base';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { cleanOnInterrupt, type Context } from './common.js';

interface BuildArgs {
  yaml: string;
  output?: string;
  arch?: BaseArch;
  update?: boolean;
  lock?: string;
  json?: boolean;
}

const STAGE_NAMES: Record<BuildStage, string> = { lock: 'lock', fetch: 'fetch', rootfs: 'rootfs', squashfs: 'squashfs' };

function buildCommand(ctx: Context) {
  return {
    command: 'build <yaml>',
    describe: 'build a base bundle (a snap of type base) from BASE.yaml: Debian packages installed by mmdebstrap, pinned by a lock',
    builder: (y: Argv) =>
      y
        .positional('yaml', { type: 'string', demandOption: true, describe: 'the BASE.yaml: suite, architecture, packages, files, users, groups, services, hostname, writable-paths' })
        .option('output', { alias: 'o', type: 'string', describe: 'the bundle to write (default: NAME_VERSION_ARCH.snap next to BASE.yaml)' })
        .option('arch', { type: 'string', choices: BASE_ARCHITECTURES, describe: "the device's architecture (default: BASE.yaml's architecture); arm64 on an amd64 host runs the packages' scripts through qemu-user-static and binfmt_misc" })
        .option('update', { type: 'boolean', describe: 'lock the archive\'s current versions again (a new or changed package list needs it) and print what changed' })
        .option('lock', { type: 'string', describe: "the lock file (default: BASE.lock next to BASE.yaml for BASE.yaml's architecture, BASE.ARCH.lock for another)" })
        .option('json', { type: 'boolean', describe: 'print the result as JSON' })
        .example('$0 base build bundles/robot-base/BASE.yaml', 'the amd64 robot base, from bundles/robot-base/BASE.lock')
        .example('$0 base build bundles/robot-base/BASE.yaml --arch arm64 -o robot-base_arm64.snap', 'the same base for arm64 boards (BASE.arm64.lock)')
        .example('$0 base build bundles/robot-base/BASE.yaml --update', 'refresh the lock to the archive of today and print the changes')
        .epilog(
          [
            'The lock (BASE.lock, JSON) lists every package of the base with its exact version, architecture, size and sha256, and the SOURCE_DATE_EPOCH of the build. ' +
              'The first build (no lock) resolves the packages against the Debian archive and writes it; every later build installs exactly the locked .deb files, offline, ' +
              'so the same lock gives the same bundle bytes. Commit the lock next to BASE.yaml.',
            'The .deb files are kept in $EDGEIMAGE_CACHE/debs/pool/SHA256.deb (default ~/.cache/edgeimage), checked on every read. ' +
              "Debian's archive keeps only the current version of a package: a locked version that is neither in the cache nor in the archive any more is an error " +
              '(ERR_BASE_LOCK_UNAVAILABLE) naming it; --update then locks the current versions and prints what changed. A lock made for another package list is stale (ERR_BASE_LOCK_STALE) until --update.',
            'Needs mmdebstrap, tar2sqfs (squashfs-tools-ng), and for a foreign architecture qemu-user-static with binfmt_misc: ./scripts/setup installs and enables them.',
          ].join('\n\n'),
        ),
    handler: async (a: BuildArgs) =>
      cleanOnInterrupt(async () => {
        const r = await buildBase({
          yamlPath: a.yaml,
          ...(a.arch === undefined ? {} : { arch: a.arch }),
          ...(a.output === undefined ? {} : { out: a.output }),
          ...(a.lock === undefined ? {} : { lockPath: a.lock }),
          update: a.update ?? false,
          onStage: (stage, detail) => {
            if (!a.json) ctx.io.err(`[base] ${STAGE_NAMES[stage]}: ${detail}`);
          },
        });
        const changes = formatLockChanges(r.changes);
        if (a.json) {
          printJson(ctx.io, { path: r.path, size: r.size, 'sha3-384': r.sha3_384, architecture: r.arch, lock: r.lockPath, 'lock-written': r.lockWritten, 'lock-created': r.lockCreated, packages: r.lock.packages.length, 'source-date-epoch': r.lock['source-date-epoch'], changes: r.changes, fetched: r.fetched, seconds: r.seconds });
          return;
        }
        if (r.lockCreated) ctx.io.out(`${r.lockPath}: new lock of ${r.lock.packages.length} packages (commit it next to ${a.yaml})`);
        else if (r.lockWritten) {
          ctx.io.out(`${r.lockPath}: ${changes.length} change${changes.length === 1 ? '' : 's'}${changes.length ? ':' : ''}`);
          for (const line of changes) ctx.io.out(`  ${line}`);
        } else if (a.update) ctx.io.out(`${r.lockPath}: up to date with the archive, unchanged`);
        if (r.fetched.length) ctx.io.out(`fetched from the archive into the cache: ${r.fetched.join(', ')}`);
        ctx.io.out(`${r.path}: base ${r.arch}, ${r.lock.packages.length} packages, ${r.size} bytes, sha3-384 ${r.sha3_384}`);
      }, removeBaseInProgress),
  };
}

export function baseCommand(ctx: Context) {
  return {
    command: 'base <command>',
    describe: 'base bundles built from Debian packages (base build)',
    builder: (y: Argv) => y.command(buildCommand(ctx)).demandCommand(1, 'name a base command: build'),
    handler: () => {},
  };
}
