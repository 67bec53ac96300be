/**
 * One table of boot-environment cases (bundles/bootloader/env-cases.json), run against both
 * readers of the contract in bundles/bootloader/README.md "The boot environment": the host's
 * `chooseEnv` (@edgeimage/composer) and the device's `bootenv` (busybox sh of the amd64 base, in a
 * chroot, reading the files where system-boot is mounted). Every row:
 * the same copy taken (or none), the same variables, and both equal to the row's expectation.
 * Its "counting" rows (one start of the bootloader) run against the host's model of the scripts,
 * `bootloaderStart`; its "healthy" rows (the health check's write) against both writers: the
 * host's `healthyChanges` + `setEnvVars`, and the device's `bootenv healthy SLOT` on a real mount.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bootloaderStart, chooseEnv, ComposeError, ENV_FILES, healthyChanges, setEnvVars, type BootSlot, type EnvFiles } from '@edgeimage/composer';
import { isRoot, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { REPO } from '@edgeimage/testkit/repo';
import { missingRoot, requires } from '@edgeimage/testkit/skips';

type FileSpec = { vars: Record<string, string> } | { body: string; pad?: 'nul' } | { raw: string; size?: number };
interface Case {
  name: string;
  files: Partial<Record<keyof typeof ENV_FILES, FileSpec>>;
  expect: { from: 'env1' | 'env2' | null; vars?: Record<string, string> };
}

interface CountingCase {
  name: string;
  before: Record<string, string> | null;
  fails: BootSlot[];
  expect: { attempts: BootSlot[]; boots: BootSlot | null; vars: Record<string, string>; written: boolean };
}
interface HealthyCase {
  name: string;
  before: Record<string, string>;
  slot: BootSlot;
  expect: { result: 'committed' | 'confirmed' | null; vars: Record<string, string> };
}

const TABLE: { cases: Case[]; counting: { cases: CountingCase[] }; healthy: { cases: HealthyCase[] } } = JSON.parse(readFileSync(join(REPO, 'bundles/bootloader/env-cases.json'), 'utf8'));
const HEADER = '# GRUB Environment Block\n';

/** The bytes of a row's file, built here (not with the host's encoder, which is under test). */
function bytesOf(f: FileSpec): Buffer {
  if ('raw' in f) {
    const b = Buffer.alloc(f.size ?? Buffer.byteLength(f.raw), 0);
    b.write(f.raw);
    return b;
  }
  const text = HEADER + ('vars' in f ? Object.entries(f.vars).map(([k, v]) => `${k}=${v}\n`).join('') : f.body);
  const b = Buffer.alloc(1024, 'pad' in f && f.pad === 'nul' ? 0 : '#');
  b.write(text);
  return b;
}

const filesOf = (c: Case): EnvFiles => Object.fromEntries(Object.entries(c.files).map(([k, f]) => [k, bytesOf(f)]));

function host(c: Case): { from: string | null; vars?: Record<string, string> } {
  try {
    const r = chooseEnv(filesOf(c));
    return { from: r.from, vars: r.vars };
  } catch (e) {
    if (e instanceof ComposeError && e.code === 'ERR_BOOTENV_UNREADABLE') return { from: null };
    throw e;
  }
}

const device = new Map<string, { from: string | null; vars?: Record<string, string>; output: string; get: { value: string; status: number } }>();

