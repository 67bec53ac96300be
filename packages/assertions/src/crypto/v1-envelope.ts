/**
 * snapd's "v1" text envelope for keys and signatures: base64 (standard alphabet, padded) of
 * 0x01 || one OpenPGP packet, wrapped at 76 columns.
 *
 * The wrapping is part of the assertion bytes (account-key bodies are counted in `body-length`
 * and covered by the signature), so encoding must be exact; decoding must be as tolerant as Go's
 * `base64.StdEncoding` (which skips CR and LF) and no more.
 */

/** The format version byte snapd puts before the packet. */
export const V1_FORMAT = 0x01;

/** Line width of snapd's wrapped base64 (`maxEncodeLineLength`). */
export const LINE_WIDTH = 76;

/** Why a v1 text did not decode; the caller chooses the error class and code. */
export class V1EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'V1EnvelopeError';
  }
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Wraps base64 text at `width` columns with '\n' and no trailing newline, as snapd does.
 *
 * @example
 * wrapLines('A'.repeat(80)); // 'AAAA…(76)\nAAAA'
 */
export function wrapLines(text: string, width = LINE_WIDTH): string {
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
  return lines.join('\n');
}

/**
 * Decodes standard padded base64 the way Go's `StdEncoding` does: CR and LF anywhere are
 * skipped, every other character outside the alphabet (spaces, '-', '_') is an error.
 * Returns undefined instead of throwing so callers can word the failure for their context.
 *
 * @example
 * decodeStdBase64('AQ==\n'); // <Buffer 01>
 */
export function decodeStdBase64(text: string): Buffer | undefined {
  const compact = text.replace(/[\r\n]/g, '');
  if (!STD_BASE64.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/**
 * Encodes a packet in the v1 envelope.
 *
 * @example
 * encodeV1(signaturePacket); // 'AcLBXAQAAQoABgUC…' (76-column lines, no final '\n')
 */
export function encodeV1(packet: Uint8Array): string {
  return wrapLines(Buffer.concat([Buffer.from([V1_FORMAT]), packet]).toString('base64'));
}

/**
 * Decodes a v1 envelope and returns the bytes after the format byte (the packet, plus anything
 * that follows it: the caller checks there is nothing). Bytes input is read as Latin-1 so that
 * any non-ASCII byte is simply an invalid character.
 *
 * @example
 * const packet = decodeV1(signatureText); // throws V1EnvelopeError on bad base64 / version
 */
export function decodeV1(text: string | Uint8Array): Buffer {
  const str = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('latin1');
  if (str.length === 0) throw new V1EnvelopeError('no data');
  const bytes = decodeStdBase64(str);
  if (bytes === undefined) throw new V1EnvelopeError('not valid base64 (standard alphabet, padded)');
  if (bytes.length === 0) throw new V1EnvelopeError('base64 without data');
  if (bytes[0] !== V1_FORMAT) throw new V1EnvelopeError(`unsupported format version ${bytes[0]}, expected ${V1_FORMAT}`);
  return bytes.subarray(1);
}
