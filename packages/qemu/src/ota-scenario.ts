/**
 * The over-the-air scenario (README "Updates over the network"): one QEMU process, its reboots
 * followed, a device built with `--update-url http://10.0.2.100` polling a store that the host
 * serves on 127.0.0.1 (serveOtaStore) and reaches only through QEMU's user networking (guestfwd).
 * The host moves the channel from one signed pointer to the next as the device's console says what
 * it did with the last one, and makes the store misbehave on the way:
 *
 *  1. boot 1, revision 1: an expired pointer (refused), one signed by a key outside the device's
 *     pointer trust store (refused), revision 2 at rollout 0 (not taken), then at rollout 100:
 *     the delta is cut in the middle (drop-after), the device resumes with a Range request, the
 *     bytes served in all are within 10 % of the delta's size; applied, reboot;
 *  2. boot 2: the try of revision 2 commits; a pointer to revision 1 (refused: rollback), then
 *     revision 3, whose app never becomes healthy: applied, reboot;
 *  3. boot 3: the try of revision 3 is unhealthy, not committed: reboot, the bootloader goes back;
 *  4. boot 4: revision 2 again; revision 3 is not tried again; revision 4 is released and served
 *     as a trickle (given up below the minimum rate: the test hooks of the grade dangerous image
 *     make the window short), then with a byte changed (digest mismatch: discarded), then as an
 *     endless stream (stopped at the size the pointer gives): applied, reboot;
 *  5. boot 5: the try of revision 4 commits.
 *
 * What the host serves is decided here; the pointers themselves are made by the caller (`update
 * release`, `channel resign`, and two forged ones), files side by side: NAME and NAME.sig.
 */
import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bootTest, type BootTestOptions, type BootTestResult } from './boot-test.js';
import { factoryFilesOf } from './factory-files.js';
import { BootTestError } from './errors.js';
import { FAIL, SCENARIO_MARKERS } from './scenario-contract.js';
import { DEFAULT_FAILURES } from './session.js';
import { serveOtaStore, type OtaStoreServer } from './ota-store-server.js';

const M = SCENARIO_MARKERS;

/** The pointers served in turn (each a file and its `.sig` beside it). */
export interface OtaPointers {
  /** Revision 2, expired (signed by the pointer key, `expires` in the past). */
  expired: string;
  /** Revision 2, signed by a key the device does not trust for pointers (the brand's model key). */
  otherKey: string;
  /** Revision 1, the first release of the channel (sequence 1). */
  r1: string;
  /** Revision 2 at rollout 0. */
  r2Rollout0: string;
  /** Revision 2 at rollout 100 (`channel resign --rollout 100`). */
  r2: string;
  /** Revision 3: its app never becomes healthy. */
  r3: string;
  /** Revision 4. */
  r4: string;
}

export interface OtaScenarioOptions {
  /** The grade dangerous image at revision 1, built with --update-url http://10.0.2.100 (a short interval, no jitter). */
  image: string;
  /** The directory store the releases went to (served read-only). */
  store: string;
  /** The channel pointer's path in the store, e.g. `channels/example-brand.pc-amd64-dangerous.latest+stable.pointer`. */
  pointerPath: string;
  /** The whole scenario's pointers; `plain`: only r1 and r2. */
  pointers: OtaPointers | Pick<OtaPointers, 'r1' | 'r2'>;
  /**
   * Only the update itself (the demo's): revision 1 up to date, then revision 2 released: the
   * delta downloaded, applied, the try boot committed. No faults, two boots.
   */
  plain?: boolean;
  /** Where the console log goes. */
  log?: string;
  /**
   * The device's disk: the image grown by this first (default +512M, a card bigger than the image,
   * as on a device: system-data grows into it at the first boot, and a network update needs room
   * there for the download and for edge-update's copy of it).
   */
  diskSize?: string;
  /** The whole scenario's timeout, seconds (default 1800). */
  timeoutSeconds?: number;
  /** Seconds without the next step before the scenario is given up (default 300: a boot and two polls). */
  stallSeconds?: number;
  boot?: Pick<BootTestOptions, 'arch' | 'accel' | 'firmware' | 'firmwareDir' | 'ubootEnvFlash' | 'ubootDtb' | 'memoryMiB'>;
  signal?: AbortSignal;
  /** Each step as it is seen. */
  onStep?: (s: OtaStep) => void;
}

