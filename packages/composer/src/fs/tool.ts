import { hostToolEnv, runTool as runHostTool } from '@edgeimage/host-tools';
import { ComposeError } from '../errors.js';

export interface ToolResult {
  /** Exit status; always 0 unless `check: false`. */
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface ToolOptions {
  /** Variables set on top of the fixed tool environment ({@link toolEnv}). */
  env?: Record<string, string>;
  /** Throw ERR_TOOL_FAILED on a non-zero exit (default). With `false` the caller reads `code`. */
  check?: boolean;
}

/**
 * The environment every composer tool runs in: the fixed host-tool environment (nothing inherited
 * but PATH, `HOME=/nonexistent` keeping a user's `~/.mtoolsrc` out), with a UTF-8 locale for FAT
 * long names, and `MTOOLS_*` settings pinning what `/etc/mtools.conf` could change.
 */
export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  return hostToolEnv({
    LC_ALL: 'C.UTF-8',
    MTOOLS_SKIP_CHECK: '0',
    MTOOLS_LOWER_CASE: '0',
    MTOOLS_NO_VFAT: '0',
    MTOOLS_NAME_NUMERIC_TAIL: '1',
    MTOOLS_FAT_COMPATIBILITY: '0',
    ...extra,
  });
}

/** Images and filesystem listings the composer reads through a tool's stdout stay below this. */
const MAX_STDOUT = 256 * 1024 * 1024;

/**
 * Runs a host tool (the one runTool of @edgeimage/host-tools) in {@link toolEnv}; a non-zero exit
 * is ERR_TOOL_FAILED unless `check: false`. A missing tool is `ERR_HOST_TOOL`, naming the tool
 * and its Debian package.
 *
 * @example
 * const { stdout } = await runTool('dumpe2fs', ['-h', 'slot.img']);
 */
export async function runTool(tool: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const r = await runHostTool(tool, args, { env: toolEnv(opts.env), maxStdout: MAX_STDOUT });
  if (r.exitCode === 0 && !r.overflow) return { code: 0, stdout: r.stdout, stderr: r.stderr };
  const code = r.exitCode ?? -1;
  if (opts.check === false && code >= 0 && !r.overflow) return { code, stdout: r.stdout, stderr: r.stderr };
  const why = r.overflow ? `more than ${MAX_STDOUT} bytes on stdout` : r.signal ? `stopped by ${r.signal}` : '';
  throw toolFailed(tool, args, r.stderr || r.stdout.toString('utf8') || why, code);
}

/** ERR_TOOL_FAILED with the last lines of the tool's output. */
export function toolFailed(tool: string, args: readonly string[], output: string, code?: number): ComposeError {
  const tail = output.trim().split('\n').slice(-6).join('\n');
  return new ComposeError('ERR_TOOL_FAILED', `${tool} failed${code !== undefined && code >= 0 ? ` (exit ${code})` : ''}: ${tail}`, { tool, args: [...args], code, output: tail });
}
