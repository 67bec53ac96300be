/**
 * The run harness of the scenarios: each boot a QEMU process of its own with `-no-reboot` on one
 * disk (a copy, or the image in place), its markers and outcome recorded as a step; checks of the
 * disk between boots; the copies, kept disks and logs of a whole run. What the boots are and what
 * they must show is in scenario.ts.
 */
import { execFile } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { promisify } from 'node:util';
import { bootPartitionOffset, chooseEnv, decodeGrubEnv, encodeGrubEnv, ENV_FILES, findRolePartition, readImageEnv, readImageEnvFiles, readPartitionTable, toolEnv, writeImageEnv, writeImageFile } from '@edgeimage/composer';
import { bootTest, type BootTestResult, type MarkerResult } from './boot-test.js';
import { BootTestError } from './errors.js';
import { CRASH_POINTS, FAIL, SCENARIO_MARKERS, type CrashPoint, type ScenarioName, type Slot } from './scenario-contract.js';
import type { ScenarioOptions } from './scenario-options.js';
import { DEFAULT_FAILURES, type FailurePattern } from './session.js';
import type { UpdateManifest } from './update-file.js';

// The host tools' fixed environment: nothing of the build's own (EDGEIMAGE_KEY_PASSPHRASE) reaches a child.
const run = (cmd: string, args: readonly string[]) => promisify(execFile)(cmd, [...args], { env: toolEnv() });

export type StepOutcome = 'healthy' | 'applied' | 'refused' | 'rolled-back' | 'not-committed' | 'crashed' | 'rebooted' | 'failed';

/** One boot of a scenario: a QEMU process of its own (`-no-reboot`: a guest reboot ends it). */
export interface ScenarioStep {
  name: string;
  /** power-cut: the crash point of this run. */
  point?: CrashPoint;
  /** 1-based, within the run (a power-cut point starts again at 1). */
  boot: number;
  /** The update disk was attached (/dev/vdb). */
  updateDisk: boolean;
  /** The slot the bootloader booted (its `booting slot X` line, else the health check's). */
  slot: Slot | null;
  outcome: StepOutcome;
  /** What the step saw, in one line. */
  summary: string;
  markers: MarkerResult[];
  /** The `edge-update: status:` lines. */
  status: string[];
  seconds: number;
  passed: boolean;
  log: string;
  /** The scenario's last boot with a screenshot asked for: the PNG and when it was taken. */
  screenshot?: { file: string; seconds: number };
  reason?: string;
  code?: string;
  tail?: string;
}

/** A check of the disk between or after boots (boot environment, slot bytes). */
export interface ScenarioCheck {
  name: string;
  point?: CrashPoint;
  passed: boolean;
  detail: string;
}

/** power-cut: where one crash point ended. */
export interface PowerCutOutcome {
  point: CrashPoint;
  passed: boolean;
  /** The slot the device became healthy on (null: never). */
  slot: Slot | null;
  /** Boots after the crash until healthy. */
  boots: number;
  why: string;
}

export interface ScenarioFailure {
  step: string;
  point?: CrashPoint;
  code: string;
  reason: string;
  tail?: string;
  log?: string;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  passed: boolean;
  image: string;
  update: string;
  /** What the update says it is. */
  manifest: UpdateManifest;
  /** The slot the device ended healthy on (power-cut over every point: the last point's). */
  slot: Slot | null;
  steps: ScenarioStep[];
  checks: ScenarioCheck[];
  /** The boot environment at the end (power-cut over every point: the last point's). */
  env: Record<string, string>;
  powerCut?: PowerCutOutcome[];
  failure?: ScenarioFailure;
  /** Kept disks (keep). */
  kept: string[];
  logDir: string;
  seconds: number;
}

