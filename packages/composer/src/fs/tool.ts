import { execFile } from 'node:child_process';
import { ComposeError } from '../errors.js';

/** Debian packages of the host tools the composer runs. */
export const HOST_TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'mkfs.ext4': 'e2fsprogs',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  'mkfs.vfat': 'dosfstools',
  'fsck.vfat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mlabel: 'mtools',
  mtype: 'mtools',
  mdir: 'mtools',
  minfo: 'mtools',
  unsquashfs: 'squashfs-tools',
  bmaptool: 'bmap-tools',
  'qemu-img': 'qemu-utils',
  zstd: 'zstd',
  xz: 'xz-utils',
  depmod: 'kmod',
  busybox: 'busybox-static',
};

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
 * The environment every host tool runs in: nothing is inherited but `PATH` (with the sbin
 * directories added, where Debian keeps mkfs.* and debugfs, often missing from a build user's
 * PATH). A fixed locale and time zone make sort orders, FAT local times and long-name encoding
 * independent of the build host; `HOME=/nonexistent` keeps a user's `~/.mtoolsrc` out; the
 * `MTOOLS_*` settings pin what `/etc/mtools.conf` could change.
 */
export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  const path = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!path.includes(dir)) path.push(dir);
  return {
    PATH: path.join(':'),
    LC_ALL: 'C.UTF-8',
    TZ: 'UTC',
    HOME: '/nonexistent',
    MTOOLS_SKIP_CHECK: '0',
    MTOOLS_LOWER_CASE: '0',
    MTOOLS_NO_VFAT: '0',
    MTOOLS_NAME_NUMERIC_TAIL: '1',
    MTOOLS_FAT_COMPATIBILITY: '0',
    ...extra,
  };
}

/**
 * Runs a host tool with an argument array (no shell) and empty stdin, so a tool that would
 * prompt gets end-of-file instead of hanging. A missing tool is `ERR_HOST_TOOL`, naming the tool
 * and its Debian package.
 *
 * @example
 * const { stdout } = await runTool('dumpe2fs', ['-h', 'slot.img']);
 */
export function runTool(tool: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, [...args], { env: toolEnv(opts.env), encoding: 'buffer', maxBuffer: 256 << 20 }, (err, stdout, stderrBuf) => {
      const stderr = stderrBuf.toString('utf8');
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: unknown };
      if (e.code === 'ENOENT') {
        const pkg = HOST_TOOL_PACKAGES[tool] ?? tool;
        return reject(new ComposeError('ERR_HOST_TOOL', `${tool} is not installed (or not on PATH): install the Debian package ${pkg}`, { tool, package: pkg }));
      }
      const code = typeof e.code === 'number' ? e.code : -1;
      if (opts.check === false && code >= 0) return resolve({ code, stdout, stderr });
      reject(toolFailed(tool, args, stderr || stdout.toString('utf8') || err.message, code));
    });
    child.stdin?.end();
  });
}

/** ERR_TOOL_FAILED with the last lines of the tool's output. */
export function toolFailed(tool: string, args: readonly string[], output: string, code?: number): ComposeError {
  const tail = output.trim().split('\n').slice(-6).join('\n');
  return new ComposeError('ERR_TOOL_FAILED', `${tool} failed${code !== undefined && code >= 0 ? ` (exit ${code})` : ''}: ${tail}`, { tool, args: [...args], code, output: tail });
}
