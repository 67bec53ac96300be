import { accountKeyType, assembleAs, checkAccountKeyBody } from './index.js';
import { PublicKey } from '../crypto/index.js';
import { assertionFixture, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { decodeOne } from '../format/decode.js';
import { build, edit, expectRefused, validationError } from '@edgeimage/testkit/assertion-text';

const KEY_ID = 'd-JcZF9nD9eBw7bwMnH61x-bklnQOhQud1Is6o_cn2wTj8EYDi9musrIT9z2MdAa';
const BODY = 'AcbBTQRWhcGAARAAtJGIguK7FhSyRxL/6jvdy0zAgGCjC1xVNFzeF76p5G8BXNEEHZUHK+z8Gr2J';
const KEY = `type: account-key
authority-id: canonical
public-key-sha3-384: ${KEY_ID}
account-id: acme
name: models
since: 2024-01-01T00:00:00Z`;

describe('account-key', () => {
  test('assembles into its view, body as text', () => {
    const view = assembleAs(accountKeyType, build(KEY, BODY));
    expect(view).toMatchObject({ accountId: 'acme', name: 'models', publicKeyId: KEY_ID, body: BODY });
    expect(view.since.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(view.until).toBeUndefined();
  });

  test('until after since is kept', () => {
    const view = assembleAs(accountKeyType, build(edit(KEY, { until: '2025-01-01T00:00:00+01:00' }), BODY));
    expect(view.until?.toISOString()).toBe('2024-12-31T23:00:00.000Z');
  });

  test('until before since is refused', () => {
    const e = expectRefused(edit(KEY, { until: '2023-12-31T23:59:59Z' }), 'until', undefined, BODY);
    expect(e.message).toContain('"until" header must not be before "since" (2024-01-01T00:00:00Z), found "2023-12-31T23:59:59Z"');
  });

  test.each(['account-id', 'since'])('"%s" is mandatory', (h) => {
    expect(expectRefused(edit(KEY, { [h]: null }), h, undefined, BODY).message).toContain(`"${h}" header is mandatory`);
  });

  test('the name is optional (older keys have none) but must be valid when given', () => {
    expect(assembleAs(accountKeyType, build(edit(KEY, { name: null }), BODY)).name).toBeUndefined();
    expectRefused(edit(KEY, { name: 'Models' }), 'name', undefined, BODY);
    expectRefused(edit(KEY, { name: '123' }), 'name', undefined, BODY);
    expectRefused(edit(KEY, { name: '' }), 'name', undefined, BODY);
  });

  test('the public-key-sha3-384 primary key must be a digest', () => {
    expectRefused(edit(KEY, { 'public-key-sha3-384': 'abc' }), 'public-key-sha3-384', undefined, BODY);
  });

  test('the body is mandatory', () => {
    const e = expectRefused(KEY, 'body-length');
    expect(e.message).toContain('the body must contain the public key');
  });

  test('format 1 is supported, format 2 is not', () => {
    expect(assembleAs(accountKeyType, build(edit(KEY, { format: '1' }), BODY)).format).toBe(1);
    expectRefused(edit(KEY, { format: '2' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT', BODY);
  });

  test('constraints are read as a list of header maps', () => {
    const text = edit(KEY, { format: '1', constraints: '\n  -\n    headers:\n      type: model\n      model: kiosk-.*' });
    expect(assembleAs(accountKeyType, build(text, BODY)).constraints).toEqual([{ headers: { type: 'model', model: 'kiosk-.*' } }]);
  });

  test.each([
    ['not a list', 'constraints: nope'],
    ['no headers', 'constraints:\n  -\n    other: x'],
    ['no type', 'constraints:\n  -\n    headers:\n      model: kiosk'],
    ['a regexp type', 'constraints:\n  -\n    headers:\n      type: mod.*'],
  ])('constraints with %s are refused', (_, lines) => {
    expectRefused(`${edit(KEY, { format: '1' })}\n${lines}`, 'constraints', undefined, BODY);
  });

  test('has no timestamp: its since/until window takes that role', () => {
    expect(accountKeyType.hasTimestamp).toBe(false);
  });
});

describe('checkAccountKeyBody', () => {
  test('passes when the body holds the named key', () => {
    expect(() => checkAccountKeyBody(build(KEY, BODY), () => ({ id: KEY_ID }))).not.toThrow();
  });

  test('refuses a body holding another key', () => {
    const e = validationError(() => checkAccountKeyBody(build(KEY, BODY), () => ({ id: 'x'.repeat(64) })));
    expect(e.code).toBe('ERR_ACCOUNT_KEY_MISMATCH');
    expect(e.header).toBe('public-key-sha3-384');
    expect(e.message).toContain(`"public-key-sha3-384" header names key ${KEY_ID} but the body holds key ${'x'.repeat(64)}`);
  });

  test('reports a body the decoder cannot read', () => {
    const e = validationError(() =>
      checkAccountKeyBody(build(KEY, BODY), () => {
        throw new Error('truncated packet');
      }),
    );
    expect(e.message).toContain('the body is not a valid public key: truncated packet');
  });
});

describeFixtures('real account-keys', () => {
  test.each([
    ['canonical-root.account-key', 'canonical', 'root'],
    ['generic-models.account-key', 'generic', 'models'],
  ])('%s assembles, and its body holds the key its header names', (file, accountId, name) => {
    const a = decodeOne(assertionFixture(file), { file });
    const view = assembleAs(accountKeyType, a);
    expect(view).toMatchObject({ accountId, name, publicKeyId: a.header('public-key-sha3-384') });
    expect(view.body).toBe(a.body!.toString());
    checkAccountKeyBody(a, (body) => PublicKey.fromAccountKeyBody(body));
  });

  test('the root key is valid since 2016-04-01, with no end', () => {
    const view = assembleAs(accountKeyType, decodeOne(assertionFixture('canonical-root.account-key')));
    expect(view.since.toISOString()).toBe('2016-04-01T00:00:00.000Z');
    expect(view.until).toBeUndefined();
    expect(view.revision).toBe(2);
  });
});
