import { spawn, spawnSync } from 'node:child_process';

export const QEMU = 'qemu-system-x86_64';
export const hasQemu = spawnSync(QEMU, ['--version']).status === 0;
/** Why the direct boots cannot run here, or undefined. */
export const missingQemu = hasQemu ? undefined : `${QEMU} is not installed (Debian package qemu-system-x86)`;

export interface Boot { output: string; code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; seconds: number }

/** Runs QEMU to its exit (or the timeout); QEMU is always killed in `finally`. */
export async function bootQemu(args: string[], timeoutMs: number): Promise<Boot> {
  const start = Date.now();
  const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => { output += b.toString('utf8'); });
  child.stderr.on('data', (b: Buffer) => { output += b.toString('utf8'); });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Boot>((resolve, reject) => {
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
