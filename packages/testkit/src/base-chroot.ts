/**
 * The amd64 busybox-base bundle unpacked as a chroot, with the amd64 device agent (edge-agent)
 * unpacked where the initramfs mounts it (/run/edgeimage/agent), for tests that run the device's
 * own shell tools for real (the agent's busybox sh and Debian binaries) on the host. The bundles
 * are the ones `bundles/build` keeps (built once, then cached by their inputs). Root is needed to
 * chroot.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './repo.js';

export const isRoot = process.getuid?.() === 0;

/** Where the initramfs mounts the device agent (inside the booted root). */
export const AGENT_DIR = '/run/edgeimage/agent';

/**
 * Unpacks the amd64 base into `dir` (which must not exist yet) and the amd64 agent into
 * `dir`/run/edgeimage/agent; throws with bundles/build's stderr when the build fails.
 */
export function unpackBase(dir: string): void {
  const r = spawnSync(join(REPO, 'bundles/build'), [join(REPO, 'images/bundles'), 'busybox-base', 'edge-agent'], { encoding: 'utf8' });
  const lines = r.stdout.split('\n');
  const snap = lines.find((l) => /busybox-base_.*_amd64\.snap$/.test(l));
  const agent = lines.find((l) => /edge-agent_.*_amd64\.snap$/.test(l));
  if (r.status !== 0 || !snap || !agent) throw new Error(`bundles/build failed (${r.status}): ${r.stderr.slice(-2000)}`);
  execFileSync('unsquashfs', ['-q', '-n', '-d', dir, snap]);
  mkdirSync(join(dir, 'run/edgeimage'), { recursive: true });
  execFileSync('unsquashfs', ['-q', '-n', '-d', join(dir, AGENT_DIR), agent]);
}

/**
 * Registers the beforeAll/afterAll of a test file that runs device tools in a chroot of the base:
 * when `enabled`, a temporary work folder with the base unpacked at `work/root`, then `prepare`
 * (the running system as that file needs it); removed after the file. Returns `ready()`, which a
 * test calls first: it throws the set-up's error, so a broken set-up fails every test, loudly.
 */
export function useBaseChroot(prefix: string, enabled: boolean, prepare: (work: string, chroot: string) => void): () => void {
  let work: string | undefined;
  let setupError: string | undefined;
  beforeAll(() => {
    if (!enabled) return;
    work = mkdtempSync(join(tmpdir(), prefix));
    const chroot = join(work, 'root');
    try {
      unpackBase(chroot);
      prepare(work, chroot);
    } catch (e) {
      setupError = (e as Error).message;
    }
  }, 15 * 60_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });
  return () => {
    if (setupError) throw new Error(setupError);
  };
}

/**
 * Runs the shell command `command` in `chroot` as the device would run it: the host's /dev and
 * /sys (the loop disks the test attached), a /proc whose cmdline is the file `cmdlineFile`, a
 * tmpfs /tmp; all in a mount namespace of its own, so nothing stays mounted. Output is stdout and
 * stderr together.
 */
export function runWithDevices(chroot: string, cmdlineFile: string, command: string): { status: number | null; output: string } {
  const script = [
    'set -e',
    'C=$1',
    'mount --rbind /dev "$C/dev"',
    'mount --rbind /sys "$C/sys"',
    'mount -t proc proc "$C/proc"',
    'mount --bind "$2" "$C/proc/cmdline"',
    'mount -t tmpfs tmpfs "$C/tmp"',
    'set +e',
    'chroot "$C" /bin/sh -c "$3" 2>&1',
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', chroot, cmdlineFile, command], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
