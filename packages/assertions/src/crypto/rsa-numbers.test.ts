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
    // jwk-ok: a key read from a PEM shares no key-generation job: its JWK export is safe to compare with
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
    ['not a sequence', '020101', /ASN\.1 object does not contain an RSAPublicKey/],
    ['a length past the end', '3005020101', /Too few bytes to read ASN\.1 value/],
    ['bytes after the sequence', '3006020101020103ff', /Unparsed DER bytes remain/],
    ['one integer only', '3003020101', /ASN\.1 object does not contain an RSAPublicKey/],
    ['a zero modulus', '3006020100020103', /a modulus or exponent not above zero/],
    ['a zero exponent', '3006020101020100', /a modulus or exponent not above zero/],
    ['nothing', '', /Too few bytes|ASN\.1/],
  ])('%s: ERR_KEY_FORMAT', (_what, hex, message) => {
    expect(() => parsePkcs1(Buffer.from(hex, 'hex'))).toThrow(expect.objectContaining({ code: 'ERR_KEY_FORMAT', message: expect.stringMatching(message) }));
  });

  test('a modulus of 16384 bits (a zero byte before it, as DER has it) is read without it', () => {
    const got = parsePkcs1(Buffer.from(`3082080802820801${'00'}${'ff'.repeat(0x800)}020103`, 'hex'));
    expect([got.bits, got.n.length, got.n[0]]).toEqual([16384, 2048, 0xff]);
  });
});

describe("no code reads a generated key through node's JWK export or key details", () => {
  // Node 20 holds the key's mutex while it builds those objects; a garbage collection then may
  // finalize the job that generated the key, which locks the same mutex: a hang for ever
  // (rsa-numbers.ts). A key read from a file has a mutex of its own: such a use says so with
  // "jwk-ok:" on its line or the line before.
  const CALLS = /\.export\(\s*\{[^}]*\bformat\s*:\s*['"`]jwk|asymmetricKeyDetails|exportKey\(\s*['"`]jwk/g;
  const uses = (text: string): number[] => {
    const lines = text.split('\n');
    return [...text.matchAll(CALLS)]
      .map((m) => text.slice(0, m.index).split('\n').length)
      .filter((line) => !/jwk-ok:/.test(lines[line - 1]!) && !(line > 1 && /jwk-ok:/.test(lines[line - 2]!)));
  };

  test('none in packages/*/src and packages/*/test, tests included, but where marked', () => {
    const found = packageSourceFiles(REPO)
      .filter((f) => !f.endsWith('/crypto/rsa-numbers.ts') && !f.endsWith('/crypto/rsa-numbers.test.ts'))
      .flatMap((f) => uses(readFileSync(f, 'utf8')).map((line) => `${relative(REPO, f)}:${line}`));
    expect(found).toEqual([]);
  });

  test('the pattern finds each form, over lines too; a JWK import is none; the marker excuses one use', () => {
    const forms = [
      "k.export({ format: 'jwk' })",
      "k.export({\n  format: 'jwk',\n})",
      "k.export({ type: 'spki', format: `jwk` })",
      'k.asymmetricKeyDetails?.modulusLength',
      "k['asymmetricKeyDetails']",
      'const { asymmetricKeyDetails } = k;',
      "await subtle.exportKey('jwk', k)",
    ];
    expect(forms.map((t) => uses(t).length)).toEqual(forms.map(() => 1));
    expect(uses("createPublicKey({ key: jwk, format: 'jwk' })")).toEqual([]);
    expect(uses("// jwk-ok: read from a PEM file\nconst j = k.export({ format: 'jwk' });\nk.asymmetricKeyDetails;")).toEqual([3]);
  });
});
