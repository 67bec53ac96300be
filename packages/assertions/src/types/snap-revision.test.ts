import { assembleAs, snapRevisionType } from './index.js';
import { build, edit, expectRefused } from '@edgeimage/testkit/assertion-text';

const SHA = 'Nm0SXdb8tThRr8DuN4cbqx4HCt7CQJ7oPZFVbBJiZbN1fxQzCWxU6eoB3G6XJ9Dm';
const REV = `type: snap-revision
authority-id: canonical
snap-sha3-384: ${SHA}
developer-id: canonical
snap-id: buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ
snap-revision: 29
snap-size: 20480
timestamp: 2019-04-02T10:00:00Z`;

const INTEGRITY = `
  -
    data-block-size: 4096
    digest: ${'ab'.repeat(32)}
    hash-algorithm: sha256
    hash-block-size: 4096
    salt: ${'cd'.repeat(32)}
    type: dm-verity
    version: 1`;

describe('snap-revision', () => {
  test('assembles into its view, provenance defaulting to global-upload', () => {
    const v = assembleAs(snapRevisionType, build(REV));
    expect(v).toMatchObject({ snapSha3_384: SHA, provenance: 'global-upload', snapId: 'buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ', snapRevision: 29, snapSize: 20480, developerId: 'canonical', integrity: [] });
    expect(v.timestamp.toISOString()).toBe('2019-04-02T10:00:00.000Z');
  });

  test('a given provenance is kept and must be a provenance name', () => {
    expect(assembleAs(snapRevisionType, build(edit(REV, { provenance: 'acme-build' }))).provenance).toBe('acme-build');
    expectRefused(edit(REV, { provenance: 'acme_build' }), 'provenance');
  });

  test.each(['snap-sha3-384', 'snap-id', 'snap-size', 'snap-revision', 'developer-id', 'timestamp'])('"%s" is mandatory', (h) => {
    expectRefused(edit(REV, { [h]: null }), h);
  });

  test('snap-sha3-384 must be a SHA3-384 digest', () => {
    expectRefused(edit(REV, { 'snap-sha3-384': SHA.slice(1) }), 'snap-sha3-384');
  });

  test('snap-size is an unsigned integer', () => {
    expectRefused(edit(REV, { 'snap-size': '-1' }), 'snap-size');
    expectRefused(edit(REV, { 'snap-size': '020' }), 'snap-size');
  });

  test('snap-revision must be 1 or more', () => {
    expect(expectRefused(edit(REV, { 'snap-revision': '0' }), 'snap-revision').message).toContain('"snap-revision" header must be >= 1, found 0');
  });

  test('integrity data is read and checked', () => {
    expect(assembleAs(snapRevisionType, build(edit(REV, { integrity: INTEGRITY }))).integrity).toEqual([
      { type: 'dm-verity', version: 1, hashAlgorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, digest: 'ab'.repeat(32), salt: 'cd'.repeat(32) },
    ]);
    expectRefused(edit(REV, { integrity: INTEGRITY.replace('type: dm-verity', 'type: fs-verity') }), 'integrity');
    expectRefused(edit(REV, { integrity: INTEGRITY.replace('version: 1', 'version: 2') }), 'integrity');
    expectRefused(edit(REV, { integrity: INTEGRITY.replace('hash-algorithm: sha256', 'hash-algorithm: sha1') }), 'integrity');
    expectRefused(edit(REV, { integrity: INTEGRITY.replace(`salt: ${'cd'.repeat(32)}`, 'salt: cd') }), 'integrity');
    expectRefused(edit(REV, { integrity: INTEGRITY.replace('    data-block-size: 4096\n', '') }), 'integrity');
  });

  test('format above 0 is unsupported', () => {
    expectRefused(edit(REV, { format: '1' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT');
  });

  test('has a timestamp', () => {
    expect(snapRevisionType.hasTimestamp).toBe(true);
  });
});
