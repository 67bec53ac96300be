/**
 * The device's health check (bundles/edge-agent/lib/edgeimage/health) on a systemd base, run for
 * real — the agent's busybox sh and scripts — in a chroot of the amd64 busybox-base bundle (root
 * needed). The time is the chroot's own: /proc is a plain folder whose `uptime` the stand-in
 * `sleep` and `systemctl` move forward, so that a minute passes in no time and a slow poll (as under
 * emulation) can be made as slow as wanted. `systemctl` is a stand-in that answers what systemd
 * would for one unit and counts its calls: the fault it injects (a slow machine, a unit systemd gave
 * up on) is what a real systemd cannot produce on demand here.
 *
 * - The settle time and the timeout are real seconds, not polls: with polls of 5 s (a `systemctl
 *   show` under TCG takes about one), a 20 s timeout is a handful of polls, not 20 (it was 20: a
 *   60 s timeout became 100 s and more on a TCG guest).
 * - A unit systemd has given up on (ActiveState=failed: its Restart= does not cover the exit, or the
 *   start limit was hit) never comes back by itself: UNHEALTHY at once, naming it, without waiting
 *   out the timeout.
 * - On busybox-base the agent's supervisor gives up as systemd does by default (a 6th start within
 *   10 s is not made) and the health check sees it the same way.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { missingRoot, requires } from '@edgeimage/testkit/skips';

const { describe: chrootDescribe } = requires(missingRoot('a chroot of the base'));

let chroot: string;
const AGENT_BIN = 'run/edgeimage/agent/bin';
// moves the chroot's clock (its /proc/uptime) forward by $1 whole seconds
const ADVANCE = 'advance() { t=$(cut -d. -f1 /proc/uptime); echo "$((t + $1)).00 0.00" > /proc/uptime; }';

function stub(name: string, body: string): void {
  const p = join(chroot, AGENT_BIN, name);
  rmSync(p, { force: true });
  writeFileSync(p, `#!/bin/sh\n${ADVANCE}\n${body}\n`);
  chmodSync(p, 0o755);
}

const ready = useBaseChroot('edgeimage-health-', isRoot, (_work, c) => {
  chroot = c;
  if (readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1]?.startsWith(chroot))) {
    throw new Error(`something is mounted under ${chroot}`);
  }
  mkdirSync(join(chroot, 'proc'), { recursive: true });
  mkdirSync(join(chroot, 'run/edgeimage/slot/boot'), { recursive: true });
  mkdirSync(join(chroot, 'run/edgeimage/services'), { recursive: true });
  // a systemd base, as the health check tells one
  mkdirSync(join(chroot, 'run/systemd/system'), { recursive: true });
  mkdirSync(join(chroot, 'tmp'), { recursive: true });
  writeFileSync(join(chroot, 'run/edgeimage/slot-name'), 'a\n');
  writeFileSync(join(chroot, 'run/edgeimage/slot/boot/slot.env'), 'EDGE_BASE=bundles/base_1.snap\nEDGE_APPS="bundles/robot_1.snap"\nEDGE_GRADE=dangerous\n');
  writeFileSync(join(chroot, 'run/edgeimage/services/list'), 'robot sensor bin/sensor\n');
  stub('sleep', 'echo "$1" >> /tmp/sleep.calls; advance "${1%%.*}"');
});

/**
 * One run of the health check: the unit's ActiveState, each `systemctl` call taking `pollSeconds`;
 * the command line's health timeout (a hook of grade dangerous, which this slot is).
 */
function health(state: string, pollSeconds: number, timeout: number): { status: number | null; out: string; calls: number } {
  writeFileSync(join(chroot, 'proc/uptime'), '100.00 0.00\n');
  writeFileSync(join(chroot, 'proc/cmdline'), `console=ttyS0 edgeimage.slot=a panic=5 edge.health-timeout=${timeout}\n`);
  writeFileSync(join(chroot, 'tmp/systemctl.calls'), '');
  stub('systemctl', [
    'echo "$*" >> /tmp/systemctl.calls',
    `advance ${pollSeconds}`,
    'case "$*" in',
    `  *--value*) echo ${state} ;;`,
    `  *) printf 'ActiveState=${state}\\nMainPID=0\\nNRestarts=5\\n' ;;`,
    'esac',
  ].join('\n'));
  const r = spawnSync('chroot', [chroot, '/bin/sh', '-c', '/run/edgeimage/agent/lib/edgeimage/health'], { encoding: 'utf8', timeout: 60_000 });
  const calls = readFileSync(join(chroot, 'tmp/systemctl.calls'), 'utf8').split('\n').filter((l) => l.startsWith('show -p ActiveState -p MainPID')).length;
  return { status: r.status, out: `${r.stdout}${r.stderr}`, calls };
}

