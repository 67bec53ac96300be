/**
 * Runs a host tool like @edgeimage/host-tools' runTool (no shell, the minimal environment of
 * hostToolEnv, stderr tail kept, a missing tool named by its Debian package), plus a working
 * folder and a file as stdin, which apt-get download and tar2sqfs need.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { HostToolMissingError, hostToolEnv } from '@edgeimage/host-tools';

export interface ExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const KEEP = 256 * 1024;

export function exec(tool: string, args: readonly string[], opts: { cwd?: string; stdinFile?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const stdin = opts.stdinFile === undefined ? 'ignore' : openSync(opts.stdinFile, 'r');
    const child = spawn(tool, args, { cwd: opts.cwd, stdio: [stdin, 'pipe', 'pipe'], env: hostToolEnv(opts.env ?? {}), shell: false });
    if (typeof stdin === 'number') closeSync(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      stdout = (stdout + s).slice(-KEEP);
    });
    child.stderr!.on('data', (s: string) => {
      stderr = (stderr + s).slice(-KEEP);
    });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new HostToolMissingError(tool) : e));
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
  });
}

/** The last lines of a tool's stderr that say something (apt's E: lines first). */
export function tail(stderr: string, lines = 4): string {
  const all = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = all.filter((l) => /^E: /.test(l));
  return (errors.length ? errors : all).slice(-lines).join('; ');
}
