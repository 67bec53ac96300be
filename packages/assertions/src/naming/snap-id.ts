import { createHash } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * The snap-id a store gives a snap name on first publish: 32 alphanumeric characters like snapd's
 * ids, derived from the store's authority and the name, so the same name gets the same id in every
 * fresh store and signed models naming those ids stay valid.
 *
 * ```ts
 * snapIdFor('example-store', 'hello-kiosk'); // always the same 32 characters
 * ```
 */
export function snapIdFor(storeAuthority: string, snapName: string): string {
  // Rejection sampling over sha3-384 output keeps every character uniform; extend with a counter
  // in the (never seen) case 48 bytes do not yield 32 characters.
  let out = '';
  for (let counter = 0; out.length < 32; counter++) {
    const digest = createHash('sha3-384').update(`edgeimage snap-id\0${storeAuthority}\0${snapName}\0${counter}`).digest();
    for (const b of digest) {
      if (b < 248 && out.length < 32) out += ALPHABET[b % 62];
    }
  }
  return out;
}
