import { Assertion } from '../assertion.js';
import { AssertionFormatError, type SourceRef } from '../errors.js';
import { HeaderSyntaxError, parseHeaders } from './headers.js';
import { MAX_BODY_SIZE, MAX_HEADERS_SIZE, MAX_SIGNATURE_SIZE } from './limits.js';

const NLNL = Buffer.from('\n\n');
const utf8 = new TextDecoder('utf-8', { fatal: true });

function lineAt(buf: Buffer, offset: number): number {
  return 1 + countNewlines(buf, 0, offset);
}

function countNewlines(buf: Buffer, from: number, to: number): number {
  const part = buf.subarray(from, to);
  let n = 0;
  for (let i = part.indexOf(0x0a); i !== -1; i = part.indexOf(0x0a, i + 1)) n++;
  return n;
}

function decodeUtf8(bytes: Buffer, what: string, fail: (msg: string, offset: number) => never): string {
  try {
    return utf8.decode(bytes);
  } catch {
    // Report where the bad byte is, so the user can find it in an editor.
    let ok = 0;
    for (let end = bytes.length; ok < end; ) {
      const mid = (ok + end + 1) >> 1;
      try {
        utf8.decode(bytes.subarray(0, mid));
        ok = mid;
      } catch {
        end = mid - 1;
      }
    }
    return fail(`${what} are not valid UTF-8 (bad byte 0x${bytes[ok]?.toString(16).padStart(2, '0')})`, ok);
  }
}

/**
 * Decodes a stream of assertions (one or more, each followed by one blank line), as snapd's stream
 * decoder reads `.assert` files, keeping each assertion's exact signed bytes.
 *
 * Checked here: the framing, header syntax, `body-length`, sizes, UTF-8, line endings. Checked later:
 * the rules of each type (types/) and the signature (trust/).
 *
 * ```ts
 * const assertions = decodeStream(readFileSync('model.assert'), { file: 'model.assert' });
 * ```
 */
export function decodeStream(input: Uint8Array, source: Pick<SourceRef, 'file'> = {}): Assertion[] {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const file = source.file;
  const fail = (message: string, offset: number, index?: number): never => {
    throw new AssertionFormatError(message, { file, index, line: lineAt(buf, offset) });
  };

  const crlf = buf.indexOf('\r\n');
  if (crlf !== -1) fail('CRLF line endings: assertions use LF ("\\n") only; convert the file (e.g. dos2unix) before signing', crlf);
  if (buf.length === 0) fail('empty input: expected at least one assertion', 0);

  const out: Assertion[] = [];
  // The line of each assertion's start, counted on from the previous one: counting from the start
  // of the input for every assertion made a stream of many small assertions quadratic to decode.
  let counted = 0;
  let countedLines = 1;
  const lineOf = (offset: number): number => {
    countedLines += countNewlines(buf, counted, offset);
    counted = offset;
    return countedLines;
  };
  let pos = 0;
  while (pos < buf.length) {
    const index = out.length + 1;
    const start = pos;
    if (index > 1 && !buf.subarray(pos, pos + 6).equals(Buffer.from('type: '))) {
      // A body without body-length makes the body look like the signature and the signature
      // like the next assertion; say so instead of a puzzling header error.
      fail(`expected the next assertion's "type" header after the previous signature (does the previous assertion have a body without a body-length header?)`, pos, index);
    }
    const headEnd = buf.indexOf(NLNL, pos);
    const headLen = (headEnd === -1 ? buf.length : headEnd) - pos;
    if (headLen > MAX_HEADERS_SIZE) fail(`headers exceed the maximum size of ${MAX_HEADERS_SIZE} bytes`, pos, index);
    if (headEnd === -1) {
      fail(`no blank line after the headers: expected headers, a blank line, then the signature`, pos, index);
    }
    if (headLen === 0) fail('unexpected blank line where an assertion should start (only one blank line separates assertions)', pos, index);
    const headBytes = buf.subarray(pos, headEnd);
    const headText = decodeUtf8(headBytes, 'headers', (m, off) => fail(m, pos + off, index));
    let headers;
    try {
      headers = parseHeaders(headText);
    } catch (e) {
      if (!(e instanceof HeaderSyntaxError)) throw e;
      throw new AssertionFormatError(e.message, { file, index, line: lineOf(start) + e.line - 1 });
    }
    const bl = headers['body-length'];
    let length = 0;
    if (bl !== undefined) {
      if (typeof bl !== 'string' || !/^(0|[1-9][0-9]*)$/.test(bl)) fail(`"body-length" must be a decimal integer without leading zeros, found ${JSON.stringify(bl)}`, pos, index);
      length = Number(bl);
    }
    if (length > MAX_BODY_SIZE) fail(`body-length ${length} exceeds the maximum body size of ${MAX_BODY_SIZE} bytes`, pos, index);

    let cursor = headEnd + 2;
    let body: Buffer | undefined;
    let contentEnd = headEnd;
    if (length > 0) {
      body = buf.subarray(cursor, cursor + length);
      const sep = buf.subarray(cursor + length, cursor + length + 2);
      if (body.length < length || !sep.equals(NLNL)) {
        const blank = buf.indexOf(NLNL, cursor);
        const found = blank === -1 ? `the input ends ${buf.length - cursor} bytes into the body` : `the body runs ${blank - cursor} bytes to the blank line before the signature`;
        fail(`body-length is ${length} but ${found}`, cursor, index);
      }
      decodeUtf8(body, 'body bytes', (m, off) => fail(m, cursor + off, index));
      contentEnd = cursor + length;
      cursor = contentEnd + 2;
    }

    const sigEnd = buf.indexOf(NLNL, cursor);
    let sig = buf.subarray(cursor, sigEnd === -1 ? buf.length : sigEnd + 1);
    if (sig.length > MAX_SIGNATURE_SIZE) fail(`signature exceeds the maximum size of ${MAX_SIGNATURE_SIZE} bytes`, cursor, index);
    if (sig.length === 0 || (sig.length === 1 && sig[0] === 0x0a)) {
      fail('empty signature: expected the signature after the blank line that ends the content', cursor, index);
    }
    pos = sigEnd === -1 ? buf.length : sigEnd + 2;
    if (sigEnd !== -1 && pos >= buf.length) {
      fail('the input ends with a blank line after the signature: nothing may follow the signature but one newline', sigEnd + 1, index);
    }
    const content = buf.subarray(start, contentEnd);
    out.push(
      new Assertion(headers, body ? Buffer.from(body) : undefined, Buffer.from(content), Buffer.from(sig), {
        file,
        index,
        line: lineOf(start),
      }),
    );
  }
  return out;
}

/** Decodes exactly one assertion; a stream of several is an error. */
export function decodeOne(input: Uint8Array, source: Pick<SourceRef, 'file'> = {}): Assertion {
  const all = decodeStream(input, source);
  if (all.length !== 1) {
    throw new AssertionFormatError(`expected exactly one assertion, found ${all.length}`, { file: source.file });
  }
  return all[0]!;
}
