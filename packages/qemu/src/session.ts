import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { toolEnv } from '@edgeimage/composer';
import { BootTestError } from './errors.js';

/** One line of the serial console, `seconds` after QEMU started. */
export interface ConsoleLine {
  seconds: number;
  text: string;
}

/** A console line that ends the wait: `code` is the BootTestError's code, `describe` its reason. */
export interface FailurePattern {
  pattern: RegExp;
  code: string;
  describe: (m: RegExpExecArray) => string;
}

/**
 * What fails a boot as soon as it shows on the console: a kernel panic, the initramfs's FAILED
 * line, a GRUB `error:` line (`invalid magic number`, `you need to load the kernel first`,
 * `file '…' not found`) and U-Boot's image errors.
 */
export const DEFAULT_FAILURES: readonly FailurePattern[] = [
  { pattern: /Kernel panic - not syncing:?\s*(.*)$/, code: 'ERR_KERNEL_PANIC', describe: (m) => `kernel panic: ${m[1] || 'not syncing'}` },
  { pattern: /edgeimage-initramfs: FAILED: (.*)$/, code: 'ERR_INITRAMFS_FAILED', describe: (m) => `the initramfs failed: ${m[1]}` },
  // GRUB says "no suitable video mode found. Booting in blind mode" on a machine without a display
  // (QEMU -nodefaults): it boots on, so that one is no failure.
  { pattern: /^error: (?!no suitable video mode found)(.+)$/, code: 'ERR_BOOTLOADER', describe: (m) => `GRUB error: ${m[1]}` },
  // the gadgets' own bootloader scripts name what failed (e.g. the kernel of a slot) before rebooting
  { pattern: /^edgeimage-(grub|uboot): FAILED: (.+)$/, code: 'ERR_BOOTLOADER', describe: (m) => `${m[1] === 'grub' ? 'GRUB' : 'U-Boot'}: ${m[2]}` },
  { pattern: /^(Bad Linux ARM64 Image magic!|Wrong Image Format for \w+ command|SCRIPT FAILED: .*)$/, code: 'ERR_BOOTLOADER', describe: (m) => `U-Boot error: ${m[1]}` },
];

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** QEMU's stderr (its own errors: a bad option, a disk it cannot open). */
  stderr: string;
}

export interface MarkerMatch {
  pattern: RegExp;
  match: RegExpExecArray;
  line: ConsoleLine;
  /** Index of the line in {@link QemuSession.lines}. */
  index: number;
}

export interface SessionOptions {
  /** The console log written as it arrives: `[   3.412] line` (seconds since QEMU started). */
  log?: string;
  /** Cancels the session: QEMU is killed and a pending wait rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Lines in the tail attached to failures (default 30). */
  tailLines?: number;
  /** Called for every complete console line. */
  onLine?: (line: ConsoleLine) => void;
}

export interface WaitOptions {
  /** Console lines that fail the wait (default {@link DEFAULT_FAILURES}; `[]`: none). */
  failOn?: readonly FailurePattern[];
}

interface Waiter {
  test: (line: ConsoleLine, index: number) => boolean;
  onExit: (status: ExitStatus) => void;
  reject: (e: BootTestError) => void;
}