export interface OtaStep {
  name: string;
  seconds: number;
  line: string;
}

export interface OtaCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface OtaScenarioResult {
  scenario: 'ota';
  passed: boolean;
  slot: 'a' | 'b' | null;
  steps: OtaStep[];
  checks: OtaCheck[];
  /** Every request the store saw (method, path, range, status, fault). */
  requests: { method: string; path: string; range?: string; status?: number; fault?: string }[];
  /** Body bytes the store sent, per path asked for. */
  served: { path: string; bytes: number }[];
  reason?: string;
  code?: string;
  tail?: string;
  log: string;
  seconds: number;
}

/** One expected console line and what the host does once it is seen. */
interface Phase {
  name: string;
  pattern: RegExp;
  then?: (m: RegExpExecArray) => void;
}

const fetchLine = (s: string) => new RegExp(`edge-fetch: ${s}`);

/** The update line of a pointer for an installed revision: `update: FROM SHA256 SIZE PATH`. */
export function pointerUpdate(pointer: string, from: number | 'full', file = 'the pointer'): { sha256: string; size: number; path: string } {
  for (const l of pointer.split('\n')) {
    const m = /^update: (\S+) ([0-9a-f]{64}) (\d+) (\S+)$/.exec(l);
    if (m && m[1] === String(from)) return { sha256: m[2]!, size: Number(m[3]), path: m[4]! };
  }
  throw new BootTestError('ERR_USAGE', `${file}: the pointer has no update from ${from} (expected a line "update: ${from} SHA256 SIZE PATH"; release that revision with --from ${from})`, { file, from });
}

