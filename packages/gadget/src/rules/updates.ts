/** `edgeimage-updates:` (edgeimage's own top-level map): each value in its domain, at its line. */
import type { RawGadget } from '../lib/schema.js';
import { type GadgetUpdateDefaults, type UpdateMode, updateIntervalProblem, updateJitterProblem, updateModeProblem, updateWindowProblem } from '../updates.js';
import type { Ctx } from './context.js';

export function checkUpdateDefaults(ctx: Ctx, g: RawGadget): GadgetUpdateDefaults | undefined {
  const raw = g['edgeimage-updates'];
  if (raw === undefined) return undefined;
  const check = (key: keyof GadgetUpdateDefaults, problem: (v: string) => string | undefined): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    const why = problem(v);
    if (why) ctx.fail('ERR_GADGET_VALUE', `edgeimage-updates: ${key}: ${why}`, ['edgeimage-updates', key]);
    return v;
  };
  const interval = check('interval', updateIntervalProblem);
  const jitter = check('jitter', updateJitterProblem);
  const window = check('window', updateWindowProblem);
  const mode = check('mode', updateModeProblem);
  return {
    ...(interval !== undefined ? { interval: Number(interval) } : {}),
    ...(jitter !== undefined ? { jitter: Number(jitter) } : {}),
    ...(window !== undefined ? { window } : {}),
    ...(mode !== undefined ? { mode: mode as UpdateMode } : {}),
  };
}
