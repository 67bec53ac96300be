import { decodeDigest, encodeDigest, sha3_384, sha3_384Digest } from './digest.js';

describe('sha3_384', () => {
  it('matches the FIPS 202 value for the empty input', () => {
    expect(sha3_384(new Uint8Array()).toString('hex')).toBe(
      '0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004',
    );
  });

  it('matches the FIPS 202 value for "abc"', () => {
    expect(sha3_384(Buffer.from('abc')).toString('hex')).toBe(
      'ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25',
    );
  });
});

describe('encodeDigest', () => {
  it('writes 64 base64url characters without padding for a SHA3-384 digest', () => {
    const text = encodeDigest(sha3_384(Buffer.from('abc')));
    expect(text).toHaveLength(64);
    expect(text).toMatch(/^[A-Za-z0-9_-]{64}$/);
  });

  it('uses the URL alphabet where standard base64 would use + and /', () => {
    // fb fb fb is '+/v7' in standard base64.
    expect(encodeDigest(Buffer.alloc(48, 0xfb))).toBe('-_v7'.repeat(16));
  });

  it('accepts a subarray view without leaking the surrounding buffer', () => {
    const big = Buffer.alloc(100, 1);
    big.fill(0xff, 10, 58);
    expect(encodeDigest(big.subarray(10, 58))).toBe('_'.repeat(64));
  });
});

describe('decodeDigest', () => {
  it('round-trips an encoded digest', () => {
    const d = sha3_384(Buffer.from('edgeimage'));
    expect(decodeDigest(encodeDigest(d)).equals(d)).toBe(true);
  });

  it('decodes the Canonical root key id to 48 bytes', () => {
    expect(decodeDigest('-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk')).toHaveLength(48);
  });

  it.each([
    ['standard-alphabet characters', '+CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk'],
    ['padding', `${'A'.repeat(62)}==`],
    ['a space', `${'A'.repeat(63)} `],
    ['a newline', `${'A'.repeat(32)}\n${'A'.repeat(32)}`],
    ['too few characters (47 bytes)', 'A'.repeat(63)],
    ['too many characters (49 bytes)', 'A'.repeat(66)],
    ['an empty string', ''],
  ])('rejects %s with ERR_DIGEST_ENCODING', (_what, text) => {
    expect(() => decodeDigest(text)).toThrow(expect.objectContaining({ code: 'ERR_DIGEST_ENCODING' }));
  });
});

describe('sha3_384Digest', () => {
  it('is encodeDigest of sha3_384', () => {
    const data = Buffer.from('snap file bytes');
    expect(sha3_384Digest(data)).toBe(encodeDigest(sha3_384(data)));
  });
});
