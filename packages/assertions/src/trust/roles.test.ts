import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Assertion, Headers } from '../assertion.js';
import { PrivateKey } from '../crypto/index.js';
import { decodeStream } from '../format/decode.js';
import { accountKeyHeaders, signAssertion } from '../sign.js';
import { POINTER_ONLY_CONSTRAINTS } from './constraints.js';
import { SigningKey } from './signing-key.js';
import { makeChain, newKey, type TestChain } from '@edgeimage/testkit/signing-chain';
import { TrustDatabase } from './database.js';

const AT = new Date('2026-06-01T00:00:00Z');
const EXAMPLE = fileURLToPath(new URL('../../../../signing-keys.example/', import.meta.url));
const exampleKey = (name: string) => PrivateKey.fromPem(readFileSync(`${EXAMPLE}${name}.key`, 'utf8'));
const exampleAssertion = (file: string) => decodeStream(readFileSync(`${EXAMPLE}${file}`), { file })[0]!;

const SNAP_ID = 'S'.repeat(32);
const SHA = 'x'.repeat(64);

/** A valid assertion of `type`, with `account` as its authority and every other account it names. */
function assertionOf(type: string, account: string, fresh: PrivateKey): { headers: Headers; body?: string } {
  const ts = '2026-03-01T00:00:00Z';
  switch (type) {
    case 'account':
      return { headers: { type, 'authority-id': account, 'account-id': 'newcomer', 'display-name': 'Newcomer', validation: 'unproven', timestamp: ts } };
    case 'account-key': {
      const { headers, body } = accountKeyHeaders(fresh.publicKey, { accountId: 'example-brand', authorityId: account, since: new Date('2026-01-01T00:00:00Z'), name: 'extra' });
      return { headers, body };
    }
    case 'model':
      return {
        headers: {
          type, 'authority-id': account, series: '16', 'brand-id': account, model: 'kiosk', architecture: 'amd64', base: 'core22', grade: 'dangerous',
          snaps: [{ name: 'pc', type: 'gadget' }, { name: 'pc-kernel', type: 'kernel' }], timestamp: ts,
        },
      };
    case 'validation-set':
      return { headers: { type, 'authority-id': account, series: '16', 'account-id': account, name: 'world', sequence: '1', snaps: [{ name: 'hello', id: SNAP_ID, revision: '1' }], timestamp: ts } };
    case 'snap-declaration':
      return { headers: { type, 'authority-id': account, series: '16', 'snap-id': 'D'.repeat(32), 'snap-name': 'other', 'publisher-id': 'example-brand', timestamp: ts } };
    case 'snap-revision':
      return { headers: { type, 'authority-id': account, 'snap-sha3-384': SHA, 'snap-id': SNAP_ID, 'snap-size': '4096', 'snap-revision': '1', 'developer-id': 'example-brand', timestamp: ts } };
    default:
      throw new Error(type);
  }
}

