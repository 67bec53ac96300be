/**
 * The device agent's systemd generator (bundles/edge-agent/lib/systemd/edgeimage-generator) and its
 * snap.yaml reader (snap-apps), run for real on the host: busybox sh with only busybox applets
 * first on the PATH, as under the agent on a device, against fixture trees of the run folder
 * (EDGE_RUN, a test-only override) with app bundles' meta/snap.yaml. The units it writes are checked
 * as text and by systemd's own `systemd-analyze verify` (in a root with the host's unit folder and
 * the commands they name). Everything in snap.yaml is hostile: each rule gets the attack, and the
 * app (or the bundle) is left out with a kernel-log line naming the file, the app, the key, what
 * was expected and what was found, while the rest is still generated and the boot goes on (exit 0).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from '@edgeimage/testkit/repo';
import { firstMissing, missingRoot, requires } from '@edgeimage/testkit/skips';

const GENERATOR = join(REPO, 'bundles/edge-agent/lib/systemd/edgeimage-generator');
const hasTool = (t: string) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;
const { describe: bbDescribe } = requires(hasTool('busybox') ? undefined : 'busybox is not installed');
const { test: verifyTest } = requires(hasTool('busybox') && hasTool('systemd-analyze') && existsSync('/usr/lib/systemd/system/multi-user.target') ? undefined : 'systemd-analyze (systemd) is not installed');

const { test: rootTest } = requires(firstMissing(missingRoot('a mount namespace'), hasTool('unshare') ? undefined : 'unshare is not installed'));

let top: string;
let n = 0;
/** busybox and its applet links, as the agent's bin/: made once, linked into every run folder */
let agentBin: string;
beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), 'edgeimage-systemd-'));
  agentBin = join(top, 'agent-bin');
  mkdirSync(agentBin);
  if (!hasTool('busybox')) return;
  const applets = spawnSync('busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const bb = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  for (const a of applets) symlinkSync(bb, join(agentBin, a));
});
afterAll(() => rmSync(top, { recursive: true, force: true }));

interface Device {
  slot?: string;
  slotEnv?: string;
  verifiedEnv?: string;
  /** bundle folder name → snap.yaml text (or null: a folder without one) */
  snaps: Record<string, string | null>;
  /** The slot's update.conf (an image built with --update-url). */
  updateConf?: string;
}
interface Generated {
  status: number | null;
  stderr: string;
  out: string;
  run: string;
  units: Record<string, string>;
  kmsg: string;
  list: string | undefined;
  wants: (target: string) => string[];
}

/** A run folder as the initramfs leaves it, the generator run on it into a fresh output folder. */
function generate(d: Device, extraEnv: Record<string, string> = {}): Generated {
  const w = join(top, `w${n++}`);
  const run = join(w, 'run');
  mkdirSync(join(run, 'agent'), { recursive: true });
  symlinkSync(agentBin, join(run, 'agent/bin'));
  symlinkSync(join(REPO, 'bundles/edge-agent/lib'), join(run, 'agent/lib'));
  mkdirSync(join(run, 'slot/boot'), { recursive: true });
  if (d.slot !== undefined) writeFileSync(join(run, 'slot-name'), d.slot);
  if (d.slotEnv !== undefined) writeFileSync(join(run, 'slot/boot/slot.env'), d.slotEnv);
  if (d.verifiedEnv !== undefined) writeFileSync(join(run, 'verified.env'), d.verifiedEnv);
  if (d.updateConf !== undefined) writeFileSync(join(run, 'slot/update.conf'), d.updateConf);
  mkdirSync(join(run, 'snap'));
  for (const [name, yaml] of Object.entries(d.snaps)) {
    mkdirSync(join(run, 'snap', name, 'meta'), { recursive: true });
    if (yaml !== null) writeFileSync(join(run, 'snap', name, 'meta/snap.yaml'), yaml);
  }
  const out = join(w, 'normal');
  for (const dir of ['normal', 'early', 'late']) mkdirSync(join(w, dir));
  const kmsg = join(w, 'kmsg');
  const r = spawnSync('busybox', ['sh', GENERATOR, out, join(w, 'early'), join(w, 'late')], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: '/usr/bin:/bin', EDGE_RUN: run, EDGE_KMSG: kmsg, ...extraEnv },
  });
  const units: Record<string, string> = {};
  for (const f of readdirSync(out)) if (/\.(service|mount)$/.test(f)) units[f] = readFileSync(join(out, f), 'utf8');
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);
  return {
    status: r.status,
    stderr: r.stderr,
    out,
    run,
    units,
    kmsg: read(kmsg) ?? '',
    list: read(join(run, 'services/list')),
    wants: (target) => {
      const dir = join(out, `${target}.wants`);
      return existsSync(dir) ? readdirSync(dir).sort().map((l) => `${l} -> ${readlinkSync(join(dir, l))}`) : [];
    },
  };
}

