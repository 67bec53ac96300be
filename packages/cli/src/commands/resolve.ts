// STUB — to be implemented: `resolve MODEL --store URL`.
import type { Context } from './common.js';

export function resolveCommand(_ctx: Context) {
  return { command: 'resolve <model>', describe: 'fetch and verify the bundles a signed model pins (not implemented yet)', builder: {}, handler: () => {} };
}