// CSI/OSC/charset escape sequences (OVMF and GRUB draw with them), then other control characters.
const ANSI = /\x1b(?:\[[0-9;?=<>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78DEHMc])/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** A console line as text: escape sequences, carriage returns and other control characters removed. */
export function cleanLine(raw: string): string {
  return raw.replace(ANSI, '').replace(CONTROL, '').trimEnd();
}

/** util-linux's setpriv, where it is (Debian: always): QEMU is started through it. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** The longest console line kept whole: a longer one is cut (a guest's line is untrusted input). */
export const MAX_CONSOLE_LINE = 64 * 1024;

export const formatLine = (l: ConsoleLine): string => `[${l.seconds.toFixed(3).padStart(8)}] ${l.text}`;

/**
 * One QEMU process whose serial console is on stdout. Lines are collected (with the seconds
 * since start) and written to the log; {@link waitFor} waits for a line, in order: each wait
 * looks only at lines after the previous match, so one session can follow several boots and
 * reboots of the guest. Every wait has a timeout; {@link kill} always ends QEMU.
 *
 * ```ts
 * const s = QemuSession.start(qemuCommand({ arch: 'amd64', accel: 'tcg', disk, firmware }), { log });
 * try {
 *   await s.waitFor(/healthy on slot a/, 60_000);
 *   await s.waitFor(/healthy on slot b/, 60_000); // after the guest rebooted
 * } finally { await s.kill(); }
 * ```
 */
export class QemuSession {
  /** Every complete console line so far. */
  readonly lines: ConsoleLine[] = [];
  /** Index of the first line the next {@link waitFor} looks at. */
  cursor = 0;
  /** Resolves when QEMU has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  readonly command: { binary: string; args: readonly string[] };
  readonly log: string | undefined;

  #child: ChildProcess;
  #start = performance.now();
  #partial = '';
  #stderr = '';
  #decoder = new StringDecoder('utf8');
  #logFd: number | undefined;
  #exit: ExitStatus | undefined;
  #waiter: Waiter | undefined;
  #tailLines: number;
  #onLine: ((l: ConsoleLine) => void) | undefined;
  #aborted = false;

  private constructor(command: { binary: string; args: readonly string[] }, opts: SessionOptions) {
    this.command = command;
    this.log = opts.log;
    this.#tailLines = opts.tailLines ?? 30;
    this.#onLine = opts.onLine;
    if (opts.log !== undefined) this.#logFd = openSync(opts.log, 'w');
    // The host tools' fixed environment (plus TMPDIR, where -snapshot keeps its overlay): nothing
    // of the build's own, such as EDGEIMAGE_KEY_PASSPHRASE, reaches QEMU.
    // QEMU dies with us (setpriv --pdeathsig): a harness killed from outside (a CI's timeout, a
    // test runner's SIGKILL) must not leave guests burning the cores for nobody
    const [bin, args] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command.binary, ...command.args]] : [command.binary, [...command.args]];
    this.#child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...toolEnv(), TMPDIR: process.env.TMPDIR ?? '/tmp' } });
    let resolveExit!: (s: ExitStatus) => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.#child.stdout!.on('data', (b: Buffer) => this.#data(this.#decoder.write(b)));
    this.#child.stderr!.on('data', (b: Buffer) => {
      this.#stderr += b.toString('utf8');
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.#exit) return;
      this.#data(this.#decoder.end());
      if (this.#partial) this.#line(this.#partial);
      this.#partial = '';
      this.#exit = { code, signal, stderr: this.#stderr };
      this.#child.stdout?.destroy();
      this.#child.stderr?.destroy();
      if (this.#logFd !== undefined) {
        for (const l of this.#stderr.split('\n').filter((t) => t.trim())) writeSync(this.#logFd, `[${this.elapsed().toFixed(3).padStart(8)}] qemu: ${l}\n`);
        writeSync(this.#logFd, `[${this.elapsed().toFixed(3).padStart(8)}] qemu: exited (${code !== null ? `status ${code}` : `signal ${signal}`})\n`);
        closeSync(this.#logFd);
        this.#logFd = undefined;
      }
      const w = this.#waiter;
      this.#waiter = undefined;
      w?.onExit(this.#exit);
      resolveExit(this.#exit);
    };
    this.#child.on('error', (e) => {
      this.#stderr += `${e.message}\n`;
      finish(null, null);
    });
    // 'close' comes once the pipes are drained too; a child of QEMU that still holds them must
    // not keep us waiting: after 'exit', 'close' gets one second.
    this.#child.on('close', finish);
    this.#child.on('exit', (code, signal) => {
      setTimeout(() => finish(code, signal), 1000).unref();
    });
    if (opts.signal) {
      const onAbort = () => {
        this.#aborted = true;
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.reject(new BootTestError('ERR_ABORTED', 'the boot was cancelled', { tail: this.tail() }));
        void this.kill();
      };
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
      void this.exited.then(() => opts.signal!.removeEventListener('abort', onAbort));
    }
  }

  /** Starts QEMU. Its stdin is /dev/null: nothing is sent to the guest. */
  static start(command: { binary: string; args: readonly string[] }, opts: SessionOptions = {}): QemuSession {
    return new QemuSession(command, opts);
  }

  /** Seconds since QEMU was started. */
  elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** QEMU's exit status, once it has exited. */
  get exitStatus(): ExitStatus | undefined {
    return this.#exit;
  }

  /** The last `n` lines, as in the log. */
  tail(n = this.#tailLines): string {
    return this.lines.slice(-n).map(formatLine).join('\n');
  }

  #data(s: string): void {
    if (!s) return;
    const parts = (this.#partial + s).split('\n');
    this.#partial = parts.pop()!;
    for (const p of parts) {
      if (p.length <= MAX_CONSOLE_LINE) this.#line(p);
      else for (let i = 0; i < p.length; i += MAX_CONSOLE_LINE) this.#line(p.slice(i, i + MAX_CONSOLE_LINE));
    }
    // a guest that never ends its line is cut into lines of the bound: memory and every pattern
    // run on a line stay bounded
    while (this.#partial.length > MAX_CONSOLE_LINE) {
      this.#line(this.#partial.slice(0, MAX_CONSOLE_LINE));
      this.#partial = this.#partial.slice(MAX_CONSOLE_LINE);
    }
  }

  #line(raw: string): void {
    const line = { seconds: this.elapsed(), text: cleanLine(raw) };
    if (!line.text) return;
    const index = this.lines.push(line) - 1;
    if (this.#logFd !== undefined) writeSync(this.#logFd, `${formatLine(line)}\n`);
    this.#onLine?.(line);
    if (this.#waiter?.test(line, index)) this.#waiter = undefined;
  }

  #failure(line: ConsoleLine, failOn: readonly FailurePattern[]): BootTestError | undefined {
    for (const f of failOn) {
      const m = f.pattern.exec(line.text);
      if (m) {
        const reason = f.describe(m);
        return new BootTestError(f.code, `${reason} (at ${line.seconds.toFixed(3)} s)`, { line: line.text, seconds: line.seconds, detail: m[1], tail: this.tail() });
      }
    }
    return undefined;
  }

  #exitedError(status: ExitStatus, what: string): BootTestError {
    const how = status.code !== null ? `with status ${status.code}` : status.signal ? `on signal ${status.signal}` : '(it could not be started)';
    const err = status.stderr.trim().split('\n').slice(-5).join('\n');
    return new BootTestError('ERR_QEMU_EXITED', `QEMU exited ${how} after ${this.elapsed().toFixed(1)} s, before ${what}${err ? `: ${err}` : ''}`, { exitCode: status.code, signal: status.signal, stderr: status.stderr, tail: this.tail() });
  }

  /**
   * Waits for a console line matching `pattern` among the lines after the previous match,
   * at most `timeoutMs`. Rejects with a BootTestError: ERR_BOOT_TIMEOUT, ERR_QEMU_EXITED,
   * ERR_ABORTED, or the code of a failure line seen first (ERR_KERNEL_PANIC, …).
   */
  waitFor(pattern: RegExp, timeoutMs: number, opts: WaitOptions = {}): Promise<MarkerMatch> {
    const failOn = opts.failOn ?? DEFAULT_FAILURES;
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    return this.#wait<MarkerMatch>(timeoutMs, `${pattern} appeared`, (resolve, reject) => (line, index) => {
      const failed = this.#failure(line, failOn);
      if (failed) {
        this.cursor = index + 1;
        reject(failed);
        return true;
      }
      const m = re.exec(line.text);
      if (!m) return false;
      this.cursor = index + 1;
      resolve({ pattern, match: m, line, index });
      return true;
    }, (status, reject) => reject(this.#exitedError(status, `${pattern} appeared`)), { pattern: String(pattern) });
  }

  /** Waits for QEMU to exit (the guest powered off, or rebooted under -no-reboot), failing on failure lines meanwhile. */
  waitForExit(timeoutMs: number, opts: WaitOptions = {}): Promise<ExitStatus> {
    const failOn = opts.failOn ?? DEFAULT_FAILURES;
    return this.#wait<ExitStatus>(timeoutMs, 'QEMU exited', (_resolve, reject) => (line, index) => {
      const failed = this.#failure(line, failOn);
      if (!failed) return false;
      this.cursor = index + 1;
      reject(failed);
      return true;
    }, (status, _reject, resolve) => resolve(status), {});
  }

  #wait<T>(
    timeoutMs: number,
    what: string,
    tester: (resolve: (v: T) => void, reject: (e: BootTestError) => void) => (line: ConsoleLine, index: number) => boolean,
    onExit: (status: ExitStatus, reject: (e: BootTestError) => void, resolve: (v: T) => void) => void,
    context: Record<string, unknown>,
  ): Promise<T> {
    if (this.#waiter) return Promise.reject(new BootTestError('ERR_USAGE', 'a QemuSession waits for one thing at a time'));
    if (this.#aborted) return Promise.reject(new BootTestError('ERR_ABORTED', 'the boot was cancelled', { tail: this.tail() }));
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const settle = (f: () => void) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        f();
      };
      const res = (v: T) => settle(() => resolve(v));
      const rej = (e: BootTestError) => settle(() => reject(e));
      const test = tester(res, rej);
      // Lines already collected first.
      for (let i = this.cursor; i < this.lines.length; i++) if (test(this.lines[i]!, i)) return;
      if (this.#exit) {
        onExit(this.#exit, rej, res);
        return;
      }
      const waiter: Waiter = { test, onExit: (s) => onExit(s, rej, res), reject: rej };
      this.#waiter = waiter;
      timer = setTimeout(() => {
        if (this.#waiter === waiter) this.#waiter = undefined;
        rej(new BootTestError('ERR_BOOT_TIMEOUT', `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting until ${what}`, { ...context, timeoutMs, tail: this.tail() }));
      }, Math.max(0, timeoutMs));
    });
  }

  /** Ends QEMU (SIGTERM, then SIGKILL after 2 s) and waits for it, at most 5 s. Idempotent. */
  async kill(): Promise<ExitStatus | undefined> {
    if (this.#exit) return this.#exit;
    this.#child.kill('SIGTERM');
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 2000);
    let guard: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([this.exited, new Promise<undefined>((r) => (guard = setTimeout(() => r(undefined), 5000)))]);
    } finally {
      clearTimeout(t);
      if (guard) clearTimeout(guard);
    }
  }
}
