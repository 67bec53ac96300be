import { TrustDatabase, type AddResult, type Assertion } from '@edgeimage/assertions';
import type { Argv } from 'yargs';
import { EXIT_FAILURE, printJson } from '../output.js';
import { parseTime, readAssertions, type Context } from './common.js';
import { trustedFrom } from './resolve.js';

function where(a: Assertion): string {
  return `${a.source.file ?? '<input>'}${a.source.line ? `:${a.source.line}` : ''}`;
}

export function verifyCommand(ctx: Context) {
  return {
    command: 'verify <files..>',
    describe: 'check every assertion in the files through a chain of trust to a trusted account-key',
    builder: (y: Argv) =>
      y
        .positional('files', { type: 'string', array: true, demandOption: true, describe: 'assertion files (each may hold a stream of several)' })
        .option('trusted', { type: 'string', describe: 'file of trust anchors (root account-keys and their accounts); repeatable' })
        .option('default-trust', { type: 'boolean', default: true, describe: "trust Canonical's root account-key and account, as snapd does (--no-default-trust to remove)" })
        .option('at', { type: 'string', describe: 'check key validity at this RFC 3339 time instead of now' })
        .option('json', { type: 'boolean', describe: 'print one JSON object per assertion' })
        .example('$0 verify pc-amd64.model brand.account brand.account-key --trusted root.account-key --trusted acme.account', 'a brand model under an own root')
        .example('$0 verify generic.account generic-models.account-key generic-classic.model', "Canonical's generic model, through Canonical's root")
        .epilog('Exit status 0 only when every assertion checks. Assertions may come in any order: one whose key or account comes later is checked once that has been added.'),
    handler: (a: { files: string[]; trusted?: string | string[]; defaultTrust: boolean; at?: string; json?: boolean }) => {
      const at = parseTime(a.at, '--at');
      const db = new TrustDatabase({ at, trusted: trustedFrom(a) });
      const results: AddResult[] = db.addAll(a.files.flatMap(readAssertions));
      const failed = results.filter((r) => r.error);
      if (a.json) {
        printJson(
          ctx.io,
          results.map((r) => ({
            file: r.assertion.source.file,
            index: r.assertion.source.index,
            line: r.assertion.source.line,
            type: r.assertion.type,
            ref: r.ref,
            ok: !r.error,
            ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : { 'sign-key-sha3-384': r.signKey }),
          })),
        );
      } else {
        for (const r of results) {
          if (r.error) ctx.io.err(`FAIL ${r.error.message} [${r.error.code}]`);
          else ctx.io.out(`ok   ${r.ref} (${where(r.assertion)}) signed by ${r.assertion.authorityId} key ${r.signKey}`);
        }
        ctx.io.out(`${results.length - failed.length} of ${results.length} assertions verified${failed.length ? `, ${failed.length} failed` : ''}`);
      }
      if (failed.length) ctx.exitCode = EXIT_FAILURE;
    },
  };
}
