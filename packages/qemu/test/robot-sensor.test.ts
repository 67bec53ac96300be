/**
 * The reference robot's app bundle (bundles/robot-sensor), its services run for real with the
 * host's python3 on a free port of 127.0.0.1, with the environment the device gives them
 * (SNAP_VERSION, EDGE_SLOT, EDGE_GRADE): the sensor's endpoints (readings in their deterministic
 * sequence, health, the crash hook refused on grade signed and taken on grade dangerous), the
 * health command (ok; a sensor down, degraded or too slow), the logger (a line per reading; it
 * outlives the sensor and says when it is back), and the bundle as `edgeimage pack` makes it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requires } from '@edgeimage/testkit/skips';
import { watchLines, type LineProcess } from '@edgeimage/testkit/line-process';

const BUNDLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bundles/robot-sensor');
const missingPython = spawnSync('python3', ['--version']).status === 0 ? undefined : 'python3 is not installed';

type Proc = LineProcess;

const procs: Proc[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

function start(prog: 'sensor' | 'logger' | 'check', env: Record<string, string>): Proc {
  const child = spawn('python3', [join(BUNDLE, 'bin', prog)], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SNAP: BUNDLE, SENSOR_ADDRESS: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = watchLines(child);
  procs.push(p);
  return p;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function sensor(env: Record<string, string> = {}): Promise<{ p: Proc; port: number; url: (path: string) => string }> {
  const port = await freePort();
  const p = start('sensor', { SENSOR_PORT: String(port), SNAP_VERSION: '1.0', EDGE_SLOT: 'a', EDGE_GRADE: 'signed', ...env });
  await p.line(/^robot-sensor .*: serving on /);
  return { p, port, url: (path) => `http://127.0.0.1:${port}${path}` };
}

/** The health command run to its end: exit status, output, seconds. */
function check(port: number): Promise<{ code: number | null; out: string; seconds: number }> {
  const t0 = performance.now();
  const p = start('check', { SENSOR_PORT: String(port) });
  return p.exited.then((code) => ({ code, out: p.out.join('\n'), seconds: (performance.now() - t0) / 1000 }));
}