const snapYaml = (name: string, apps: string, head = "version: '1.0'\ntype: app\n") => `name: ${name}\n${head}apps:\n${apps}`;
const ROBOT = snapYaml(
  'robot-sensor',
  `  sensor:
    command: bin/sensor --port 8080
    daemon: simple
    restart-condition: always
    health-command: bin/check
    plugs: [network-bind]
  logger:
    command: bin/logger
    daemon: simple
    restart-condition: always
    after: [sensor]
  cli:
    command: bin/cli
`,
  "version: '1.0'\ntype: app\nsummary: a sensor\ndescription: |\n  apps:\n    fake:\n      daemon: simple\n",
);
const unitLines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

/**
 * systemd-analyze verify of every unit generated, in a root holding the host's units (targets)
 * and an executable at each command path the units name; returns its status and output.
 */
function verify(g: Generated): { status: number | null; output: string } {
  const root = join(dirname(g.out), 'root');
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const dest = join(root, 'etc/systemd/system');
  cpSync(g.out, dest, { recursive: true, verbatimSymlinks: true });
  for (const text of Object.values(g.units)) {
    for (const m of text.matchAll(/^Exec(?:Start|StartPre)=-?(\/\S+)/gm)) {
      const p = join(root, m[1]!);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, '#!/bin/sh\n');
      chmodSync(p, 0o755);
    }
  }
  const files = Object.keys(g.units).map((u) => join(dest, u));
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...files], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

