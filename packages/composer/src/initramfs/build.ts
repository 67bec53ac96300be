import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ComposeError } from '../errors.js';
import { runTool } from '../fs/tool.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { DEFAULT_INIT } from './init.js';

/** Where the initramfs lists what its /init supports, one word per line. */
export const INITRAMFS_FEATURES_PATH = 'etc/edgeimage/initramfs.features';
/** `verified-boot`: /init opens bundles through dm-verity with the root hashes of the signed part (verified.env, verity.list). */
export const INITRAMFS_FEATURES = ['verified-boot'] as const;
import { resolveModules, type ModuleFile } from './modules.js';

export interface InitramfsOptions {
  /** An extracted kernel package: holds `lib/modules/<version>`. */
  kernelTree: string;
  version: string;
  /** Debian architecture of the device (amd64, arm64). */
  arch: string;
  /** Modules to load at boot; their dependencies are added and ordered first. */
  modules: readonly string[];
  /** A static busybox binary for `arch`. */
  busybox: string;
  /** The /init script (default {@link DEFAULT_INIT}). */
  init?: string;
  /**
   * Where the applet list comes from when `arch` is not the host's: a busybox the host can run,
   * of the same version as `busybox` (default `busybox` on PATH).
   */
  hostBusybox?: string;
  /**
   * A folder whose files are added to the root as they are (executables 0755, others 0644, links
   * kept), e.g. Debian's dmsetup with its libraries and loader. A path that the initramfs has
   * already (an applet link, /init) is refused as a duplicate.
   */
  extraTree?: string;
  /** mtime of every member (default 0). */
  mtime?: Date | number;
  /** The gzip-compressed cpio written. */
  output: string;
}

export interface InitramfsResult {
  output: string;
  /** Modules in load order (as /etc/modules.order lists them). */
  modules: ModuleFile[];
  /** Requested modules built into the kernel. */
  builtin: string[];
  /** Applet links made (paths relative to the root). */
  applets: string[];
}

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', riscv64: 'riscv64' };

/** `BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1)`, read from the binary's bytes (works for any arch). */
export function busyboxVersion(binary: string): string | undefined {
  const m = /BusyBox v[0-9][^\s\0]* \([^)\0]*\)/.exec(readFileSync(binary).toString('latin1'));
  return m?.[0];
}

async function appletPaths(opts: InitramfsOptions): Promise<string[]> {
  let runner = opts.busybox;
  if (HOST_ARCH[process.arch] !== opts.arch) {
    runner = opts.hostBusybox ?? 'busybox';
    const want = busyboxVersion(opts.busybox);
    const { stdout } = await runTool(runner, []);
    const have = /BusyBox v[0-9]\S* \([^)]*\)/.exec(stdout.toString('utf8'))?.[0];
    if (want === undefined || want !== have) {
      throw new ComposeError('ERR_FS_SOURCE', `the applet list of a ${opts.arch} busybox comes from a host busybox of the same version: ${opts.busybox} is ${want ?? 'of unknown version'}, ${runner} is ${have ?? 'of unknown version'}`, { busybox: opts.busybox, hostBusybox: runner, want, have });
    }
  }
  const { stdout } = await runTool(runner, ['--list-full']);
  return stdout.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
}

async function moduleBytes(file: string): Promise<Buffer> {
  if (file.endsWith('.ko')) return readFileSync(file);
  if (file.endsWith('.ko.gz')) return gunzipSync(readFileSync(file));
  if (file.endsWith('.ko.xz')) return (await runTool('xz', ['-dc', file])).stdout;
  if (file.endsWith('.ko.zst')) return (await runTool('zstd', ['-dcq', file])).stdout;
  throw new ComposeError('ERR_FS_UNSUPPORTED_FILE', `unknown kernel module format: ${file}`, { path: file });
}

/** The members for {@link InitramfsOptions.extraTree}, in name order (the cpio sorts anyway). */
function treeEntries(root: string, rel = ''): CpioEntry[] {
  const out: CpioEntry[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const full = join(root, path);
    const st = lstatSync(full);
    if (st.isSymbolicLink()) out.push({ path, type: 'symlink', target: readlinkSync(full) });
    else if (st.isDirectory()) out.push({ path, type: 'dir' }, ...treeEntries(root, path));
    else if (st.isFile()) out.push({ path, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, data: readFileSync(full) });
    else throw new ComposeError('ERR_FS_UNSUPPORTED_FILE', `${full}: the initramfs holds files, folders and links only`, { path: full });
  }
  return out;
}

/**
 * Builds a gzip-compressed newc initramfs, as any user (no device nodes: the Debian kernel's
 * built-in initramfs provides /dev/console): /bin/busybox with its applet links, the needed
 * modules (decompressed to plain .ko, which busybox insmod loads) under /lib/modules/VER,
 * /etc/modules.order (absolute paths, load order), /init and the files of `extraTree`. Same
 * input, same bytes.
 */
export async function buildInitramfs(opts: InitramfsOptions): Promise<InitramfsResult> {
  const plan = await resolveModules(opts.kernelTree, opts.version, opts.modules);
  const applets = (await appletPaths(opts)).filter((p) => p !== 'bin/busybox');
  const entries: CpioEntry[] = [
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync(opts.busybox) },
    { path: 'init', type: 'file', mode: 0o755, data: opts.init ?? DEFAULT_INIT },
    ...['dev', 'proc', 'sys', 'tmp', 'run', 'root', 'mnt'].map((path): CpioEntry => ({ path, type: 'dir' })),
  ];
  const seen = new Set<string>();
  for (const a of applets) {
    if (seen.has(a) || a === 'init') continue;
    seen.add(a);
    entries.push({ path: a, type: 'symlink', target: '/bin/busybox' });
  }
  const order: string[] = [];
  const modDir = join(opts.kernelTree, 'lib/modules', opts.version);
  for (const m of plan.load) {
    const ko = m.path.replace(/\.ko\.\w+$/, '.ko');
    entries.push({ path: `lib/modules/${opts.version}/${ko}`, type: 'file', mode: 0o644, data: await moduleBytes(join(modDir, m.path)) });
    order.push(`/lib/modules/${opts.version}/${ko}`);
  }
  entries.push({ path: 'etc/modules.order', type: 'file', mode: 0o644, data: order.map((l) => `${l}\n`).join('') });
  // What this /init can do: the composer signs a verified payload only around an initramfs that
  // honours it (an older /init would ignore the signed bundle list and boot the slot unverified).
  entries.push({ path: INITRAMFS_FEATURES_PATH, type: 'file', mode: 0o644, data: `${INITRAMFS_FEATURES.join('\n')}\n` });
  if (opts.extraTree !== undefined) {
    const extra = treeEntries(opts.extraTree);
    const taken = new Set(entries.map((e) => e.path));
    // a folder of the tree that the initramfs has already (lib, sbin) is merged, not a duplicate
    entries.push(...extra.filter((e) => !(e.type === 'dir' && taken.has(e.path))));
  }
  writeCpio(entries, opts.output, { gzip: true, ...(opts.mtime === undefined ? {} : { mtime: opts.mtime }) });
  return { output: opts.output, modules: plan.load, builtin: plan.builtin, applets: [...seen] };
}
