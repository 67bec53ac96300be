/**
 * QemuSession with real processes standing in for QEMU (a shell script writing console output):
 * line handling, ordered waits, failure lines, timeouts, exits and kills — no VM needed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootTestError } from './errors.js';
import { cleanLine, DEFAULT_FAILURES, MAX_CONSOLE_LINE, QemuSession } from './session.js';

const sh = (script: string) => ({ binary: '/bin/sh', args: ['-c', script] });
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgeimage-session-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<BootTestError> {
  try { await p; } catch (e) { if (e instanceof BootTestError) return e; throw e; }
  throw new Error('did not reject');
}

test('cleanLine drops escape sequences, carriage returns and control characters', () => {
  expect(cleanLine('\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading\r')).toBe('BdsDxe: loading');
  expect(cleanLine('a\x07b\x08c')).toBe('abc');
});

test('lines are split across chunks, timestamped and logged; waits match in order, each after the previous match', async () => {
  const log = join(dir, 'order.log');
  const s = QemuSession.start(sh("printf 'two\\none\\nt'; sleep 0.2; printf 'wo\\r\\n\\033[1mthree\\033[0m\\n'; printf 'no newline'; sleep 0.2"), { log });
  try {
    const one = await s.waitFor(/^one$/, 10_000);
    const two = await s.waitFor(/^(t)wo$/, 10_000);
    expect(one.index).toBe(1);
    expect(two.index).toBe(2); // the "two" before "one" is not taken
    expect(two.match[1]).toBe('t');
    expect((await s.waitFor(/three/, 10_000)).line.text).toBe('three');
    // The last line without a newline counts once QEMU has exited.
    expect((await s.waitFor(/no newline/, 10_000)).line.text).toBe('no newline');
    expect((await s.exited).code).toBe(0);
  } finally {
    await s.kill();
  }
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  expect(lines.slice(0, 4).map((l) => l.replace(/^\[ *\d+\.\d{3}\] /, ''))).toEqual(['two', 'one', 'two', 'three']);
  expect(lines[0]).toMatch(/^\[ {3}0\.\d{3}\] two$/);
  expect(lines.at(-1)).toMatch(/qemu: exited \(status 0\)$/);
});

test('a failure line before the marker rejects with its code and reason; [] turns failures off', async () => {
  const script = "echo 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)'; echo marker; sleep 5";
  const s = QemuSession.start(sh(script));
  try {
    const e = await rejection(s.waitFor(/marker/, 10_000));
    expect(e.code).toBe('ERR_KERNEL_PANIC');
    expect(e.message).toMatch(/^kernel panic: VFS: Unable to mount root fs/);
    expect(e.context['tail']).toMatch(/Kernel panic/);
  } finally {
    await s.kill();
  }
  const t = QemuSession.start(sh(script));
  try {
    expect((await t.waitFor(/marker/, 10_000, { failOn: [] })).line.text).toBe('marker');
  } finally {
    await t.kill();
  }
});

test('a timeout rejects with ERR_BOOT_TIMEOUT and the tail (at most 30 lines); kill ends the process', async () => {
  const s = QemuSession.start(sh('i=0; while [ $i -lt 50 ]; do echo "line $i"; i=$((i+1)); done; exec sleep 60'));
  try {
    const e = await rejection(s.waitFor(/never/, 1500));
    expect(e.code).toBe('ERR_BOOT_TIMEOUT');
    expect(e.message).toMatch(/waiting until \/never\/ appeared/);
    const tail = String(e.context['tail']).split('\n');
    expect(tail).toHaveLength(30);
    expect(tail.at(-1)).toMatch(/line 49$/);
  } finally {
    const status = await s.kill();
    expect(status?.signal ?? status?.code).toBeDefined();
  }
  expect(s.exitStatus).toBeDefined();
});

test('the process exiting before the marker rejects with ERR_QEMU_EXITED, its status and stderr; a missing binary too', async () => {
  const s = QemuSession.start(sh("echo booting; echo 'qemu-system-x86_64: could not open disk' >&2; exit 1"));
  const e = await rejection(s.waitFor(/healthy/, 10_000));
  expect(e.code).toBe('ERR_QEMU_EXITED');
  expect(e.message).toMatch(/^QEMU exited with status 1 after .* before \/healthy\/ appeared: qemu-system-x86_64: could not open disk/);
  const m = QemuSession.start({ binary: join(dir, 'no-such-qemu'), args: [] });
  expect((await rejection(m.waitFor(/x/, 5000))).code).toBe('ERR_QEMU_EXITED');
});

test('an abort signal kills the process and rejects the wait with ERR_ABORTED', async () => {
  const ac = new AbortController();
  const s = QemuSession.start(sh('echo up; exec sleep 60'), { signal: ac.signal });
  await s.waitFor(/up/, 10_000);
  const waiting = rejection(s.waitFor(/never/, 60_000));
  ac.abort();
  expect((await waiting).code).toBe('ERR_ABORTED');
  expect((await s.exited).signal).toBe('SIGTERM');
});

test("GRUB's errors fail a boot, except its harmless note about a machine without a display", () => {
  const failing = (line: string) => DEFAULT_FAILURES.find((f) => f.pattern.test(line))?.code;
  expect(failing('error: invalid magic number.')).toBe('ERR_BOOTLOADER');
  expect(failing('error: you need to load the kernel first.')).toBe('ERR_BOOTLOADER');
  expect(failing('error: no suitable video mode found.')).toBeUndefined();
  expect(failing('edgeimage-uboot: FAILED: cannot load the kernel of slot a')).toBe('ERR_BOOTLOADER');
});

test('a guest line that never ends is cut at MAX_CONSOLE_LINE: memory and patterns stay bounded', async () => {
  // 200 KiB without a newline, then a marker line
  const s = QemuSession.start(sh("head -c 204800 /dev/zero | tr '\\0' x; printf '\\nmarker\\n'; sleep 0.2"));
  try {
    await s.waitFor(/^marker$/, 10_000);
    const long = s.lines.filter((l) => l.text.startsWith('x'));
    expect(long.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...long.map((l) => l.text.length))).toBe(MAX_CONSOLE_LINE);
    expect(long.reduce((n, l) => n + l.text.length, 0)).toBe(204800);
  } finally {
    await s.kill();
  }
});

test('the process started dies with the harness (setpriv --pdeathsig): no guest outlives a killed test runner', async () => {
  // a harness (node) that starts a long "QEMU" and is then killed with SIGKILL, as a CI timeout does
  const pidFile = join(dir, 'child.pid');
  const harness = `import('${new URL('./session.ts', import.meta.url).pathname.replace(/\.ts$/, '.js').replace('/src/', '/dist/')}').then(({ QemuSession }) => { QemuSession.start({ binary: '/bin/sh', args: ['-c', 'echo $$ > ${pidFile}; exec sleep 300'] }); setInterval(() => {}, 1000); });`;
  const { spawn } = await import('node:child_process');
  const h = spawn(process.execPath, ['-e', harness], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8').trim()) {
    if (Date.now() > deadline) throw new Error('the stand-in QEMU did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  h.kill('SIGKILL');
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  const until = Date.now() + 5000;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  expect(alive()).toBe(false);
});
