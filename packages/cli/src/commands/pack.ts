// STUB — to be implemented (bundle helper): `pack DIR [-o FILE]` and `bundle info FILE [--json]`.
import type { Context } from './common.js';

export function packCommand(_ctx: Context) {
  return { command: 'pack <dir>', describe: 'build a bundle (snap) from a directory (not implemented yet)', builder: {}, handler: () => {} };
}

export function bundleCommand(_ctx: Context) {
  return { command: 'bundle <command>', describe: 'inspect bundles (not implemented yet)', builder: {}, handler: () => {} };
}
