/**
 * libguestfs as an independent reader of our images, for the slow (`qemu`) test tier: it boots a
 * small Linux appliance under QEMU (TCG) and lets that kernel read the partition table and the
 * filesystems, so nothing of ours (GPT reader, debugfs, mtools) is involved in what it reports.
 *
 * Setup, done once and cached under `<edgeimage cache>/guestfs/` (facts: the boot notes in shared/reference/):
 * - Debian's kernel (`scripts/fetch-debs <arch> linux-image-<arch>`) extracted with
 *   `dpkg-deb --fsys-tarfile` (no root), minus the module trees the appliance never loads
 *   (sound, networking, GPUs, media, USB…), then `depmod`: the kernel supermin puts in the
 *   appliance (SUPERMIN_KERNEL, SUPERMIN_MODULES, SUPERMIN_KERNEL_VERSION).
 * - LIBGUESTFS_BACKEND=direct, LIBGUESTFS_BACKEND_SETTINGS=force_tcg (KVM hangs here), and a
 *   LIBGUESTFS_CACHEDIR per kernel, so the appliance is built by the first launch only.
 * - supermin before 5.3.3 (Debian 12 has 5.2.2) copies the host's `/lib/modules` directory entry
 *   even when SUPERMIN_MODULES points elsewhere, and fails where it does not exist (containers;
 *   fixed upstream by supermin commit 8effa5a, "Fix for missing /lib/modules"). Then, as root,
 *   guestfish runs in a private mount namespace (`unshare --mount`) where a read-only overlay adds
 *   an empty `modules/` folder to `/usr/lib`: the host itself is never changed. Other users get a
 *   skipped test that says what to do.
 *
 * Each launch costs 12–35 s of TCG boot: keep to one or two sessions per test file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { REPO } from './repo.js';


/** `EDGEIMAGE_CACHE`, else `$XDG_CACHE_HOME/edgeimage`, else `~/.cache/edgeimage` (as the bundle cache and scripts/fetch-debs). */
export function edgeimageCacheDir(): string {
  if (process.env['EDGEIMAGE_CACHE']) return process.env['EDGEIMAGE_CACHE'];
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'edgeimage');
}

export const guestfsCacheDir = () => join(edgeimageCacheDir(), 'guestfs');

const hasProgram = (name: string) => spawnSync('/bin/sh', ['-c', `command -v "$1"`, 'sh', name], { stdio: 'ignore' }).status === 0;

const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
const QEMU = HOST_ARCH === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64';

/** Why libguestfs cannot run here (a message for the skipped test), or undefined when it can. */
export function guestfishUnavailable(): string | undefined {
  if (!hasProgram('guestfish')) return 'guestfish is not installed (Debian package libguestfs-tools)';
  if (!hasProgram(QEMU)) return `${QEMU} is not installed (Debian package ${HOST_ARCH === 'arm64' ? 'qemu-system-arm' : 'qemu-system-x86'})`;
  if (!hasProgram('supermin')) return 'supermin is not installed (Debian package supermin)';
  if (!process.env['SUPERMIN_KERNEL'] && !(hasProgram('dpkg-deb') && hasProgram('apt-get'))) return 'no SUPERMIN_KERNEL given and no dpkg-deb/apt-get to fetch a Debian kernel';
  if (needsLibModulesOverlay()) {
    const why = `this host has no /lib/modules, which supermin ${superminVersion().join('.')} needs (fixed in supermin 5.3.3)`;
    if (process.getuid?.() !== 0) return `${why}; as root the tests work around it in a private mount namespace — run them as root, or create the folder once: sudo mkdir /lib/modules`;
    const { cmd, args } = guestfishCommand(['--version']);
    const probe = spawnSync(cmd, args, { encoding: 'utf8' });
    if (probe.status !== 0) return `${why}, and the workaround (an overlay in a private mount namespace) failed: ${(probe.stderr || probe.error?.message || '').trim()}; create the folder once: mkdir /lib/modules`;
  }
  return undefined;
}

/** `supermin --version` as numbers ([5, 2, 2]); [0] when unknown. */
function superminVersion(): number[] {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(spawnSync('supermin', ['--version'], { encoding: 'utf8' }).stdout ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0];
}

/** supermin before 5.3.3 on a host without /lib/modules (see the top of this file). */
function needsLibModulesOverlay(): boolean {
  if (existsSync('/lib/modules')) return false;
  const [a = 0, b = 0, c = 0] = superminVersion();
  return a * 1e6 + b * 1e3 + c < 5_003_003;
}

