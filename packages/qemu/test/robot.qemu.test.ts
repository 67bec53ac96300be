/**
 * The reference robot (issue 14) on pc-amd64 and arm64-uboot: per board a grade dangerous model of
 * the example brand with the Debian base of bundles/robot-base (systemd, built by `edgeimage base
 * build` from its committed lock of the board's architecture), the device agent, and
 * bundles/robot-sensor (python3 services generated as systemd units), published into the
 * reference store and composed by `edgeimage build`. Each booted with its port 8080 forwarded to the host:
 *   1. in one boot: healthy (the sensor's health-command included); POST /crash (a test hook of
 *      grade dangerous images): the sensor exits with status 1, systemd starts it again
 *      (restart-condition: always); the logger's readings of it on the console; /health
 *      (version 1.0, slot a) and /telemetry answered through the forward;
 *   2. the update scenario to revision 2 of the model, whose robot-sensor is 1.1 (`update create
 *      --from` the image): applied to slot b, tried, committed; the kept disk booted again answers
 *      /health with version 1.1 from slot b.
 * The images are scripts/reference-images' robot-BOARD-dangerous (models/robot-BOARD.yaml's
 * grade dangerous twins); the update's model is made here. The rollback and power-cut scenarios
 * of the robot are scenarios-robot.qemu.test.ts' (robot-pc-amd64).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { twinRevision } from '@edgeimage/testkit/model-revision';
import { freePort } from '@edgeimage/testkit/oci-registry';
import { bootTest, DEFAULT_FAILURES, HEALTHY } from '../src/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOOT_TIMEOUT_S = 420;
const BOARDS = [
  { board: 'pc-amd64', arch: 'amd64', qemu: 'qemu-system-x86_64' },
  { board: 'arm64-uboot', arch: 'arm64', qemu: 'qemu-system-aarch64' },
] as const;
const hasQemu = BOARDS.every((b) => spawnSync(b.qemu, ['--version']).status === 0);
const ei = (args: string[]) => spawnSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
const tail = (s: string) => s.split('\n').slice(-25).join('\n');


let work: string;
const images: Record<string, string> = {};
const updates: Record<string, string> = {};
let buildError: string | undefined;

beforeAll(() => {
  if (!hasQemu) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-robot-'));
  const fail = (what: string, r: { status: number | null; stderr: string }) => {
    buildError = `${what} failed (${r.status}):\n${tail(r.stderr)}`;
  };
  // the reference robot's dangerous twins (the only images whose sensor takes POST /crash)
  const ref = spawnSync(join(ROOT, 'scripts/reference-images'), ['--unverified', '--out', work, ...BOARDS.map((b) => `robot-${b.board}-dangerous`)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (ref.status !== 0) return fail('scripts/reference-images', ref);
  for (const p of ref.stdout.trim().split('\n')) images[p.replace(/^.*\/robot-(.*)-dangerous\.img$/, '$1')] = p;
  const store = join(work, 'store');
  const keys = join(ROOT, 'signing-keys.example');
  const trust = ['--no-default-trust', '--trusted', join(keys, 'root.account-key'), '--trusted', join(keys, 'example-root.account'), '--trusted', join(keys, 'store.account-key'), '--trusted', join(keys, 'example-store.account')];
  // revision 2: robot-sensor 1.1 published after the images were built (they keep 1.0)
  const tree11 = join(work, 'robot-sensor-1.1');
  cpSync(join(ROOT, 'bundles/robot-sensor'), tree11, { recursive: true });
  const y = join(tree11, 'meta/snap.yaml');
  writeFileSync(y, readFileSync(y, 'utf8').replace(/^version: '1\.0'$/m, "version: '1.1'"));
  const app11 = ei(['pack', tree11, '-o', work, '--json']);
  if (app11.status !== 0) return fail('pack robot-sensor 1.1', app11);
  const p11 = ei(['store', 'publish', store, JSON.parse(app11.stdout).path as string, '--channel', 'stable', '--keyring', keys]);
  if (p11.status !== 0) return fail('store publish robot-sensor 1.1', p11);
  for (const { board } of BOARDS) {
    const name = `robot-${board}-dangerous`;
    const yaml = join(work, `${name}.2.yaml`);
    writeFileSync(yaml, twinRevision(readFileSync(join(ROOT, `models/robot-${board}.yaml`), 'utf8'), `robot-${board}-dangerous`, 2));
    const model = join(work, `${name}.2.model`);
    const signed = ei(['sign', yaml, '--key', 'brand', '--keyring', keys, '-o', model]);
    if (signed.status !== 0) return fail(`sign revision 2 of ${name}`, signed);
    const stream = join(work, `${name}.2.assert`);
    writeFileSync(stream, [readFileSync(join(keys, 'example-brand.account'), 'utf8'), readFileSync(join(keys, 'brand.account-key'), 'utf8'), readFileSync(model, 'utf8')].map((t) => t.replace(/\n*$/, '\n')).join('\n'));
    updates[board] = join(work, `${name}.2.update`);
    const u = ei(['update', 'create', stream, '--store', store, ...trust, '--key', 'brand', '--keyring', keys, '--from', images[board]!, '-o', updates[board]!]);
    if (u.status !== 0) return fail(`update create ${name} revision 2`, u);
  }
}, 60 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * A robot whose sensor never starts (its command exits at once; systemd restarts it until its start
 * limit and leaves it failed): the health check gives up at once, without waiting out its timeout,
 * and the boot test fails naming the service. pc-amd64 only (the health check is the same script on
 * every board).
 */
