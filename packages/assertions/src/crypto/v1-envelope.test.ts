import { V1EnvelopeError, decodeStdBase64, decodeV1, encodeV1, wrapLines } from './v1-envelope.js';

describe('encodeV1', () => {
  it('prefixes the 0x01 format byte and wraps at 76 columns without a final newline', () => {
    const text = encodeV1(Buffer.alloc(200, 0xab));
    const lines = text.split('\n');
    expect(lines.slice(0, -1).every((l) => l.length === 76)).toBe(true);
    expect(lines.at(-1)!.length).toBeLessThanOrEqual(76);
    expect(text.endsWith('\n')).toBe(false);
    expect(Buffer.from(text.replace(/\n/g, ''), 'base64')[0]).toBe(1);
  });

  it('writes a single line when the text fits', () => {
    expect(encodeV1(Buffer.from([0xc2]))).toBe('AcI=');
  });

  it('does not add an empty last line when the text is an exact multiple of 76', () => {
    expect(wrapLines('A'.repeat(152))).toBe(`${'A'.repeat(76)}\n${'A'.repeat(76)}`);
  });
});

describe('decodeStdBase64', () => {
  it('skips LF and CR anywhere, like Go StdEncoding', () => {
    expect(decodeStdBase64('AQ\r\nID\n')?.toString('hex')).toBe('010203');
  });

  it.each([
    ['a space', 'AQID AQID'],
    ['a tab', 'AQID\tAQID'],
    ['URL-alphabet characters', 'A-_D'],
    ['missing padding', 'AQI'],
    ['data after padding', 'AQ==AQID'],
    ['a non-ASCII character', 'AQIé'],
  ])('rejects %s', (_what, text) => {
    expect(decodeStdBase64(text)).toBeUndefined();
  });
});

describe('decodeV1', () => {
  it('returns the bytes after the format byte, from a string or bytes', () => {
    const text = encodeV1(Buffer.from('packet'));
    expect(decodeV1(text).toString()).toBe('packet');
    expect(decodeV1(Buffer.from(`${text}\n`)).toString()).toBe('packet');
  });

  it.each([
    ['empty input', '', /no data/],
    ['only newlines', '\n\n', /without data/],
    ['invalid base64', 'AcI*', /not valid base64/],
    ['format byte 2', Buffer.from([2, 0xc2]).toString('base64'), /format version 2/],
  ])('rejects %s', (_what, text, message) => {
    expect(() => decodeV1(text)).toThrow(V1EnvelopeError);
    expect(() => decodeV1(text)).toThrow(message);
  });
});