export async function runOtaScenario(o: OtaScenarioOptions): Promise<OtaScenarioResult> {
  const started = performance.now();
  const text = (p: string) => readFileSync(p, 'utf8');
  const steps: OtaStep[] = [];
  const checks: OtaCheck[] = [];
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail });
  const target = join(o.store, o.pointerPath);
  mkdirSync(dirname(target), { recursive: true });
  // the channel moves as a release moves it: the signature first, then the pointer, each renamed
  // into place (a device that reads between the two sees a signature that does not verify, and
  // tries again later — the devices poll between these moves, never during them here)
  const serve = (p: string) => {
    for (const [from, to] of [[`${p}.sig`, `${target}.sig`], [p, target]] as const) {
      copyFileSync(from, `${to}.tmp`);
      renameSync(`${to}.tmp`, to);
    }
  };
  const full = (): OtaPointers => {
    if (!('r4' in o.pointers)) throw new BootTestError('ERR_USAGE', 'the over-the-air scenario needs every pointer (or plain: true)');
    return o.pointers;
  };
  const delta2 = pointerUpdate(text(o.pointers.r2), 1, o.pointers.r2);
  const delta4 = o.plain ? delta2 : pointerUpdate(text(full().r4), 2, full().r4);
  const p2 = `/${delta2.path}`;
  const p4 = `/${delta4.path}`;
  let server: OtaStoreServer | undefined;
  let endlessFrom = 0;
  // (phases run in order; `then` is the host's move once the device said it)
  const plainPhases: Phase[] = [
    { name: 'boot 1: revision 1 on slot a', pattern: M.booting('a') },
    { name: 'boot 1: healthy on slot a', pattern: M.healthy('a') },
    { name: 'revision 1: up to date', pattern: fetchLine('up to date \\(revision 1\\)'), then: () => serve(o.pointers.r2) },
    { name: 'revision 2 released: the delta from 1 downloading', pattern: fetchLine(`downloading ${esc(delta2.path)} \\(${delta2.size} bytes\\) from byte 0`) },
    { name: 'downloaded and verified', pattern: fetchLine(`downloaded ${delta2.size} bytes of ${esc(delta2.path)}, sha256 verified`) },
    { name: 'revision 2 applied', pattern: fetchLine('applying revision 2') },
    { name: 'boot 2: the try of slot b', pattern: M.booting('b') },
    { name: 'boot 2: committed', pattern: M.committed('b') },
    { name: 'boot 2: healthy on slot b (revision 2)', pattern: M.healthy('b') },
  ];
  const fullPhases = (): Phase[] => [
    { name: 'boot 1: revision 1 on slot a', pattern: M.booting('a') },
    { name: 'boot 1: healthy on slot a', pattern: M.healthy('a') },
    { name: 'an expired pointer: refused', pattern: fetchLine('REFUSED pointer: expired at '), then: () => serve(full().otherKey) },
    { name: 'a pointer signed by another key: refused', pattern: fetchLine("REFUSED pointer: signed with key \\S+, which is not in the device's pointer trust store"), then: () => serve(full().r2Rollout0) },
    {
      name: 'revision 2 at rollout 0: not taken',
      pattern: fetchLine('not in the rollout'),
      then: () => {
        // the delta is cut once, half-way: the device must resume where it stopped
        server!.fault(p2, { kind: 'drop-after', bytes: Math.floor(delta2.size / 2), times: 1 });
        serve(o.pointers.r2);
      },
    },
    { name: 'revision 2 at rollout 100: the delta from 1 downloading from byte 0', pattern: fetchLine(`downloading ${esc(delta2.path)} \\(${delta2.size} bytes\\) from byte 0`) },
    { name: 'the connection cut half-way', pattern: fetchLine('the connection ended at byte (\\d+) of') },
    { name: 'resumed where it stopped', pattern: fetchLine(`downloading ${esc(delta2.path)} \\(${delta2.size} bytes\\) from byte ([1-9]\\d*)`) },
    { name: 'downloaded and verified', pattern: fetchLine(`downloaded ${delta2.size} bytes of ${esc(delta2.path)}, sha256 verified`) },
    { name: 'revision 2 applied', pattern: fetchLine('applying revision 2') },
    { name: 'boot 2: the try of slot b', pattern: M.booting('b') },
    { name: 'boot 2: committed', pattern: M.committed('b') },
    {
      name: 'boot 2: healthy on slot b (revision 2)',
      pattern: M.healthy('b'),
      then: () => {
        const sent = server!.bytes(p2);
        check('the bytes fetched in all are within 10 % of the delta', sent <= delta2.size * 1.1 && sent >= delta2.size, `${sent} bytes served for ${delta2.path} (${delta2.size} bytes): ${((100 * sent) / delta2.size).toFixed(1)} %`);
        const ranged = server!.log.filter((r) => r.path === p2 && r.range !== undefined && r.status === 206);
        check('the second request asked for the rest (Range, 206)', ranged.length >= 1, `${server!.log.filter((r) => r.path === p2).map((r) => `${r.range ?? 'whole'} → ${r.status ?? 'dropped'}`).join('; ')}`);
        serve(o.pointers.r1);
      },
    },
    { name: 'a pointer to revision 1: refused', pattern: fetchLine('REFUSED pointer: rollback: revision 1 is lower than the installed revision 2'), then: () => serve(full().r3) },
    { name: 'revision 3 applied', pattern: fetchLine('applying revision 3') },
    { name: 'boot 3: the try of slot a', pattern: M.booting('a') },
    { name: 'boot 3: revision 3 is never healthy', pattern: M.unhealthy('a') },
    { name: 'boot 3: not committed, reboot', pattern: M.notCommitted('a') },
    { name: 'boot 4: back on slot b', pattern: M.booting('b') },
    { name: 'boot 4: healthy on slot b (revision 2)', pattern: M.healthy('b') },
    {
      name: 'revision 3 is not tried again',
      pattern: fetchLine('revision 3 failed here before: not tried again'),
      then: () => {
        server!.fault(p4, { kind: 'trickle', bytesPerSecond: 64 });
        serve(full().r4);
      },
    },
    { name: 'revision 4 as a trickle: given up, kept for later', pattern: fetchLine('download too slow'), then: () => server!.fault(p4, { kind: 'corrupt', offset: 1000 }) },
    {
      name: 'revision 4 with a byte changed: discarded',
      pattern: fetchLine('REFUSED download: digest mismatch'),
      then: () => {
        endlessFrom = server!.bytes(p4);
        server!.fault(p4, { kind: 'endless' });
      },
    },
    {
      // (an update is whole 512-byte blocks, so the file size limit stops wget at SIZE exactly)
      name: 'revision 4 as an endless stream: stopped at its size, verified',
      pattern: fetchLine(`downloaded ${delta4.size} bytes of ${esc(delta4.path)}, sha256 verified`),
      then: () => {
        const sent = server!.bytes(p4) - endlessFrom;
        check('the endless stream: more was sent than the size, the device kept the size', sent > delta4.size, `${sent} bytes sent for ${delta4.path} after the changed byte's attempt; the pointer gives ${delta4.size}`);
      },
    },
    { name: 'revision 4 applied', pattern: fetchLine('applying revision 4') },
    { name: 'boot 5: the try of slot a', pattern: M.booting('a') },
    { name: 'boot 5: committed', pattern: M.committed('a') },
    { name: 'boot 5: healthy on slot a (revision 4)', pattern: M.healthy('a') },
  ];
  const phases = o.plain ? plainPhases : fullPhases();
  let next = 0;
  let r: BootTestResult | undefined;
  let hostError: Error | undefined;
  // a device that stops short of the next step (a boot that failed between reboots, a poll that
  // never comes) ends the run at once rather than at the whole timeout
  const stall = new AbortController();
  const stallMs = (o.stallSeconds ?? 300) * 1000;
  let stalled: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = `no "${phases[next]?.name}" within ${stallMs / 1000} s of "${phases[next - 1]?.name ?? 'the start'}"`;
      stall.abort();
    }, stallMs);
  };
  o.signal?.addEventListener('abort', () => stall.abort(), { once: true });
  const log = o.log ?? join(dirname(o.image), 'ota.log');
  try {
    server = await serveOtaStore(o.store);
    serve(o.plain ? o.pointers.r1 : full().expired);
    arm();
    // a verified U-Boot image's flash and device tree, made next to it
    const f = factoryFilesOf(o.image);
    r = await bootTest({
      ...(f.ubootEnv ? { ubootEnvFlash: f.ubootEnv } : {}),
      ...(f.ubootDtb ? { ubootDtb: f.ubootDtb } : {}),
      ...o.boot,
      image: o.image,
      reboots: o.plain ? 1 : 4,
      diskSize: o.diskSize ?? '+512M',
      guestForwards: [{ guest: 80, host: server.port }],
      expect: phases.map((p) => p.pattern),
      timeoutSeconds: o.timeoutSeconds ?? 1800,
      log,
      signal: stall.signal,
      failOn: [...DEFAULT_FAILURES, FAIL.updateFailed],
      onLine: (l) => {
        const p = phases[next];
        if (!p) return;
        const m = p.pattern.exec(l.text);
        if (!m) return;
        next++;
        arm();
        const step = { name: p.name, seconds: l.seconds, line: l.text.trim() };
        steps.push(step);
        o.onStep?.(step);
        try {
          p.then?.(m);
        } catch (e) {
          hostError ??= e as Error;
        }
      },
    });
  } finally {
    clearTimeout(timer);
    await server?.close();
  }
  const failedChecks = checks.filter((c) => !c.passed);
  const passed = r.passed && !hostError && failedChecks.length === 0;
  return {
    scenario: 'ota',
    passed,
    slot: r.passed ? (o.plain ? 'b' : 'a') : null,
    steps,
    checks,
    requests: server ? server.log.map((q) => ({ ...q })) : [],
    served: server ? [...new Set(server.log.map((q) => q.path))].map((path) => ({ path, bytes: server!.bytes(path) })) : [],
    ...(passed
      ? {}
      : {
          reason: hostError ? `the host's side: ${hostError.message}` : stalled ? `the device stalled: ${stalled}` : !r.passed ? `${r.reason} (after "${steps[steps.length - 1]?.name ?? 'nothing'}")` : failedChecks.map((c) => `${c.name}: ${c.detail}`).join('; '),
          code: hostError ? 'ERR_HOST' : stalled ? 'ERR_STALLED' : (r.code ?? 'ERR_CHECK'),
          tail: r.tail,
        }),
    log: r.log,
    seconds: (performance.now() - started) / 1000,
  };
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
