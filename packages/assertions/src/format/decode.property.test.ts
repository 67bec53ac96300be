/**
 * Property tests of the assertion decoder on untrusted bytes: random input and mutations of real
 * assertions end in assertions or an `[ERR_…]` error — never an untyped error, a crash or a hang.
 * The decoded assertions go on through their type's checks, which read the same headers.
 */
import fc from 'fast-check';
import { decodeStream } from './decode.js';
import { encodeStream } from './encode.js';
import { assertionType } from '../types/index.js';
import { mutated, noise, resultOrTypedError, runs } from '@edgeimage/testkit/mutations';
import { assertionFixture, assertionFixtureNames } from '@edgeimage/testkit/assertion-fixtures';

// The shared real assertions, and one of our own so the properties run without them too.
const OWN = Buffer.from(`type: account
authority-id: canonical
account-id: acme
display-name: Acme
timestamp: 2024-01-01T00:00:00Z
validation: unproven
sign-key-sha3-384: -CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk

AcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY
`);
const inputs = [OWN, ...assertionFixtureNames().map(assertionFixture)];

function decodeAndCheck(bytes: Buffer): void {
  for (const a of decodeStream(bytes, { file: 'x.assert' })) {
    assertionType(a.type)?.assemble(a);
  }
}

test('the real inputs decode (the mutations start from valid assertions)', () => {
  for (const b of inputs) expect(decodeStream(b).length).toBeGreaterThan(0);
});

test('random input ends in assertions or an [ERR_…] error', () => {
  fc.assert(fc.property(noise('type: \nabc-0123\n\n  -{}:'), (b) => resultOrTypedError(() => decodeAndCheck(b))), { numRuns: runs(1500) });
});

test('mutated real assertions end in assertions or an [ERR_…] error', () => {
  fc.assert(fc.property(mutated(inputs), (b) => resultOrTypedError(() => decodeAndCheck(b))), { numRuns: runs(3000) });
});

test('mutated streams of several assertions end in assertions or an [ERR_…] error', () => {
  const stream = encodeStream(inputs.slice(0, 5));
  fc.assert(fc.property(mutated([stream]), (b) => resultOrTypedError(() => decodeAndCheck(b))), { numRuns: runs(1000) });
});
