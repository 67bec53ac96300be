import { decodeStream } from './decode.js';
import { encodeContent, encodeStream } from './encode.js';
import { assertionFixture, assertionFixtureNames, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { AssertionFormatError } from '../errors.js';
import { MAX_HEADERS_SIZE } from './limits.js';

// Primary keys as in snapd's type registry; enough to lay the fixtures out again.
const LAYOUTS: Record<string, { primaryKey: string[]; optionalPrimaryKeyDefaults?: Record<string, string> }> = {
  account: { primaryKey: ['account-id'] },
  'account-key': { primaryKey: ['public-key-sha3-384'] },
  model: { primaryKey: ['series', 'brand-id', 'model'] },
  'validation-set': { primaryKey: ['series', 'account-id', 'name', 'sequence'] },
};

const SIMPLE = `type: account
authority-id: canonical
account-id: acme
display-name: Acme
timestamp: 2024-01-01T00:00:00Z
validation: unproven
sign-key-sha3-384: -CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk

AcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY
`;

function formatError(input: string | Buffer): AssertionFormatError {
  try {
    decodeStream(typeof input === 'string' ? Buffer.from(input) : input, { file: 'x.assert' });
  } catch (e) {
    expect(e).toBeInstanceOf(AssertionFormatError);
    return e as AssertionFormatError;
  }
  throw new Error('expected a format error');
}

describeFixtures('real assertions', () => {
  test.each(assertionFixtureNames())('%s decodes and re-encodes to the identical bytes', (name) => {
    const bytes = assertionFixture(name);
    const [a, ...rest] = decodeStream(bytes, { file: name });
    expect(rest).toHaveLength(0);
    expect(a!.encode().equals(bytes)).toBe(true);
    // Laying the parsed headers out again in snapd's order gives the signed bytes exactly.
    const layout = LAYOUTS[a!.type];
    expect(layout).toBeDefined();
    expect(encodeContent(layout!, a!.headers, a!.body).toString()).toBe(a!.content.toString());
  });

  test('a stream of several assertions decodes into each, with their lines', () => {
    const names = ['canonical-root.account-key', 'generic.account', 'generic-models.account-key', 'generic-classic.model'];
    const stream = encodeStream(names.map(assertionFixture));
    const all = decodeStream(stream, { file: 'chain.assert' });
    expect(all.map((a) => a.type)).toEqual(['account-key', 'account', 'account-key', 'model']);
    expect(all[1]!.source).toMatchObject({ file: 'chain.assert', index: 2 });
    expect(all[0]!.source.line).toBe(1);
    expect(all[1]!.source.line).toBeGreaterThan(20);
    expect(encodeStream(all.map((a) => a.encode())).equals(stream)).toBe(true);
  });

  test('nested lists of maps keep their structure', () => {
    const [m] = decodeStream(assertionFixture('ubuntu-core-22-amd64.model'));
    expect(m!.headers['snaps']).toContainEqual({ 'default-channel': '22/stable', id: 'UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH', name: 'pc', type: 'gadget' });
    expect(m!.headers['series']).toBe('16');
  });
});

describe('header syntax', () => {
  test('scalars, multiline text, lists and maps', () => {
    const text = 'type: model\nempty: \nnote:\n    line one\n    line two\nlist:\n  - a\n  -\n    k: v\nmap:\n  b: 2\n  a:\n    - x\nsign-key-sha3-384: k\n\nsig\n';
    const [a] = decodeStream(Buffer.from(text));
    expect(a!.headers).toEqual({
      type: 'model',
      empty: '',
      note: 'line one\nline two',
      list: ['a', { k: 'v' }],
      map: { b: '2', a: ['x'] },
      'sign-key-sha3-384': 'k',
    });
  });

  test('rejects a malformed header line, naming the file and line', () => {
    const e = formatError(SIMPLE.replace('display-name: Acme', 'display-name Acme'));
    expect(e.message).toMatch(/^x\.assert \(assertion 1, line 4\): header entry missing ':' separator: "display-name Acme"/);
    expect(e.source.line).toBe(4);
  });

  test('rejects a value not preceded by a space', () => {
    expect(formatError(SIMPLE.replace('display-name: Acme', 'display-name:Acme')).message).toMatch(/line 4\): header entry should have a space/);
  });

  test('rejects bad indentation of multiline text', () => {
    const e = formatError(SIMPLE.replace('display-name: Acme', 'display-name:\n   Acme'));
    expect(e.message).toMatch(/line 5\): expected a list, a map or text indented by 4 spaces/);
  });

  test('rejects a duplicate header', () => {
    expect(formatError(SIMPLE.replace('display-name: Acme', 'display-name: Acme\ndisplay-name: B')).message).toMatch(/line 5\): repeated header: "display-name"/);
  });

  test('rejects an invalid header name', () => {
    expect(formatError(SIMPLE.replace('display-name', 'Display_Name')).message).toMatch(/invalid header name "Display_Name"/);
  });

  test('rejects a repeated map key', () => {
    expect(formatError(SIMPLE.replace('display-name: Acme', 'm:\n  a: 1\n  a: 2')).message).toMatch(/repeated map entry: "a"/);
  });
});

