/**
 * Typed errors. Callers and tests switch on `code`, never on message text; each error carries
 * the context needed to act on it (the file, the assertion, the field).
 */

/** Where an assertion came from, for messages: `model.assert (assertion 2, line 14)`. */
export interface SourceRef {
  file?: string;
  /** 1-based index of the assertion within its stream. */
  index?: number;
  /** 1-based line of the assertion's first header line within the file. */
  line?: number;
}

/** `model brand-id=acme model=kiosk` — type and primary key, as snapd names an assertion. */
export type AssertionRef = string;

export function describeSource(src: SourceRef | undefined): string {
  if (!src || (src.file === undefined && src.index === undefined && src.line === undefined)) return '';
  const parts: string[] = [];
  if (src.index !== undefined) parts.push(`assertion ${src.index}`);
  if (src.line !== undefined) parts.push(`line ${src.line}`);
  const file = src.file ?? '<input>';
  return parts.length ? `${file} (${parts.join(', ')})` : file;
}

/** `file (assertion 1, line 3): model …: message`, leaving out the parts that are unknown. */
function located(source: SourceRef, assertion: string, message: string): string {
  return [describeSource(source), assertion, message].filter(Boolean).join(': ');
}

export class EdgeimageError extends Error {
  readonly code: string;
  readonly context: Record<string, unknown>;
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** The bytes do not follow snapd's assertion text format. */
export class AssertionFormatError extends EdgeimageError {
  constructor(message: string, readonly source: SourceRef & { line?: number } = {}, code = 'ERR_ASSERTION_FORMAT') {
    super(code, `${describeSource(source) || '<input>'}: ${message}`, { ...source });
  }
}

/** Headers are well-formed but break a rule of the assertion's type. */
export class AssertionValidationError extends EdgeimageError {
  constructor(
    readonly assertion: AssertionRef,
    readonly header: string | undefined,
    message: string,
    readonly source: SourceRef = {},
    code = 'ERR_ASSERTION_INVALID',
  ) {
    super(code, located(source, assertion, message), { assertion, header, ...source });
  }
}

/** The signature does not decode, uses an unsupported algorithm, or does not verify. */
export class SignatureError extends EdgeimageError {
  constructor(readonly assertion: AssertionRef, message: string, readonly source: SourceRef = {}, code = 'ERR_SIGNATURE') {
    super(code, located(source, assertion, message), { assertion, ...source });
  }
}

/** No chain of trust reaches the assertion (unknown key, untrusted authority, expired key…). */
export class TrustError extends EdgeimageError {
  constructor(readonly assertion: AssertionRef, message: string, readonly source: SourceRef = {}, code = 'ERR_UNTRUSTED') {
    super(code, located(source, assertion, message), { assertion, ...source });
  }
}

/** A lower or equal revision of an assertion already known. */
export class RevisionError extends TrustError {
  constructor(assertion: AssertionRef, readonly current: number, readonly offered: number, source: SourceRef = {}) {
    super(assertion, `revision ${offered} is not newer than the known revision ${current}`, source, 'ERR_REVISION_NOT_NEWER');
  }
}

/** Problems with key files: permissions, passphrase, missing keys. */
export class KeyError extends EdgeimageError {
  constructor(code: string, message: string, readonly keyFile?: string) {
    super(code, message, { keyFile });
  }
}
