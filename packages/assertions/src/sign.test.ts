import { signAssertion, accountKeyHeaders } from './sign.js';
import { decodeStream } from './format/decode.js';
import { encodeContent } from './format/encode.js';
import { AssertionValidationError } from './errors.js';
import { assertionType } from './types/index.js';
import { newKey } from '@edgeimage/testkit/signing-chain';
import type { PrivateKey } from './crypto/index.js';

let key: PrivateKey;
beforeAll(async () => {
  key = await newKey();
});

const model = {
  type: 'model',
  'authority-id': 'acme',
  series: '16',
  'brand-id': 'acme',
  model: 'kiosk',
  architecture: 'arm64',
  base: 'core22',
  grade: 'dangerous',
  snaps: [{ name: 'pi', type: 'gadget' }, { name: 'pi-kernel', type: 'kernel' }],
  revision: '3',
};

test("writes headers in snapd's order, sign-key last, timestamp filled in", () => {
  const a = signAssertion(model, undefined, key, { now: new Date('2026-02-03T04:05:06.789Z') });
  const names = a.content.toString().split('\n').filter((l) => /^[a-z]/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
  expect(names).toEqual(['type', 'authority-id', 'revision', 'series', 'brand-id', 'model', 'architecture', 'base', 'grade', 'snaps', 'timestamp', 'sign-key-sha3-384']);
  expect(a.header('timestamp')).toBe('2026-02-03T04:05:06Z');
  expect(a.header('sign-key-sha3-384')).toBe(key.publicKey.id);
  // What we wrote is what snapd's layout of the same headers gives.
  expect(encodeContent(assertionType('model')!, a.headers, a.body).equals(a.content)).toBe(true);
  expect(a.encode().toString()).toMatch(/\n\n[A-Za-z0-9+/=\n]+\n$/);
});

test('signing is deterministic for the same headers and key', () => {
  const withTime = { ...model, timestamp: '2026-02-03T00:00:00Z' };
  expect(signAssertion(withTime, undefined, key).encode().equals(signAssertion(withTime, undefined, key).encode())).toBe(true);
});

test('a body gets its body-length, after the other headers', () => {
  const { headers, body } = accountKeyHeaders(key.publicKey, { accountId: 'acme', authorityId: 'acme', name: 'k', since: new Date('2026-01-01T00:00:00Z') });
  const a = signAssertion(headers, body, key);
  expect(a.content.toString()).toMatch(/\nsince: 2026-01-01T00:00:00Z\nbody-length: \d+\nsign-key-sha3-384: /);
  expect(a.body!.toString()).toBe(key.publicKey.encodeAccountKeyBody());
  const [again] = decodeStream(a.encode());
  expect(again!.header('public-key-sha3-384')).toBe(key.publicKey.id);
});

test('refuses to sign an unknown type', () => {
  expect(() => signAssertion({ type: 'gizmo', 'authority-id': 'acme' }, undefined, key)).toThrow(expect.objectContaining({ code: 'ERR_ASSERTION_UNKNOWN_TYPE' }));
});

test('refuses to sign headers its type does not accept, naming the header', () => {
  const { model: _drop, ...noModel } = model;
  let err: unknown;
  try {
    signAssertion(noModel, undefined, key);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AssertionValidationError);
  expect((err as AssertionValidationError).message).toContain('"model"');
});
