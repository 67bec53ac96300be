/**
 * Runs a host tool without a shell: argv as given, stdin empty (a tool that would prompt gets
 * end-of-file instead of hanging), output captured and bounded. A missing tool is a
 * {@link HostToolMissingError} naming its Debian package.
 */
import { spawn } from 'node:child_process';
import { HostToolMissingError } from './table.js';

export interface ToolResult {
  /** Exit status, or null when a signal ended the tool. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** The last 64 KiB of stderr. */
  stderr: string;
  /** Stdout went over `maxStdout`: the tool was stopped and `stdout` holds the first bytes only. */
  overflow: boolean;
}

export interface ToolOptions {
  /** Stop the tool once it has written more than this to stdout (default 16 MiB). */
  maxStdout?: number;
  /** Variables to set (a string) or remove (undefined) on top of {@link hostToolEnv}. */
  env?: Record<string, string | undefined>;
}

/**
 * The whole environment of a host tool: nothing of this process's is inherited but `PATH` (with
 * the sbin directories, where Debian keeps mkfs.* and debugfs, often missing from a build user's
 * PATH), so a secret in the build's environment (`EDGEIMAGE_KEY_PASSPHRASE`, tokens) never
 * reaches a child, and the locale, time zone and home of the build user cannot change a tool's
 * output (`HOME=/nonexistent` keeps a user's ~/.mtoolsrc out). Timestamps are given as options,
 * never through SOURCE_DATE_EPOCH.
 */
export function hostToolEnv(extra: Record<string, string> = {}): Record<string, string> {
  // (absolute entries only: a `.` or relative entry would find a tool in the build's working folder)
  const path = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => d.startsWith('/'));
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!path.includes(dir)) path.push(dir);
  return { PATH: path.join(':'), LANG: 'C', LC_ALL: 'C', TZ: 'UTC', HOME: '/nonexistent', ...extra };
}

const STDERR_KEEP = 64 * 1024;

/**
 * @example
 * const r = await runTool('unsquashfs', ['-cat', '/abs/x.snap', 'meta/snap.yaml'], { maxStdout: 1 << 20 });
 * if (r.exitCode === 0) r.stdout.toString('utf8');
 */
export function runTool(tool: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const maxStdout = opts.maxStdout ?? 16 * 1024 * 1024;
  const env: NodeJS.ProcessEnv = hostToolEnv();
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env, shell: false });
    const out: Buffer[] = [];
    let outBytes = 0;
    let overflow = false;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      if (overflow) return;
      outBytes += b.length;
      if (outBytes > maxStdout) {
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      out.push(b);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_KEEP);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new HostToolMissingError(tool) : e);
    });
    child.on('close', (exitCode, signal) => {
      resolve({ exitCode, signal, stdout: Buffer.concat(out), stderr, overflow });
    });
  });
}

/** The last non-empty lines of a tool's stderr, for an error message. */
export function stderrTail(stderr: string, lines = 3): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join('; ');
}
