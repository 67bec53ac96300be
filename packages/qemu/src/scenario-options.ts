/**
 * The options of a scenario run and every check of them, in one place: the CLI's boot-test
 * (`--scenario`) calls {@link checkScenarioUsage} with its flag names, so its usage errors and the
 * API's refusals are the same checks with the same words.
 */
import { existsSync, statSync } from 'node:fs';
import { findRolePartition, readExt4File, readPartitionTable } from '@edgeimage/composer';
import type { BootTestOptions } from './boot-test.js';
import { BootTestError } from './errors.js';
import { parseCrashPoint, parseScenario, type CrashPoint, type ScenarioName } from './scenario-contract.js';
import type { ScenarioStep } from './scenario-harness.js';
import { readUpdateManifest, type UpdateManifest } from './update-file.js';

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
  boot?: Pick<BootTestOptions, 'arch' | 'accel' | 'firmware' | 'firmwareFiles' | 'firmwareDir' | 'ubootEnvFlash' | 'ubootDtb' | 'secureBoot' | 'memoryMiB' | 'display'>;
  /**
   * update and rollback: passed to the scenario's last boot, the device healthy on the slot it ends
   * on — e.g. the updated service answers through a forward — so that checking it costs no boot of
   * its own (a minute under TCG for a Debian base).
   */
  lastBoot?: Pick<BootTestOptions, 'forwards' | 'expectHttp' | 'screenshot' | 'expectScreen'>;
  signal?: AbortSignal;
  /** Each step once it is over. */
  onStep?: (step: ScenarioStep) => void;
}

/** The options whose combinations are checked before anything is read: names as a caller may give them (unchecked strings). */
export interface ScenarioUsage {
  scenario: string;
  update?: string;
  crashAt?: string;
  /** Only whether one is given matters here. */
  refusal?: unknown;
  inPlace?: boolean;
  bootTimeoutSeconds?: number;
  settleSeconds?: number;
  recoveryBoots?: number;
}

/** How a caller names each option in its messages: the API's field names, or the CLI's flags. */
export type ScenarioOptionNames = Record<keyof ScenarioUsage, string>;
export const SCENARIO_OPTION_NAMES: ScenarioOptionNames = {
  scenario: 'scenario',
  update: 'update',
  crashAt: 'crashAt',
  refusal: 'refusal',
  inPlace: 'inPlace',
  bootTimeoutSeconds: 'bootTimeoutSeconds',
  settleSeconds: 'settleSeconds',
  recoveryBoots: 'recoveryBoots',
};

/**
 * The scenario and crash point by name and the options that belong together, before any file is
 * looked at. Throws a BootTestError: ERR_SCENARIO, ERR_CRASH_POINT (naming the valid ones) or
 * ERR_USAGE, its message naming each option as `names` does.
 */
export function checkScenarioUsage(o: ScenarioUsage, names: ScenarioOptionNames = SCENARIO_OPTION_NAMES): void {
  const scenario = parseScenario(o.scenario);
  if (o.crashAt !== undefined) {
    parseCrashPoint(o.crashAt);
    if (scenario !== 'power-cut') throw new BootTestError('ERR_USAGE', `${names.crashAt} belongs to ${names.scenario} power-cut, not ${scenario}`, { option: names.crashAt, scenario });
  }
  if (o.refusal !== undefined && scenario !== 'refuse') throw new BootTestError('ERR_USAGE', `${names.refusal} belongs to ${names.scenario} refuse, not ${scenario}`, { option: names.refusal, scenario });
  if (scenario === 'power-cut' && o.crashAt === undefined && o.inPlace) {
    throw new BootTestError('ERR_USAGE', `${names.scenario} power-cut without ${names.crashAt} runs every crash point, each on a fresh copy of the image: name one point to run it ${names.inPlace}`, { option: names.inPlace, scenario });
  }
  if (!o.update) throw new BootTestError('ERR_USAGE', `${names.scenario} ${scenario} needs the update to boot with: ${names.update} FILE (made by edgeimage update create)`, { option: names.update, scenario });
  for (const k of ['bootTimeoutSeconds', 'settleSeconds', 'recoveryBoots'] as const) {
    const v = o[k];
    if (v !== undefined && !(v > 0)) throw new BootTestError('ERR_USAGE', `${names[k]}: expected a positive number, found ${v}`, { option: names[k], found: v });
  }
}

/**
 * Every check before anything is copied or booted: {@link checkScenarioUsage}, then the image and
 * the update file. Throws a BootTestError (ERR_SCENARIO, ERR_CRASH_POINT, ERR_USAGE,
 * ERR_IMAGE_OPEN, ERR_UPDATE_OPEN, ERR_UPDATE_FILE).
 */
export function checkScenarioOptions(o: ScenarioOptions): UpdateManifest {
  checkScenarioUsage(o);
  if (!existsSync(o.image)) throw new BootTestError('ERR_IMAGE_OPEN', `image ${o.image} does not exist`, { path: o.image });
  if (!existsSync(o.update) || !statSync(o.update).isFile()) throw new BootTestError('ERR_UPDATE_OPEN', `update file ${o.update} does not exist`, { path: o.update });
  // the refuse scenario's updates are made to be refused: described from their manifest
  return readUpdateManifest(o.update, { hostile: o.scenario === 'refuse' });
}

/**
 * The crash points are test hooks that only an image of a grade dangerous model has (its boot
 * script appends edge_kargs, its device obeys edge.crash=): refuse power-cut on any other image at
 * once, rather than after boots that never crash. The grade is slot a's boot/slot.env EDGE_GRADE.
 */
export async function checkHookGrade(image: string): Promise<void> {
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