describe('each example key signs only what its role allows (README "Running your own root")', () => {
  const keys = { root: 'example-root', brand: 'example-brand', store: 'example-store' } as const;
  // The recipe: the README's table, checked pair by pair.
  const ALLOWED: Record<keyof typeof keys, string[]> = {
    root: ['account', 'account-key'],
    brand: ['model', 'validation-set'],
    store: ['snap-declaration', 'snap-revision'],
  };
  const TYPES = ['account', 'account-key', 'model', 'validation-set', 'snap-declaration', 'snap-revision'];
  let fresh: PrivateKey;
  let trusted: Assertion[];
  let chainOfBrand: Assertion[];
  let declaration: Assertion;

  beforeAll(async () => {
    fresh = await newKey();
    // As `--trusted` gets them: the root anchor and account, and the store's account and key.
    trusted = ['root.account-key', 'example-root.account', 'example-store.account', 'store.account-key'].map(exampleAssertion);
    chainOfBrand = ['example-brand.account', 'brand.account-key'].map(exampleAssertion);
    const { headers } = assertionOf('snap-declaration', 'example-store', fresh);
    declaration = signAssertion({ ...headers, 'snap-id': SNAP_ID, 'snap-name': 'hello' }, undefined, exampleKey('store'));
  });

  const cases = (Object.keys(keys) as (keyof typeof keys)[]).flatMap((k) => TYPES.map((t) => [k, t, ALLOWED[k].includes(t)] as const));
  test.each(cases)('key %s signing a %s: allowed=%s', (key, type, allowed) => {
    const db = new TrustDatabase({ trusted, at: AT });
    expect(db.addAll([...chainOfBrand, declaration]).map((r) => r.error?.message)).toEqual([undefined, undefined, undefined]);
    const { headers, body } = assertionOf(type, keys[key], fresh);
    const a = signAssertion(headers, body, exampleKey(key));
    const [r] = db.addAll([a]);
    if (allowed) {
      expect(r!.error?.message).toBeUndefined();
    } else {
      expect(r!.error).toBeDefined();
      expect(['ERR_SIGNER_ROLE', 'ERR_NOT_DIRECTLY_TRUSTED']).toContain(r!.error!.code);
      expect(db.find(type, Object.fromEntries(Object.entries(headers).filter(([, v]) => typeof v === 'string')) as Record<string, string>)?.content.equals(a.content) ?? false).toBe(false);
    }
  });

  test('a trusted store that is not a root cannot vouch for a key or sign a model, and says why', () => {
    const db = new TrustDatabase({ trusted, at: AT });
    db.addAll(chainOfBrand);
    const key = signAssertion(assertionOf('account-key', 'example-store', fresh).headers, assertionOf('account-key', 'example-store', fresh).body, exampleKey('store'));
    const model = signAssertion(assertionOf('model', 'example-store', fresh).headers, undefined, exampleKey('store'));
    const [rk, rm] = db.addAll([key, model]);
    expect(rk!.error?.code).toBe('ERR_SIGNER_ROLE');
    expect(rk!.error?.message).toMatch(/signed by "example-store", a trusted account that is not a root .* signs only snap-declarations and snap-revisions, not a account-key/);
    expect(rm!.error?.code).toBe('ERR_SIGNER_ROLE');
    expect(db.findAccountKeys('example-brand', 'extra')).toEqual([]);
    expect(db.all('model')).toEqual([]);
  });

  test('the root key itself signs no model, even of its own brand', () => {
    const db = new TrustDatabase({ trusted, at: AT });
    const model = signAssertion(assertionOf('model', 'example-root', fresh).headers, undefined, exampleKey('root'));
    const [r] = db.addAll([model]);
    expect(r!.error?.code).toBe('ERR_SIGNER_ROLE');
    expect(r!.error?.message).toMatch(/signed by the root key .* of "example-root", which signs only accounts and account-keys, not a model/);
  });
});

