import { connect, type Socket } from 'node:net';
import { BootTestError } from './errors.js';

/**
 * QMP messages are one JSON object per line; QEMU's own are small. A line past this is not QEMU
 * talking: the connection is dropped rather than buffered without end.
 */
export const QMP_MAX_LINE_BYTES = 1 << 20;
/** How long a command may take (a screendump of a large display under TCG takes well under a second). */
export const QMP_COMMAND_TIMEOUT_MS = 20_000;

/**
 * A QMP client on QEMU's unix socket (`-qmp unix:PATH,server=on,wait=off`): one command at a time,
 * each answered or failed within its timeout. Events (`{"event": …}`) are ignored.
 *
 * ```ts
 * const qmp = await QmpClient.connect(socketPath, 10_000);
 * try { await qmp.execute('screendump', { filename: '/tmp/s.png', format: 'png' }); } finally { qmp.close(); }
 * ```
 */
export class QmpClient {
  #socket: Socket;
  #buffer = '';
  #pending: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  #greeted: Promise<void>;
  #closed: Error | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  // a connection that fails before QEMU's greeting fails connect() too
  #failGreeting: (e: Error) => void = () => undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    let greet!: { resolve: () => void; reject: (e: Error) => void };
    this.#greeted = new Promise((resolve, reject) => (greet = { resolve, reject }));
    let first = true;
    socket.on('data', (s: string) => {
      // a listener that threw would be an uncaught exception of the whole harness: whatever the
      // peer sends ends in #fail at worst
      try {
        this.#read(s, () => {
          if (!first) return false;
          first = false;
          return true;
        }, greet.resolve);
      } catch (e) {
        this.#fail(e instanceof BootTestError ? e : new BootTestError('ERR_QMP', `QMP: ${(e as Error).message}`));
      }
    });
    socket.on('error', (e) => this.#fail(new BootTestError('ERR_QMP', `QMP: ${e.message}`)));
    socket.on('close', () => this.#fail(new BootTestError('ERR_QMP', 'QMP: QEMU closed the connection (it exited)')));
    this.#greeted.catch(() => undefined);
    this.#failGreeting = (e) => greet.reject(e);
  }

  #read(s: string, isFirst: () => boolean, greeted: () => void): void {
    this.#buffer += s;
    if (this.#buffer.length > QMP_MAX_LINE_BYTES && !this.#buffer.includes('\n')) return this.#fail(new BootTestError('ERR_QMP', `QMP: a message longer than ${QMP_MAX_LINE_BYTES} bytes: not QEMU's`));
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (!line) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return this.#fail(new BootTestError('ERR_QMP', `QMP: not JSON: ${JSON.stringify(line.slice(0, 200))}`));
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return this.#fail(new BootTestError('ERR_QMP', `QMP: not a JSON object: ${JSON.stringify(line.slice(0, 200))}`));
      const msg = parsed as Record<string, unknown>;
      if (isFirst()) {
        if (!('QMP' in msg)) return this.#fail(new BootTestError('ERR_QMP', `QMP: expected QEMU's greeting, found ${JSON.stringify(line.slice(0, 200))}`));
        greeted();
        continue;
      }
      if ('event' in msg) continue;
      const p = this.#pending;
      this.#pending = undefined;
      if (!p) continue;
      if ('return' in msg) p.resolve(msg['return']);
      else {
        const err = (typeof msg['error'] === 'object' && msg['error'] !== null ? msg['error'] : {}) as { class?: unknown; desc?: unknown };
        const desc = typeof err.desc === 'string' ? err.desc.slice(0, 500) : 'an answer without return or error';
        const cls = typeof err.class === 'string' ? err.class.slice(0, 100) : undefined;
        p.reject(new BootTestError('ERR_QMP', `QMP: ${desc}${cls ? ` (${cls})` : ''}`, { qmpClass: cls }));
      }
    }
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.#closed = e;
    this.#failGreeting(e);
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(e);
    this.#socket.destroy();
  }

  /**
   * Connects to QEMU's QMP socket, retrying while QEMU has not made it yet (it does so at start,
   * before the guest runs), and leaves the capabilities negotiation done. Within `timeoutMs`.
   */
  static async connect(path: string, timeoutMs: number, signal?: AbortSignal): Promise<QmpClient> {
    const deadline = performance.now() + timeoutMs;
    let last: Error | undefined;
    for (;;) {
      if (signal?.aborted) throw new BootTestError('ERR_QMP', 'QMP: the connection was given up (the boot ended)');
      let c: QmpClient | undefined;
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        c = new QmpClient(socket);
        await c.#within(c.#greeted, Math.max(1000, deadline - performance.now()), 'the QMP greeting');
        await c.execute('qmp_capabilities');
        return c;
      } catch (e) {
        c?.close();
        last = e as Error;
        if (e instanceof BootTestError || performance.now() > deadline) break;
        // not kept alive by this: a CLI whose boot ended must not wait for the retries
        await new Promise((r) => setTimeout(r, 100).unref());
      }
    }
    throw last instanceof BootTestError ? last : new BootTestError('ERR_QMP', `QMP: cannot connect to ${path} within ${(timeoutMs / 1000).toFixed(0)} s: ${last?.message ?? 'no answer'}`, { path });
  }

  #within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = new BootTestError('ERR_QMP', `QMP: no answer to ${what} within ${(ms / 1000).toFixed(0)} s`);
          reject(e);
          this.#fail(e);
        }, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Runs a QMP command and resolves with its `return`; QEMU's error is ERR_QMP with its description. */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = QMP_COMMAND_TIMEOUT_MS, onSend?: () => void): Promise<unknown> {
    const run = async () => {
      if (this.#closed) throw this.#closed;
      onSend?.();
      const answer = new Promise<unknown>((resolve, reject) => (this.#pending = { resolve, reject }));
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
      return this.#within(answer, timeoutMs, command);
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the connection; a command still waiting is rejected at once. */
  close(): void {
    this.#fail(new BootTestError('ERR_QMP', 'QMP: the connection was closed (the boot ended)'));
  }
}
