import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { join, relative } from 'node:path';
import { REPO } from '@edgeimage/testkit/repo';
import { packageSourceFiles } from '@edgeimage/testkit/import-boundaries';
import { parsePkcs1, rsaNumbers } from './rsa-numbers.js';

const KEYS = join(REPO, 'signing-keys.example');

describe('rsaNumbers: n, e and bits from the PKCS#1 DER export', () => {
  test('the same numbers as the JWK of the key read from its PEM, for a public and a private key', () => {
    const pem = readFileSync(join(KEYS, 'brand.key'), 'utf8');
    const priv = createPrivateKey(pem);
    // (a key read from a PEM shares no key-generation job: its JWK export is safe to compare with)
    const jwk = createPublicKey(pem).export({ format: 'jwk' });
    const want = { n: Buffer.from(jwk.n!, 'base64url'), e: Buffer.from(jwk.e!, 'base64url') };
    for (const k of [priv, createPublicKey(priv)]) {
      const got = rsaNumbers(k);
      expect([got.n.equals(want.n), got.e.equals(want.e), got.bits]).toEqual([true, true, want.n.length * 8]);
      expect(got.n[0]).not.toBe(0);
    }
  });

  test('a generated key: 1025 bits counted exactly (the top byte not full), e = 3', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1025, publicExponent: 3 });
    const got = rsaNumbers(publicKey);
    expect([got.bits, got.n.length, got.e]).toEqual([1025, 129, Buffer.from([3])]);
  });

  test('another key type: ERR_KEY_UNSUPPORTED naming it', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => rsaNumbers(ec)).toThrow(expect.objectContaining({ code: 'ERR_KEY_UNSUPPORTED', message: 'expected an RSA key, got a key of type ec' }));
  });

  test.each([
    ['not a sequence', '020101', /the sequence: expected tag 0x30 at byte 0, found 0x2/],
    ['a length past the end', '3005020101', /the sequence: 5 bytes announced, 3 left/],
    ['bytes after the sequence', '3006020101020103ff', /1 bytes after the sequence/],
    ['a negative modulus', '3006020181020103', /the modulus: negative/],
    ['an empty exponent', '30050201010200', /the exponent: empty/],
    ['a zero modulus', '3006020100020103', /a zero modulus/],
    ['a length in 4 bytes', '3084000000060201010201 03'.replace(/ /g, ''), /the sequence: a length of 4 bytes/],
    ['nothing', '', /the sequence: the encoding ends at byte 0/],
    ['a modulus of 16385 bits and more', `3082080c02820805${'01'.repeat(0x805)}020103`, /the modulus: 2053 bytes, more than 2049/],
  ])('%s: ERR_KEY_FORMAT', (_what, hex, message) => {
    expect(() => parsePkcs1(Buffer.from(hex, 'hex'))).toThrow(expect.objectContaining({ code: 'ERR_KEY_FORMAT', message: expect.stringMatching(message) }));
  });
});

describe("the product's code reads no RSA key through node's JWK export or asymmetricKeyDetails", () => {
  // Node 20 holds the key's mutex while it builds those objects; a garbage collection then may
  // finalize the job that generated the key, which locks the same mutex: a hang for ever
  // (rsa-numbers.ts). Tests may, on keys read from files; the product's code must not.
  test('none in packages/*/src outside tests', () => {
    const calls = /\.export\(\s*\{\s*format:\s*['"]jwk['"]|\.asymmetricKeyDetails\b/;
    const found = packageSourceFiles(REPO)
      .filter((f) => f.includes('/src/') && !/\.test\.[mc]?[jt]s$/.test(f) && !f.includes('/test-helpers/') && !f.endsWith('/rsa-numbers.ts'))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((l, i) => (calls.test(l) ? `${relative(REPO, f)}:${i + 1}: ${l.trim()}` : '')).filter(Boolean));
    expect(found).toEqual([]);
  });

  test('the pattern finds both calls', () => {
    const calls = /\.export\(\s*\{\s*format:\s*['"]jwk['"]|\.asymmetricKeyDetails\b/;
    expect(["k.export({ format: 'jwk' })", 'k.asymmetricKeyDetails?.modulusLength', "createPublicKey({ key: jwk, format: 'jwk' })"].map((l) => calls.test(l))).toEqual([true, true, false]);
  });
});