describe('account-key constraints, as snapd enforces them', () => {
  let chain: TestChain;
  let brandKey: PrivateKey;
  beforeAll(async () => {
    chain = await makeChain();
    brandKey = await newKey();
  });

  const constrainedKey = (constraints: Headers[]) => {
    const { headers, body } = accountKeyHeaders(brandKey.publicKey, { accountId: 'acme', authorityId: 'acme-root', since: new Date('2026-01-01T00:00:00Z'), name: 'kiosks' });
    return chain.sign({ ...headers, format: '1', constraints }, chain.rootKey, body);
  };
  const model = (name: string, extra: Headers = {}) =>
    chain.sign(
      { type: 'model', 'authority-id': 'acme', series: '16', 'brand-id': 'acme', model: name, architecture: 'amd64', base: 'core22', grade: 'dangerous', snaps: [{ name: 'pc', type: 'gadget' }, { name: 'pc-kernel', type: 'kernel' }], timestamp: '2026-03-01T00:00:00Z', ...extra },
      brandKey,
    );
  const check = (key: Assertion, a: Assertion) => {
    const db = new TrustDatabase({ trusted: chain.anchors, at: AT });
    const results = db.addAll([chain.account('acme'), key, a]);
    expect(results.slice(0, 2).map((r) => r.error?.message)).toEqual([undefined, undefined]);
    return { error: results[2]!.error, stored: db.all('model').length };
  };

  test('a key constrained to model kiosk-.* signs kiosk-1 but not robot, nor a name that only contains kiosk-', () => {
    const key = constrainedKey([{ headers: { type: 'model', model: 'kiosk-.*' } }]);
    expect(check(key, model('kiosk-1')).error).toBeUndefined();
    for (const name of ['robot', 'robot-kiosk-1']) {
      const { error, stored } = check(key, model(name));
      expect(error?.code).toBe('ERR_KEY_CONSTRAINTS');
      expect(error?.message).toContain(`model series=16 brand-id=acme model=${name}: signing key ${brandKey.publicKey.id} of "acme" may not sign it`);
      expect(stored).toBe(0);
    }
  });

  test('the type is matched too, and a plain value matches the whole header only', () => {
    const key = constrainedKey([{ headers: { type: 'validation-set' } }, { headers: { type: 'model', model: 'kiosk' } }]);
    expect(check(key, model('kiosk')).error).toBeUndefined();
    expect(check(key, model('kiosk2')).error?.code).toBe('ERR_KEY_CONSTRAINTS');
  });

  test('alternatives, lists and $MISSING follow snapd', () => {
    const key = constrainedKey([{ headers: { type: 'model', model: ['a-.*', 'b-.*'], 'system-user-authority': '$MISSING' } }]);
    expect(check(key, model('b-1')).error).toBeUndefined();
    expect(check(key, model('c-1')).error?.code).toBe('ERR_KEY_CONSTRAINTS');
    expect(check(key, model('a-1', { 'system-user-authority': '*' })).error?.code).toBe('ERR_KEY_CONSTRAINTS');
    const serials = constrainedKey([{ headers: { type: 'model', 'serial-authority': 'acme|acme-.*' } }]);
    expect(check(serials, model('k', { 'serial-authority': ['acme', 'acme-2'] })).error).toBeUndefined();
    expect(check(serials, model('k', { 'serial-authority': ['acme', 'evil'] })).error?.code).toBe('ERR_KEY_CONSTRAINTS');
    expect(check(serials, model('k')).error?.code).toBe('ERR_KEY_CONSTRAINTS');
  });

  test('a pointer-only key (constraints type channel-pointer) signs no model, and says it signs channel pointers only', () => {
    const { headers, body } = accountKeyHeaders(brandKey.publicKey, { accountId: 'acme', authorityId: 'acme-root', since: new Date('2026-01-01T00:00:00Z'), name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS });
    const key = chain.sign(headers, chain.rootKey, body);
    expect(key.headers['constraints']).toEqual([{ headers: { type: 'channel-pointer' } }]);
    expect(SigningKey.fromAccountKey(key).constraints?.pointerOnly).toBe(true);
    const { error, stored } = check(key, model('kiosk'));
    expect(error?.code).toBe('ERR_KEY_POINTER_ONLY');
    expect(error?.message).toContain(`signing key ${brandKey.publicKey.id} of "acme" signs channel pointers only (its constraints [{"headers":{"type":"channel-pointer"}}]), not a model`);
    expect(stored).toBe(0);
    // A key that may sign models as well as pointers is no pointer-only key.
    expect(SigningKey.fromAccountKey(constrainedKey([{ headers: { type: 'channel-pointer' } }, { headers: { type: 'model' } }])).constraints?.pointerOnly).toBe(false);
    expect(SigningKey.fromAccountKey(constrainedKey([{ headers: { type: 'model' } }])).constraints?.pointerOnly).toBe(false);
  });

  test('a catastrophic-backtracking pattern runs in linear time', () => {
    const key = constrainedKey([{ headers: { type: 'model', model: '(a+)+z' } }]);
    // A backtracking engine (Node's RegExp) tries 2^64 ways to split this value before failing.
    expect(check(key, model('a'.repeat(64))).error?.code).toBe('ERR_KEY_CONSTRAINTS');
    expect(check(key, model(`${'a'.repeat(64)}z`)).error).toBeUndefined();
  });

  test('a key whose constraint pattern cannot be enforced exactly is refused, not read as unconstrained', () => {
    for (const pattern of ['kiosk-[0-9]{2}', 'x'.repeat(600), '^kiosk', 'kiosk-(?i)a', 'kiosk-\\1']) {
      const key = constrainedKey([{ headers: { type: 'model', model: pattern } }]);
      const db = new TrustDatabase({ trusted: chain.anchors, at: AT });
      const results = db.addAll([chain.account('acme'), key, model('kiosk-1')]);
      expect(results[1]!.error?.code).toBe('ERR_CONSTRAINT_PATTERN');
      expect(results[1]!.error?.message).toMatch(/constraints.*cannot be enforced, so the key is refused/);
      expect(results[2]!.error?.code).toBe('ERR_UNKNOWN_KEY');
    }
  });
});

