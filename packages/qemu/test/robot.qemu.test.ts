/**
 * The reference robot (issue 14) on pc-amd64: a grade dangerous model of the example brand with
 * the Debian base of bundles/robot-base (systemd, built by `edgeimage base build` from its
 * committed lock), the device agent, and bundles/robot-sensor (python3 services generated as
 * systemd units), published into the reference store and composed by `edgeimage build`. Booted
 * with its port 8080 forwarded to the host:
 *   1. healthy (the sensor's health-command included), the logger's readings on the console,
 *      /health (version 1.0, slot a) and /telemetry answered through the forward;
 *   2. POST /crash (a test hook of grade dangerous images): the sensor exits with status 1,
 *      systemd starts it again (restart-condition: always), /health answers again.
 * (The model is made here, from models/pc-amd64.yaml with the robot's base and app, until the
 * robot models land in models/.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootTest, HEALTHY } from '../src/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOOT_TIMEOUT_S = 420;
const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const ei = (args: string[]) => spawnSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
const tail = (s: string) => s.split('\n').slice(-25).join('\n');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** models/pc-amd64.yaml as the robot: grade dangerous, robot-base for busybox-base, robot-sensor for hello-kiosk, no validation-set. */
function robotModel(pcModel: string, ids: { 'robot-base': string; 'robot-sensor': string }): string {
  const out: string[] = [];
  let skip = false;
  let snap: string | undefined;
  for (const line of pcModel.split('\n')) {
    if (/^validation-sets:/.test(line)) {
      skip = true;
      continue;
    }
    if (skip && /^\S/.test(line)) skip = false;
    if (skip) continue;
    const name = /^ {2}- name: (\S+)$/.exec(line);
    if (name) snap = name[1] === 'busybox-base' ? 'robot-base' : name[1] === 'hello-kiosk' ? 'robot-sensor' : name[1];
    out.push(
      line
        .replace(/^model: .*$/, 'model: robot-amd64-test')
        .replace(/^display-name: .*$/, 'display-name: Reference robot, PC (amd64, UEFI) - TEST ONLY, grade dangerous')
        .replace(/^grade: .*$/, 'grade: dangerous')
        .replace(/^base: busybox-base$/, 'base: robot-base')
        .replace(/^( {2}- name: )(busybox-base|hello-kiosk)$/, `$1${snap}`)
        .replace(/^( {4}id: )\S+$/, (m, p: string) => (snap === 'robot-base' || snap === 'robot-sensor' ? `${p}${ids[snap]}` : m)),
    );
  }
  return out.join('\n');
}

let work: string;
let image: string;
let buildError: string | undefined;

