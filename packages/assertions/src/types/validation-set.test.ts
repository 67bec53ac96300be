import { assembleAs, validationSetType, type ValidationSetView } from './index.js';
import { assertionFixture, assertionFixtureNames, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { decodeOne } from '../format/decode.js';
import { build, edit, expectRefused } from '@edgeimage/testkit/assertion-text';

const HELLO = `  -
    id: buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ
    name: hello-world
    presence: required
    revision: 29`;
const BARE = `  -
    id: EISPgh06mRh1vordZY9OZ34QHdd7OrdR
    name: bare`;

const VSET = `type: validation-set
authority-id: acme
series: 16
account-id: acme
name: kiosk-set
sequence: 2
snaps:
${HELLO}
${BARE}
timestamp: 2024-01-01T00:00:00Z`;

const snaps = (...entries: string[]) => `\n${entries.join('\n')}`;
const vset = (text: string): ValidationSetView => assembleAs(validationSetType, build(text));

describe('validation-set', () => {
  test('assembles into its view, presence defaulting to required', () => {
    const v = vset(VSET);
    expect(v).toMatchObject({ series: '16', accountId: 'acme', name: 'kiosk-set', sequence: 2 });
    expect(v.snaps).toEqual([
      { name: 'hello-world', id: 'buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ', presence: 'required', revision: 29, components: {} },
      { name: 'bare', id: 'EISPgh06mRh1vordZY9OZ34QHdd7OrdR', presence: 'required', components: {} },
    ]);
  });

  test('components follow the snap: pinned with it, unpinned without it', () => {
    const pinned = `${HELLO}\n    components:\n      comp-a:\n        presence: required\n        revision: 4\n      comp-b: invalid`;
    expect(vset(edit(VSET, { snaps: snaps(pinned) })).snaps[0]?.components).toEqual({ 'comp-a': { presence: 'required', revision: 4 }, 'comp-b': { presence: 'invalid' } });
    const unpinned = `${BARE}\n    components:\n      comp-a: optional`;
    expect(vset(edit(VSET, { snaps: snaps(unpinned) })).snaps[0]?.components).toEqual({ 'comp-a': { presence: 'optional' } });
  });

  test('authority-id must be the account-id', () => {
    const e = expectRefused(edit(VSET, { 'authority-id': 'canonical' }), 'authority-id', 'ERR_AUTHORITY_NOT_ACCOUNT');
    expect(e.message).toContain('"account-id"');
  });

  test.each(['series', 'account-id', 'name', 'sequence', 'snaps', 'timestamp'])('"%s" is mandatory', (h) => {
    expect(expectRefused(edit(VSET, { [h]: null }), h).message).toMatch(new RegExp(`"${h}" (primary key )?header is mandatory`));
  });

  test('name must be a validation-set name', () => {
    expectRefused(edit(VSET, { name: 'Kiosk' }), 'name');
  });

  test('sequence must be 1 or more', () => {
    expect(expectRefused(edit(VSET, { sequence: '0' }), 'sequence').message).toContain('"sequence" header must be >= 1, found 0');
    expectRefused(edit(VSET, { sequence: '02' }), 'sequence');
  });

  test('every snap needs a name and an id', () => {
    expect(expectRefused(edit(VSET, { snaps: snaps('  -\n    name: bare') }), 'snaps').message).toContain('"id" of snap "bare" in "snaps" header is mandatory');
    expectRefused(edit(VSET, { snaps: snaps('  -\n    id: EISPgh06mRh1vordZY9OZ34QHdd7OrdR') }), 'snaps');
    expectRefused(edit(VSET, { snaps: snaps('  -\n    id: EISPgh06mRh1vordZY9OZ34QHdd7OrdR\n    name: Bare') }), 'snaps');
    expectRefused(edit(VSET, { snaps: snaps('  -\n    id: nope\n    name: bare') }), 'snaps');
  });

  test('presence must be required, optional or invalid', () => {
    expect(expectRefused(edit(VSET, { snaps: snaps(`${BARE}\n    presence: banned`) }), 'snaps').message).toContain('must be one of required|optional|invalid, found "banned"');
  });

  test('a revision must be 1 or more', () => {
    expectRefused(edit(VSET, { snaps: snaps(`${BARE}\n    revision: 0`) }), 'snaps');
    expectRefused(edit(VSET, { snaps: snaps(`${BARE}\n    revision: x`) }), 'snaps');
  });

  test('a revision cannot go with presence invalid', () => {
    const e = expectRefused(edit(VSET, { snaps: snaps(`${BARE}\n    presence: invalid\n    revision: 3`) }), 'snaps');
    expect(e.message).toContain('"revision" of snap "bare" in "snaps" header must not be given when the snap\'s presence is invalid');
  });

  test('the same snap name or id twice is refused', () => {
    expect(expectRefused(edit(VSET, { snaps: snaps(BARE, BARE.replace('EISPgh06mRh1vordZY9OZ34QHdd7OrdR', 'AISPgh06mRh1vordZY9OZ34QHdd7OrdR')) }), 'snaps').message).toContain('lists the snap "bare" more than once');
    expect(expectRefused(edit(VSET, { snaps: snaps(BARE, BARE.replace('name: bare', 'name: other')) }), 'snaps').message).toContain('gives the same snap id');
  });

  test.each([
    ['no revision though the snap pins one', `${HELLO}\n    components:\n      comp-a: required`, 'is mandatory because snap "hello-world" pins revision 29'],
    ['a revision though the snap pins none', `${BARE}\n    components:\n      comp-a:\n        presence: required\n        revision: 4`, 'pins no revision'],
    ['a revision while invalid', `${HELLO}\n    components:\n      comp-a:\n        presence: invalid\n        revision: 4`, "must not be given when the component's presence is invalid"],
    ['a map without presence', `${BARE}\n    components:\n      comp-a:\n        revision: 4`, '"presence" of component "bare+comp-a" in "snaps" header is mandatory'],
    ['a bad presence', `${BARE}\n    components:\n      comp-a: banned`, 'must be one of required|optional|invalid'],
    ['a bad name', `${BARE}\n    components:\n      c: required`, 'invalid component name "c"'],
    ['a list value', `${BARE}\n    components:\n      comp-a:\n        - required`, 'must be a presence string or a map'],
  ])('a component with %s is refused', (_, entry, why) => {
    expect(expectRefused(edit(VSET, { snaps: snaps(entry) }), 'snaps').message).toContain(why);
  });

  test('format above 0 is unsupported', () => {
    expectRefused(edit(VSET, { format: '1' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT');
  });
});

describeFixtures('real validation sets', () => {
  test.each(assertionFixtureNames().filter((f) => f.endsWith('.validation-set')))('%s assembles', (file) => {
    const v = assembleAs(validationSetType, decodeOne(assertionFixture(file), { file }));
    expect(v.accountId).toBe(v.authorityId);
    expect(v.snaps.length).toBeGreaterThan(0);
  });

  test('xSfWKG-bar-1: required with a pinned revision, invalid, optional', () => {
    const v = assembleAs(validationSetType, decodeOne(assertionFixture('xSfWKG-bar-1.validation-set')));
    expect(v.snaps.map((s) => [s.name, s.presence, s.revision])).toEqual([
      ['hello-world', 'required', 29],
      ['test-snapd-base-bare', 'invalid', undefined],
      ['bare', 'optional', undefined],
    ]);
    expect(v.sequence).toBe(1);
    expect(v.timestamp.toISOString()).toBe('2021-03-01T14:54:33.000Z');
  });
});