let chrootDir = '';
const ready = useBaseChroot('edgeimage-bootenv-cases-', isRoot, (_work, chroot) => {
  chrootDir = chroot;
  // Each row's files in a folder of its own, laid out as on system-boot.
  TABLE.cases.forEach((c, i) => {
    for (const [key, f] of Object.entries(c.files)) {
      const path = join(chroot, 'cases', String(i), ENV_FILES[key as keyof typeof ENV_FILES]);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytesOf(f));
    }
    mkdirSync(join(chroot, 'cases', String(i), 'EFI/edgeimage'), { recursive: true });
  });
  TABLE.healthy.cases.forEach((c, i) => {
    const block = bytesOf({ vars: c.before });
    for (const [key, bytes] of [['env1', block], ['env2', block], ['lock1', bytesOf({ vars: { editing: '0' } })], ['lock2', bytesOf({ vars: { editing: '0' } })]] as const) {
      const path = join(chroot, 'healthy', String(i), ENV_FILES[key]);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytes);
    }
  });
  // The host's kernel has no vfat, so system-boot is a folder here, and the chroot's /proc a plain
  // folder whose mounts file says it is mounted read-only (bootenv then mounts nothing); what is
  // under test is the device's reading of the four files, its own code.
  mkdirSync(join(chroot, 'run/edgeimage'), { recursive: true });
  writeFileSync(join(chroot, 'run/edgeimage/slot-name'), 'a\n');
  writeFileSync(join(chroot, 'run/edgeimage/devices'), 'boot_dev=/dev/vda1\n');
  writeFileSync(join(chroot, 'proc/mounts'), '/dev/vda1 /run/edgeimage/boot vfat ro,nosuid,nodev,noexec,noatime 0 0\n');
  // all rows in one chroot
  const script = TABLE.cases
    .map((_, i) => `ln -sfn /cases/${i} /run/edgeimage/boot; { /run/edgeimage/agent/lib/edgeimage/bootenv which; echo "rc=$?"; /run/edgeimage/agent/lib/edgeimage/bootenv show; echo "rc=$?"; } > /cases/${i}.out 2>&1; /run/edgeimage/agent/lib/edgeimage/bootenv get edge_status > /cases/${i}.get 2>/dev/null; echo "$?" > /cases/${i}.getrc`)
    .join('\n') +
    // the health check's write, each row on a tmpfs of its own mounted read-only (bootenv remounts
    // it read-write to write, as on the device): its output and exit status, then what it left
    TABLE.healthy.cases
      .map((_, i) => `rm -f /run/edgeimage/boot; mkdir -p /run/edgeimage/boot; mount -t tmpfs tmpfs /run/edgeimage/boot; cp -a /healthy/${i}/. /run/edgeimage/boot/; mount -o remount,ro /run/edgeimage/boot; /run/edgeimage/agent/lib/edgeimage/bootenv healthy ${TABLE.healthy.cases[i]!.slot} > /healthy/${i}.out 2>&1; echo "rc=$?" >> /healthy/${i}.out; /run/edgeimage/agent/lib/edgeimage/bootenv show > /healthy/${i}.show 2>&1; cp /run/edgeimage/boot/EFI/edgeimage/env2/env /healthy/${i}.env2; umount /run/edgeimage/boot; rmdir /run/edgeimage/boot`)
      .map((l) => `\n${l}`)
      .join('') +
    // `set` refusals, on row 0's (good) files: each refused before writing, and nothing of the
    // run is left in /tmp (its private folder goes on exit)
    `\nln -sfn /cases/0 /run/edgeimage/boot; rm -rf /tmp/*; for kv in 'bad-name=1' 'edge_kargs=a\\b' 'edge_status'; do /run/edgeimage/agent/lib/edgeimage/bootenv set "$kv"; echo "rc=$?"; done > /refusals.out 2>&1; ls -A /tmp > /tmp-after`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --rbind /dev "$1/dev" && chroot "$1" /bin/sh -c "$2"', 'sh', chroot, script], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  if (r.status !== 0) throw new Error(`the device's bootenv could not be run (${r.status}): ${r.stdout}${r.stderr}`);
  TABLE.cases.forEach((c, i) => {
    const output = readFileSync(join(chroot, 'cases', `${i}.out`), 'utf8');
    // what the health check and edge-update read: `bootenv get`, its value and its exit status
    const get = { value: readFileSync(join(chroot, 'cases', `${i}.get`), 'utf8').replace(/\n$/, ''), status: Number(readFileSync(join(chroot, 'cases', `${i}.getrc`), 'utf8')) };
    const lines = output.split('\n');
    const rc = lines.flatMap((l, n) => (/^rc=\d+$/.test(l) ? [n] : []));
    if (rc.length !== 2) throw new Error(`${c.name}: unexpected output of the device's bootenv:\n${output}`);
    if (lines[rc[0]!] !== 'rc=0') {
      device.set(c.name, { from: null, output, get });
      return;
    }
    const vars = Object.fromEntries(lines.slice(rc[0]! + 1, rc[1]).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    device.set(c.name, { from: lines[rc[0]! - 1]!, vars, output, get });
  });
});