beforeAll(() => {
  if (!hasQemu) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-robot-'));
  const fail = (what: string, r: { status: number | null; stderr: string }) => {
    buildError = `${what} failed (${r.status}):\n${tail(r.stderr)}`;
  };
  const ref = spawnSync(join(ROOT, 'scripts/reference-images'), ['--unverified', '--store-only', '--out', work], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (ref.status !== 0) return fail('scripts/reference-images', ref);
  const store = ref.stdout.trim().split('\n').pop()!;
  const base = ei(['base', 'build', join(ROOT, 'bundles/robot-base/BASE.yaml'), '-o', join(work, 'robot-base_1.0_amd64.snap')]);
  if (base.status !== 0) return fail('base build', base);
  const app = ei(['pack', join(ROOT, 'bundles/robot-sensor'), '-o', work, '--json']);
  if (app.status !== 0) return fail('pack robot-sensor', app);
  const keys = join(ROOT, 'signing-keys.example');
  const ids: Record<string, string> = {};
  for (const [name, file] of [['robot-base', join(work, 'robot-base_1.0_amd64.snap')], ['robot-sensor', JSON.parse(app.stdout).path as string]] as const) {
    const p = ei(['store', 'publish', store, file, '--channel', 'stable', '--keyring', keys, '--json']);
    if (p.status !== 0) return fail(`store publish ${name}`, p);
    ids[name] = JSON.parse(p.stdout)['snap-id'] as string;
  }
  const yaml = join(work, 'robot-amd64-test.yaml');
  writeFileSync(yaml, robotModel(readFileSync(join(ROOT, 'models/pc-amd64.yaml'), 'utf8'), ids as { 'robot-base': string; 'robot-sensor': string }));
  const model = join(work, 'robot-amd64-test.model');
  const signed = ei(['sign', yaml, '--key', 'brand', '--keyring', keys, '-o', model]);
  if (signed.status !== 0) return fail('sign the robot model', signed);
  const stream = join(work, 'robot-amd64-test.assert');
  writeFileSync(stream, [readFileSync(join(keys, 'example-brand.account'), 'utf8'), readFileSync(join(keys, 'brand.account-key'), 'utf8'), readFileSync(model, 'utf8')].map((t) => t.replace(/\n*$/, '\n')).join('\n'));
  const trust = ['--no-default-trust', '--trusted', join(keys, 'root.account-key'), '--trusted', join(keys, 'example-root.account'), '--trusted', join(keys, 'store.account-key'), '--trusted', join(keys, 'example-store.account')];
  const built = ei(['build', stream, '--store', store, ...trust, '-o', join(work, 'out'), '--format', 'raw']);
  if (built.status !== 0) return fail('build the robot image', built);
  image = join(work, 'out', 'robot-amd64-test.img');
}, 45 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const SERVING = /robot-sensor 1\.0: serving on 0\.0\.0\.0:8080 \(slot a, grade dangerous\)/;

(hasQemu ? describe : describe.skip)(`the robot on pc-amd64${hasQemu ? '' : ' — skipped: qemu-system-x86_64 is not installed'}`, () => {
  test('healthy on the Debian base; the logger reads the sensor; /health and /telemetry answer through the forward', async () => {
    if (buildError) throw new Error(buildError);
    const port = await freePort();
    const r = await bootTest({
      image,
      forwards: [{ host: port, guest: 8080 }],
      expect: [SERVING, HEALTHY, /robot-logger: reading \d+: \d+\.\d\d C \(sensor 1\.0 on slot a, up \d+ s\)/],
      expectHttp: [
        { url: `http://127.0.0.1:${port}/health`, pattern: /^\{"slot": "a", "status": "ok", "version": "1\.0"\}\n$/ },
        { url: `http://127.0.0.1:${port}/telemetry`, pattern: /"sensor": "temperature", "seq": \d+, "slot": "a"/ },
      ],
      timeoutSeconds: BOOT_TIMEOUT_S,
    });
    console.log(`robot pc-amd64: serving at ${r.markers[0]?.seconds.toFixed(1)} s, healthy at ${r.markers[1]?.seconds.toFixed(1)} s, first /health answer at ${r.markers[3]?.seconds.toFixed(1)} s (log ${r.log})`);
    expect([r.passed, r.reason]).toEqual([true, undefined]);
    expect(r.slot).toBe('a');
    expect(r.markers[4]!.line).toMatch(/^HTTP 200 \{"celsius": [\d.]+, "sensor": "temperature", "seq": \d+, "slot": "a", "uptime": [\d.]+, "version": "1\.0"\}$/);
  }, (BOOT_TIMEOUT_S + 60) * 1000);

  test('POST /crash: the sensor exits with status 1, systemd starts it again, /health answers again', async () => {
    if (buildError) throw new Error(buildError);
    const port = await freePort();
    let crash: Promise<{ status: number; body: string }> | undefined;
    const r = await bootTest({
      image,
      forwards: [{ host: port, guest: 8080 }],
      expect: [HEALTHY, /robot-sensor: POST \/crash: exiting with status 1/, SERVING],
      expectHttp: [{ url: `http://127.0.0.1:${port}/health`, pattern: /"status": "ok"/ }],
      timeoutSeconds: BOOT_TIMEOUT_S,
      onLine: (l) => {
        if (crash || !HEALTHY.test(l.text)) return;
        crash = fetch(`http://127.0.0.1:${port}/crash`, { method: 'POST', signal: AbortSignal.timeout(20_000) }).then(async (res) => ({ status: res.status, body: await res.text() }));
      },
    });
    console.log(`robot pc-amd64: crashed at ${r.markers[1]?.seconds.toFixed(1)} s, serving again at ${r.markers[2]?.seconds.toFixed(1)} s`);
    expect([r.passed, r.reason]).toEqual([true, undefined]);
    expect(await crash).toEqual({ status: 200, body: '{"crashing": true, "status": 1}\n' });
    // (the second "serving" line comes after the crash's: a new process, started by systemd)
    expect(r.markers[2]!.seconds).toBeGreaterThan(r.markers[1]!.seconds);
  }, (BOOT_TIMEOUT_S + 60) * 1000);
});