describe('a robot whose service never starts', () => {
  const it = hasQemu ? test : test.skip;
  it(`fails the boot test with ERR_UNHEALTHY naming robot-sensor.sensor${hasQemu ? '' : ' — skipped: qemu-system-x86_64 or qemu-system-aarch64 is not installed'}`, async () => {
    if (buildError) throw new Error(buildError);
    const keys = join(ROOT, 'signing-keys.example');
    const tree = join(work, 'robot-sensor-broken');
    cpSync(join(ROOT, 'bundles/robot-sensor'), tree, { recursive: true });
    writeFileSync(join(tree, 'bin/sensor'), '#!/bin/sh\n# broken on purpose: the sensor exits at once\necho "robot-sensor: exiting at once"\nexit 1\n', { mode: 0o755 });
    const packed = ei(['pack', tree, '-o', work, '--json']);
    expect([packed.status, packed.stderr]).toEqual([0, '']);
    const trust = ['--no-default-trust', '--trusted', join(keys, 'root.account-key'), '--trusted', join(keys, 'example-root.account'), '--trusted', join(keys, 'store.account-key'), '--trusted', join(keys, 'example-store.account')];
    const out = join(work, 'broken');
    const built = ei(['build', join(work, 'models/robot-pc-amd64-dangerous.assert'), '--store', join(work, 'store'), ...trust, '-o', out, '--format', 'raw', '--snap', JSON.parse(packed.stdout).path as string]);
    expect([built.status, tail(built.stderr)]).toEqual([0, expect.any(String)]);
    const image = join(out, 'robot-pc-amd64-dangerous.img');
    // the health check's UNHEALTHY line ends the boot (as the scenarios' failOn does), naming what is not running
    const unhealthy = { pattern: /edgeimage-health: (UNHEALTHY on slot [ab].*)$/, code: 'ERR_UNHEALTHY', describe: (m: RegExpExecArray) => `the system is not healthy: ${m[1]}` };
    const r = await bootTest({ image, timeoutSeconds: BOOT_TIMEOUT_S, failOn: [...DEFAULT_FAILURES, unhealthy] });
    console.log(`robot with a broken sensor: ${r.reason} (log ${r.log})`);
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_UNHEALTHY');
    expect(r.reason).toMatch(/UNHEALTHY on slot a after \d+ s: not running:.* robot-sensor\.sensor\b.*; failed for good \(its supervisor gave up restarting it\): robot-sensor\.sensor \(at [\d.]+ s\)/);
  }, (BOOT_TIMEOUT_S + 300) * 1000);
});

const SERVING = /robot-sensor 1\.0: serving on 0\.0\.0\.0:8080 \(slot a, grade dangerous\)/;

