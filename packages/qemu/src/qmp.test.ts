import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QMP_MAX_LINE_BYTES } from './qmp.js';
import { readScreen, dominantColours, screendump } from './screen.js';

const dir = mkdtempSync(join(tmpdir(), 'qmp-test-'));
let n = 0;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A stand-in for QEMU's socket that misbehaves on demand (a fault a real QEMU does not produce). */
function fake(onConnect: (s: Socket) => void): { path: string; server: Server } {
  const path = join(dir, `fake${++n}.sock`);
  const server = createServer(onConnect).listen(path);
  cleanups.push(() => server.close());
  return { path, server };
}
const GREETING = '{"QMP": {"version": {}, "capabilities": []}}\n';

describe('QMP: what does not come from QEMU is refused', () => {
  test('no greeting, but something else', async () => {
    const { path } = fake((s) => s.write('HTTP/1.1 200 OK\r\n\r\n'));
    await expect(QmpClient.connect(path, 3000)).rejects.toThrow(/QMP: not JSON: "HTTP\/1\.1 200 OK"/);
  });
  test('JSON that is no greeting', async () => {
    const { path } = fake((s) => s.write('{"return": {}}\n'));
    await expect(QmpClient.connect(path, 3000)).rejects.toThrow(/expected QEMU's greeting/);
  });
  test('an endless line is not buffered without bound', async () => {
    const { path } = fake((s) => {
      s.write(GREETING);
      s.on('data', () => s.write('{"return": "' + 'x'.repeat(QMP_MAX_LINE_BYTES + 10)));
    });
    await expect(QmpClient.connect(path, 5000)).rejects.toThrow(new RegExp(`a message longer than ${QMP_MAX_LINE_BYTES} bytes`));
  });
  test('a command never answered times out, naming it', async () => {
    const { path } = fake((s) => {
      s.write(GREETING);
      s.on('data', (d) => {
        if (d.toString().includes('qmp_capabilities')) s.write('{"return": {}}\n');
      });
    });
    const c = await QmpClient.connect(path, 3000);
    await expect(c.execute('screendump', { filename: '/dev/null' }, 300)).rejects.toThrow(/no answer to screendump within 0 s/);
    c.close();
  });
  test('the socket goes away: the pending command fails at once', async () => {
    const { path } = fake((s) => {
      s.write(GREETING);
      s.on('data', (d) => (d.toString().includes('qmp_capabilities') ? s.write('{"return": {}}\n') : s.destroy()));
    });
    const c = await QmpClient.connect(path, 3000);
    await expect(c.execute('query-status')).rejects.toThrow(/QEMU closed the connection/);
  });
  test.each(['null', '5', '[]', '"x"'])('JSON that is no object (%s), as greeting or answer: ERR_QMP, never an exception of the harness', async (v) => {
    const greeting = fake((s) => s.write(`${v}\n`));
    await expect(QmpClient.connect(greeting.path, 3000)).rejects.toThrow(`QMP: not a JSON object: ${JSON.stringify(v)}`);
    const answer = fake((s) => {
      s.write(GREETING);
      s.on('data', () => s.write(`${v}\n`));
    });
    await expect(QmpClient.connect(answer.path, 3000)).rejects.toThrow(/QMP: not a JSON object/);
  });
  test('close() rejects a command still waiting, at once', async () => {
    const { path } = fake((s) => {
      s.write(GREETING);
      s.on('data', (d) => {
        if (d.toString().includes('qmp_capabilities')) s.write('{"return": {}}\n');
      });
    });
    const c = await QmpClient.connect(path, 3000);
    const t = performance.now();
    const pending = c.execute('screendump', { filename: '/dev/null' }, 10_000);
    setTimeout(() => c.close(), 100);
    await expect(pending).rejects.toThrow(/QMP: the connection was closed \(the boot ended\)/);
    expect(performance.now() - t).toBeLessThan(5000);
  });
  test('connect() given up through its signal stops retrying', async () => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    await expect(QmpClient.connect(join(dir, 'never.sock'), 60_000, stop.signal)).rejects.toThrow(/the connection was given up/);
  });
  test('nothing listening: a clear error within the timeout', async () => {
    await expect(QmpClient.connect(join(dir, 'nobody.sock'), 400)).rejects.toThrow(/cannot connect to .*nobody\.sock within 0 s/);
  });
});

describe('QMP with a real QEMU (paused: no guest runs)', () => {
  let qemu: ChildProcess | undefined;
  afterEach(() => {
    qemu?.kill('SIGKILL');
  });
  test("screendump of the VGA gives a PNG of QEMU's own 'not initialized' screen; QEMU's errors come back as ERR_QMP", async () => {
    const sock = join(dir, 'real.sock');
    qemu = spawn('qemu-system-x86_64', ['-M', 'q35', '-S', '-nodefaults', '-nographic', '-device', 'VGA,addr=0x11', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    const c = await QmpClient.connect(sock, 10_000);
    try {
      const file = join(dir, 'paused.png');
      await screendump(c, file);
      const s = readScreen(file);
      expect([s.width, s.height]).toEqual([640, 480]);
      expect(dominantColours(s)[0]).toMatchObject({ colour: '#000000' });
      await expect(c.execute('no-such-command')).rejects.toMatchObject({ code: 'ERR_QMP', message: expect.stringMatching(/no-such-command has not been found \(CommandNotFound\)/) });
      // a folder that does not exist: QEMU's error, and no file left behind
      await expect(screendump(c, join(dir, 'missing', 'x.png'))).rejects.toThrow(/QMP: .*(No such file|Could not open)/);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    } finally {
      c.close();
    }
  }, 30_000);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
