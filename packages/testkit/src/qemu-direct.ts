import { spawn, spawnSync } from 'node:child_process';

export const QEMU = 'qemu-system-x86_64';
export const hasQemu = spawnSync(QEMU, ['--version']).status === 0;
/** Why the direct boots cannot run here, or undefined. */
export const missingQemu = hasQemu ? undefined : `${QEMU} is not installed (Debian package qemu-system-x86)`;

export interface Boot { output: string; code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; seconds: number }

/**
 * Runs QEMU to its exit (or the timeout, or until the output matches `until`: a guest that never
 * powers off); QEMU is always killed in `finally`.
 */
export async function bootQemu(args: string[], timeoutMs: number, until?: RegExp): Promise<Boot> {
  const start = Date.now();
  const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Boot>((resolve, reject) => {
      const add = (b: Buffer): void => {
        output += b.toString('utf8');
        if (until?.test(output)) resolve({ output, code: null, signal: null, timedOut: false, seconds: (Date.now() - start) / 1000 });
      };
      child.stdout.on('data', add);
      child.stderr.on('data', add);
      timer = setTimeout(() => resolve({ output, code: null, signal: null, timedOut: true, seconds: (Date.now() - start) / 1000 }), timeoutMs);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        // let the pipes drain
        setImmediate(() => resolve({ output, code, signal, timedOut: false, seconds: (Date.now() - start) / 1000 }));
      });
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The QEMU arguments of the -kernel/-initrd boots (x86_64 q35, TCG, serial console on stdio). */
export const directBootArgs = (vmlinuz: string, initrd: string, append: string, disk: string): string[] => [
  '-accel', 'tcg', '-M', 'q35', '-m', '512', '-nodefaults', '-nographic', '-serial', 'stdio', '-nic', 'none', '-no-reboot',
  '-kernel', vmlinuz, '-initrd', initrd, '-append', append,
  '-drive', `file=${disk},format=raw,if=virtio`,
];