export interface GuestfsKernel {
  /** The vmlinuz file. */
  kernel: string;
  /** `…/lib/modules/<version>`. */
  modules: string;
  version: string;
  /** The Debian package it came from (`linux-image-6.1.0-56-amd64_6.1.192-2_amd64`), or `env`. */
  source: string;
}

/**
 * Module trees the appliance never needs (it reads block devices over virtio, with its
 * filesystems): left out of the extraction, which shrinks 400 MB of modules to about 150 MB.
 */
const UNNEEDED_MODULE_TREES = ['sound', 'net', 'drivers/net', 'drivers/gpu', 'drivers/media', 'drivers/usb', 'drivers/infiniband', 'drivers/iio', 'drivers/staging', 'drivers/comedi', 'drivers/hwmon', 'drivers/bluetooth', 'drivers/isdn', 'drivers/mtd'];

function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what}: ${cmd} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * The Debian kernel supermin builds the appliance with: SUPERMIN_KERNEL/SUPERMIN_MODULES from the
 * environment when set, else the host architecture's `linux-image-<arch>` fetched by
 * `scripts/fetch-debs` and extracted once into `<cache>/guestfs/kernels/<package>/`.
 */
export function guestfsKernel(): GuestfsKernel {
  const envKernel = process.env['SUPERMIN_KERNEL'];
  const envModules = process.env['SUPERMIN_MODULES'];
  if (envKernel && envModules) return { kernel: envKernel, modules: envModules, version: process.env['SUPERMIN_KERNEL_VERSION'] ?? basename(envModules), source: 'env' };

  const deb = run(join(REPO, 'scripts', 'fetch-debs'), [HOST_ARCH, `linux-image-${HOST_ARCH}`], 'fetching the Debian kernel for libguestfs').trim().split('\n').pop()!;
  const source = basename(deb, '.deb');
  const dir = join(guestfsCacheDir(), 'kernels', source);
  if (!existsSync(join(dir, '.complete'))) {
    mkdirSync(join(guestfsCacheDir(), 'kernels'), { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      const excludes = ['--exclude=./usr/share', '--exclude=./boot/System.map-*', ...UNNEEDED_MODULE_TREES.map((t) => `--exclude=*/modules/*/kernel/${t}`)];
      run('bash', ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "${@:3}"', 'bash', deb, tmp, ...excludes], `extracting ${basename(deb)}`);
      // Debian 12 ships /lib/modules; later releases /usr/lib/modules: depmod -b wants <base>/lib/modules.
      if (!existsSync(join(tmp, 'lib', 'modules')) && existsSync(join(tmp, 'usr', 'lib', 'modules'))) {
        mkdirSync(join(tmp, 'lib'), { recursive: true });
        renameSync(join(tmp, 'usr', 'lib', 'modules'), join(tmp, 'lib', 'modules'));
      }
      const versions = existsSync(join(tmp, 'lib', 'modules')) ? readdirSync(join(tmp, 'lib', 'modules')) : [];
      if (versions.length !== 1) throw new Error(`${basename(deb)}: expected one lib/modules/<version>, found ${versions.join(', ') || 'none'}`);
      run('depmod', ['-b', tmp, versions[0]!], 'depmod');
      writeFileSync(join(tmp, '.complete'), `${versions[0]}\n`);
      if (existsSync(join(dir, '.complete'))) rmSync(tmp, { recursive: true, force: true }); // another process won
      else {
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
      }
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const version = readdirSync(join(dir, 'lib', 'modules'))[0]!;
  const vmlinuz = readdirSync(join(dir, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`${dir}/boot holds no vmlinuz`);
  return { kernel: join(dir, 'boot', vmlinuz), modules: join(dir, 'lib', 'modules', version), version, source };
}

/** The environment of a guestfish run: direct backend, TCG, our kernel, a cached appliance per kernel. */
export function guestfsEnv(k: GuestfsKernel): NodeJS.ProcessEnv {
  const cacheDir = join(guestfsCacheDir(), 'appliance', k.source === 'env' ? k.version : k.source);
  mkdirSync(cacheDir, { recursive: true });
  return {
    ...process.env,
    LC_ALL: 'C.UTF-8',
    LIBGUESTFS_BACKEND: 'direct',
    LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
    LIBGUESTFS_CACHEDIR: cacheDir,
    SUPERMIN_KERNEL: k.kernel,
    SUPERMIN_MODULES: k.modules,
    SUPERMIN_KERNEL_VERSION: k.version,
  };
}

/**
 * The command line that runs guestfish with `args`: directly, or — when supermin needs a
 * `/lib/modules` the host lacks (see the top of this file) — as root inside a private mount
 * namespace whose `/usr/lib` (whatever `/lib` resolves to) is overlaid with an empty `modules/`
 * folder. (A user namespace does not do for non-root users: supermin's tar then fails to chown.)
 */
export function guestfishCommand(args: string[]): { cmd: string; args: string[] } {
  if (!needsLibModulesOverlay()) return { cmd: 'guestfish', args };
  const libDir = realpathSync('/lib');
  const overlay = join(guestfsCacheDir(), 'lib-modules-overlay');
  mkdirSync(join(overlay, 'modules'), { recursive: true });
  const script = 'mount -t overlay edgeimage-lib-modules -o "lowerdir=$1:$2" "$2" && shift 2 && exec guestfish "$@"';
  return { cmd: 'unshare', args: ['--mount', 'sh', '-c', script, 'sh', overlay, libDir, ...args] };
}

export interface GuestfishSession {
  /** Output of each named command (stdout, as printed). */
  out: Record<string, string>;
  /** Seconds the appliance took to launch (`time run`). */
  launchSeconds: number;
  /** Wall time of the whole guestfish process, seconds. */
  totalSeconds: number;
}

/**
 * Runs ONE guestfish session over `image`, read-only: `run` (timed), then `commands` in order,
 * fed through stdin. Each command's output is returned under its key; a failing command fails the
 * session (guestfish stops at the first error) with guestfish's message.
 *
 * ```ts
 * const s = await guestfish(img, [['parts', 'part-list /dev/sda'], ['fs', 'list-filesystems']], env);
 * s.out.parts; // "[0] = {\n  part_num: 1\n  part_start: 1048576 …"
 * ```
 */
export async function guestfish(image: string, commands: [key: string, command: string][], env: NodeJS.ProcessEnv, timeoutMs = 170_000): Promise<GuestfishSession> {
  const mark = (i: number) => `@@edgeimage-gf-${i}@@`;
  const script = ['time run', ...commands.flatMap(([, c], i) => [`echo ${mark(i)}`, c]), `echo ${mark(commands.length)}`, ''].join('\n');
  const { cmd, args } = guestfishCommand(['--ro', '--format=raw', '-a', image]);
  const start = process.hrtime.bigint();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`guestfish did not finish within ${timeoutMs / 1000} s\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout, stderr });
    });
    child.stdin.end(script);
  });
  const totalSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) {
    const hint = /supermin/.test(stderr) ? '\n(set LIBGUESTFS_DEBUG=1 to see what supermin did)' : '';
    throw new Error(`guestfish exited ${code}\nstderr:\n${stderr}${hint}\nstdout:\n${stdout}`);
  }
  const launch = /elapsed time: ([\d.]+) seconds/.exec(stdout);
  const out: Record<string, string> = {};
  for (const [i, [key]] of commands.entries()) {
    const from = stdout.indexOf(`${mark(i)}\n`);
    const to = stdout.indexOf(`${mark(i + 1)}\n`);
    if (from < 0 || to < 0) throw new Error(`guestfish: no output markers for ${key}\nstdout:\n${stdout}`);
    out[key] = stdout.slice(from + mark(i).length + 1, to);
  }
  return { out, launchSeconds: launch ? Number(launch[1]) : NaN, totalSeconds };
}

export interface GuestfsPartition {
  num: number;
  start: number;
  end: number;
  size: number;
}

/** `part-list` output: `[0] = {\n  part_num: 1\n  part_start: …\n  part_end: …\n  part_size: …\n}`. */
export function parsePartList(text: string): GuestfsPartition[] {
  const parts: GuestfsPartition[] = [];
  for (const m of text.matchAll(/\{([^}]*)\}/g)) {
    const field = (name: string) => Number(new RegExp(`${name}: (\\d+)`).exec(m[1]!)?.[1]);
    parts.push({ num: field('part_num'), start: field('part_start'), end: field('part_end'), size: field('part_size') });
  }
  return parts;
}

/** `list-filesystems` output (`/dev/sda1: vfat` lines) as device → type. */
export function parseFilesystems(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const i = l.lastIndexOf(': ');
        return [l.slice(0, i), l.slice(i + 2)];
      }),
  );
}
