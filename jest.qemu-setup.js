// QEMU tests run TCG guests on a loaded 2-core host, where a guest's console can (rarely) be
// garbled by the host's timing: such a test runs once more. The first attempt's error is printed
// and scripts/test names every test that needed a second attempt, so a flaky test stays visible.
import { jest } from '@jest/globals';

jest.retryTimes(1, { logErrorsBeforeRetry: true });
