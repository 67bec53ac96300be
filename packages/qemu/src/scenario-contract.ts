/**
 * The device contract the scenarios rely on: the scenario and crash-point names, the console lines
 * the device and its bootloaders print (packages/qemu/README.md), the lines that fail a step, and
 * what the design predicts after a power cut at each point.
 */
import { BootTestError } from './errors.js';
import type { FailurePattern } from './session.js';

/** The scenarios `edgeimage boot-test --scenario` runs. */
export const SCENARIOS = ['update', 'rollback', 'refuse', 'power-cut'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * The device's crash points (`edge.crash=POINT` on the kernel command line, from the boot
 * environment's `edge_kargs`): the device reboots at once there, as a power cut would.
 */
export const CRASH_POINTS = ['mid-slot-write', 'after-slot-write', 'env-between-copies', 'after-env', 'try-before-commit'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export type Slot = 'a' | 'b';
export const other = (s: Slot): Slot => (s === 'a' ? 'b' : 'a');
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
export const FAIL = {
  refused: { pattern: /edge-update: REFUSED: (.+)$/, code: 'ERR_UPDATE_REFUSED', describe: (m) => `the device refused the update: ${m[1]}` },
  applied: { pattern: /edge-update: (applied revision \d+ to slot [ab]).*$/, code: 'ERR_UPDATE_APPLIED', describe: (m) => `the device applied an update it should refuse: ${m[1]}` },
  unhealthy: { pattern: /edgeimage-health: (UNHEALTHY on slot [ab].*)$/, code: 'ERR_UNHEALTHY', describe: (m) => `the system is not healthy: ${m[1]}` },
  updateFailed: { pattern: /edge-update: FAILED: (.+)$/, code: 'ERR_UPDATE_FAILED', describe: (m) => `the device failed to apply the update: ${m[1]}` },
  committed: { pattern: /edgeimage-health: (committed slot [ab])$/, code: 'ERR_COMMITTED', describe: (m) => `the try boot was committed where it must not be: ${m[1]}` },
} satisfies Record<string, FailurePattern>;

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

/** What the design predicts after a power cut at each point (reported next to what happened). */
export const PREDICTED: Record<CrashPoint, string> = {
  'mid-slot-write': 'the slot write was cut off before the boot environment changed: the old slot stays',
  'after-slot-write': 'the slot was written but the boot environment not yet changed: the old slot stays',
  'env-between-copies': 'one environment copy is new, the other old: the reader takes a complete copy (new: try the new slot; old: stay)',
  'after-env': 'the environment asks for a try of the new slot: the next boot tries it and commits it',
  'try-before-commit': 'the try boot was cut before its commit: the bootloader rolls back to the old slot',
};
