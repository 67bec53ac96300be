/** gadget.yaml's `edgeimage-updates:` map: the defaults of the device's update.conf, each value checked at its line. */
import { parseGadgetYaml } from './parse.js';
import { expectGadgetError, yaml } from '@edgeimage/testkit/gadget-fixtures';

const F = 'meta/gadget.yaml';

/** A valid one-volume gadget; `updates` lines follow `edgeimage-updates:` on line 10. */
const gadget = (...updates: string[]) =>
  yaml(
    'volumes:', // 1
    '  pc:', // 2
    '    bootloader: grub', // 3
    '    structure:', // 4
    '      - name: efi', // 5
    '        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B', // 6
    '        filesystem: vfat', // 7
    '        role: system-boot', // 8
    '        size: 50M', // 9
    'edgeimage-updates:', // 10
    ...updates, // 11 on
  );

test('reads interval, jitter, window and mode as the defaults of update.conf', () => {
  const g = parseGadgetYaml(gadget('  interval: 3600', '  jitter: 0', '  window: 23:30-01:15', '  mode: download-only'), F);
  expect(g.updates).toEqual({ interval: 3600, jitter: 0, window: '23:30-01:15', mode: 'download-only' });
  expect(parseGadgetYaml(gadget('  window: "-"'), F).updates).toEqual({ window: '-' });
});

test('a gadget without the map has no update defaults', () => {
  const g = parseGadgetYaml(gadget().replace('edgeimage-updates:\n', ''), F);
  expect(g.updates).toBeUndefined();
  expect('updates' in g).toBe(false);
});

test.each([
  ['  interval: 5', 12, 'interval', 'expected an interval of 10..2592000 seconds, found 5'],
  ['  interval: 2592001', 12, 'interval', 'expected an interval of 10..2592000 seconds, found 2592001'],
  ['  interval: 6h', 12, 'interval', 'expected an interval as a whole number of seconds 10..2592000, found "6h"'],
  ['  interval: 0600', 12, 'interval', 'found "0600"'],
  ['  jitter: 86401', 12, 'jitter', 'expected a jitter of 0..86400 seconds, found 86401'],
  ['  jitter: -1', 12, 'jitter', 'found "-1"'],
  ['  window: 25:00-01:00', 12, 'window', 'found "25:00-01:00" (not a time of day)'],
  ['  window: 02:00-02:00', 12, 'window', 'an empty window'],
  ['  window: 2:00-5:00', 12, 'window', 'expected "-" (any time) or HH:MM-HH:MM in UTC'],
  ['  mode: manual', 12, 'mode', 'expected auto or download-only, found "manual"'],
])('%s: an error naming the file, line %i and the key %s', (line, at, key, message) => {
  // A valid key before it: the error is at the bad value's own line, not the map's.
  const before = key === 'mode' ? '  jitter: 1' : '  mode: auto';
  expectGadgetError(() => parseGadgetYaml(gadget(before, line), F), { code: 'ERR_GADGET_VALUE', line: at, message: [`${F}:${at}:`, `edgeimage-updates: ${key}: `, message] });
});

test('an unknown key in the map is refused at its line, with the keys it may hold', () => {
  expectGadgetError(() => parseGadgetYaml(gadget('  interval: 60', '  channel: latest/stable'), F), {
    code: 'ERR_GADGET_UNKNOWN_KEY',
    line: 12,
    message: ['unknown key "channel" in edgeimage-updates', 'the keys here are: interval, jitter, window, mode'],
  });
});

test('a value that is not a single value is refused at its line', () => {
  expectGadgetError(() => parseGadgetYaml(gadget('  window: [a, b]'), F), { code: 'ERR_GADGET_VALUE', line: 11, message: ['"window": expected a single value, found a list'] });
});