describe('snap-revisions of another provenance: only as the snap-declaration delegates', () => {
  let chain: TestChain;
  let storeKey: PrivateKey;
  let brandKey: PrivateKey;
  let otherKey: PrivateKey;
  let trusted: Assertion[];
  beforeAll(async () => {
    chain = await makeChain();
    [storeKey, brandKey, otherKey] = await Promise.all([newKey(), newKey(), newKey()]);
    trusted = [...chain.anchors, chain.account('acme-store'), chain.accountKey(storeKey, 'acme-store', { name: 'store' })];
  });

  const declaration = (ra?: Headers[]) =>
    chain.sign(
      { type: 'snap-declaration', 'authority-id': 'acme-store', series: '16', 'snap-id': SNAP_ID, 'snap-name': 'hello', 'publisher-id': 'acme', timestamp: '2026-02-01T00:00:00Z', ...(ra ? { 'revision-authority': ra } : {}) },
      storeKey,
    );
  const revision = (key: PrivateKey, authority: string, provenance: string, rev: number) =>
    chain.sign(
      { type: 'snap-revision', 'authority-id': authority, 'snap-sha3-384': SHA, provenance, 'snap-id': SNAP_ID, 'snap-size': '4096', 'snap-revision': String(rev), 'developer-id': 'acme', timestamp: '2026-03-01T00:00:00Z' },
      key,
    );
  const add = (decl: Assertion, rev: Assertion) => {
    const db = new TrustDatabase({ trusted, at: AT });
    const prior = db.addAll([chain.account('acme'), chain.accountKey(brandKey, 'acme', { name: 'models' }), chain.account('other'), chain.accountKey(otherKey, 'other', { name: 'other' }), decl]);
    expect(prior.map((r) => r.error?.message)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    const [r] = db.addAll([rev]);
    return { error: r!.error, stored: db.all('snap-revision').length };
  };
  const RA = [{ 'account-id': 'acme', provenance: ['acme-factory'], 'min-revision': '2', 'max-revision': '10' }];

  test('accepted when the declaration allows that signer for that provenance and revision', () => {
    expect(add(declaration(RA), revision(brandKey, 'acme', 'acme-factory', 5))).toEqual({ error: undefined, stored: 1 });
  });

  test.each([
    ['no revision-authority at all', undefined, 'acme', 'acme-factory', 5, /allows nobody for that provenance/],
    ['another provenance', RA, 'acme', 'other-factory', 5, /provenance "other-factory" .* allows nobody/],
    ['another signer', RA, 'other', 'acme-factory', 5, /signed by "other" is not allowed .* allows "acme" for revisions 2\.\.10/],
    ['below min-revision', RA, 'acme', 'acme-factory', 1, /revision 1 signed by "acme" is not allowed/],
    ['above max-revision', RA, 'acme', 'acme-factory', 11, /revision 11 signed by "acme" is not allowed/],
  ] as const)('refused: %s', (_what, ra, signer, provenance, rev, message) => {
    const key = signer === 'acme' ? brandKey : otherKey;
    const { error, stored } = add(declaration(ra as Headers[] | undefined), revision(key, signer, provenance, rev));
    expect(error?.code).toBe('ERR_REVISION_AUTHORITY');
    expect(error?.message).toMatch(message);
    expect(error?.message).toContain(`snap-revision snap-sha3-384=${SHA} provenance=${provenance}`);
    expect(stored).toBe(0);
  });

  test('global-upload still needs a directly trusted signer, whatever the declaration says', () => {
    const ra = [{ 'account-id': 'acme', provenance: ['global-upload'] }];
    const { error } = add(declaration(ra), revision(brandKey, 'acme', 'global-upload', 5));
    expect(error?.code).toBe('ERR_NOT_DIRECTLY_TRUSTED');
  });
});
