import { ComposeError, deterministicGuid, GPT_TYPES, type GptSpec } from '@edgeimage/composer';
import { MiB } from './partition-image.js';

/** The GUID of `name` in the test model's pc volume. */
export const guidOf = (...name: string[]): string => deterministicGuid('acme', 'kiosk', 'pc', ...name);

/**
 * The reference A/B layout on a 64 MiB disk: 16 MiB each for system-boot (ESP), system-a and
 * system-b, the rest (up to a 2048-sector boundary) for system-data.
 */
export function abGptSpec(): GptSpec {
  return {
    diskSize: 64 * MiB,
    diskGuid: guidOf(),
    partitions: [
      { firstLba: 2048, lastLba: 34815, typeGuid: GPT_TYPES.esp, partGuid: guidOf('system-boot'), name: 'system-boot', attributes: 1n << 2n },
      { firstLba: 34816, lastLba: 67583, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf('system-a'), name: 'system-a', attributes: (1n << 60n) | 1n },
      { firstLba: 67584, lastLba: 100351, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf('system-b'), name: 'system-b' },
      { firstLba: 100352, lastLba: 129023, typeGuid: GPT_TYPES.linuxFilesystem, partGuid: guidOf('system-data'), name: 'system-data' },
    ],
  };
}

/** Runs `fn`, expects a ComposeError with `code`, and returns it for further checks. */
export function expectComposeError(fn: () => unknown, code: string, ...messageParts: string[]): ComposeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ComposeError);
  const err = caught as ComposeError;
  expect(err.code).toBe(code);
  for (const part of messageParts) expect(err.message).toContain(part);
  return err;
}
