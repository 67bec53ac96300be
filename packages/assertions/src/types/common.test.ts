import { accountType, assembleAs, assembleAssertion, modelType, refOf, snapRevisionType, type AccountView } from './index.js';
import { build, edit, expectRefused, validationError } from '@edgeimage/testkit/assertion-text';

const ACCOUNT = `type: account
authority-id: canonical
account-id: acme
display-name: Acme
timestamp: 2024-01-01T00:00:00Z
validation: unproven`;

describe('checks every type runs before its own', () => {
  test('a well-formed assertion assembles into its type and view', () => {
    const { type, view } = assembleAssertion(build(ACCOUNT));
    expect(type).toBe(accountType);
    expect((view as AccountView).accountId).toBe('acme');
  });

  test('"type" is mandatory', () => {
    const e = validationError(() => assembleAssertion(build(edit(ACCOUNT, { type: null }))));
    expect(e.header).toBe('type');
    expect(e.message).toContain('"type" header is mandatory');
  });

  test('an unknown type is refused with its own code', () => {
    const e = validationError(() => assembleAssertion(build(edit(ACCOUNT, { type: 'gizmo' }))));
    expect(e.code).toBe('ERR_ASSERTION_UNKNOWN_TYPE');
    expect(e.header).toBe('type');
    expect(e.message).toContain('unknown assertion type "gizmo"');
  });

  test('"authority-id" is mandatory and not empty', () => {
    expectRefused(edit(ACCOUNT, { 'authority-id': null }), 'authority-id');
    expectRefused(edit(ACCOUNT, { 'authority-id': '' }), 'authority-id');
  });

  test('a format above what the type supports is refused as unsupported', () => {
    const e = expectRefused(edit(ACCOUNT, { format: '1' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT');
    expect(e.message).toContain('up to format 0');
  });

  test('format and revision must be integers without leading zeros', () => {
    expectRefused(edit(ACCOUNT, { format: '00' }), 'format');
    const e = expectRefused(edit(ACCOUNT, { revision: '01' }), 'revision');
    expect(e.message).toContain('"revision" header must be an integer without leading zeros, found "01"');
    expectRefused(edit(ACCOUNT, { revision: '-1' }), 'revision');
  });

  test('revision and format are read into the view', () => {
    const view = assembleAs(accountType, build(edit(ACCOUNT, { revision: '3' })));
    expect(view.revision).toBe(3);
    expect(view.format).toBe(0);
  });

  test('primary-key headers must be present, not empty, and free of "/"', () => {
    expect(expectRefused(edit(ACCOUNT, { 'account-id': null }), 'account-id').message).toContain('"account-id" primary key header is mandatory');
    expect(expectRefused(edit(ACCOUNT, { 'account-id': '' }), 'account-id').message).toContain('must not be empty');
    expect(expectRefused(edit(ACCOUNT, { 'account-id': 'a/b' }), 'account-id').message).toContain(`must not contain '/', found "a/b"`);
  });

  test('"sign-key-sha3-384" must be a SHA3-384 digest', () => {
    expectRefused(`${ACCOUNT}\nsign-key-sha3-384: not-a-key`, 'sign-key-sha3-384');
  });

  test('an optional primary key takes its default, in checks and in references', () => {
    const rev = `type: snap-revision
authority-id: canonical
snap-sha3-384: -CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk
developer-id: acme
snap-id: UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH
snap-revision: 3
snap-size: 4096
timestamp: 2024-01-01T00:00:00Z`;
    const a = build(rev);
    expect(assembleAs(snapRevisionType, a).provenance).toBe('global-upload');
    expect(refOf(a)).toContain('provenance=global-upload');
  });

  test('assembleAs refuses an assertion of another type', () => {
    const e = validationError(() => assembleAs(modelType, build(ACCOUNT)));
    expect(e.code).toBe('ERR_ASSERTION_WRONG_TYPE');
    expect(e.message).toContain('expected a model assertion, found "account"');
  });

  test('messages carry where the assertion came from and which one it is', () => {
    const e = validationError(() => assembleAssertion(build(edit(ACCOUNT, { timestamp: null }))));
    expect(e.message).toMatch(/^test\.assert \(assertion 1, line 1\): account account-id=acme: "timestamp" header is mandatory$/);
  });
});

test('a primary key given as a list is refused as not a string', () => {
  const e = expectRefused(edit(ACCOUNT, { 'account-id': '\n  - acme' }), 'account-id');
  expect(e.message).toContain('"account-id" primary key header must be a string, found a list');
});
