import { accountType, assembleAs } from './index.js';
import { assertionFixture, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { decodeOne } from '../format/decode.js';
import { build, edit, expectRefused } from '@edgeimage/testkit/assertion-text';

const ACCOUNT = `type: account
authority-id: canonical
account-id: acme
display-name: Acme Corp
timestamp: 2024-01-01T00:00:00Z
username: acme
validation: unproven`;

describe('account', () => {
  test('assembles into its view', () => {
    const view = assembleAs(accountType, build(ACCOUNT));
    expect(view).toMatchObject({ accountId: 'acme', displayName: 'Acme Corp', validation: 'unproven', username: 'acme', authorityId: 'canonical' });
    expect(view.timestamp.toISOString()).toBe('2024-01-01T00:00:00.000Z');
  });

  test('username is optional', () => {
    expect(assembleAs(accountType, build(edit(ACCOUNT, { username: null }))).username).toBeUndefined();
  });

  test.each(['display-name', 'validation', 'timestamp'])('"%s" is mandatory', (h) => {
    expect(expectRefused(edit(ACCOUNT, { [h]: null }), h).message).toContain(`"${h}" header is mandatory`);
  });

  test('an empty display-name is refused', () => {
    expectRefused(edit(ACCOUNT, { 'display-name': '' }), 'display-name');
  });

  test('a bad timestamp is refused', () => {
    expectRefused(edit(ACCOUNT, { timestamp: '2024-01-01' }), 'timestamp');
  });

  test('has a timestamp to check against its signing key', () => {
    expect(accountType.hasTimestamp).toBe(true);
  });
});

describeFixtures('real accounts', () => {
  test.each(['canonical.account', 'generic.account'])('%s assembles; "certified" reads as "verified" as in snapd', (file) => {
    const view = assembleAs(accountType, decodeOne(assertionFixture(file), { file }));
    expect(view.validation).toBe('verified');
    expect(view.authorityId).toBe('canonical');
  });
});