describe.each(BOARDS)('the robot on $board', ({ board }) => {
  const it = hasQemu ? test : test.skip;
  const skipped = hasQemu ? '' : ' — skipped: qemu-system-x86_64 or qemu-system-aarch64 is not installed';
  // one boot: healthy, then the crash and systemd's restart, then the logger reading the new
  // sensor process and the HTTP answers through the forward (each boot under TCG is a minute)
  it(`healthy on the Debian base; POST /crash: the sensor exits with status 1 and systemd starts it again; the logger reads it; /health and /telemetry answer through the forward${skipped}`, async () => {
    if (buildError) throw new Error(buildError);
    const port = await freePort();
    let crash: Promise<{ status: number; body: string }> | undefined;
    const r = await bootTest({
      image: images[board]!,
      forwards: [{ host: port, guest: 8080 }],
      expect: [SERVING, HEALTHY, /robot-sensor: POST \/crash: exiting with status 1/, SERVING, /robot-logger: reading \d+: \d+\.\d\d C \(sensor 1\.0 on slot a, up \d+ s\)/],
      expectHttp: [
        { url: `http://127.0.0.1:${port}/health`, pattern: /^\{"slot": "a", "status": "ok", "version": "1\.0"\}\n$/ },
        { url: `http://127.0.0.1:${port}/telemetry`, pattern: /"sensor": "temperature", "seq": \d+, "slot": "a"/ },
      ],
      timeoutSeconds: BOOT_TIMEOUT_S,
      onLine: (l) => {
        if (crash || !HEALTHY.test(l.text)) return;
        crash = fetch(`http://127.0.0.1:${port}/crash`, { method: 'POST', signal: AbortSignal.timeout(20_000) }).then(async (res) => ({ status: res.status, body: await res.text() }));
      },
    });
    console.log(`robot ${board}: serving at ${r.markers[0]?.seconds.toFixed(1)} s, healthy at ${r.markers[1]?.seconds.toFixed(1)} s, crashed at ${r.markers[2]?.seconds.toFixed(1)} s, serving again at ${r.markers[3]?.seconds.toFixed(1)} s, /health answered at ${r.markers[5]?.seconds.toFixed(1)} s (log ${r.log})`);
    expect([r.passed, r.reason]).toEqual([true, undefined]);
    expect(r.slot).toBe('a');
    expect(await crash).toEqual({ status: 200, body: '{"crashing": true, "status": 1}\n' });
    // (the second "serving" line comes after the crash's: a new process, started by systemd)
    expect(r.markers[3]!.seconds).toBeGreaterThan(r.markers[2]!.seconds);
    expect(r.markers[6]!.line).toMatch(/^HTTP 200 \{"celsius": [\d.]+, "sensor": "temperature", "seq": \d+, "slot": "a", "uptime": [\d.]+, "version": "1\.0"\}$/);
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  it(`the update scenario to robot-sensor 1.1: applied to slot b, tried, committed; then /health says 1.1 from slot b${skipped}`, async () => {
    if (buildError) throw new Error(buildError);
    // the scenario's last boot (slot b healthy again) answers through the forward: no boot of its own
    const port = await freePort();
    const sc = ei(['boot-test', images[board]!, '--scenario', 'update', '--update', updates[board]!, '--timeout', String(BOOT_TIMEOUT_S), '--json',
      '--forward', `${port}:8080`, '--expect-http', `http://127.0.0.1:${port}/health=^\\{"slot": "b", "status": "ok", "version": "1\\.1"\\}\\n$`]);
    const report = JSON.parse(sc.stdout || '{}') as { passed?: boolean; slot?: string; steps?: { name: string; passed: boolean; reason?: string; log: string; markers: { line: string; seconds: number }[] }[] };
    // (on a failure the failed steps, their logs and the scenario's last words are in the diff)
    expect([sc.status, report.passed, report.steps?.filter((st) => !st.passed) ?? [], sc.stderr.slice(-1500)]).toEqual([0, true, [], expect.any(String)]);
    expect(report.slot).toBe('b');
    const last = report.steps![report.steps!.length - 1]!;
    console.log(`robot ${board}: updated, healthy on slot b; ${last.markers.map((m) => `${m.seconds.toFixed(1)} s ${m.line.trim()}`).join('; ')}`);
    expect(last.markers[last.markers.length - 1]!.line).toBe('HTTP 200 {"slot": "b", "status": "ok", "version": "1.1"}');
    // only the last boot had the forward: the first, on 1.0, answered nothing to the host
    expect(report.steps!.slice(0, -1).flatMap((st) => st.markers.filter((m) => m.line.startsWith('HTTP ')))).toEqual([]);
  }, (3 * BOOT_TIMEOUT_S + 120) * 1000);
});
