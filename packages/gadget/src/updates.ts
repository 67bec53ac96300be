/**
 * The device's update settings a gadget may give defaults for (`edgeimage-updates:` at the top of
 * gadget.yaml), and the domain of each value. The agent's poller reads them from the slot's
 * update.conf (README "Updates over the network"); `edgeimage build` checks its own options
 * against the same domains, so that a value refused in one place is refused in the other.
 */

/** Seconds between two polls: at least 10 s (a store is not a chat server), at most 30 days. */
export const UPDATE_INTERVAL_MIN = 10;
export const UPDATE_INTERVAL_MAX = 2_592_000;
/** The random extra wait (0..jitter seconds) that spreads a fleet's polls: at most a day. */
export const UPDATE_JITTER_MAX = 86_400;
export const UPDATE_MODES = ['auto', 'download-only'] as const;
export type UpdateMode = (typeof UPDATE_MODES)[number];

/** The gadget's defaults; what it does not give comes from the build's options or the contract's defaults. */
export interface GadgetUpdateDefaults {
  interval?: number;
  jitter?: number;
  /** `-` (any time) or `HH:MM-HH:MM` (UTC, may wrap midnight). */
  window?: string;
  mode?: UpdateMode;
}

export const UPDATE_KEYS_GADGET = ['interval', 'jitter', 'window', 'mode'] as const;

/** Digits only, no sign, no leading zero (the device's sh compares them as numbers). */
function seconds(v: string, min: number, max: number, what: string): string | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(v)) return `expected ${what} as a whole number of seconds ${min}..${max}, found ${JSON.stringify(v)}`;
  const n = Number(v);
  if (n < min || n > max) return `expected ${what} of ${min}..${max} seconds, found ${n}`;
  return undefined;
}

/** Why `v` is not a poll interval, or undefined. */
export const updateIntervalProblem = (v: string) => seconds(v, UPDATE_INTERVAL_MIN, UPDATE_INTERVAL_MAX, 'an interval');
/** Why `v` is not a jitter, or undefined. */
export const updateJitterProblem = (v: string) => seconds(v, 0, UPDATE_JITTER_MAX, 'a jitter');

/** Why `v` is not an update window (`-` or `HH:MM-HH:MM`, 00:00 to 23:59), or undefined. */
export function updateWindowProblem(v: string): string | undefined {
  if (v === '-') return undefined;
  const m = /^([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})$/.exec(v);
  const expected = 'expected "-" (any time) or HH:MM-HH:MM in UTC (00:00 to 23:59, e.g. 02:00-05:00 or 23:00-01:00)';
  if (!m) return `${expected}, found ${JSON.stringify(v)}`;
  const [h1, m1, h2, m2] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59) return `${expected}, found ${JSON.stringify(v)} (not a time of day)`;
  // An empty window would never let an update be applied: a device that silently never updates.
  if (h1 === h2 && m1 === m2) return `${expected}, found ${JSON.stringify(v)} (it starts where it ends: an empty window)`;
  return undefined;
}

/** Why `v` is not a mode, or undefined. */
export function updateModeProblem(v: string): string | undefined {
  return (UPDATE_MODES as readonly string[]).includes(v) ? undefined : `expected ${UPDATE_MODES.join(' or ')}, found ${JSON.stringify(v)}`;
}
