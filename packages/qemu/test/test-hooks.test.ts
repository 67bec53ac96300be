/**
 * The device's test hooks on the kernel command line — `edge.crash=POINT` (crash_at in common)
 * and `edge.health-timeout=` (health) — work only when the booted slot's model is grade
 * dangerous (EDGE_GRADE in the slot's boot/slot.env, which the update manifest's signature
 * covers). The command line comes from the boot partition, which is not trusted: a signed or
 * secured device ignores them. Run for real — busybox sh and the base bundle's own scripts — in a
 * chroot of the amd64 busybox-base bundle (root needed), with a /proc/cmdline that is a plain file.
 * The chroot's `sleep` returns at once and moves the chroot's clock (/proc/uptime, a plain file)
 * on, so that the crash's 10 s wait and the health check's minute take no time; the sysrq writes land in plain files of the chroot's /proc.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { missingRoot, requires } from '@edgeimage/testkit/skips';

const { describe: chrootDescribe } = requires(missingRoot('a chroot of the base'));

let chroot: string;
const setUp = useBaseChroot('edgeimage-test-hooks-', isRoot, (_work, c) => {
  chroot = c;
  // the chroot's /proc must be a plain folder: a real procfs there would take the sysrq write
  if (readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1]?.startsWith(chroot))) {
    throw new Error(`something is mounted under ${chroot}`);
  }
  mkdirSync(join(chroot, 'proc/sys/kernel'), { recursive: true });
  mkdirSync(join(chroot, 'run/edgeimage/slot/boot'), { recursive: true });
  mkdirSync(join(chroot, 'tmp'), { recursive: true });
  writeFileSync(join(chroot, 'run/edgeimage/slot-name'), 'a\n');
  // first on the PATH that common sets: the agent's bin/ (its busybox link replaced by a stub)
  // (the health check counts seconds of /proc/uptime, a plain file here: each sleep moves it on)
  writeFileSync(join(chroot, 'proc/uptime'), '100.00 0.00\n');
  rmSync(join(chroot, 'run/edgeimage/agent/bin/sleep'), { force: true });
  writeFileSync(join(chroot, 'run/edgeimage/agent/bin/sleep'), '#!/bin/sh\nt=$(cut -d. -f1 /proc/uptime); echo "$((t + ${1%%.*})).00 0.00" > /proc/uptime\n');
  chmodSync(join(chroot, 'run/edgeimage/agent/bin/sleep'), 0o755);
});

const ready = setUp;

/** Sets the slot's grade (undefined: a slot.env without EDGE_GRADE) and the kernel command line. */
function device(grade: string | undefined, cmdline: string): void {
  const env = `EDGE_BASE=bundles/base_1.snap\nEDGE_APPS=""\n${grade === undefined ? '' : `EDGE_GRADE=${grade}\n`}`;
  writeFileSync(join(chroot, 'run/edgeimage/slot/boot/slot.env'), env);
  writeFileSync(join(chroot, 'proc/cmdline'), `${cmdline}\n`);
  rmSync(join(chroot, 'proc/sysrq-trigger'), { force: true });
  rmSync(join(chroot, 'proc/sys/kernel/sysrq'), { force: true });
}

function sh(script: string): { status: number | null; out: string } {
  const r = spawnSync('chroot', [chroot, '/bin/sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const CMDLINE = 'console=ttyS0 edgeimage.slot=a edgeimage.bootpart=12345678-01 panic=5 loglevel=6';
const crash = () => sh('. /run/edgeimage/agent/lib/edgeimage/common; crash_at after-env; echo "went on"');

chrootDescribe('crash_at (edge.crash=POINT)', () => {
  test.each([['signed'], ['secured'], [undefined]])('grade %s: ignored — no sysrq, the script goes on', (grade) => {
    ready();
    device(grade, `${CMDLINE} edge.crash=after-env`);
    const r = crash();
    expect(r.out).not.toContain('crash point');
    expect(r.out).toContain('went on');
    expect(existsSync(join(chroot, 'proc/sysrq-trigger'))).toBe(false);
  });

  test('grade dangerous: the crash point reboots through sysrq, as a power cut; another point does not', () => {
    ready();
    device('dangerous', `${CMDLINE} edge.crash=after-env`);
    const r = crash();
    expect(r.out).toContain('edgeimage: crash point after-env: rebooting at once');
    expect(readFileSync(join(chroot, 'proc/sysrq-trigger'), 'utf8')).toBe('b\n');
    device('dangerous', `${CMDLINE} edge.crash=mid-slot-write`);
    expect(crash().out).not.toContain('crash point');
    expect(existsSync(join(chroot, 'proc/sysrq-trigger'))).toBe(false);
  });
});

chrootDescribe('crash_at on a verified device: the grade of the signed boot payload, never slot.env', () => {
  const verifiedEnv = () => join(chroot, 'run/edgeimage/verified.env');
  afterEach(() => rmSync(verifiedEnv(), { force: true }));
  test('a slot.env saying dangerous (anyone who can write the slot can) turns no hook on when the payload says signed', () => {
    ready();
    device('dangerous', `${CMDLINE} edge.crash=after-env`);
    writeFileSync(verifiedEnv(), 'EDGE_VERIFIED=1\nEDGE_BASE=bundles/base_1.snap\nEDGE_APPS=""\nEDGE_GRADE=signed\n');
    const r = crash();
    expect(r.out).not.toContain('crash point');
    expect(existsSync(join(chroot, 'proc/sysrq-trigger'))).toBe(false);
  });
  test('the payload of a grade dangerous twin keeps the hooks', () => {
    ready();
    device('signed', `${CMDLINE} edge.crash=after-env`);
    writeFileSync(verifiedEnv(), 'EDGE_VERIFIED=1\nEDGE_BASE=bundles/base_1.snap\nEDGE_APPS=""\nEDGE_GRADE=dangerous\n');
    expect(crash().out).toContain('edgeimage: crash point after-env: rebooting at once');
  });
});

chrootDescribe('health (edge.health-timeout=SECONDS)', () => {
  // no service list: never healthy, so the health check gives up after its timeout and says so
  test.each([
    ['signed', 60],
    ['secured', 60],
    ['dangerous', 2],
  ] as const)('grade %s: gives up after %i s', (grade, seconds) => {
    ready();
    device(grade, `${CMDLINE} edge.health-timeout=2`);
    const r = sh('/run/edgeimage/agent/lib/edgeimage/health');
    expect(r.status).toBe(1);
    expect(r.out).toMatch(new RegExp(`edgeimage-health: UNHEALTHY on slot a after ${seconds} s`));
  });
});