requires(missingRoot('the base chroot')).test('device: bootenv set refuses a bad name and a backslash before writing, and leaves nothing in /tmp', () => {
  ready();
  const chroot = chrootDir;
  expect(readFileSync(join(chroot, 'refusals.out'), 'utf8')).toBe(
    'bootenv: not a variable name: bad-name\nrc=1\nbootenv: the value of edge_kargs holds a backslash or a newline, which a GRUB environment block cannot hold\nrc=1\nbootenv: not VAR=VALUE: edge_status\nrc=1\n',
  );
  expect(readFileSync(join(chroot, 'tmp-after'), 'utf8')).toBe('');
  // the files it was refused on are as they were
  expect(readFileSync(join(chroot, 'cases/0', ENV_FILES.env1))).toEqual(bytesOf(TABLE.cases[0]!.files.env1!));
});

/**
 * `bootenv set` with /tmp full, then with one page free (a review's finding: dd copied a cut block
 * without a word and `set` wiped every variable, exit 0). system-boot is a tmpfs mounted read-only
 * here (so the device's remounts work on a real mount), /tmp a tmpfs of two pages.
 */
requires(missingRoot('the base chroot')).test('device: bootenv set with /tmp full is refused and writes nothing; with one page free it writes every variable, in both copies', () => {
  ready();
  const chroot = chrootDir;
  const boot = '/run/edgeimage/boot';
  const before = bytesOf(TABLE.cases[0]!.files.env1!);
  const script = [
    'set -e',
    `rm -f ${boot}; mkdir -p ${boot}; mount -t tmpfs tmpfs ${boot}; cp -a /cases/0/. ${boot}/; mount -o remount,ro ${boot}`,
    'mount -t tmpfs -o size=8k tmpfs /tmp; dd if=/dev/zero of=/tmp/filler bs=4096 count=4 2>/dev/null || true',
    'set +e',
    '/run/edgeimage/agent/lib/edgeimage/bootenv set edge_status=trying > /full.out 2>&1; echo "rc=$?" >> /full.out',
    `cp ${boot}/EFI/edgeimage/env1/env /full.env1; cp ${boot}/EFI/edgeimage/env2/env /full.env2; ls -A /tmp > /full.tmp`,
    // one page free: the variables stay in memory, only the 1 KiB block needs /tmp
    'rm /tmp/filler; dd if=/dev/zero of=/tmp/filler bs=4096 count=1 2>/dev/null',
    '/run/edgeimage/agent/lib/edgeimage/bootenv set edge_status=trying > /page.out 2>&1; echo "rc=$?" >> /page.out',
    `/run/edgeimage/agent/lib/edgeimage/bootenv show > /page.show; cp ${boot}/EFI/edgeimage/env2/env /page.env2`,
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --rbind /dev "$1/dev" && chroot "$1" /bin/sh -c "$2"', 'sh', chroot, script], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  expect(`${r.status} ${r.stderr}`).toBe('0 ');
  expect(readFileSync(join(chroot, 'full.out'), 'utf8')).toMatch(/^(sh: write error: No space left on device\n)?bootenv: cannot write \/tmp\/bootenv\.\w+\/block \(is \/tmp full\?\); \/run\/edgeimage\/boot\/EFI\/edgeimage\/env1\/lock was not written\nrc=1\n$/);
  expect(readFileSync(join(chroot, 'full.env1'))).toEqual(before);
  expect(readFileSync(join(chroot, 'full.env2'))).toEqual(bytesOf(TABLE.cases[0]!.files.env2!));
  expect(readFileSync(join(chroot, 'full.tmp'), 'utf8')).toBe('filler\n');
  expect(readFileSync(join(chroot, 'page.out'), 'utf8')).toBe('rc=0\n');
  const vars = { ...(TABLE.cases[0]!.expect.vars ?? {}), edge_status: 'trying' };
  const shown = readFileSync(join(chroot, 'page.show'), 'utf8');
  for (const [k, v] of Object.entries(vars)) expect(shown).toContain(`${k}=${v}\n`);
  expect(readFileSync(join(chroot, 'page.env2'), 'utf8')).toContain('edge_status=trying\n');
});

describe('the boot-environment cases (bundles/bootloader/env-cases.json)', () => {
  test('the table covers the cases the contract names', () => {
    const names = TABLE.cases.map((c) => c.name).join('\n');
    for (const want of [/both copies good/, /lock1 editing=1/, /lock2 editing=1/, /both locks/, /env1 missing/, /cut short/, /without the header/, /NUL/, /both copies invalid/, /lock1 says editing=1 but is not a block/]) expect(names).toMatch(want);
  });

  describe.each(TABLE.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    test('host: chooseEnv', () => {
      expect(host(c)).toEqual(c.expect.from === null ? { from: null } : c.expect);
    });
    requires(missingRoot('the base chroot')).test('device: bootenv (base chroot)', () => {
      ready();
      const d = device.get(c.name)!;
      expect({ from: d.from, ...(d.vars ? { vars: d.vars } : {}), ...(d.from === null ? { output: d.output } : {}) }).toEqual(
        c.expect.from === null ? { from: null, output: expect.stringContaining('bootenv: neither') } : c.expect,
      );
      expect(d.get).toEqual(c.expect.from === null ? { value: '', status: 1 } : { value: c.expect.vars?.edge_status ?? '', status: 0 });
    });
  });
});

