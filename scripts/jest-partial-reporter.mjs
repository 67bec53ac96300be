// A jest reporter for scripts/test: each test file's result, as it ends, one JSON line appended to
// $EDGEIMAGE_PARTIAL_RESULTS (an absolute path), as jest's --json result has it (its own
// formatter; the assertion results cut to the fields scripts/test-summary.mjs reads). jest writes
// its --json result only at the end of a run: a project that scripts/test stops at its time limit,
// or a jest that crashes, would otherwise lose every test it did run (scripts/test-partial.mjs
// reads the lines). One line per append, from jest's main process only: the lines of the files
// that ended stay whole whatever happens to the run after them.
import { appendFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { formatTestResults } from '@jest/test-result';

export default class PartialResults {
  #warned = false;

  onTestFileResult(_test, result) {
    const file = process.env.EDGEIMAGE_PARTIAL_RESULTS;
    // (relative: a test that changes the working folder would move it)
    if (!file || !isAbsolute(file)) return;
    // never a failure of the run: an error thrown here would stop jest's other files
    try {
      const [r] = formatTestResults({ testResults: [result] }).testResults;
      const line = {
        name: r.name, status: r.status, message: r.message, startTime: r.startTime, endTime: r.endTime,
        assertionResults: r.assertionResults.map((a) => ({ fullName: a.fullName, status: a.status, invocations: a.invocations, retryReasons: a.retryReasons })),
      };
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch (e) {
      if (!this.#warned) process.stderr.write(`jest-partial-reporter: ${file}: ${e instanceof Error ? e.message : String(e)} (the results of a stopped run will be incomplete)\n`);
      this.#warned = true;
    }
  }
}
