import { assembleAs, snapDeclarationType } from './index.js';
import { build, edit, expectRefused } from '@edgeimage/testkit/assertion-text';

const DECL = `type: snap-declaration
authority-id: canonical
series: 16
snap-id: buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ
publisher-id: canonical
snap-name: hello-world
timestamp: 2016-07-29T10:00:00Z`;

describe('snap-declaration', () => {
  test('assembles into its view', () => {
    const v = assembleAs(snapDeclarationType, build(DECL));
    expect(v).toMatchObject({ series: '16', snapId: 'buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ', snapName: 'hello-world', publisherId: 'canonical', refreshControl: [], autoAliases: [], aliases: {}, revisionAuthorities: [] });
    expect(v.timestamp.toISOString()).toBe('2016-07-29T10:00:00.000Z');
  });

  test('snap-name must be present but may be empty (a name given up)', () => {
    expect(assembleAs(snapDeclarationType, build(edit(DECL, { 'snap-name': '' }))).snapName).toBe('');
    expectRefused(edit(DECL, { 'snap-name': null }), 'snap-name');
  });

  test.each(['series', 'snap-id', 'publisher-id', 'timestamp'])('"%s" is mandatory', (h) => {
    expectRefused(edit(DECL, { [h]: null }), h);
  });

  test('plug and slot rules are kept as maps, up to format 7', () => {
    const text = edit(DECL, { format: '7', plugs: '\n  snapd-control:\n    allow-installation: true', slots: '\n  network:\n    deny-connection: true' });
    const v = assembleAs(snapDeclarationType, build(text));
    expect(v.plugs).toEqual({ 'snapd-control': { 'allow-installation': 'true' } });
    expect(v.slots).toEqual({ network: { 'deny-connection': 'true' } });
    expectRefused(edit(text, { format: '8' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT');
  });

  test('plugs and slots must be maps', () => {
    expectRefused(edit(DECL, { plugs: 'all' }), 'plugs');
    expectRefused(edit(DECL, { slots: '\n  - network' }), 'slots');
  });

  test('refresh-control is a list of snap ids', () => {
    expect(assembleAs(snapDeclarationType, build(edit(DECL, { 'refresh-control': '\n  - UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH' }))).refreshControl).toEqual(['UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH']);
    expectRefused(edit(DECL, { 'refresh-control': 'x' }), 'refresh-control');
  });

  test('aliases map alias names to apps, each alias once', () => {
    const aliases = '\n  -\n    name: hw\n    target: hello-world';
    expect(assembleAs(snapDeclarationType, build(edit(DECL, { aliases }))).aliases).toEqual({ hw: 'hello-world' });
    expectRefused(edit(DECL, { aliases: `${aliases}${aliases}` }), 'aliases');
    expectRefused(edit(DECL, { aliases: '\n  -\n    name: hw' }), 'aliases');
    expectRefused(edit(DECL, { aliases: '\n  -\n    name: .hw\n    target: hello' }), 'aliases');
    expectRefused(edit(DECL, { 'auto-aliases': '\n  - .hw' }), 'auto-aliases');
  });

  test('revision-authority entries: account, provenance, a revision range', () => {
    const ra = '\n  -\n    account-id: acme\n    max-revision: 40\n    min-revision: 10\n    on-store:\n      - acme-store\n    provenance:\n      - acme-build';
    expect(assembleAs(snapDeclarationType, build(edit(DECL, { 'revision-authority': ra }))).revisionAuthorities).toEqual([
      { accountId: 'acme', provenance: ['acme-build'], minRevision: 10, maxRevision: 40, deviceScope: { 'on-store': ['acme-store'] } },
    ]);
    expectRefused(edit(DECL, { 'revision-authority': '\n  -\n    account-id: acme' }), 'revision-authority');
    expectRefused(edit(DECL, { 'revision-authority': ra.replace('max-revision: 40', 'max-revision: 5') }), 'revision-authority');
    expectRefused(edit(DECL, { 'revision-authority': ra.replace('min-revision: 10', 'min-revision: 0') }), 'revision-authority');
    expectRefused(edit(DECL, { 'revision-authority': ra.replace('account-id: acme', 'account-id: a') }), 'revision-authority');
  });

  test('has a timestamp', () => {
    expect(snapDeclarationType.hasTimestamp).toBe(true);
  });
});