chrootDescribe('health on a systemd base: real seconds, and a unit systemd gave up on', () => {
  test('a unit still starting: the 20 s timeout is 20 s of the clock, not 20 polls of 5 s each', () => {
    ready();
    const r = health('activating', 5, 20);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/edgeimage-health: UNHEALTHY on slot a after 20 s: not running: robot\.sensor$/m);
    // each poll is two calls of 5 s (the unit's state, then whether systemd gave up) and a sleep of
    // 1 s: two or three polls in 20 s
    expect(r.calls).toBeGreaterThanOrEqual(2);
    expect(r.calls).toBeLessThanOrEqual(4);
  });

  test('a unit systemd gave up on (failed): UNHEALTHY at the first poll, naming it, whatever the timeout', () => {
    ready();
    const r = health('failed', 1, 60);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/edgeimage-health: UNHEALTHY on slot a after \d s: not running: robot\.sensor; failed for good \(its supervisor gave up restarting it\): robot\.sensor$/m);
    expect(r.calls).toBe(1);
  });
});

chrootDescribe('busybox-base: the supervisor gives up as systemd does, and the health check sees it', () => {
  const services = () => join(chroot, 'run/edgeimage/services');
  beforeAll(() => {
    if (!chroot) return;
    // busybox-base: no /run/systemd/system
    rmSync(join(chroot, 'run/systemd'), { recursive: true, force: true });
    const snap = join(chroot, 'run/edgeimage/snap/broken');
    mkdirSync(join(snap, 'meta'), { recursive: true });
    mkdirSync(join(snap, 'bin'), { recursive: true });
    writeFileSync(join(snap, 'meta/snap.yaml'), 'name: broken\nversion: \'1\'\napps:\n  sensor:\n    command: bin/die\n    daemon: simple\n');
    // each run is counted; it dies at once, as a daemon with a missing library would
    writeFileSync(join(snap, 'bin/die'), '#!/bin/sh\necho run >> /tmp/die.runs\nexit 1\n', { mode: 0o755 });
    mkdirSync(join(chroot, 'writable'), { recursive: true });
  });

  test('a daemon that dies at once is started 5 times within 10 s, then given up on: <id>.failed, not started again, and the supervisor stays', () => {
    ready();
    writeFileSync(join(chroot, 'proc/uptime'), '100.00 0.00\n');
    rmSync(join(chroot, 'tmp/die.runs'), { force: true });
    rmSync(join(chroot, 'tmp/sleep.calls'), { force: true });
    rmSync(services(), { recursive: true, force: true });
    const r = spawnSync('chroot', [chroot, '/bin/sh', '-c', '/run/edgeimage/agent/lib/edgeimage/supervisor'], { encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout}${r.stderr}`;
    expect([r.status, r.signal]).toEqual([0, null]);
    expect(out).toMatch(/edgeimage-supervisor: broken\.sensor started 5 times in 10 s: given up \(not restarted again\)/);
    expect(readFileSync(join(chroot, 'tmp/die.runs'), 'utf8')).toBe('run\n'.repeat(5));
    expect(existsSync(join(services(), 'broken.sensor.failed'))).toBe(true);
    expect(readFileSync(join(services(), 'list'), 'utf8')).toBe('broken sensor bin/die\n');
    // with nothing left to supervise it stays (here the stand-in sleep returns): init respawns an
    // exited supervisor, which would start the given-up daemon again
    expect(readFileSync(join(chroot, 'tmp/sleep.calls'), 'utf8').trim().split('\n').pop()).toBe('2147483647');
  });

  test('the health check: UNHEALTHY at the first poll, naming it, without waiting out the timeout', () => {
    ready();
    writeFileSync(join(chroot, 'proc/uptime'), '100.00 0.00\n');
    writeFileSync(join(chroot, 'proc/cmdline'), 'console=ttyS0 edgeimage.slot=a panic=5\n');
    mkdirSync(services(), { recursive: true });
    writeFileSync(join(services(), 'list'), 'broken sensor bin/die\n');
    writeFileSync(join(services(), 'broken.sensor.failed'), '');
    const r = spawnSync('chroot', [chroot, '/bin/sh', '-c', '/run/edgeimage/agent/lib/edgeimage/health'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/edgeimage-health: UNHEALTHY on slot a after 0 s: not running: broken\.sensor; failed for good \(its supervisor gave up restarting it\): broken\.sensor$/m);
  });
});