async function fakeSensor(handler: (res: import('node:http').ServerResponse) => void): Promise<number> {
  const s = createServer((_q, res) => handler(res));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const celsius = (n: number) => Math.round((21 + 4 * Math.sin((2 * Math.PI * n) / 12)) * 100) / 100;

describe('robot-sensor snap.yaml', () => {
  test('packs (edgeimage pack): an app for all architectures, version 1.0: sensor (always restarted, health-command bin/check) and logger (after sensor); no run-as, so both unprivileged', () => {
    const out = mkdtempSync(join(tmpdir(), 'edgeimage-robot-sensor-'));
    let y: Record<string, unknown> & { apps?: unknown };
    try {
      const r = spawnSync('node', [join(BUNDLE, '../../packages/cli/bin/edgeimage.js'), 'pack', BUNDLE, '-o', out, '--json'], { encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([0, '']);
      y = JSON.parse(r.stdout);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    expect(y).toMatchObject({ name: 'robot-sensor', version: '1.0', type: 'app', architectures: ['all'] });
    expect(y.apps).toEqual({
      sensor: { command: 'bin/sensor', daemon: 'simple', 'restart-condition': 'always', 'health-command': 'bin/check' },
      logger: { command: 'bin/logger', daemon: 'simple', 'restart-condition': 'always', after: ['sensor'] },
    });
    for (const f of ['bin/sensor', 'bin/logger', 'bin/check']) expect(readFileSync(join(BUNDLE, f), 'utf8')).toMatch(/^#!\/usr\/bin\/env python3\n/);
  });
});

requires(missingPython).describe('the sensor, on the host with python3', () => {
  test('GET /telemetry: readings in their deterministic sequence, with version and slot; GET /health: ok, version, slot', async () => {
    const { url } = await sensor();
    for (const n of [1, 2, 3]) {
      const r = await fetch(url('/telemetry'));
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json');
      const doc = (await r.json()) as Record<string, unknown>;
      expect(doc).toEqual({ sensor: 'temperature', seq: n, celsius: celsius(n), uptime: expect.any(Number), version: '1.0', slot: 'a' });
    }
    expect(celsius(3)).toBe(25);
    const h = await fetch(url('/health'));
    expect([h.status, await h.json()]).toEqual([200, { status: 'ok', version: '1.0', slot: 'a' }]);
  });

  test('POST /crash on grade signed (or no grade): 403 naming the grade, and the sensor keeps serving', async () => {
    for (const grade of ['signed', '']) {
      const { p, url } = await sensor({ EDGE_GRADE: grade });
      const r = await fetch(url('/crash'), { method: 'POST' });
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ error: `POST /crash is a test hook of grade dangerous images; this one is grade ${grade || 'unknown'}` });
      expect((await fetch(url('/health'))).status).toBe(200);
      expect(p.child.exitCode).toBeNull();
    }
  });

  test('POST /crash on grade dangerous: answers, then the process exits with status 1', async () => {
    const { p, url } = await sensor({ EDGE_GRADE: 'dangerous' });
    const r = await fetch(url('/crash'), { method: 'POST' });
    expect([r.status, await r.json()]).toEqual([200, { crashing: true, status: 1 }]);
    expect(await p.exited).toBe(1);
    expect(p.out.join('\n')).toMatch(/robot-sensor: POST \/crash: exiting with status 1/);
  });

  test('other paths 404, other methods 405 (GET /crash too), JSON each; SIGTERM is a clean stop', async () => {
    const { p, url } = await sensor({ EDGE_GRADE: 'dangerous' });
    expect((await fetch(url('/nope'))).status).toBe(404);
    expect((await fetch(url('/crash'))).status).toBe(405);
    const put = await fetch(url('/telemetry'), { method: 'PUT' });
    expect([put.status, put.headers.get('content-type')]).toEqual([405, 'application/json']);
    expect((await fetch(url('/health'), { method: 'POST' })).status).toBe(405);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  test('a bad SENSOR_PORT is refused naming the variable and the value', async () => {
    const p = start('sensor', { SENSOR_PORT: '99999' });
    expect(await p.exited).toBe(1);
    expect(p.out.join('\n')).toContain("robot-sensor: SENSOR_PORT must be a port number from 1 to 65535, found '99999'");
  });
});

requires(missingPython).describe('the health command bin/check', () => {
  test('exit 0 when /health answers ok', async () => {
    const { port } = await sensor();
    const r = await check(port);
    expect([r.code, r.out]).toEqual([0, 'robot-sensor check: ok (version 1.0, slot a)']);
  });

  test('exit 1 naming why: the sensor down, degraded, an error status, no answer within 2 s', async () => {
    const down = await check(await freePort());
    expect(down.code).toBe(1);
    expect(down.out).toMatch(/^robot-sensor check: \/health does not answer: .*(refused|Errno 111)/);
    const degraded = await check(await fakeSensor((res) => res.end('{"status": "degraded"}')));
    expect([degraded.code, degraded.out]).toEqual([1, "robot-sensor check: /health answered HTTP 200: {'status': 'degraded'}"]);
    const error = await check(await fakeSensor((res) => res.writeHead(503).end('{"status": "starting"}')));
    expect([error.code, error.out]).toEqual([1, "robot-sensor check: /health answered HTTP 503: {'status': 'starting'}"]);
    const slow = await check(await fakeSensor((res) => setTimeout(() => res.end('{"status": "ok"}'), 4000).unref()));
    expect(slow.code).toBe(1);
    expect(slow.out).toMatch(/^robot-sensor check: \/health does not answer: .*timed out/);
    expect(slow.seconds).toBeLessThan(3.5);
  });

  test('an answer bigger than 64 KiB is no answer', async () => {
    const r = await check(await fakeSensor((res) => res.end(`{"status": "ok", "pad": "${'x'.repeat(70_000)}"}`)));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/the answer is bigger than 65536 bytes/);
  });
});

requires(missingPython).describe('the logger', () => {
  test('one line per reading; the sensor going down is said once and the logger keeps polling; it says when the sensor is back', async () => {
    const { p: s, port } = await sensor();
    const logger = start('logger', { SENSOR_PORT: String(port), LOGGER_INTERVAL: '0.2' });
    await logger.line(/^robot-logger: reading 2: /);
    expect(logger.out.slice(0, 3)).toEqual([
      `robot-logger: reading the sensor on 127.0.0.1:${port} every 0.2 s`,
      expect.stringMatching(/^robot-logger: reading 1: 23\.00 C \(sensor 1\.0 on slot a, up \d+ s\)$/),
      expect.stringMatching(/^robot-logger: reading 2: 24\.46 C \(sensor 1\.0 on slot a, up \d+ s\)$/),
    ]);
    s.child.kill('SIGKILL');
    await s.exited;
    await logger.line(/^robot-logger: the sensor does not answer \(.*\); still polling$/);
    // several polls while it is down: still one line
    await new Promise((r) => setTimeout(r, 800));
    expect(logger.out.filter((l) => l.includes('does not answer'))).toHaveLength(1);
    expect(logger.child.exitCode).toBeNull();
    // the sensor restarted on the same port: its sequence starts again
    const again = start('sensor', { SENSOR_PORT: String(port), SNAP_VERSION: '1.0', EDGE_SLOT: 'a', EDGE_GRADE: 'signed' });
    await again.line(/serving on/);
    await logger.line(/^robot-logger: the sensor is back$/);
    const idx = logger.out.indexOf('robot-logger: the sensor is back');
    // the first reading after it (the logger's first reading of all matched the same pattern)
    expect(await logger.line(/^robot-logger: reading/, 10_000, idx + 1)).toMatch(/^robot-logger: reading 1: 23\.00 C/);
  });

  test('a bad LOGGER_INTERVAL is refused naming it', async () => {
    const p = start('logger', { LOGGER_INTERVAL: '0' });
    expect(await p.exited).toBe(1);
    expect(p.out.join('\n')).toContain("robot-logger: LOGGER_INTERVAL must be seconds from 0.05 to 3600, found '0'");
  });
});
