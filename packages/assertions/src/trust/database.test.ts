import { TrustDatabase } from './database.js';
import { defaultTrustedAssertions } from './default-trust.js';
import { decodeStream } from '../format/decode.js';
import { encodeSigned } from '../format/encode.js';
import { Assertion } from '../assertion.js';
import { EdgeimageError } from '../errors.js';
import { assertionFixture, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { makeChain, newKey, type TestChain } from '@edgeimage/testkit/signing-chain';
import type { PrivateKey } from '../crypto/index.js';

const AT = new Date('2026-06-01T00:00:00Z');

function modelHeaders(brand = 'acme', extra: Record<string, string> = {}) {
  return {
    type: 'model',
    'authority-id': brand,
    series: '16',
    'brand-id': brand,
    model: 'kiosk',
    architecture: 'amd64',
    base: 'core22',
    grade: 'dangerous',
    snaps: [
      { name: 'pc', type: 'gadget' },
      { name: 'pc-kernel', type: 'kernel' },
    ],
    timestamp: '2026-03-01T00:00:00Z',
    ...extra,
  };
}

/** The code of the error `addAll` reports for the last assertion of the batch. */
function refusal(db: TrustDatabase, batch: Assertion[]): EdgeimageError {
  const results = db.addAll(batch);
  const last = results.at(-1)!;
  expect(last.error).toBeDefined();
  return last.error!;
}

/** Re-signs changed content with `key`, bypassing signAssertion's validation, as an attacker could. */
function resign(content: string, key: PrivateKey): Assertion {
  const text = encodeSigned(Buffer.from(content), key.sign(Buffer.from(content)));
  return decodeStream(text)[0]!;
}

function tamper(a: Assertion, from: string, to: string): Assertion {
  const text = a.encode().toString('latin1');
  expect(text).toContain(from);
  return decodeStream(Buffer.from(text.replace(from, to), 'latin1'))[0]!;
}

describe('chain of trust', () => {
  let chain: TestChain;
  let brandKey: PrivateKey;
  let brandAccount: Assertion;
  let brandAccountKey: Assertion;
  const db = () => new TrustDatabase({ trusted: chain.anchors, at: AT });

  beforeAll(async () => {
    chain = await makeChain();
    brandKey = await newKey();
    brandAccount = chain.account('acme');
    brandAccountKey = chain.accountKey(brandKey, 'acme');
  });

  test('a brand model verifies through root → account-key → model, in any order', () => {
    const model = chain.sign(modelHeaders(), brandKey);
    const results = db().addAll([model, brandAccountKey, brandAccount]);
    expect(results.map((r) => r.error?.message)).toEqual([undefined, undefined, undefined]);
    expect(results[0]!.signKey).toBe(brandKey.publicKey.id);
  });

  test('rejects a tampered header, body or signature byte', () => {
    const model = chain.sign(modelHeaders(), brandKey);
    expect(refusal(db(), [brandAccount, brandAccountKey, tamper(model, 'model: kiosk', 'model: kiosq')]).code).toBe('ERR_SIGNATURE_INVALID');
    const keyBodyLine = brandAccountKey.body!.toString().split('\n')[3]!;
    const flipped = keyBodyLine.slice(0, 10) + (keyBodyLine[10] === 'A' ? 'B' : 'A') + keyBodyLine.slice(11);
    expect(refusal(db(), [brandAccount, tamper(brandAccountKey, keyBodyLine, flipped)]).code).toBe('ERR_SIGNATURE_INVALID');
    const sig = model.signature.toString();
    const sigLine = sig.split('\n')[2]!;
    const badSig = sigLine.slice(0, 20) + (sigLine[20] === 'A' ? 'B' : 'A') + sigLine.slice(21);
    expect(refusal(db(), [brandAccount, brandAccountKey, tamper(model, sigLine, badSig)]).code).toBe('ERR_SIGNATURE_INVALID');
  });

  test('rejects an account-key whose body is not the key its header names, even when validly signed', async () => {
    const other = await newKey();
    const text = brandAccountKey.content.toString();
    const swapped = text.replace(brandKey.publicKey.encodeAccountKeyBody(), other.publicKey.encodeAccountKeyBody());
    expect(swapped).not.toBe(text);
    const e = refusal(db(), [brandAccount, resign(swapped, chain.rootKey)]);
    expect(e.code).toBe('ERR_ACCOUNT_KEY_MISMATCH');
    expect(e.message).toContain(other.publicKey.id);
  });

  test('rejects a signature that is not base64', () => {
    const model = chain.sign(modelHeaders(), brandKey);
    const sigLine = model.signature.toString().split('\n')[1]!;
    const e = refusal(db(), [brandAccount, brandAccountKey, tamper(model, sigLine, `${sigLine.slice(0, 5)}*${sigLine.slice(6)}`)]);
    expect(e.code).toBe('ERR_SIGNATURE_ENCODING');
    expect(e.message).toMatch(/model series=16 brand-id=acme model=kiosk/);
  });

  test('rejects an assertion signed by an unknown key, naming the key', async () => {
    const stranger = await newKey();
    const e = refusal(db(), [brandAccount, brandAccountKey, chain.sign(modelHeaders(), stranger)]);
    expect(e.code).toBe('ERR_UNKNOWN_KEY');
    expect(e.message).toContain(stranger.publicKey.id);
  });

  test('rejects a key id that belongs to another account', () => {
    // Brand key signs an assertion claiming authority "other": the key is known but not theirs.
    const other = chain.account('other');
    const content = chain.sign(modelHeaders('other'), brandKey);
    const e = refusal(db(), [brandAccount, brandAccountKey, other, content]);
    expect(e.code).toBe('ERR_KEY_AUTHORITY_MISMATCH');
  });

  test('rejects a model whose authority is not its brand', () => {
    const text = chain.sign(modelHeaders(), brandKey).content.toString().replace('brand-id: acme', 'brand-id: someone-else');
    const e = refusal(db(), [brandAccount, brandAccountKey, resign(text, brandKey)]);
    expect(e.code).toBe('ERR_AUTHORITY_NOT_BRAND');
  });

  test('refuses keys outside their validity window at the time of checking', () => {
    const model = chain.sign(modelHeaders(), brandKey);
    const early = new TrustDatabase({ trusted: chain.anchors, at: new Date('2025-06-01T00:00:00Z') });
    expect(refusal(early, [brandAccount, brandAccountKey, model]).code).toBe('ERR_KEY_NOT_YET_VALID');
    const expiring = chain.accountKey(brandKey, 'acme', { until: new Date('2026-04-01T00:00:00Z') });
    const late = new TrustDatabase({ trusted: chain.anchors, at: new Date('2026-05-01T00:00:00Z') });
    const e = refusal(late, [brandAccount, expiring, model]);
    expect(e.code).toBe('ERR_KEY_EXPIRED');
    expect(e.message).toMatch(/has expired at 2026-05-01T00:00:00.000Z \(valid since 2026-01-01T00:00:00.000Z until 2026-04-01T00:00:00.000Z\)/);
  });

  test('refuses an assertion whose timestamp is outside its key validity', () => {
    const model = chain.sign(modelHeaders('acme', { timestamp: '2025-12-31T23:59:59Z' }), brandKey);
    const e = refusal(db(), [brandAccount, brandAccountKey, model]);
    expect(e.code).toBe('ERR_KEY_VALIDITY');
    expect(e.message).toContain('timestamp 2025-12-31T23:59:59Z');
  });

  test('an account-key must be signed by a directly trusted authority', async () => {
    const subKey = await newKey();
    // The brand (not a trust anchor) tries to vouch for a further key.
    const delegated = chain.accountKey(subKey, 'acme', { signer: brandKey, authorityId: 'acme', name: 'sub' });
    const e = refusal(db(), [brandAccount, brandAccountKey, delegated]);
    expect(e.code).toBe('ERR_NOT_DIRECTLY_TRUSTED');
  });

  test('an account-key needs its account', () => {
    const e = refusal(db(), [brandAccountKey]);
    expect(e.code).toBe('ERR_MISSING_ACCOUNT');
  });

  test('two keys with the same name for one account are refused', async () => {
    const again = chain.accountKey(await newKey(), 'acme');
    expect(refusal(db(), [brandAccount, brandAccountKey, again]).code).toBe('ERR_DUPLICATE_KEY_NAME');
  });

  test('the highest revision wins; a lower or equal revision is refused', () => {
    const r1 = chain.account('acme', { revision: '1', 'display-name': 'Acme 1' });
    const r2 = chain.account('acme', { revision: '2', 'display-name': 'Acme 2' });
    const d = db();
    expect(d.addAll([r1, r2]).map((r) => r.error)).toEqual([undefined, undefined]);
    expect(d.find('account', { 'account-id': 'acme' })!.header('display-name')).toBe('Acme 2');
    const e = refusal(d, [r1]);
    expect(e.code).toBe('ERR_REVISION_NOT_NEWER');
    expect(e.message).toContain('revision 1 is not newer than the known revision 2');
    const equal = chain.account('acme', { revision: '2', 'display-name': 'Acme 2 bis' });
    expect(refusal(d, [equal]).code).toBe('ERR_REVISION_NOT_NEWER');
  });

  test('an assertion clashing with a trust anchor is refused', () => {
    const fake = chain.account('acme-root', { 'display-name': 'Impostor' });
    expect(refusal(db(), [fake]).code).toBe('ERR_TRUSTED_CLASH');
  });

  test('without the root among the trusted, nothing verifies', () => {
    const model = chain.sign(modelHeaders(), brandKey);
    const d = new TrustDatabase({ at: AT });
    expect(d.addAll([brandAccount, brandAccountKey, model]).map((r) => r.error?.code)).toEqual(['ERR_UNKNOWN_KEY', 'ERR_UNKNOWN_KEY', 'ERR_UNKNOWN_KEY']);
  });
});

describeFixtures('Canonical trust', () => {
  test('the built-in anchors are exactly snapd\'s', () => {
    const [rootKey, account] = defaultTrustedAssertions();
    expect(rootKey!.encode().equals(assertionFixture('canonical-root.account-key'))).toBe(true);
    expect(account!.encode().equals(assertionFixture('canonical.account'))).toBe(true);
  });

  test('generic-classic.model verifies through the full real chain', () => {
    const db = new TrustDatabase({ trusted: defaultTrustedAssertions() });
    const files = ['generic-classic.model', 'generic-models.account-key', 'generic.account'];
    const results = db.addAll(files.flatMap((f) => decodeStream(assertionFixture(f), { file: f })));
    expect(results.map((r) => r.error?.message)).toEqual([undefined, undefined, undefined]);
  });

  test('a Canonical reference model is refused without its models key', () => {
    const db = new TrustDatabase({ trusted: defaultTrustedAssertions() });
    const [r] = db.addAll(decodeStream(assertionFixture('ubuntu-core-22-amd64.model'), { file: 'ubuntu-core-22-amd64.model' }));
    expect(r!.error?.code).toBe('ERR_UNKNOWN_KEY');
    expect(r!.error?.message).toMatch(/^ubuntu-core-22-amd64\.model \(assertion 1, line 1\): model series=16 brand-id=canonical model=ubuntu-core-22-amd64: signed by unknown key 9tydnLa6MTJ/);
  });
});
