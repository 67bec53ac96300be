/** update.conf: its exact bytes, where each value comes from (build, gadget, defaults), and the values refused. */
import { EdgeimageError } from '@edgeimage/assertions';
import { encodeUpdateConf, resolveUpdateConfig, type UpdateConfig } from './conf.js';

const text = (build: UpdateConfig, gadget?: Parameters<typeof resolveUpdateConfig>[1]) => encodeUpdateConf(resolveUpdateConfig(build, gadget)).toString('latin1');

test('the defaults: the contract\'s seven lines, in order, LF ends, nothing else', () => {
  expect(text({ url: 'http://10.0.2.2:8080/store' })).toBe(
    'edgeimage-update-conf: 1\nurl: http://10.0.2.2:8080/store\nchannel: latest/stable\ninterval: 21600\njitter: 600\nwindow: -\nmode: auto\n',
  );
});

test('every option given: a bare risk becomes TRACK/RISK, the trailing slash of the URL goes', () => {
  expect(text({ url: 'https://updates.example.com/acme/', channel: 'beta', interval: 3600, jitter: 0, window: '23:00-01:30', mode: 'download-only' })).toBe(
    'edgeimage-update-conf: 1\nurl: https://updates.example.com/acme\nchannel: latest/beta\ninterval: 3600\njitter: 0\nwindow: 23:00-01:30\nmode: download-only\n',
  );
  expect(text({ url: 'http://h/s', channel: '22/candidate' })).toContain('\nchannel: 22/candidate\n');
});

test("the gadget's defaults fill what the build leaves out; the build's options win", () => {
  const gadget = { interval: 7200, jitter: 30, window: '02:00-04:00', mode: 'download-only' as const };
  expect(text({ url: 'http://h/s' }, gadget)).toBe('edgeimage-update-conf: 1\nurl: http://h/s\nchannel: latest/stable\ninterval: 7200\njitter: 30\nwindow: 02:00-04:00\nmode: download-only\n');
  expect(text({ url: 'http://h/s', interval: 60, window: '-', mode: 'auto' }, gadget)).toBe('edgeimage-update-conf: 1\nurl: http://h/s\nchannel: latest/stable\ninterval: 60\njitter: 30\nwindow: -\nmode: auto\n');
  expect(text({ url: 'http://h/s', jitter: 0 }, { jitter: 900 })).toContain('\njitter: 0\n');
});

test('the same settings, the same bytes', () => {
  const c: UpdateConfig = { url: 'http://h/s', channel: 'latest/edge', interval: 99, window: '01:00-02:00' };
  expect(encodeUpdateConf(resolveUpdateConfig(c, { jitter: 5 })).equals(encodeUpdateConf(resolveUpdateConfig({ ...c }, { jitter: 5 })))).toBe(true);
});

test.each<[string, UpdateConfig, string, string]>([
  ['a URL with a space', { url: 'http://h/my store' }, 'url', 'expected a URL of the characters A-Z a-z 0-9 . _ ~ : / ? # @ ! $ & \' ( ) * + , ; = % - (percent-encode others), found "http://h/my store" (it holds " ")'],
  ['a non-http scheme', { url: 'ftp://h/store' }, 'url', 'expected an http:// or https:// URL'],
  ['a URL over 255 characters', { url: `http://h/${'a'.repeat(250)}` }, 'url', 'expected a URL of at most 255 characters, found one of 259'],
  ['a URL with a query', { url: 'http://h/s?x=1' }, 'url', 'expected a base URL without a query or fragment'],
  ['a URL without a host', { url: 'http:///s' }, 'url', 'expected a host after the scheme'],
  ['a channel with a branch', { url: 'http://h/s', channel: 'latest/edge/fix-1' }, 'channel', 'expected TRACK/RISK without a branch'],
  ['a channel of no risk', { url: 'http://h/s', channel: 'latest/nightly' }, 'channel', 'expected TRACK/RISK (e.g. latest/stable) or a risk (stable, candidate, beta, edge), found "latest/nightly"'],
  ['an interval out of range', { url: 'http://h/s', interval: 9 }, 'interval', 'expected an interval of 10..2592000 seconds, found 9'],
  ['a fractional interval', { url: 'http://h/s', interval: 60.5 }, 'interval', 'expected an interval as a whole number of seconds 10..2592000, found "60.5"'],
  ['a jitter out of range', { url: 'http://h/s', jitter: 86401 }, 'jitter', 'expected a jitter of 0..86400 seconds, found 86401'],
  ['a window at 25:00', { url: 'http://h/s', window: '25:00-01:00' }, 'window', 'expected "-" (any time) or HH:MM-HH:MM in UTC (00:00 to 23:59, e.g. 02:00-05:00 or 23:00-01:00), found "25:00-01:00" (not a time of day)'],
  ['an unknown mode', { url: 'http://h/s', mode: 'later' as UpdateConfig['mode'] }, 'mode', 'expected auto or download-only, found "later"'],
])('%s: ERR_UPDATE_CONF naming the field', (_, build, field, message) => {
  let thrown: unknown;
  try {
    resolveUpdateConfig(build);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(EdgeimageError);
  const e = thrown as EdgeimageError;
  expect(e.code).toBe('ERR_UPDATE_CONF');
  expect(e.message).toContain(`update settings: ${field}: ${message}`);
  expect(e.context).toMatchObject({ field });
});
