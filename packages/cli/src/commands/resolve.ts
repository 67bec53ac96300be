import { defaultTrustedAssertions, type Assertion } from '@edgeimage/assertions';
import { BundleCache, Store, resolveModel } from '@edgeimage/store';
import type { Argv } from 'yargs';
import { printJson } from '../output.js';
import { resolveProgress } from '../progress.js';
import { parseTime, readAssertions, type Context } from './common.js';

export interface TrustArgs {
  trusted?: string | string[];
  defaultTrust: boolean;
}

/** The anchors for a resolve: Canonical's unless --no-default-trust, plus every --trusted file. */
export function trustedFrom(a: TrustArgs): Assertion[] {
  return [...(a.defaultTrust ? defaultTrustedAssertions() : []), ...[a.trusted ?? []].flat().flatMap(readAssertions)];
}

export function resolveOptions<T>(y: Argv<T>) {
  return y
    .option('store', { type: 'string', demandOption: true, describe: 'store URL: a directory (or file://), http(s)://, or oci://HOST:PORT/NAMESPACE' })
    .option('trusted', { type: 'string', describe: "trust anchors: root account-key and account, and the store's account and account-key; repeatable" })
    .option('default-trust', { type: 'boolean', default: true, describe: "also trust Canonical's root (--no-default-trust to remove)" })
    .option('cache', { type: 'string', describe: 'bundle cache (default $EDGEIMAGE_CACHE or ~/.cache/edgeimage)' })
    .option('allow-unpinned', { type: 'boolean', default: false, describe: 'let a grade signed model take snaps by channel instead of pinned revisions' })
    .option('at', { type: 'string', describe: 'check key validity at this RFC 3339 time instead of now' })
    .option('concurrency', { type: 'number', default: 4, describe: 'bundles downloaded at once' });
}

export function resolveCommand(ctx: Context) {
  return {
    command: 'resolve <model>',
    describe: 'fetch the bundles a signed model pins, each verified against its signed digest, into the cache',
    builder: (y: Argv) =>
      resolveOptions(y)
        .positional('model', { type: 'string', demandOption: true, describe: 'the model assertion, optionally with its accounts, account-keys and validation-sets (a stream)' })
        .option('json', { type: 'boolean', describe: 'print the resolution manifest as JSON' })
        .example('$0 resolve images/models/pc-amd64.assert --store ./store --trusted signing-keys.example/root.account-key --trusted signing-keys.example/example-root.account --trusted signing-keys.example/store.account-key --trusted signing-keys.example/example-store.account', '')
        .epilog('Progress goes to stderr (bars on a terminal, one line per event otherwise). A bundle enters the cache only after its sha3-384 and size match its signed snap-revision.'),
    handler: async (a: TrustArgs & { model: string; store: string; cache?: string; allowUnpinned: boolean; at?: string; concurrency: number; json?: boolean }) => {
      const store = await Store.open(a.store);
      const progress = resolveProgress((line) => ctx.io.err(line));
      try {
        const r = await resolveModel(readAssertions(a.model), {
          store,
          trusted: trustedFrom(a),
          at: parseTime(a.at, '--at'),
          cache: new BundleCache(a.cache),
          allowUnpinned: a.allowUnpinned,
          concurrency: a.concurrency,
          onEvent: progress.onEvent,
        });
        progress.stop();
        // The cache is this command's output, and it is complete: the sequences are seen.
        await r.recordSequences();
        if (a.json) return printJson(ctx.io, r.bundles);
        for (const b of r.bundles) ctx.io.out(`${b.name.padEnd(22)} ${String(b.revision).padStart(4)}  ${b.type.padEnd(7)} ${b['sha3-384']}  ${b.path}`);
        ctx.io.out(`${r.model.brandId}/${r.model.model}: ${r.bundles.length} bundles verified (${r.downloaded} downloaded, ${r.bundles.length - r.downloaded} from the cache)`);
      } finally {
        progress.stop();
      }
    },
  };
}
