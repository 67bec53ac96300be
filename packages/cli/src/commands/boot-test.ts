import { writeFileSync } from 'node:fs';
import { ARCHES, bootTest, FIRMWARES, HEALTHY, jsonReport, junitReport, type Accel, type Arch, type Firmware } from '@edgeimage/qemu';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import type { Context } from './common.js';

interface BootTestArgs {
  image: string;
  arch?: Arch;
  firmware?: Firmware;
  expect?: string[];
  timeout: number;
  diskSize?: string;
  log?: string;
  junit?: string;
  accel: Accel;
  inPlace: boolean;
  firmwareDir?: string;
  ubootEnv?: string;
  json?: boolean;
}

function parseExpect(list: string[] | undefined): RegExp[] {
  if (!list?.length) return [HEALTHY];
  return list.map((s) => {
    try {
      return new RegExp(s);
    } catch (e) {
      throw new UsageError(`--expect: ${JSON.stringify(s)} is not a regular expression: ${(e as Error).message}`);
    }
  });
}

export function bootTestCommand(ctx: Context) {
  return {
    command: 'boot-test <image>',
    describe: 'boot an image under QEMU (from a copy) and wait for console markers, in order',
    builder: (y: Argv) =>
      y
        .positional('image', { type: 'string', demandOption: true, describe: 'the raw disk image (left unchanged unless --in-place)' })
        .option('arch', { choices: ARCHES, describe: "the guest architecture (default: the image model's; refused when they differ)" })
        .option('firmware', { choices: FIRMWARES, describe: 'default: uefi on amd64; on arm64 uboot for an MBR image, uefi for GPT' })
        .option('expect', { type: 'string', array: true, describe: 'a regular expression a console line must match, in order (repeatable; default: the health check\'s "edgeimage-health: healthy on slot ([ab])")' })
        .option('timeout', { type: 'number', default: 120, describe: 'seconds for the whole boot' })
        .option('disk-size', { type: 'string', describe: 'grow the disk first: +1G (by) or 3G (to); never shrinks' })
        .option('log', { type: 'string', describe: 'the console log, one line each with the seconds since QEMU started (default: a file in the temp folder)' })
        .option('junit', { type: 'string', describe: 'also write the result as JUnit XML (one testcase per marker)' })
        .option('accel', { choices: ['tcg', 'kvm'] as const, default: 'tcg' as Accel, describe: 'QEMU accelerator; KVM hangs on some hosts, so TCG is the default' })
        .option('in-place', { type: 'boolean', default: false, describe: 'boot the image itself: what the guest writes is kept (several boots in sequence)' })
        .option('firmware-dir', { type: 'string', describe: 'a folder holding the firmware files under their Debian names (default: $EDGEIMAGE_FIRMWARE_DIR, else /usr/share/OVMF, /usr/share/AAVMF, /usr/lib/u-boot/qemu_arm64)' })
        .option('uboot-env', { type: 'string', describe: 'U-Boot: an environment flash image for the second pflash (e.g. bootdelay=0)' })
        .option('json', { type: 'boolean', describe: 'print {passed, slot, markers: [{pattern, seconds}], log} (+ reason) as JSON' })
        .check((a) => {
          if (!(Number(a['timeout']) > 0)) throw new UsageError(`--timeout: expected a positive number of seconds, found ${String(a['timeout'])}`);
          return true;
        })
        .example('$0 boot-test images/pc-amd64.img', 'boot a copy until the health check reports healthy')
        .example("$0 boot-test images/pi-arm64.img --expect 'hello-kiosk .* up on slot a' --expect 'healthy on slot a' --timeout 180", 'two markers in order')
        .example('$0 boot-test images/pc-amd64.img --disk-size +1G --json --junit boot.xml', 'on a bigger disk; reports for CI')
        .epilog(
          [
            'QEMU per architecture and firmware (TCG, 512 MiB, -nodefaults, serial console on stdio, no NIC, an i6300esb watchdog that resets the machine):',
            '  amd64 uefi:  qemu-system-x86_64 -M q35, OVMF_CODE_4M.fd + a copy of OVMF_VARS_4M.fd (package ovmf)',
            '  arm64 uefi:  qemu-system-aarch64 -M virt -cpu cortex-a57, AAVMF_CODE.fd + a copy of AAVMF_VARS.fd (package qemu-efi-aarch64)',
            '  arm64 uboot: qemu-system-aarch64 -M virt -cpu cortex-a57 -bios u-boot.bin (package u-boot-qemu)',
            'A boot fails on a timeout, a kernel panic, "edgeimage-initramfs: FAILED", a GRUB error line, or QEMU exiting early; the log tail is printed. ' +
              'QEMU is always killed and the temporary copy removed, also on Ctrl-C. Exit status: 0 passed, 1 failed, 2 usage.',
          ].join('\n'),
        ),
    handler: async (a: BootTestArgs) => {
      const expect = parseExpect(a.expect);
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const r = await bootTest({
          image: a.image,
          arch: a.arch,
          firmware: a.firmware,
          firmwareDir: a.firmwareDir,
          ubootEnvFlash: a.ubootEnv,
          expect,
          timeoutSeconds: a.timeout,
          diskSize: a.diskSize,
          log: a.log,
          accel: a.accel,
          inPlace: a.inPlace,
          signal: abort.signal,
        });
        if (a.junit) writeFileSync(a.junit, junitReport(r));
        if (r.code === 'ERR_ABORTED') {
          ctx.io.err(`edgeimage: boot-test interrupted; QEMU stopped, temporary files removed (log: ${r.log}) [ERR_ABORTED]`);
          ctx.exitCode = 130;
          return;
        }
        if (!r.passed) ctx.exitCode = 1;
        if (a.json) return printJson(ctx.io, jsonReport(r));
        const what = `${r.arch} ${r.firmware}${a.inPlace ? ', in place' : ''}`;
        for (const m of r.markers) ctx.io.out(`[${m.seconds.toFixed(3).padStart(8)}] /${m.pattern}/  ${m.line}`);
        if (r.passed) {
          ctx.io.out(`boot-test ${a.image}: passed (${what})${r.slot ? `: slot ${r.slot}` : ''} in ${r.seconds.toFixed(1)} s; log ${r.log}`);
        } else {
          ctx.io.err(`--- last lines of ${r.log} ---\n${r.tail ?? ''}\n---`);
          ctx.io.err(`edgeimage: boot-test ${a.image} failed (${what}): ${r.reason} [${r.code}]`);
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}
