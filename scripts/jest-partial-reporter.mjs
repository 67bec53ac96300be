// A jest reporter for scripts/test: each test file's result, as it ends, one JSON line appended to
// $EDGEIMAGE_PARTIAL_RESULTS, as jest's --json result has it (its own formatter; the file's
// assertion results cut to the fields scripts/test-summary.mjs reads). jest writes its --json
// result only at the end of a run: a project that scripts/test stops at its time limit would
// otherwise lose every test it did run. (One line per append, from jest's main process only: the
// lines of the files that ended stay whole whatever happens to the run after them.)
import { appendFileSync } from 'node:fs';
import { formatTestResults } from '@jest/test-result';

export default class PartialResults {
  onTestFileResult(_test, result) {
    const file = process.env.EDGEIMAGE_PARTIAL_RESULTS;
    if (!file) return;
    const [r] = formatTestResults({ testResults: [result] }).testResults;
    const line = {
      name: r.name, status: r.status, message: r.message, startTime: r.startTime, endTime: r.endTime,
      assertionResults: r.assertionResults.map((a) => ({ fullName: a.fullName, status: a.status, invocations: a.invocations, retryReasons: a.retryReasons })),
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }
}
