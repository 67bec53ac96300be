import { HeaderChecks, isValidSnapName, parseRFC3339 } from './index.js';
import { build, validationError } from '@edgeimage/testkit/assertion-text';

const BASE = `type: account
authority-id: canonical
account-id: acme
display-name: Acme
timestamp: 2024-01-01T00:00:00Z
validation: unproven`;

/** A reader over BASE plus extra header lines. */
const checks = (extra = '') => HeaderChecks.of(build(`${BASE}${extra ? `\n${extra}` : ''}`));

describe('RFC3339 dates as Go time.RFC3339 parses them', () => {
  test.each([
    ['2016-04-01T00:00:00.0Z', '2016-04-01T00:00:00.000Z'],
    ['2022-04-04T10:40:41+00:00', '2022-04-04T10:40:41.000Z'],
    ['2024-01-31T12:00:00+01:30', '2024-01-31T10:30:00.000Z'],
    ['2024-01-31T12:00:00-05:00', '2024-01-31T17:00:00.000Z'],
    ['2024-01-31T12:00:00.123456789Z', '2024-01-31T12:00:00.123Z'],
    ['2024-01-31T12:00:00,5Z', '2024-01-31T12:00:00.500Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['0050-01-01T00:00:00Z', '0050-01-01T00:00:00.000Z'],
  ])('accepts %s', (text, iso) => {
    expect(parseRFC3339(text)?.toISOString()).toBe(iso);
  });

  test.each([
    '2024-01-31', // no time
    '2024-01-31 12:00:00Z', // space instead of T
    '2024-01-31t12:00:00Z', // lower-case t
    '2024-01-31T12:00:00z', // lower-case z
    '2024-01-31T12:00:00', // no zone
    '2024-01-31T12:00:00+0100', // offset without colon
    '2024-01-31T12:00Z', // no seconds
    '2023-02-29T00:00:00Z', // not a leap year
    '2024-04-31T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2024-01-01T23:60:00Z',
    '2024-01-01T23:59:60Z', // Go refuses leap seconds
    '2024-01-01T00:00:00.Z',
    '24-01-01T00:00:00Z',
  ])('refuses %s', (text) => {
    expect(parseRFC3339(text)).toBeUndefined();
  });

  test('a bad date names the header, the expected form and what was found', () => {
    const e = validationError(() => checks().date('display-name'));
    expect(e.header).toBe('display-name');
    expect(e.message).toMatch(/"display-name" header must be an RFC3339 date .* found "Acme"/);
  });

  test('a missing mandatory date says it is mandatory', () => {
    const e = validationError(() => checks().date('since'));
    expect(e.message).toContain('"since" header is mandatory');
  });
});

describe('integers follow snapd: decimal digits, no leading zeros, no sign', () => {
  test.each([
    ['0', 0],
    ['7', 7],
    ['1234567890', 1234567890],
  ])('accepts %s', (text, n) => {
    expect(checks(`n: ${text}`).int('n')).toBe(n);
  });

  test('leading zeros are refused with the value found', () => {
    const e = validationError(() => checks('revision: 01').int('revision'));
    expect(e.header).toBe('revision');
    expect(e.message).toContain('"revision" header must be an integer without leading zeros, found "01"');
  });

  test.each(['+1', '-1', '1.0', '0x10', ' 1', '1e3', 'one'])('refuses %j', (text) => {
    const e = validationError(() => checks(`n: ${text}`).int('n'));
    expect(e.message).toContain(`"n" header must be a decimal integer (digits only, no sign), found ${JSON.stringify(text)}`);
  });

  test('values past what a JS number holds exactly are out of range', () => {
    const e = validationError(() => checks('n: 9007199254740993').int('n'));
    expect(e.message).toMatch(/"n" header is out of range/);
  });

  test('bounds are enforced with the value found', () => {
    expect(validationError(() => checks('n: 0').int('n', { min: 1 })).message).toContain('"n" header must be >= 1, found 0');
    expect(validationError(() => checks('n: 256').uint('n', 8)).message).toContain('"n" header is out of range: must be at most 255');
  });

  test('an empty value is not zero', () => {
    expect(validationError(() => checks('n: ').int('n')).message).toContain('"n" header must not be empty');
    expect(validationError(() => checks('n: ').optionalInt('n')).message).toContain('"n" header must be a decimal integer');
  });

  test('an absent optional integer is undefined', () => {
    expect(checks().optionalInt('revision')).toBeUndefined();
  });
});

describe('other scalar checks', () => {
  test('booleans are exactly "true" or "false", absent meaning false', () => {
    expect(checks('classic: true').bool('classic')).toBe(true);
    expect(checks('classic: false').bool('classic')).toBe(false);
    expect(checks().bool('classic')).toBe(false);
    for (const v of ['True', 'yes', '1', '']) {
      const e = validationError(() => checks(`classic: ${v}`).bool('classic'));
      expect(e.message).toContain(`"classic" header must be "true" or "false", found ${JSON.stringify(v)}`);
    }
  });

  test('mandatory strings must be present, strings, and not empty', () => {
    expect(validationError(() => checks().string('missing')).message).toContain('"missing" header is mandatory');
    expect(validationError(() => checks('x: ').string('x')).message).toContain('"x" header must not be empty');
    expect(validationError(() => checks('x:\n  - a').string('x')).message).toContain('"x" header must be a string, found a list');
    expect(checks('x: ').existingString('x')).toBe('');
    expect(checks().optionalString('x')).toBeUndefined();
  });

  test('regex-checked names say what a valid value looks like', () => {
    const e = validationError(() => checks().matching('account-id', /^[0-9]+$/, 'digits only'));
    expect(e.message).toContain('"account-id" header must be digits only, found "acme"');
  });

  test('digests must be unpadded base64url of 48 bytes', () => {
    const good = '-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk';
    expect(checks(`k: ${good}`).digest('k')).toBe(good);
    expect(validationError(() => checks(`k: ${good.slice(0, 43)}`).digest('k')).message).toMatch(/"k" header must be a SHA3-384 digest of 48 bytes .*found 32 bytes/);
    expect(validationError(() => checks(`k: ${good.slice(0, 62)}==`).digest('k')).message).toContain('"k" header must be an unpadded base64url');
    expect(validationError(() => checks(`k: ${good.slice(0, 63)}+`).digest('k')).message).toContain('"k" header must be an unpadded base64url');
  });

  test('snap names follow snapd: 2-40 chars, a letter, single inner dashes', () => {
    for (const ok of ['pc', 'pc-kernel', 'core22', '0ad', 'a'.repeat(40)]) expect(isValidSnapName(ok)).toBe(true);
    for (const bad of ['a', '22', '-pc', 'pc-', 'pc--kernel', 'PC', 'pc_kernel', 'a'.repeat(41)]) expect(isValidSnapName(bad)).toBe(false);
  });
});

describe('lists and maps', () => {
  test('a list of strings, checked against a pattern, names the bad entry', () => {
    const c = checks('ids:\n  - abc\n  - ABC');
    expect(c.stringList('ids')).toEqual(['abc', 'ABC']);
    const e = validationError(() => c.stringList('ids', { re: /^[a-z]+$/, expected: 'lower-case words' }));
    expect(e.message).toContain('"ids" header entries must be lower-case words, found "ABC" at entry 2');
  });

  test('a scalar where a list is expected is refused', () => {
    expect(validationError(() => checks('ids: abc').stringList('ids')).message).toContain('"ids" header must be a list of strings, found "abc"');
    expect(validationError(() => checks('ids: abc').mapList('ids')).message).toContain('"ids" header must be a list of maps, found "abc"');
  });

  test('a list of maps refuses scalar entries', () => {
    const e = validationError(() => checks('snaps:\n  -\n    name: pc\n  - pc-kernel').mapList('snaps'));
    expect(e.message).toContain('"snaps" header must be a list of maps, found "pc-kernel" at entry 2');
  });

  test('errors inside a nested map are filed under the top-level header', () => {
    const c = checks('snaps:\n  -\n    name: pc');
    const [entry] = c.mapList('snaps')!;
    const e = validationError(() => c.within('snaps', entry!, 'of snap "pc" in "snaps" header').string('id'));
    expect(e.header).toBe('snaps');
    expect(e.message).toContain('"id" of snap "pc" in "snaps" header is mandatory');
  });

  test('maps are read as maps', () => {
    expect(checks('m:\n  a: b').map('m')).toEqual({ a: 'b' });
    expect(validationError(() => checks('m: x').map('m')).message).toContain('"m" header must be a map, found "x"');
  });
});
