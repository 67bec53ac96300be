import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { promisify } from 'node:util';
import { bootPartitionOffset, chooseEnv, decodeGrubEnv, encodeGrubEnv, ENV_FILES, findRolePartition, readExt4File, readImageEnv, readImageEnvFiles, readPartitionTable, toolEnv, writeImageEnv, writeImageFile } from '@edgeimage/composer';
import { bootTest, type BootTestOptions, type BootTestResult, type MarkerResult } from './boot-test.js';
import { BootTestError } from './errors.js';
import { DEFAULT_FAILURES, type FailurePattern } from './session.js';
import { readUpdateManifest, type UpdateManifest } from './update-file.js';

// The host tools' fixed environment: nothing of the build's own (EDGEIMAGE_KEY_PASSPHRASE) reaches a child.
const run = (cmd: string, args: readonly string[]) => promisify(execFile)(cmd, [...args], { env: toolEnv() });

/** The scenarios `edgeimage boot-test --scenario` runs. */
export const SCENARIOS = ['update', 'rollback', 'refuse', 'power-cut'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * The device's crash points (`edge.crash=POINT` on the kernel command line, from the boot
 * environment's `edge_kargs`): the device reboots at once there, as a power cut would.
 */
export const CRASH_POINTS = ['mid-slot-write', 'after-slot-write', 'env-between-copies', 'after-env', 'try-before-commit'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

type Slot = 'a' | 'b';
const other = (s: Slot): Slot => (s === 'a' ? 'b' : 'a');
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The console lines a scenario waits for (the device contract; see packages/qemu/README.md). */
export const SCENARIO_MARKERS = {
  /** The bootloader's choice: `edgeimage-grub: booting slot a (why)` / `edgeimage-uboot: …`. */
  booting: (slot?: Slot) => new RegExp(`edgeimage-(?:grub|uboot): booting slot (?<slot>${slot ?? '[ab]'})(?: \\((?<why>.*)\\))?`),
  healthy: (slot?: Slot) => new RegExp(`edgeimage-health: healthy on slot (?<slot>${slot ?? '[ab]'})`),
  committed: (slot: Slot) => new RegExp(`edgeimage-health: committed slot ${slot}`),
  unhealthy: (slot?: Slot) => new RegExp(`edgeimage-health: UNHEALTHY on slot ${slot ?? '[ab]'}`),
  notCommitted: (slot: Slot) => new RegExp(`edgeimage-health: try boot of slot ${slot} not committed; rebooting`),
  found: /edge-update: found an update on \/dev\/vdb/,
  applied: (slot?: Slot) => new RegExp(`edge-update: applied revision (?<revision>\\d+) to slot (?<target>${slot ?? '[ab]'}); rebooting`),
  refused: /edge-update: REFUSED: (?<reason>.+)$/,
  crash: (point: CrashPoint) => new RegExp(`edgeimage: crash point ${esc(point)}: rebooting at once`),
  /** Printed at each boot once healthy; its text may vary (`edge-update: status: booted a good a failed b`). */
  status: /edge-update: status: .*/,
  statusFailed: (slot: Slot) => new RegExp(`edge-update: status: .*failed:? ${slot}\\b`),
};

/** Console lines that fail a step (on top of the harness's panic/initramfs/bootloader failures). */
const FAIL = {
  refused: { pattern: /edge-update: REFUSED: (.+)$/, code: 'ERR_UPDATE_REFUSED', describe: (m) => `the device refused the update: ${m[1]}` },
  applied: { pattern: /edge-update: (applied revision \d+ to slot [ab]).*$/, code: 'ERR_UPDATE_APPLIED', describe: (m) => `the device applied an update it should refuse: ${m[1]}` },
  unhealthy: { pattern: /edgeimage-health: (UNHEALTHY on slot [ab].*)$/, code: 'ERR_UNHEALTHY', describe: (m) => `the system is not healthy: ${m[1]}` },
  updateFailed: { pattern: /edge-update: FAILED: (.+)$/, code: 'ERR_UPDATE_FAILED', describe: (m) => `the device failed to apply the update: ${m[1]}` },
  committed: { pattern: /edgeimage-health: (committed slot [ab])$/, code: 'ERR_COMMITTED', describe: (m) => `the try boot was committed where it must not be: ${m[1]}` },
} satisfies Record<string, FailurePattern>;

export interface ScenarioOptions {
  /** The disk image. A sparse copy is used (power-cut over every point: a fresh copy per point) unless `inPlace`. */
  image: string;
  scenario: ScenarioName;
  /** The update file (`edgeimage update create`); attached as /dev/vdb on the boot that should apply it. */
  update: string;
  /** power-cut only: one point; default every point in turn, each on a fresh copy of the image. */
  crashAt?: CrashPoint;
  /** refuse only: the REFUSED line's reason must match (e.g. /signature/i). */
  refusal?: RegExp;
  /** Boot the image itself (its final state is kept). Not with power-cut over every point. */
  inPlace?: boolean;
  /** Keep the final disk at this path (power-cut over every point: one file per point, `NAME.POINT.img`). */
  keep?: string;
  /** Each boot's timeout, seconds (default 300: a try that is never healthy takes the device's 60 s health timeout and a reboot). */
  bootTimeoutSeconds?: number;
  /** refuse: seconds the system must stay up after the refusal (default 8). */
  settleSeconds?: number;
  /** power-cut: boots without the update allowed to reach healthy after the crash (default 3). */
  recoveryBoots?: number;
  /** Where each boot's console log goes (default: a new folder in the temp folder, kept). */
  logDir?: string;
  /** Where the copies go (default the OS temp folder). */
  tmpDir?: string;
  /** Passed to every boot. */
  boot?: Pick<BootTestOptions, 'arch' | 'accel' | 'firmware' | 'firmwareFiles' | 'firmwareDir' | 'ubootEnvFlash' | 'memoryMiB'>;
  signal?: AbortSignal;
  /** Each step once it is over. */
  onStep?: (step: ScenarioStep) => void;
}

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

/** A crash point given by name; ERR_CRASH_POINT naming the valid ones otherwise. */
export function parseCrashPoint(s: string): CrashPoint {
  if ((CRASH_POINTS as readonly string[]).includes(s)) return s as CrashPoint;
  throw new BootTestError('ERR_CRASH_POINT', `unknown crash point ${JSON.stringify(s)}: the device's crash points are ${CRASH_POINTS.join(', ')}`, { point: s, valid: [...CRASH_POINTS] });
}

/** A scenario given by name; ERR_SCENARIO naming the valid ones otherwise. */
export function parseScenario(s: string): ScenarioName {
  if ((SCENARIOS as readonly string[]).includes(s)) return s as ScenarioName;
  throw new BootTestError('ERR_SCENARIO', `unknown scenario ${JSON.stringify(s)}: the scenarios are ${SCENARIOS.join(', ')}`, { scenario: s, valid: [...SCENARIOS] });
}

/**
 * The checks before anything is copied or booted: the scenario and crash point by name, the
 * options that belong together, the image and the update file. Throws a BootTestError
 * (ERR_SCENARIO, ERR_CRASH_POINT, ERR_USAGE, ERR_IMAGE_OPEN, ERR_UPDATE_OPEN, ERR_UPDATE_FILE).
 */
export function checkScenarioOptions(o: ScenarioOptions): UpdateManifest {
  parseScenario(o.scenario);
  if (o.crashAt !== undefined) {
    parseCrashPoint(o.crashAt);
    if (o.scenario !== 'power-cut') throw new BootTestError('ERR_USAGE', `a crash point (${o.crashAt}) belongs to the power-cut scenario, not ${o.scenario}`);
  }
  if (o.refusal !== undefined && o.scenario !== 'refuse') throw new BootTestError('ERR_USAGE', `an expected refusal belongs to the refuse scenario, not ${o.scenario}`);
  if (o.scenario === 'power-cut' && o.crashAt === undefined && o.inPlace) {
    throw new BootTestError('ERR_USAGE', 'power-cut over every crash point runs each point on a fresh copy of the image: name one point (--crash-at) to run it in place');
  }
  if (!o.update) throw new BootTestError('ERR_USAGE', `the ${o.scenario} scenario needs an update file (--update FILE)`);
  if (!existsSync(o.image)) throw new BootTestError('ERR_IMAGE_OPEN', `image ${o.image} does not exist`, { path: o.image });
  if (!existsSync(o.update) || !statSync(o.update).isFile()) throw new BootTestError('ERR_UPDATE_OPEN', `update file ${o.update} does not exist`, { path: o.update });
  for (const [k, v] of [['bootTimeoutSeconds', o.bootTimeoutSeconds], ['settleSeconds', o.settleSeconds], ['recoveryBoots', o.recoveryBoots]] as const) {
    if (v !== undefined && !(v > 0)) throw new BootTestError('ERR_USAGE', `${k}: expected a positive number, found ${v}`);
  }
  // the refuse scenario's updates are made to be refused: described from their manifest
  return readUpdateManifest(o.update, { hostile: o.scenario === 'refuse' });
}

/**
 * The crash points are test hooks that only an image of a grade dangerous model has (its boot
 * script appends edge_kargs, its device obeys edge.crash=): refuse power-cut on any other image at
 * once, rather than after boots that never crash. The grade is slot a's boot/slot.env EDGE_GRADE.
 */
async function checkHookGrade(image: string): Promise<void> {
  let a: { start: number } | undefined;
  try {
    a = findRolePartition(image, readPartitionTable(image), 'system-a');
  } catch {
    a = undefined; // no partition table: no slot, no grade
  }
  const env = a ? ((await readExt4File(image, a.start, '/boot/slot.env'))?.toString('utf8') ?? '') : '';
  const grade = /^EDGE_GRADE=([a-z]{1,16})$/m.exec(env.slice(0, 4096))?.[1];
  if (grade !== 'dangerous') {
    throw new BootTestError(
      'ERR_SCENARIO_GRADE',
      `power-cut needs an image of a grade dangerous model, but ${image} is ${grade ? `grade ${grade}` : 'of no known grade (slot a has no EDGE_GRADE in boot/slot.env)'}: ` +
        "its boot script ignores edge_kargs and its device edge.crash=; build the model's grade dangerous twin (models/sign-examples signs BOARD-dangerous)",
      { image, grade: grade ?? null },
    );
  }
}

/** sha256 of a byte range of a file (a partition of a disk image). */
async function sha256Range(file: string, start: number, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { start, end: start + size - 1, highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function slotPartition(disk: string, slot: Slot): { start: number; size: number } {
  const table = readPartitionTable(disk);
  const p = findRolePartition(disk, table, `system-${slot}`);
  if (!p) throw new BootTestError('ERR_NO_SLOT', `${disk}: no system-${slot} partition`, { image: disk, slot });
  return { start: p.start, size: p.size };
}

async function envOf(disk: string): Promise<Record<string, string>> {
  return { ...(await readImageEnv(disk, bootPartitionOffset(disk))).vars };
}

const envText = (env: Record<string, string>, keys = ['edge_slot', 'edge_try_slot', 'edge_status', 'edge_failed_slot', 'edge_kargs']) =>
  keys.map((k) => `${k}=${env[k] ?? ''}`).join(' ');

interface BootSpec {
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
}

class StepFailed extends Error {
  constructor(readonly failure: ScenarioFailure) {
    super(failure.reason);
  }
}

/** Runs one scenario on one disk (already a copy, or the image in place). */
class Run {
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

const M = SCENARIO_MARKERS;

/** The first boot of update, rollback and power-cut: healthy on the active slot, then the update is applied to the other one. */
async function applyBoot(run: Run, active: Slot, manifest: UpdateManifest): Promise<void> {
  const s = await run.mustBoot({
    name: `healthy on slot ${active}, the update on /dev/vdb applied to slot ${other(active)}, reboot`,
    expect: [M.booting(active), M.healthy(active), M.found, M.applied()],
    updateDisk: true,
    untilExit: true,
    failOn: [FAIL.refused, FAIL.unhealthy],
    outcome: 'applied',
  });
  const line = s.markers[s.markers.length - 1]!.line;
  const m = M.applied().exec(line)!;
  run.check('the update went to the inactive slot', m.groups!['target'] === other(active), `"${line.trim()}" (the inactive slot is ${other(active)})`);
  if (manifest.revision !== undefined) run.check('the revision applied is the update\'s', Number(m.groups!['revision']) === manifest.revision, `applied revision ${m.groups!['revision']}, the update's manifest says revision ${manifest.revision}`);
}

async function updateScenario(run: Run, manifest: UpdateManifest): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await applyBoot(run, a, manifest);
  const env1 = await run.env();
  run.check('the update set a try of the new slot', env1['edge_try_slot'] === b && env1['edge_status'] === 'try', `after boot 1: ${envText(env1)}`);
  await run.mustBoot({ name: `the try boot of slot ${b} is committed and healthy`, expect: [M.booting(b), M.committed(b), M.healthy(b)], failOn: [FAIL.unhealthy], outcome: 'healthy' });
  await run.mustBoot({ name: `slot ${b} stays: healthy again`, expect: [M.booting(b), M.healthy(b)], failOn: [FAIL.unhealthy], outcome: 'healthy' });
  const env = await run.env();
  run.check('the boot environment names the new slot', env['edge_slot'] === b && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (expected edge_slot=${b}, edge_status and edge_try_slot empty)`);
  return b;
}

async function rollbackScenario(run: Run, manifest: UpdateManifest): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await applyBoot(run, a, manifest);
  await run.mustBoot({
    name: `the try boot of slot ${b} is never healthy: not committed, reboot`,
    expect: [M.booting(b), M.unhealthy(b), M.notCommitted(b)],
    untilExit: true,
    failOn: [FAIL.committed],
    outcome: 'not-committed',
  });
  // the device reports the rolled-back slot after it is healthy (`edge-update: status: … failed b`)
  await run.mustBoot({ name: `the bootloader rolls back: healthy on slot ${a}, slot ${b} reported failed`, expect: [M.booting(a), M.healthy(a), M.statusFailed(b)], failOn: [FAIL.unhealthy], outcome: 'rolled-back' });
  const env = await run.env();
  run.check('the boot environment records the rollback', env['edge_slot'] === a && env['edge_failed_slot'] === b && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (expected edge_slot=${a}, edge_failed_slot=${b}, edge_status and edge_try_slot empty)`);
  return a;
}

async function refuseScenario(run: Run): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  const part = slotPartition(run.disk, b);
  const before = await sha256Range(run.disk, part.start, part.size);
  const s = await run.mustBoot({
    name: `healthy on slot ${a}, the update on /dev/vdb refused, the system stays up`,
    expect: [M.booting(a), M.healthy(a), M.found, M.refused],
    updateDisk: true,
    settle: true,
    failOn: [FAIL.applied],
    outcome: 'refused',
  });
  const line = s.markers[s.markers.length - 1]!.line.trim();
  if (run.o.refusal) run.check('the refusal names the cause', run.o.refusal.test(line), `"${line}" (expected it to match /${run.o.refusal.source}/${run.o.refusal.flags})`);
  const after = await sha256Range(run.disk, part.start, part.size);
  run.check(`slot ${b} unchanged`, after === before, `system-${b} (${part.size} bytes at ${part.start}): sha256 ${before.slice(0, 16)}… before, ${after.slice(0, 16)}… after`);
  const env = await run.env();
  const same = JSON.stringify(Object.entries(env).sort()) === JSON.stringify(Object.entries(env0).sort());
  run.check('the boot environment unchanged', same, `before: ${envText(env0)}; after: ${envText(env)}`);
  await run.mustBoot({ name: `without the update: healthy on slot ${a}`, expect: [M.booting(a), M.healthy(a)], failOn: [FAIL.unhealthy], outcome: 'healthy' });
  return a;
}

/** What the design predicts after a power cut at each point (reported next to what happened). */
const PREDICTED: Record<CrashPoint, string> = {
  'mid-slot-write': 'the slot write was cut off before the boot environment changed: the old slot stays',
  'after-slot-write': 'the slot was written but the boot environment not yet changed: the old slot stays',
  'env-between-copies': 'one environment copy is new, the other old: the reader takes a complete copy (new: try the new slot; old: stay)',
  'after-env': 'the environment asks for a try of the new slot: the next boot tries it and commits it',
  'try-before-commit': 'the try boot was cut before its commit: the bootloader rolls back to the old slot',
};

async function powerCutPoint(run: Run, point: CrashPoint, manifest: UpdateManifest, recoveryBoots: number): Promise<PowerCutOutcome> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await run.setEnv({ edge_kargs: `edge.crash=${point}` });
  if (point === 'try-before-commit') {
    await applyBoot(run, a, manifest);
    await run.mustBoot({ name: `the try boot of slot ${b} crashes before its commit`, expect: [M.booting(b), M.crash(point)], untilExit: true, failOn: [FAIL.committed], outcome: 'crashed' });
  } else {
    await run.mustBoot({ name: `healthy on slot ${a}, the update on /dev/vdb, a crash at ${point}`, expect: [M.booting(a), M.healthy(a), M.found, M.crash(point)], updateDisk: true, untilExit: true, failOn: [FAIL.refused], outcome: 'crashed' });
  }
  const crashed = await run.clearKargsKeepingState();
  for (let i = 1; i <= recoveryBoots; i++) {
    // No failure lines: a boot that fails and reboots is allowed, as long as one becomes healthy.
    const s = await run.boot({ name: `after the crash (${i} of at most ${recoveryBoots}): healthy on a slot`, expect: [M.booting(), M.healthy()], failOn: null, outcome: 'healthy', rebootAllowed: true });
    if (s.outcome === 'healthy') {
      const env = await run.env();
      const slot = s.slot!;
      const healthy = s.markers.find((m) => /healthy on slot/.test(m.line));
      const hs = healthy ? (/healthy on slot ([ab])/.exec(healthy.line)![1] as Slot) : slot;
      const bootLine = s.markers[0]!.line.trim();
      const why = `healthy on slot ${hs} (${hs === a ? 'the old slot' : 'the new slot'}) after ${i} boot${i > 1 ? 's' : ''}; the environment after the crash: ${crashed}; the bootloader: "${bootLine.replace(/^.*?(edgeimage-)/, '$1')}"; by design: ${PREDICTED[point]}`;
      run.check('the boot environment agrees with the healthy slot', env['edge_slot'] === hs && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (healthy on slot ${hs})`);
      return { point, passed: true, slot: hs, boots: i, why };
    }
    if (s.outcome !== 'rebooted') {
      throw new StepFailed({ step: s.name, point, code: s.code ?? 'ERR_BOOT_FAILED', reason: `after a crash at ${point} the device is neither healthy nor rebooting: ${s.reason}`, tail: s.tail, log: s.log });
    }
  }
  const last = run.steps[run.steps.length - 1];
  throw new StepFailed({ step: last?.name ?? point, point, code: 'ERR_NOT_RECOVERED', reason: `after a crash at ${point} the device never became healthy on slot a or b in ${recoveryBoots} boots`, tail: last?.tail, log: last?.log });
}

/**
 * Runs a scenario with one update on a copy of an image (or in place), each boot a QEMU process
 * of its own with `-no-reboot` (a guest reboot ends QEMU; the disk keeps its state):
 *
 * - `update`: boot 1 (update on /dev/vdb) healthy on a, applies to b, reboots; boot 2 tries b,
 *   commits it, healthy; boot 3 healthy on b. The environment: edge_slot=b, edge_status empty.
 * - `rollback`: boot 1 applies; boot 2 tries b, never healthy, not committed, reboots; boot 3
 *   rolls back: healthy on a; edge_failed_slot=b, edge_slot=a.
 * - `refuse`: boot 1 healthy on a, REFUSED, stays up; slot b's bytes and the environment
 *   unchanged; boot 2 healthy on a.
 * - `power-cut`: per crash point (each on a fresh copy): `edge_kargs=edge.crash=POINT` set
 *   offline, the crash, edge_kargs cleared, then at most `recoveryBoots` boots until healthy on a
 *   or b — which one and why is reported.
 *
 * Refusals before anything runs throw a BootTestError ({@link checkScenarioOptions}); a scenario
 * that fails resolves with `passed: false` and `failure` (the step, code, reason, log tail).
 */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const manifest = checkScenarioOptions(o);
  if (o.scenario === 'power-cut') await checkHookGrade(o.image);
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
        if (o.scenario === 'update') slot = await updateScenario(r, manifest);
        else if (o.scenario === 'rollback') slot = await rollbackScenario(r, manifest);
        else if (o.scenario === 'refuse') slot = await refuseScenario(r);
        else {
          const out = await powerCutPoint(r, point!, manifest, o.recoveryBoots ?? 3);
          powerCut.push(out);
          slot = out.slot;
        }
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

/** The `--json` fields of a scenario: `scenario` and `steps` (each boot), with the checks, the outcome per crash point and the failure. */
export function scenarioReport(r: ScenarioResult): Record<string, unknown> {
  const last = r.steps[r.steps.length - 1];
  return {
    passed: r.passed,
    slot: r.slot,
    markers: (last?.markers ?? []).map((m) => ({ pattern: m.pattern, seconds: Number(m.seconds.toFixed(3)), line: m.line })),
    log: last?.log ?? null,
    scenario: r.scenario,
    update: { file: r.update, 'brand-id': r.manifest.brandId ?? null, model: r.manifest.model ?? null, revision: r.manifest.revision ?? null },
    steps: r.steps.map((s) => ({
      name: s.name,
      ...(s.point ? { point: s.point } : {}),
      boot: s.boot,
      updateDisk: s.updateDisk,
      slot: s.slot,
      outcome: s.outcome,
      summary: s.summary,
      markers: s.markers.map((m) => ({ pattern: m.pattern, seconds: Number(m.seconds.toFixed(3)), line: m.line })),
      status: s.status,
      seconds: Number(s.seconds.toFixed(3)),
      passed: s.passed,
      log: s.log,
      ...(s.passed ? {} : { reason: s.reason, code: s.code }),
    })),
    checks: r.checks,
    env: r.env,
    ...(r.powerCut ? { powerCut: r.powerCut } : {}),
    ...(r.failure ? { reason: `${r.failure.step}: ${r.failure.reason}`, code: r.failure.code, failure: r.failure } : {}),
    seconds: Number(r.seconds.toFixed(1)),
    ...(r.kept.length ? { kept: r.kept } : {}),
  };
}
