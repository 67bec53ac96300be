import { type SourceRef } from './errors.js';

/** A header value: snapd headers are strings, lists and maps, nested, with strings as the only scalars. */
export type HeaderValue = string | HeaderValue[] | { [key: string]: HeaderValue };
export type Headers = Record<string, HeaderValue>;

/**
 * One decoded assertion, keeping the exact bytes it was decoded from: signatures are checked over
 * `content` as it stands, never over a re-serialisation.
 *
 * ```ts
 * const [a] = decodeStream(bytes, { file: 'model.assert' });
 * a.type;             // 'model'
 * a.headers['model']; // 'kiosk'
 * ```
 */
export class Assertion {
  constructor(
    readonly headers: Readonly<Headers>,
    /** The body bytes, or undefined when there is none. */
    readonly body: Buffer | undefined,
    /** The signed bytes: headers, or headers + "\n\n" + body. */
    readonly content: Buffer,
    /** The signature text as found after the content (it may end with the "cat friendly" newline). */
    readonly signature: Buffer,
    readonly source: SourceRef = {},
  ) {}

  get type(): string {
    return this.headers['type'] as string;
  }

  /** The string value of a header, or undefined when absent (or not a string). */
  header(name: string): string | undefined {
    const v = this.headers[name];
    return typeof v === 'string' ? v : undefined;
  }

  get authorityId(): string | undefined {
    return this.header('authority-id');
  }

  get signKeyId(): string {
    return this.header('sign-key-sha3-384') ?? '';
  }

  /** `revision` header as a number (0 when absent), as snapd reads it. */
  get revision(): number {
    const r = this.header('revision');
    return r === undefined ? 0 : Number(r);
  }

  get format(): number {
    const f = this.header('format');
    return f === undefined ? 0 : Number(f);
  }

  /** The assertion as it is written in a file: content, a blank line, the signature. */
  encode(): Buffer {
    const sig = this.signature.length && this.signature[this.signature.length - 1] === 0x0a ? this.signature : Buffer.concat([this.signature, Buffer.from('\n')]);
    return Buffer.concat([this.content, Buffer.from('\n\n'), sig]);
  }
}
