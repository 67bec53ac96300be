// STUB — to be implemented (store helper): `store init|publish|publish-assertion|release|list`.
import type { Context } from './common.js';

export function storeCommand(_ctx: Context) {
  return { command: 'store <command>', describe: 'create a store, publish bundles and assertions, release to channels (not implemented yet)', builder: {}, handler: () => {} };
}