describe('framing', () => {
  test('rejects a body-length that does not match the body', () => {
    const text = SIMPLE.replace('validation: unproven', 'validation: unproven\nbody-length: 10').replace('\n\nAcL', '\n\nabc\n\nAcL');
    const e = formatError(text);
    expect(e.message).toMatch(/body-length is 10 but the body runs 3 bytes to the blank line/);
  });

  test('rejects a body-length with leading zeros', () => {
    expect(formatError(SIMPLE.replace('validation: unproven', 'body-length: 03')).message).toMatch(/"body-length" must be a decimal integer/);
  });

  test('rejects a body without body-length', () => {
    const text = SIMPLE.replace('\n\nAcL', '\n\nsome body\n\nAcL');
    expect(formatError(text).message).toMatch(/assertion 2.*expected the next assertion's "type" header/);
  });

  test('rejects a trailing blank line after the signature', () => {
    expect(formatError(SIMPLE + '\n').message).toMatch(/ends with a blank line after the signature/);
  });

  test('rejects an empty signature', () => {
    expect(formatError(SIMPLE.replace(/\n\nAcL.*\n$/, '\n\n')).message).toMatch(/empty signature/);
  });

  test('rejects missing separator between headers and signature', () => {
    expect(formatError('type: account\nauthority-id: x').message).toMatch(/no blank line after the headers/);
  });

  test('rejects CRLF line endings', () => {
    const e = formatError(SIMPLE.replace(/\n/g, '\r\n'));
    expect(e.message).toMatch(/line 1\): CRLF line endings/);
  });

  test('rejects non-UTF-8 headers, naming the line', () => {
    const bytes = Buffer.from(SIMPLE.replace('Acme', 'Ac\u0000me'));
    bytes[bytes.indexOf(0)] = 0xff;
    expect(formatError(bytes).message).toMatch(/line 4\): headers are not valid UTF-8 \(bad byte 0xff\)/);
  });

  test('rejects oversize headers', () => {
    const big = SIMPLE.replace('display-name: Acme', `display-name: ${'a'.repeat(MAX_HEADERS_SIZE)}`);
    expect(formatError(big).message).toMatch(/headers exceed the maximum size of 131072 bytes/);
  });

  test('rejects an oversize body-length before reading the body', () => {
    expect(formatError(SIMPLE.replace('validation: unproven', 'body-length: 3000000')).message).toMatch(/exceeds the maximum body size of 2097152/);
  });

  test('rejects empty input', () => {
    expect(formatError('').message).toMatch(/empty input/);
  });
});

describe('size of the input', () => {
  // Decoding is linear in the input: this took ~21 s when each assertion's line number was counted
  // from the start of the input (quadratic); now ~0.1 s. No time is asserted: the default test
  // timeout is the bound. Figures: ./scripts/bench assertions.
  test('a 10 MB stream of small assertions decodes, each with its index and line', () => {
    const one = SIMPLE.replace(/\n$/, '');
    const lines = one.split('\n').length + 1; // and the blank line between assertions
    const n = Math.ceil((10 * 1024 * 1024) / (one.length + 2));
    const stream = Buffer.from(`${Array<string>(n).fill(one).join('\n\n')}\n`);
    const all = decodeStream(stream, { file: 'big.assert' });
    expect(all).toHaveLength(n);
    expect(all[n - 1]!.source).toEqual({ file: 'big.assert', index: n, line: (n - 1) * lines + 1 });
    expect(all[1]!.source.line).toBe(lines + 1);
  });

  test('a format error deep in a large stream names the right assertion and line', () => {
    const one = SIMPLE.replace(/\n$/, '');
    const lines = one.split('\n').length + 1;
    const bad = one.replace('display-name: Acme', 'display-name:Acme');
    const stream = Buffer.from(`${[...Array<string>(5000).fill(one), bad].join('\n\n')}\n`);
    let err: AssertionFormatError | undefined;
    try {
      decodeStream(stream, { file: 'big.assert' });
    } catch (e) {
      err = e as AssertionFormatError;
    }
    expect(err).toBeInstanceOf(AssertionFormatError);
    expect(err!.source).toMatchObject({ file: 'big.assert', index: 5001, line: 5000 * lines + 4 });
  });
});
