import { EdgeimageError } from '@edgeimage/assertions';

/**
 * Store, bundle and resolver failures. `code` is stable; `context` carries what a caller needs
 * (the snap, the URL, expected and actual digests).
 */
export class StoreError extends EdgeimageError {
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}

/** meta/snap.yaml is missing or breaks a rule: names the file, line and field. */
export class SnapYamlError extends StoreError {
  constructor(message: string, readonly file: string, readonly line?: number, readonly col?: number, readonly field?: string) {
    super('ERR_SNAP_YAML', `${file}${line ? `:${line}${col ? `:${col}` : ''}` : ''}: ${message}`, { file, line, col, field });
  }
}

/** A downloaded bundle is not the one the signed snap-revision describes. */
export class DigestMismatchError extends StoreError {
  constructor(readonly snap: string, readonly expected: string, readonly actual: string, readonly url: string) {
    super('ERR_DIGEST_MISMATCH', `bundle ${snap} from ${url}: sha3-384 is ${actual}, but the signed snap-revision says ${expected}; the file was not cached`, { snap, expected, actual, url });
  }
}

export class SizeMismatchError extends StoreError {
  constructor(readonly snap: string, readonly expected: number, readonly actual: number, readonly url: string) {
    super('ERR_SIZE_MISMATCH', `bundle ${snap} from ${url}: ${actual} bytes, but the signed snap-revision says ${expected} bytes; the file was not cached`, { snap, expected, actual, url });
  }
}
