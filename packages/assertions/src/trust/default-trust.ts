import type { Assertion } from '../assertion.js';
import { decodeStream } from '../format/decode.js';
import { CANONICAL_ACCOUNT, CANONICAL_ROOT_ACCOUNT_KEY } from './canonical-anchors.js';

/** The anchors trusted unless told otherwise, as in snapd: Canonical's root account-key and account. */
export function defaultTrustedAssertions(): Assertion[] {
  return [
    ...decodeStream(Buffer.from(CANONICAL_ROOT_ACCOUNT_KEY), { file: '<built-in canonical root account-key>' }),
    ...decodeStream(Buffer.from(CANONICAL_ACCOUNT), { file: '<built-in canonical account>' }),
  ];
}