bbDescribe('edgeimage-generator: the units of a good bundle', () => {
  let g: Generated;
  beforeAll(() => {
    g = generate({ slot: 'a\n', slotEnv: 'EDGE_BASE=bundles/b_1.snap\nEDGE_GRADE=dangerous\n', snaps: { 'robot-sensor': ROBOT } });
  });

  test('one snap.NAME.APP.service per daemon app, in the normal folder, wanted by multi-user.target; nothing for a non-daemon app', () => {
    expect(g.status).toBe(0);
    expect(g.kmsg).toBe('');
    expect(Object.keys(g.units).sort()).toEqual([
      'edgeimage-health.service',
      'edgeimage-rc.service',
      'snap.robot-sensor.logger.service',
      'snap.robot-sensor.sensor.health.service',
      'snap.robot-sensor.sensor.service',
      'tmp.mount',
    ]);
    expect(g.wants('multi-user.target')).toEqual([
      'edgeimage-health.service -> ../edgeimage-health.service',
      'snap.robot-sensor.logger.service -> ../snap.robot-sensor.logger.service',
      'snap.robot-sensor.sensor.service -> ../snap.robot-sensor.sensor.service',
    ]);
    expect(g.wants('sysinit.target')).toEqual(['edgeimage-rc.service -> ../edgeimage-rc.service']);
    // the root is read-only: /tmp a tmpfs (a DynamicUser service's private /tmp is made under it)
    expect(g.wants('local-fs.target')).toEqual(['tmp.mount -> ../tmp.mount']);
    expect(unitLines(g.units['tmp.mount']!)).toEqual(expect.arrayContaining(['[Mount]', 'What=tmpfs', 'Where=/tmp', 'Type=tmpfs', 'Options=mode=1777,strictatime,nosuid,nodev,size=50%,nr_inodes=1m']));
    // no temp files left behind
    expect(readdirSync(g.out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  test('the service: command under $SNAP, the environment, a user of its own (DynamicUser) with SNAP_DATA as its state folder, restart policy, console output', () => {
    expect(unitLines(g.units['snap.robot-sensor.sensor.service']!)).toEqual([
      '[Unit]',
      'Description=Service for snap application robot-sensor.sensor',
      'Wants=network.target',
      'After=network.target',
      '[Service]',
      'Type=simple',
      'ExecStart=/run/edgeimage/snap/robot-sensor/bin/sensor --port 8080',
      'Environment=SNAP=/run/edgeimage/snap/robot-sensor',
      'Environment=SNAP_NAME=robot-sensor',
      'Environment=SNAP_VERSION=1.0',
      'Environment=SNAP_DATA=/var/lib/snap/robot-sensor',
      'Environment=EDGE_SLOT=a',
      'Environment=EDGE_GRADE=dangerous',
      'DynamicUser=yes',
      'User=snap-robot-sensor',
      'StateDirectory=snap/robot-sensor',
      'WorkingDirectory=/var/lib/snap/robot-sensor',
      'SyslogIdentifier=robot-sensor.sensor',
      'Restart=always',
      'RestartSec=100ms',
      'TimeoutStopSec=30000ms',
      'StandardOutput=journal+console',
      'StandardError=journal+console',
      '[Install]',
      'WantedBy=multi-user.target',
    ]);
    // the device's paths, never the test's run folder
    expect(Object.values(g.units).join('\n')).not.toContain(g.run);
  });

  test('after: [sensor] orders and pulls in the other app of the same snap', () => {
    const logger = unitLines(g.units['snap.robot-sensor.logger.service']!);
    expect(logger).toContain('After=snap.robot-sensor.sensor.service');
    expect(logger).toContain('Wants=snap.robot-sensor.sensor.service');
    expect(logger).toContain('ExecStart=/run/edgeimage/snap/robot-sensor/bin/logger');
  });

  test('health-command: a oneshot unit as the same user, with the same environment, bounded, not started at boot', () => {
    const h = unitLines(g.units['snap.robot-sensor.sensor.health.service']!);
    expect(h).toContain('Type=oneshot');
    expect(h).toContain('ExecStart=/run/edgeimage/snap/robot-sensor/bin/check');
    expect(h).toContain('TimeoutStartSec=30s');
    expect(h).not.toContain('[Install]');
    const service = unitLines(g.units['snap.robot-sensor.sensor.service']!);
    for (const l of service.filter((x) => /^(Environment|DynamicUser|User|StateDirectory|WorkingDirectory)=/.test(x))) expect(h).toContain(l);
  });

  test('edgeimage-rc (early, oneshot) and edgeimage-health (after multi-user and every snap service, output on the console)', () => {
    const rc = unitLines(g.units['edgeimage-rc.service']!);
    expect(rc).toEqual(expect.arrayContaining(['DefaultDependencies=no', 'Before=sysinit.target shutdown.target', 'Type=oneshot', 'ExecStart=/run/edgeimage/agent/lib/systemd/edgeimage-rc', 'WantedBy=sysinit.target']));
    const health = unitLines(g.units['edgeimage-health.service']!);
    expect(health).toEqual(
      expect.arrayContaining([
        'After=multi-user.target snap.robot-sensor.sensor.service snap.robot-sensor.logger.service',
        'Type=oneshot',
        'ExecStart=/run/edgeimage/agent/lib/edgeimage/health',
        'StandardOutput=journal+console',
        'WantedBy=multi-user.target',
      ]),
    );
  });

  test('/run/edgeimage/services/list names the services as the busybox supervisor does (SNAP APP COMMAND)', () => {
    expect(g.list).toBe('robot-sensor sensor bin/sensor --port 8080\nrobot-sensor logger bin/logger\n');
  });

  verifyTest('systemd-analyze verify accepts every unit', () => {
    const v = verify(g);
    expect(v.output).toBe('');
    expect(v.status).toBe(0);
  });

  test('the reference bundles read as they are (robot-sensor, hello-kiosk)', () => {
    const r = generate({
      slot: 'b',
      snaps: {
        'robot-sensor': readFileSync(join(REPO, 'bundles/robot-sensor/meta/snap.yaml'), 'utf8'),
        'hello-kiosk': readFileSync(join(REPO, 'bundles/hello-kiosk/meta/snap.yaml'), 'utf8'),
      },
    });
    expect(r.kmsg).toBe('');
    expect(Object.keys(r.units)).toEqual(expect.arrayContaining(['snap.robot-sensor.sensor.service', 'snap.robot-sensor.logger.service', 'snap.robot-sensor.sensor.health.service', 'snap.hello-kiosk.hello-kiosk.service']));
    expect(r.list).toContain('hello-kiosk hello-kiosk bin/hello-kiosk\n');
  });
});

bbDescribe('edgeimage-generator: the network update poller', () => {
  test('an image built with --update-url: edgeimage-fetch.service runs edge-fetch daemon after the health check and the network, wanted by no target (the health check starts it once healthy)', () => {
    const g = generate({ slot: 'a\n', slotEnv: 'EDGE_BASE=bundles/b_1.snap\nEDGE_GRADE=signed\n', snaps: { 'robot-sensor': ROBOT }, updateConf: 'edgeimage-update-conf: 1\n' });
    expect(g.status).toBe(0);
    const fetch = unitLines(g.units['edgeimage-fetch.service']!);
    expect(fetch).toEqual(expect.arrayContaining(['After=edgeimage-health.service network.target', 'Type=simple', 'ExecStart=/run/edgeimage/agent/lib/edgeimage/edge-fetch daemon', 'Restart=on-failure']));
    expect(fetch.some((l) => l.startsWith('WantedBy='))).toBe(false);
    for (const t of ['multi-user.target', 'sysinit.target', 'network.target']) expect(g.wants(t).filter((l) => l.includes('fetch'))).toEqual([]);
  });
  test('without update.conf: no poller unit', () => {
    const g = generate({ slot: 'a\n', slotEnv: 'EDGE_BASE=bundles/b_1.snap\nEDGE_GRADE=signed\n', snaps: { 'robot-sensor': ROBOT } });
    expect(g.status).toBe(0);
    expect(g.units['edgeimage-fetch.service']).toBeUndefined();
  });
});

bbDescribe('edgeimage-generator: the keys of an app', () => {
  const one = (app: string, extra: Partial<Device> = {}) => generate({ slot: 'a', snaps: { s: snapYaml('s', `  app:\n${app}`) }, ...extra });
  const service = (g: Generated) => unitLines(g.units['snap.s.app.service'] ?? '');

  test.each([
    ['always', 'always'],
    ['on-success', 'on-success'],
    ['on-failure', 'on-failure'],
    ['on-abnormal', 'on-abnormal'],
    ['on-abort', 'on-abort'],
    ['on-watchdog', 'on-watchdog'],
    ['never', 'no'],
  ])('restart-condition: %s → Restart=%s', (cond, restart) => {
    expect(service(one(`    command: bin/a\n    daemon: simple\n    restart-condition: ${cond}\n`))).toContain(`Restart=${restart}`);
  });

  test('no restart-condition: on-failure (snapd default); no restart-delay: 100ms (systemd default); no stop-timeout: 30 s', () => {
    expect(service(one('    command: bin/a\n    daemon: simple\n'))).toEqual(expect.arrayContaining(['Restart=on-failure', 'RestartSec=100ms', 'TimeoutStopSec=30000ms']));
  });

  test.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['"2s"', 2000],
    ['0', 0],
    ['1h', 3_600_000],
  ])('restart-delay: %s → RestartSec=%d ms', (delay, ms) => {
    expect(service(one(`    command: bin/a\n    daemon: simple\n    restart-delay: ${delay}\n`))).toContain(`RestartSec=${ms}ms`);
  });

  test.each([['simple'], ['forking'], ['oneshot'], ['notify']])('daemon: %s → Type=%s', (type) => {
    const s = service(one(`    command: bin/a\n    daemon: ${type}\n`));
    expect(s).toContain(`Type=${type}`);
    // a oneshot stays active after it ran, as snapd writes it: the health check sees it up
    expect(s.includes('RemainAfterExit=yes')).toBe(type === 'oneshot');
  });

  test('run-as: root (edgeimage key): root, SNAP_DATA=/writable/apps/NAME made before the start, no dynamic user', () => {
    const s = service(one('    command: bin/a\n    daemon: simple\n    run-as: root\n'));
    expect(s).toEqual(expect.arrayContaining(['Environment=SNAP_DATA=/writable/apps/s', 'ExecStartPre=/run/edgeimage/agent/bin/mkdir -p /writable/apps/s', 'WorkingDirectory=-/writable/apps/s']));
    expect(s.filter((l) => /^(DynamicUser|User|StateDirectory)=/.test(l))).toEqual([]);
  });

  test('$SNAP_DATA and the other variables the unit sets, inside a word, are written ${NAME} (systemd expands that form inside a word)', () => {
    expect(service(one('    command: bin/a --data $SNAP_DATA/db --v:$SNAP_VERSION\n    daemon: simple\n'))).toContain('ExecStart=/run/edgeimage/snap/s/bin/a --data ${SNAP_DATA}/db --v:${SNAP_VERSION}');
  });

  test('a long snap name gets a dynamic user name of at most 31 characters, the same for every app of the snap', () => {
    const name = 'a-very-long-snap-name-for-users';
    const g = generate({ slot: 'a', snaps: { [name]: snapYaml(name, '  x:\n    command: bin/a\n    daemon: simple\n  y:\n    command: bin/b\n    daemon: simple\n') } });
    const users = Object.values(g.units).flatMap((t) => unitLines(t).filter((l) => l.startsWith('User=')));
    expect(users.length).toBe(2);
    expect(new Set(users).size).toBe(1);
    expect(users[0]!.length - 'User='.length).toBeLessThanOrEqual(31);
    expect(users[0]).toMatch(/^User=snap_[0-9a-f]{26}$/);
  });

  test('a long snap name never gets the user of another snap: its shortened name is not the plain name of a 25-character snap (review F4)', () => {
    const long = 'robot-sensor-calibration-daemon';
    const apps = '  d:\n    command: bin/d\n    daemon: simple\n';
    const first = generate({ slot: 'a', snaps: { [long]: snapYaml(long, apps) } });
    const user = unitLines(first.units[`snap.${long}.d.service`]!).find((l) => l.startsWith('User='))!;
    // the old shortening (16 characters, "-", 8 hex digits) gave exactly the plain user of this snap
    const short = 'robot-sensor-cal-cae8d12f';
    const second = generate({ slot: 'a', snaps: { [long]: snapYaml(long, apps), [short]: snapYaml(short, apps) } });
    const users = Object.entries(second.units).filter(([f]) => f.endsWith('.d.service')).map(([, t]) => unitLines(t).find((l) => l.startsWith('User='))!);
    expect(users).toHaveLength(2);
    expect(new Set(users).size).toBe(2);
    expect(users).toContain(`User=snap-${short}`);
    expect(users).toContain(user);
  });

  test.each([
    ['slot.env', { slotEnv: 'EDGE_GRADE=dangerous\n' }, 'dangerous'],
    ['verified.env over slot.env (the signed payload wins)', { slotEnv: 'EDGE_GRADE=dangerous\n', verifiedEnv: 'EDGE_GRADE=signed\n' }, 'signed'],
    ['neither', {}, 'unknown'],
    ['a grade that is none of dangerous/signed/secured (no unit-file injection through it)', { slotEnv: 'EDGE_GRADE=x\nExecStartPre=/bin/sh %n\n' }, 'unknown'],
  ])('EDGE_GRADE from %s', (_what, env, grade) => {
    expect(service(one('    command: bin/a\n    daemon: simple\n', env))).toContain(`Environment=EDGE_GRADE=${grade}`);
  });

  test.each([['b\n', 'b'], ['c', 'unknown'], ['a\nExecStartPre=/bin/sh', 'unknown']])('EDGE_SLOT from slot-name %j: %s', (slot, want) => {
    expect(service(one('    command: bin/a\n    daemon: simple\n', { slot }))).toContain(`Environment=EDGE_SLOT=${want}`);
  });

  verifyTest('systemd-analyze verify accepts the units of every daemon type, restart condition and user', () => {
    const apps = [
      ...['simple', 'forking', 'oneshot', 'notify'].map((t) => `  t-${t}:\n    command: bin/${t} --x $SNAP_DATA/y\n    daemon: ${t}\n    restart-condition: on-failure\n    health-command: bin/check $SNAP\n`),
      ...['always', 'on-success', 'on-abnormal', 'on-abort', 'on-watchdog', 'never'].map((c) => `  r-${c}:\n    command: bin/r\n    daemon: simple\n    restart-condition: ${c}\n    restart-delay: 1m30.5s\n    stop-timeout: 5s\n`),
      '  root:\n    command: bin/root\n    daemon: simple\n    run-as: root\n    after: [t-simple, r-always]\n',
    ].join('');
    const g = generate({ slot: 'a', slotEnv: 'EDGE_GRADE=signed\n', snaps: { s: snapYaml('s', apps, "version: 1.0+git~2:x\n") } });
    expect(g.kmsg).toBe('');
    expect(Object.keys(g.units).length).toBe(11 + 4 + 3);
    const v = verify(g);
    expect(v.output).toBe('');
    expect(v.status).toBe(0);
  });
});

/**
 * Each hostile app next to a good one: the bad one is left out with a kernel-log line that names
 * the file, the app, the key and what was wrong; the good one is still generated; exit 0.
 */
bbDescribe('edgeimage-generator: hostile apps are left out, the rest generated', () => {
  const GOOD = '  good:\n    command: bin/good\n    daemon: simple\n';
  test.each([
    ['newline through a YAML escape (backslash)', '    command: "bin/x\\nExecStartPre=/bin/sh"\n    daemon: simple\n', 'command "bin/x\\nExecStartPre=/bin/sh" has a character outside A-Z a-z 0-9 / . _ # : $ - and space'],
    ['a systemd specifier (%)', '    command: bin/x %h\n    daemon: simple\n', 'command "bin/x %h" has a character outside'],
    ['quotes inside', '    command: bin/x "a b"\n    daemon: simple\n', 'command "bin/x "a b"" has a character outside'],
    ['a command separator (;)', '    command: bin/x ; /bin/sh\n    daemon: simple\n', 'has a character outside'],
    ['an absolute program', '    command: /bin/sh -c id\n    daemon: simple\n', 'command "/bin/sh -c id" starts with an absolute path: it must be a path inside the snap'],
    ['.. out of the snap', '    command: bin/../../../bin/sh\n    daemon: simple\n', 'command "bin/../../../bin/sh" leaves the snap (..)'],
    ['.. as the program', '    command: ..\n    daemon: simple\n', 'leaves the snap (..)'],
    ['a variable as the program', '    command: $SNAP_DATA/x\n    daemon: simple\n', 'the program path cannot hold a variable'],
    ['a variable the unit does not set', '    command: bin/x $HOME\n    daemon: simple\n', 'uses $HOME: only $SNAP, $SNAP_NAME, $SNAP_VERSION, $SNAP_DATA, $EDGE_SLOT, $EDGE_GRADE'],
    ['a bare $', '    command: bin/x $\n    daemon: simple\n', 'uses $: only'],
    ['no command', '    daemon: simple\n', 'command is empty'],
    ['a command of more than 1024 characters', `    command: bin/x ${'a'.repeat(1100)}\n    daemon: simple\n`, 'command is longer than 1024 characters'],
    ['a command of more than 64 words', `    command: bin/x ${'a '.repeat(70)}\n    daemon: simple\n`, 'command has more than 64 words'],
    ['daemon: dbus (not supported)', '    command: bin/x\n    daemon: dbus\n', 'daemon: "dbus" is not one of simple, forking, oneshot, notify'],
    ['daemon: a unit-file line', '    command: bin/x\n    daemon: simple\\nUser=root\n', 'daemon: "simple\\nUser=root" is not one of'],
    ['restart-condition: sometimes', '    command: bin/x\n    daemon: simple\n    restart-condition: sometimes\n', 'restart-condition: "sometimes" is not one of always, on-success, on-failure, on-abnormal, on-abort, on-watchdog, never'],
    ['restart-condition: always on a oneshot (systemd refuses it)', '    command: bin/x\n    daemon: oneshot\n    restart-condition: always\n', 'restart-condition: always is not allowed for a oneshot daemon'],
    ['restart-delay without a unit', '    command: bin/x\n    daemon: simple\n    restart-delay: 10\n', 'restart-delay: "10" is not a duration (500ms, 10s, 1m30s) of at most 1h'],
    ['restart-delay above 1 h', '    command: bin/x\n    daemon: simple\n    restart-delay: 2h\n', 'restart-delay: "2h" is not a duration'],
    ['restart-delay in days', '    command: bin/x\n    daemon: simple\n    restart-delay: 1d\n', 'restart-delay: "1d" is not a duration'],
    ['a negative restart-delay', '    command: bin/x\n    daemon: simple\n    restart-delay: -1s\n', 'restart-delay: "-1s" is not a duration'],
    ['a huge number in restart-delay', `    command: bin/x\n    daemon: simple\n    restart-delay: ${'9'.repeat(40)}s\n`, 'restart-delay: "999'],
    ['stop-timeout: forever', '    command: bin/x\n    daemon: simple\n    stop-timeout: forever\n', 'stop-timeout: "forever" is not a duration'],
    ['run-as: another user', '    command: bin/x\n    daemon: simple\n    run-as: nobody\n', 'run-as: "nobody" is not root (leave it out for a user of its own)'],
    ['after: an app that is not there', '    command: bin/x\n    daemon: simple\n    after: [ghost]\n', 'after: ghost is not another daemon app of this snap'],
    ['after: itself', '    command: bin/x\n    daemon: simple\n    after: [app]\n', 'after: app is not another daemon app of this snap'],
    ['after: not a list', '    command: bin/x\n    daemon: simple\n    after: good\n', 'after: "good" is not a list ([app, ...])'],
    ['after: a name with a dot (unit-name injection)', '    command: bin/x\n    daemon: simple\n    after: [good.service]\n', 'after: "good.service" is not an app name'],
    ['health-command out of the snap', '    command: bin/x\n    daemon: simple\n    health-command: ../../bin/true\n', 'health-command "../../bin/true" leaves the snap (..)'],
    ['health-command with a specifier', '    command: bin/x\n    daemon: simple\n    health-command: bin/check %u\n', 'health-command "bin/check %u" has a character outside'],
    ['a key given twice', '    command: bin/x\n    command: bin/y\n    daemon: simple\n', 'command is given twice'],
    ['a flow mapping', '    {command: bin/x, daemon: simple}\n', null],
  ])('%s', (_what, app, message) => {
    const file = 'snap.yaml';
    const g = generate({ slot: 'a', snaps: { s: snapYaml('s', `${GOOD}  app:\n${app}`) } });
    expect(g.status).toBe(0);
    expect(Object.keys(g.units)).toContain('snap.s.good.service');
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.s.app'))).toEqual([]);
    expect(g.list).toBe('s good bin/good\n');
    if (message !== null) {
      const line = g.kmsg.split('\n').find((l) => l.includes(': app app: '));
      expect(line).toContain(`<4>edgeimage-generator: snap-apps: ${join(g.run, 'snap/s/meta', file)}: app app: `);
      expect(line).toContain(message);
      expect(line).toMatch(/; the app is left out$/);
    }
    // what was generated is still a unit systemd takes, whatever the attack
    for (const [name, text] of Object.entries(g.units)) if (name !== 'tmp.mount') expect(text).not.toMatch(/%|\\|"/);
  });

  test.each([
    ['upper case and _', 'Evil_App'],
    ['a dot (unit-name injection)', 'a.b'],
    ['a leading hyphen', '-x'],
    ['41 characters', 'a'.repeat(41)],
  ])('an app name with %s is left out', (_what, name) => {
    const g = generate({ slot: 'a', snaps: { s: snapYaml('s', `${GOOD}  ${name}:\n    command: bin/x\n    daemon: simple\n`) } });
    expect(g.kmsg).toContain(`app "${name}" (line `);
    expect(g.kmsg).toContain('an app name is 1-40 of a-z 0-9 and single hyphens inside; the app is left out');
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.'))).toEqual(['snap.s.good.service']);
  });

  test('an ordering cycle: the apps on it are left out, the others kept', () => {
    const g = generate({ slot: 'a', snaps: { s: snapYaml('s', `${GOOD}  c1:\n    command: bin/x\n    daemon: simple\n    after: [c2]\n  c2:\n    command: bin/x\n    daemon: simple\n    after:\n    - c1\n  tail:\n    command: bin/x\n    daemon: simple\n    after: [good]\n`) } });
    expect(g.kmsg).toContain('app c1: after: c2 orders it in a cycle');
    expect(g.kmsg).toContain('app c2: after: c1 orders it in a cycle');
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.')).sort()).toEqual(['snap.s.good.service', 'snap.s.tail.service']);
  });
});

/** Rules of the whole bundle: nothing from it, a line naming it, the other bundles still generated. */
bbDescribe('edgeimage-generator: a hostile bundle is left out, the others generated', () => {
  const GOOD = snapYaml('good', '  good:\n    command: bin/good\n    daemon: simple\n');
  const app = '  a:\n    command: bin/a\n    daemon: simple\n';
  test.each([
    ['a name that is not the folder it is mounted on', { bad: snapYaml('other', app) }, 'name: "other" is not the name the bundle is mounted as (bad)'],
    ['no name', { bad: `version: '1'\napps:\n${app}` }, 'no name:'],
    ['a version with a space', { bad: snapYaml('bad', app, 'version: 1 0\n') }, 'version: "1 0" is not 1-32 of a-z A-Z 0-9 : . + ~ -'],
    ['a version with a specifier', { bad: snapYaml('bad', app, 'version: 1%n\n') }, 'version: "1%n" is not'],
    ['a version of 33 characters', { bad: snapYaml('bad', app, `version: ${'1'.repeat(33)}\n`) }, 'is not 1-32 of'],
    ['a line of more than 4096 characters', { bad: snapYaml('bad', app, `version: '1'\nsummary: ${'x'.repeat(5000)}\n`) }, 'line 3 is longer than 4096 characters'],
    ['more than 5000 lines', { bad: snapYaml('bad', app, `version: '1'\n${'#\n'.repeat(5001)}`) }, 'more than 5000 lines'],
    ['more than 256 KiB', { bad: snapYaml('bad', app, `version: '1'\ndescription: |\n${`  ${'y'.repeat(100)}\n`.repeat(3000)}`) }, 'bigger than 262144 bytes'],
    ['more than 100 apps', { bad: snapYaml('bad', Array.from({ length: 101 }, (_, i) => `  a${i}:\n    command: bin/a\n    daemon: simple\n`).join('')) }, 'more than 100 apps'],
    ['tab indentation', { bad: snapYaml('bad', '\tx:\n\t\tcommand: bin/a\n') }, 'line 5 is indented with a tab (YAML allows spaces only)'],
    ['flow-style apps', { bad: snapYaml('bad', '', "version: '1'\napps: {a: {command: bin/a, daemon: simple}}\n").replace(/apps:\n$/, '') }, 'apps: line 3: only the block style (one app per line below apps:) is read'],
    ['apps given twice', { bad: `${snapYaml('bad', app)}apps:\n${app}` }, 'apps: is given twice'],
  ])('%s', (_what, snaps, message) => {
    const g = generate({ slot: 'a', snaps: { good: GOOD, ...snaps } });
    expect(g.status).toBe(0);
    const line = g.kmsg.split('\n').find((l) => l.includes('snap-apps: '));
    expect(line).toContain(`<4>edgeimage-generator: snap-apps: ${join(g.run, 'snap/bad/meta/snap.yaml')}: `);
    expect(line).toContain(message);
    expect(g.kmsg).toContain('<4>edgeimage-generator: bad: no services from ');
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.'))).toEqual(['snap.good.good.service']);
    expect(g.list).toBe('good good bin/good\n');
  });

  test('a folder whose name is not a bundle name is not read at all; one without snap.yaml gives nothing', () => {
    const g = generate({ slot: 'a', snaps: { good: GOOD, Bad_Name: snapYaml('Bad_Name', app), empty: null } });
    expect(g.kmsg).toContain(`${join(g.run, 'snap/Bad_Name')}: not a bundle name (a-z 0-9 -): left out`);
    expect(g.kmsg).toContain(`empty: no ${join(g.run, 'snap/empty/meta/snap.yaml')}: no services`);
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.'))).toEqual(['snap.good.good.service']);
  });

  test('more than 64 bundles: the first 64 (in name order) are generated, the rest left out with a line', () => {
    const snaps: Record<string, string> = {};
    for (let i = 0; i < 66; i++) {
      const name = `s${String(i).padStart(2, '0')}`;
      snaps[name] = snapYaml(name, app);
    }
    const g = generate({ slot: 'a', snaps });
    expect(g.kmsg).toContain('more than 64 app bundles: s64 and later ones left out');
    expect(Object.keys(g.units).filter((u) => u.startsWith('snap.')).length).toBe(64);
  });

  test('snap.yaml that cannot be read (a folder) is a line, not a failed boot', () => {
    const g = generate({ slot: 'a', snaps: { good: GOOD, bad: null } });
    mkdirSync(join(g.run, 'snap/bad/meta/snap.yaml'));
    const again = spawnSync('busybox', ['sh', GENERATOR, g.out, g.out, g.out], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', EDGE_RUN: g.run, EDGE_KMSG: join(g.out, '..', 'kmsg2') } });
    expect(again.status).toBe(0);
    expect(readFileSync(join(g.out, '..', 'kmsg2'), 'utf8')).toContain(`bad: no ${join(g.run, 'snap/bad/meta/snap.yaml')}: no services`);
    expect(readFileSync(join(g.run, 'services/list'), 'utf8')).toBe('good good bin/good\n');
  });

  rootTest('run by systemd (SYSTEMD_SCOPE set), EDGE_RUN and EDGE_KMSG are ignored: PID 1 environment comes from the kernel command line, which is not trusted', () => {
    // a mount namespace of its own: a tmpfs on /run holding the device's run folder, a file on /dev/kmsg
    const g = generate({ slot: 'a', snaps: { good: GOOD, bad: snapYaml('other', app) } });
    const w = dirname(g.run);
    const decoy = join(w, 'decoy');
    mkdirSync(join(decoy, 'snap/evil/meta'), { recursive: true });
    writeFileSync(join(decoy, 'snap/evil/meta/snap.yaml'), snapYaml('evil', app));
    writeFileSync(join(w, 'kmsg-dev'), '');
    const script = [
      'set -e',
      'W=$1 G=$2',
      'mount -t tmpfs tmpfs /run',
      'mkdir -p /run/edgeimage',
      'cp -a "$W/run/." /run/edgeimage/',
      'mount --bind "$W/kmsg-dev" /dev/kmsg',
      'rm -rf "$W/out2" && mkdir "$W/out2"',
      'SYSTEMD_SCOPE=system EDGE_RUN="$W/decoy" EDGE_KMSG="$W/decoy-kmsg" busybox sh "$G" "$W/out2" "$W/out2" "$W/out2"',
      'cat /run/edgeimage/services/list',
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', w, GENERATOR], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // the device's run folder was read (good), not the decoy (evil)
    expect(r.stdout).toBe('good good bin/good\n');
    expect(readdirSync(join(w, 'out2')).filter((f) => f.startsWith('snap.'))).toEqual(['snap.good.good.service']);
    expect(existsSync(join(w, 'decoy-kmsg'))).toBe(false);
    expect(readFileSync(join(w, 'kmsg-dev'), 'utf8')).toContain('<4>edgeimage-generator: snap-apps: /run/edgeimage/snap/bad/meta/snap.yaml: name: "other" is not the name the bundle is mounted as (bad)');
  });

  test('no output folder: a line, exit 0', () => {
    const kmsg = join(top, 'kmsg-none');
    const r = spawnSync('busybox', ['sh', GENERATOR], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', EDGE_RUN: join(top, 'nothing'), EDGE_KMSG: kmsg } });
    expect(r.status).toBe(0);
    expect(readFileSync(kmsg, 'utf8')).toContain('no output folder given (none): nothing generated');
  });
});