describe('the boot counting of the state machine (env-cases.json "counting"): one start of the bootloader', () => {
  test('the table covers counting, the fallback, a slot that does not load, and no bootable slot', () => {
    const names = TABLE.counting.cases.map((c) => c.name).join('\n');
    for (const want of [/count empty/, /count 3 \(3 boots/, /no bootable slot/, /garbage count/, /does not load/, /status try/, /status trying/, /no usable copy/]) expect(names).toMatch(want);
  });
  test.each(TABLE.counting.cases.map((c) => [c.name, c] as const))('host: bootloaderStart: %s', (_name, c) => {
    const r = bootloaderStart(c.before ?? undefined, (slot) => !c.fails.includes(slot));
    expect({ attempts: r.attempts, boots: r.boots, vars: r.vars, written: r.written }).toEqual(c.expect);
  });
});

describe('the health check\'s write (env-cases.json "healthy")', () => {
  describe.each(TABLE.healthy.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    test('host: healthyChanges, written with setEnvVars', () => {
      const changes = healthyChanges(c.before, c.slot);
      expect(changes === null ? null : 'edge_slot' in changes ? 'committed' : 'confirmed').toBe(c.expect.result);
      expect(changes === null ? c.before : setEnvVars(c.before, changes)).toEqual(c.expect.vars);
    });
    requires(missingRoot('the base chroot')).test('device: bootenv healthy SLOT (base chroot, a real mount)', () => {
      ready();
      const i = TABLE.healthy.cases.indexOf(c);
      expect(readFileSync(join(chrootDir, 'healthy', `${i}.out`), 'utf8')).toBe(`${c.expect.result === null ? '' : `${c.expect.result}\n`}rc=0\n`);
      const shown = Object.fromEntries(readFileSync(join(chrootDir, 'healthy', `${i}.show`), 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(shown).toEqual(c.expect.vars);
      // both copies written (or neither)
      expect(readFileSync(join(chrootDir, 'healthy', `${i}.env2`))).toEqual(bytesOf({ vars: c.expect.result === null ? c.before : shown }));
    });
  });
});