/** sha256 of a byte range of a file (a partition of a disk image). */
export async function sha256Range(file: string, start: number, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { start, end: start + size - 1, highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function slotPartition(disk: string, slot: Slot): { start: number; size: number } {
  const table = readPartitionTable(disk);
  const p = findRolePartition(disk, table, `system-${slot}`);
  if (!p) throw new BootTestError('ERR_NO_SLOT', `${disk}: no system-${slot} partition`, { image: disk, slot });
  return { start: p.start, size: p.size };
}

async function envOf(disk: string): Promise<Record<string, string>> {
  return { ...(await readImageEnv(disk, bootPartitionOffset(disk))).vars };
}

export const envText = (env: Record<string, string>, keys = ['edge_slot', 'edge_try_slot', 'edge_status', 'edge_failed_slot', 'edge_kargs']) =>
  keys.map((k) => `${k}=${env[k] ?? ''}`).join(' ');

export interface BootSpec {
  name: string;
  expect: RegExp[];
  updateDisk?: boolean;
  /** Wait for QEMU to exit after the markers (the guest reboots). */
  untilExit?: boolean;
  settle?: boolean;
  /** Failure lines on top of the defaults; `null`: no failure lines at all (a recovery boot may fail and reboot). */
  failOn?: FailurePattern[] | null;
  /** The outcome once every marker was seen. */
  outcome: StepOutcome;
  /** QEMU exiting before the markers (the guest rebooted) is outcome `rebooted`, not a failure. */
  rebootAllowed?: boolean;
  /** The scenario's last boot: the options' lastBoot apply. */
  last?: boolean;
}

export class StepFailed extends Error {
  constructor(readonly failure: ScenarioFailure) {
    super(failure.reason);
  }
}

/** Runs one scenario on one disk (already a copy, or the image in place). */
export class Run {
  readonly steps: ScenarioStep[] = [];
  readonly checks: ScenarioCheck[] = [];
  #boot = 0;
  constructor(
    readonly o: ScenarioOptions,
    readonly disk: string,
    readonly updateDisk: string,
    readonly logDir: string,
    readonly point?: CrashPoint,
  ) {}

  get prefix(): string {
    return this.point ? `${this.point}: ` : '';
  }

  async boot(spec: BootSpec): Promise<ScenarioStep> {
    const n = ++this.#boot;
    const status: string[] = [];
    const name = `${this.prefix}boot ${n}: ${spec.name}`;
    const log = join(this.logDir, `${this.o.scenario}${this.point ? `.${this.point}` : ''}.boot${n}.log`);
    const r: BootTestResult = await bootTest({
      ...this.o.boot,
      ...(spec.last ? this.o.lastBoot : {}),
      image: this.disk,
      inPlace: true,
      noReboot: true,
      expect: spec.expect,
      untilExit: spec.untilExit,
      settleSeconds: spec.settle ? (this.o.settleSeconds ?? 8) : undefined,
      extraDisks: spec.updateDisk ? [this.updateDisk] : [],
      failOn: spec.failOn === null ? [] : [...DEFAULT_FAILURES, FAIL.updateFailed, ...(spec.failOn ?? [])],
      timeoutSeconds: this.o.bootTimeoutSeconds ?? 300,
      log,
      signal: this.o.signal,
      onLine: (l) => {
        if (SCENARIO_MARKERS.status.test(l.text)) status.push(l.text.slice(l.text.indexOf('edge-update: status:')));
      },
    });
    const booted = r.markers.find((m) => /booting slot/.test(m.line));
    const slot = ((booted && /booting slot ([ab])/.exec(booted.line)?.[1]) ?? r.slot ?? null) as Slot | null;
    const rebooted = !r.passed && !!spec.rebootAllowed && r.code === 'ERR_QEMU_EXITED';
    const outcome: StepOutcome = r.passed ? spec.outcome : rebooted ? 'rebooted' : 'failed';
    const last = r.markers[r.markers.length - 1];
    const step: ScenarioStep = {
      name,
      ...(this.point ? { point: this.point } : {}),
      boot: n,
      updateDisk: !!spec.updateDisk,
      slot,
      outcome,
      summary: r.passed
        ? `${slot ? `slot ${slot}: ` : ''}${last ? last.line.trim() : ''}${spec.untilExit ? ' (QEMU exited)' : ''}`
        : rebooted
          ? `rebooted before it was healthy (${r.markers.map((m) => m.line.trim()).join('; ') || 'no marker seen'})`
          : `${r.reason} [${r.code}]`,
      markers: r.markers,
      status,
      seconds: r.seconds,
      passed: r.passed || rebooted,
      log: r.log,
      ...(r.screenshot ? { screenshot: r.screenshot } : {}),
      ...(r.passed ? {} : { reason: r.reason, code: r.code, tail: r.tail }),
    };
    this.steps.push(step);
    this.o.onStep?.(step);
    return step;
  }

  /** A boot that must pass: a failed one ends the scenario. */
  async mustBoot(spec: BootSpec): Promise<ScenarioStep> {
    const s = await this.boot(spec);
    if (!s.passed) throw new StepFailed({ step: s.name, ...(this.point ? { point: this.point } : {}), code: s.code ?? 'ERR_BOOT_FAILED', reason: s.reason ?? 'the boot failed', tail: s.tail, log: s.log });
    return s;
  }

  check(name: string, passed: boolean, detail: string): void {
    const c: ScenarioCheck = { name: `${this.prefix}${name}`, ...(this.point ? { point: this.point } : {}), passed, detail };
    this.checks.push(c);
    if (!passed) {
      const lastLog = this.steps[this.steps.length - 1];
      throw new StepFailed({ step: c.name, ...(this.point ? { point: this.point } : {}), code: 'ERR_SCENARIO_CHECK', reason: detail, log: lastLog?.log });
    }
  }

  async env(): Promise<Record<string, string>> {
    return envOf(this.disk);
  }

  async setEnv(changes: Record<string, string>): Promise<void> {
    await writeImageEnv(this.disk, bootPartitionOffset(this.disk), changes);
  }
  /**
   * After a crash: `edge_kargs` emptied in each environment copy that has it, each copy rewritten
   * on its own and the locks left alone — the state the crash left (which copy is newer, a lock
   * saying editing=1, a copy cut off) is still what the bootloader reads. Returns that state.
   */
  async clearKargsKeepingState(): Promise<string> {
    const off = bootPartitionOffset(this.disk);
    const files = await readImageEnvFiles(this.disk, off);
    const parts: string[] = [];
    for (const k of ['env1', 'env2'] as const) {
      const bytes = files[k];
      let vars: Record<string, string> | undefined;
      try {
        vars = bytes ? decodeGrubEnv(bytes) : undefined;
      } catch {
        vars = undefined;
      }
      const lock = (() => {
        try {
          return files[k === 'env1' ? 'lock1' : 'lock2'] ? decodeGrubEnv(files[k === 'env1' ? 'lock1' : 'lock2']!)['editing'] : undefined;
        } catch {
          return 'unreadable';
        }
      })();
      parts.push(`${k} ${vars ? `{${envText(vars, ['edge_slot', 'edge_try_slot', 'edge_status'])}}` : bytes ? 'unreadable' : 'missing'} (editing=${lock ?? '-'})`);
      if (vars?.['edge_kargs']) await writeImageFile(this.disk, off, ENV_FILES[k], encodeGrubEnv({ ...vars, edge_kargs: '' }));
    }
    let from: string;
    try {
      from = chooseEnv(files).from;
    } catch (e) {
      from = `neither (${(e as Error).message})`;
    }
    return `${parts.join(', ')}; the reader takes ${from}`;
  }
}

/** What playing a scenario on one disk gave: the slot it ended healthy on, and for power-cut the point's outcome. */
export interface Played {
  slot: Slot | null;
  powerCut?: PowerCutOutcome;
}

/**
 * Plays a scenario (options already checked) on a copy of the image, or in place; power-cut over
 * every point once per point, each on a fresh copy. A StepFailed ends a play as the result's
 * `failure`; anything else is thrown. The temporary copies are removed, kept ones renamed.
 */
export async function runOnDisks(o: ScenarioOptions, manifest: UpdateManifest, play: (run: Run, point: CrashPoint | undefined) => Promise<Played>): Promise<ScenarioResult> {
  const started = performance.now();
  const work = mkdtempSync(join(o.tmpDir ?? tmpdir(), 'edgeimage-scenario-'));
  const logDir = o.logDir ?? mkdtempSync(join(o.tmpDir ?? tmpdir(), `edgeimage-scenario-${o.scenario}-logs-`));
  mkdirSync(logDir, { recursive: true });
  const steps: ScenarioStep[] = [];
  const checks: ScenarioCheck[] = [];
  const kept: string[] = [];
  const powerCut: PowerCutOutcome[] = [];
  let env: Record<string, string> = {};
  let slot: Slot | null = null;
  let failure: ScenarioFailure | undefined;
  try {
    // The update disk: a copy padded to a whole MiB (a disk's size).
    const upd = join(work, 'update.disk');
    await run('cp', [o.update, upd]);
    const size = statSync(upd).size;
    truncateSync(upd, Math.max(1, Math.ceil(size / 2 ** 20)) * 2 ** 20);

    const points: (CrashPoint | undefined)[] = o.scenario === 'power-cut' ? (o.crashAt ? [o.crashAt] : [...CRASH_POINTS]) : [undefined];
    for (const point of points) {
      let disk = o.image;
      if (!o.inPlace) {
        disk = join(work, basename(o.image));
        rmSync(disk, { force: true });
        await run('cp', ['--sparse=always', o.image, disk]);
      }
      const r = new Run(o, disk, upd, logDir, point);
      try {
        const out = await play(r, point);
        slot = out.slot;
        if (out.powerCut) powerCut.push(out.powerCut);
      } catch (e) {
        if (!(e instanceof StepFailed)) throw e;
        failure = e.failure;
        slot = null;
        if (point) powerCut.push({ point, passed: false, slot: null, boots: 0, why: `${e.failure.step}: ${e.failure.reason}` });
      } finally {
        steps.push(...r.steps);
        checks.push(...r.checks);
        try {
          env = await envOf(disk);
        } catch {
          env = {};
        }
        if (o.keep && !o.inPlace) {
          const dest = point && points.length > 1 ? join(dirname(o.keep), `${basename(o.keep, extname(o.keep))}.${point}${extname(o.keep) || '.img'}`) : o.keep;
          mkdirSync(dirname(dest), { recursive: true });
          renameSync(disk, dest);
          kept.push(dest);
        } else if (o.keep && o.inPlace) {
          kept.push(o.image);
        }
      }
      if (failure?.code === 'ERR_ABORTED') break;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return {
    scenario: o.scenario,
    passed: !failure && (o.scenario !== 'power-cut' || powerCut.every((p) => p.passed)),
    image: o.image,
    update: o.update,
    manifest,
    slot,
    steps,
    checks,
    env,
    ...(o.scenario === 'power-cut' ? { powerCut } : {}),
    ...(failure ? { failure } : {}),
    kept,
    logDir,
    seconds: (performance.now() - started) / 1000,
  };
}
