import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOARD_MODULES, buildInitramfs, runTool } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import type { Context } from './common.js';

interface Args {
  kernel: string;
  arch: string;
  busybox?: string;
  module?: string[];
  add?: string;
  output: string;
  json?: boolean;
}

/** The one lib/modules/<version> of an extracted kernel package. */
function kernelVersion(tree: string, kernel: string): string {
  const dir = join(tree, 'lib/modules');
  const versions = existsSync(dir) ? readdirSync(dir) : [];
  if (versions.length !== 1) {
    throw new UsageError(`${kernel}: expected one kernel version under lib/modules, found ${versions.length ? versions.join(', ') : 'none'}`);
  }
  return versions[0]!;
}

export function initramfsCommand(ctx: Context) {
  return {
    command: 'initramfs',
    describe: "build a device's initramfs (busybox based; no root needed): loads the board's modules in dependency order, finds the slot, mounts the base read-only as root, data and apps, and switches root",
    builder: (y: Argv) =>
      y
        .option('kernel', { type: 'string', demandOption: true, describe: 'a Debian linux-image .deb, or the folder it was extracted to (dpkg-deb -x)' })
        .option('arch', { type: 'string', demandOption: true, choices: Object.keys(BOARD_MODULES), describe: "the device's Debian architecture" })
        .option('busybox', { type: 'string', describe: "a static busybox for the device's architecture (default: /bin/busybox when that is the host's)" })
        .option('module', { type: 'string', array: true, describe: "a module to load (repeatable; default: the reference boards' list for the architecture; dependencies are added)" })
        .option('add', { type: 'string', describe: "a folder whose files are added to the initramfs as they are: Debian's dmsetup of the architecture with its libraries and loader, which a verified slot's boot needs (bundles/debian-kernel/assemble makes it)" })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the gzip-compressed cpio to write' })
        .option('json', { type: 'boolean', describe: 'print what was built as JSON' })
        .example('$0 initramfs --kernel linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb --arch amd64 -o initrd.img', '')
        .example('$0 initramfs --kernel kernel-tree/ --arch arm64 --busybox busybox-arm64/bin/busybox -o initrd.img', '')
        .example('$0 initramfs --kernel kernel-tree/ --arch amd64 --add dmsetup-tree/ -o initrd.img', 'with dmsetup for verified boots')
        .epilog('The same inputs give the same bytes. On the device, every failure prints "edgeimage-initramfs: FAILED: <reason>" and reboots: it never drops to a shell.'),
    handler: async (a: Args) => {
      const busybox = a.busybox ?? (a.arch === ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ? '/bin/busybox' : undefined);
      if (!busybox) throw new UsageError(`--busybox: a static busybox for ${a.arch} is needed (Debian package busybox-static:${a.arch}); the host's runs on ${process.arch}`);
      if (!existsSync(busybox)) throw new UsageError(`--busybox: ${busybox} does not exist (Debian package busybox-static)`);
      if (!existsSync(a.kernel)) throw new UsageError(`--kernel: ${a.kernel} does not exist`);
      if (a.add !== undefined && !statSync(a.add, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--add: ${a.add} is not a folder`);
      let tree = a.kernel;
      let temp: string | undefined;
      try {
        if (a.kernel.endsWith('.deb')) {
          temp = mkdtempSync(join(tmpdir(), 'edgeimage-kernel-'));
          await runTool('dpkg-deb', ['-x', a.kernel, temp]);
          tree = temp;
        }
        const version = kernelVersion(tree, a.kernel);
        const r = await buildInitramfs({ kernelTree: tree, version, arch: a.arch, modules: a.module ?? BOARD_MODULES[a.arch]!, busybox, ...(a.add === undefined ? {} : { extraTree: a.add }), output: a.output });
        const summary = { output: r.output, kernel: version, arch: a.arch, modules: r.modules.map((m) => m.name), builtin: r.builtin, applets: r.applets.length };
        if (a.json) printJson(ctx.io, summary);
        else ctx.io.out(`${r.output}: initramfs for ${version} (${a.arch}), ${r.modules.length} modules (${r.modules.map((m) => m.name).join(' ')})${r.builtin.length ? `, built in: ${r.builtin.join(' ')}` : ''}`);
      } finally {
        if (temp) rmSync(temp, { recursive: true, force: true });
      }
    },
  };
}
