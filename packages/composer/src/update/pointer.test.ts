/**
 * The channel pointer: its format (encode, strict parse, every bound), its verification (each
 * refusal with its code and message) with real RSA keys and account-keys from a real chain, and
 * the device's view: `openssl dgst -sha256 -verify` checks its exact bytes and busybox sh reads
 * it strictly (pointer-device.sh: every pointer the parser refuses is refused there too).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountKeyHeaders, POINTER_ONLY_CONSTRAINTS, type Assertion, type PrivateKey, type SigningKey } from '@edgeimage/assertions';
import { makeChain, newKey, SINCE, type TestChain } from '@edgeimage/testkit/signing-chain';
import { sh } from '@edgeimage/testkit/image-read';
import { thrownBy } from '@edgeimage/testkit/refusals';
import { PointerError } from './errors.js';
import { encodeChannelPointer, parseChannelPointer, POINTER_MAX_BYTES, type ChannelPointer } from './pointer.js';
import { signChannelPointer, trustedSigningKeys, verifyChannelPointer } from './pointer-verify.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const FILE = 'channels/acme.edge-pc.latest+stable.pointer';
const SHA = 'ab'.repeat(32);

let chain: TestChain;
let modelKey: PrivateKey;
let pointerKey: PrivateKey;
let otherKey: PrivateKey;
let rivalPointerKey: PrivateKey;
let keys: SigningKey[];
let pointerAccountKey: Assertion;
let dir: string;

beforeAll(async () => {
  chain = await makeChain();
  [modelKey, pointerKey, otherKey, rivalPointerKey] = await Promise.all([newKey(), newKey(), newKey(), newKey()]);
  const pointerOnly = (key: PrivateKey, account: string) => {
    const { headers, body } = accountKeyHeaders(key.publicKey, { accountId: account, authorityId: 'acme-root', since: SINCE, name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS });
    return chain.sign(headers, chain.rootKey, body);
  };
  pointerAccountKey = pointerOnly(pointerKey, 'acme');
  // Verified through the chain: the root is the only anchor.
  keys = trustedSigningKeys(chain.anchors, [chain.account('acme'), chain.account('rival'), chain.accountKey(modelKey, 'acme', { name: 'models' }), pointerAccountKey, pointerOnly(rivalPointerKey, 'rival')], NOW);
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-pointer-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pointer = (over: Partial<ChannelPointer> = {}): ChannelPointer => ({
  'brand-id': 'acme',
  model: 'edge-pc',
  channel: 'latest/stable',
  revision: 3,
  sequence: 7,
  expires: new Date('2026-06-08T12:00:00Z'),
  rollout: 100,
  'sign-key-sha3-384': pointerKey.publicKey.id,
  updates: [
    { from: 2, sha256: SHA, size: 4096, path: 'updates/acme.edge-pc.3.from-2.update' },
    { from: 'full', sha256: SHA, size: 81920, path: 'updates/acme.edge-pc.3.full.update' },
  ],
  ...over,
});

const signed = (p: ChannelPointer, key = pointerKey) => {
  const bytes = encodeChannelPointer({ ...p, 'sign-key-sha3-384': key.publicKey.id });
  return { bytes, signature: signChannelPointer(bytes, key), file: FILE };
};

const refusal = (f: () => unknown) => thrownBy(f, PointerError);

/** Pointers the parser refuses (text changed after encoding), shared with the device's reading below. */
let malformed: [string, (t: string) => string, RegExp][] = [];

describe('format', () => {
  test('encodes the fields in order, the full update first, and parses back to the same pointer', () => {
    const bytes = encodeChannelPointer(pointer());
    expect(bytes.toString()).toBe(
      [
        'edgeimage-pointer: 1',
        'brand-id: acme',
        'model: edge-pc',
        'channel: latest/stable',
        'revision: 3',
        'sequence: 7',
        'expires: 2026-06-08T12:00:00Z',
        'rollout: 100',
        `sign-key-sha3-384: ${pointerKey.publicKey.id}`,
        `update: full ${SHA} 81920 updates/acme.edge-pc.3.full.update`,
        `update: 2 ${SHA} 4096 updates/acme.edge-pc.3.from-2.update`,
        '',
      ].join('\n'),
    );
    const back = parseChannelPointer(bytes, FILE);
    expect(back).toEqual({ ...pointer(), updates: [pointer().updates[1], pointer().updates[0]] });
    expect(encodeChannelPointer(back).equals(bytes)).toBe(true);
  });

  const text = () => encodeChannelPointer(pointer()).toString();
  malformed = [
    ['a missing field', (t) => t.replace(/^rollout: 100\n/m, ''), /line 8: rollout: expected "rollout: …", found "sign-key-sha3-384: /],
    ['fields out of order', (t) => t.replace('brand-id: acme\nmodel: edge-pc', 'model: edge-pc\nbrand-id: acme'), /line 2: brand-id: expected "brand-id: …", found "model: edge-pc"/],
    ['a rollout over 100', (t) => t.replace('rollout: 100', 'rollout: 101'), /line 8: rollout: expected a percentage from 0 to 100, found "101"/],
    ['a revision with a leading zero', (t) => t.replace('revision: 3', 'revision: 03'), /line 5: revision: expected a revision number \(0 or more, no leading zero\), found "03"/],
    ['an expiry with a time zone offset', (t) => t.replace('2026-06-08T12:00:00Z', '2026-06-08T14:00:00+02:00'), /line 7: expires: expected a UTC RFC 3339 time to the second .*, found "2026-06-08T14:00:00\+02:00"/],
    ['an impossible date', (t) => t.replace('2026-06-08T12:00:00Z', '2026-02-30T12:00:00Z'), /line 7: expires: expected a real UTC time to the second, found "2026-02-30T12:00:00Z"/],
    ['a short channel', (t) => t.replace('channel: latest/stable', 'channel: stable'), /line 4: channel: expected the channel in its full form \(latest\/stable\), found "stable"/],
    ['a path with ..', (t) => t.replace('updates/acme.edge-pc.3.full.update', 'updates/../../etc/shadow'), /line 10: update: expected a canonical store path, found "updates\/..\/..\/etc\/shadow", which contains \.\./],
    ['an absolute path', (t) => t.replace('updates/acme.edge-pc.3.full.update', '/etc/shadow'), /line 10: update: expected a canonical store path, found "\/etc\/shadow"/],
    ['a delta from a revision not lower', (t) => t.replace('update: 2 ', 'update: 3 '), /line 11: update: expected a from-revision lower than the pointer's revision 3, found 3/],
    ['a delta before the full update', (t) => t.replace(/^(update: full .*)\n(update: 2 .*)\n$/m, '$2\n$1\n'), /line 10: update: expected the full update first, then deltas by increasing from-revision, each once, found from 2 after no full update/],
    ['a size of 0', (t) => t.replace(' 81920 ', ' 0 '), /line 10: update: expected a size from 1 to 1099511627776 bytes, found "0"/],
    ['an endless size', (t) => t.replace(' 81920 ', ' 9999999999999999 '), /line 10: update: expected a size from 1 to 1099511627776 bytes, found "9999999999999999"/],
    ['an upper-case digest', (t) => t.replace(`full ${SHA}`, `full ${SHA.toUpperCase()}`), /line 10: update: expected a sha256 \(64 lower-case hex digits\)/],
    ['no update line', (t) => t.replace(/^update: .*\n/gm, ''), /line 10: update: expected at least the full update \("update: full …"\), found none/],
    ['a carriage return', (t) => t.replace('model: edge-pc\n', 'model: edge-pc\r\n'), /line 3: text: expected printable ASCII and LF line ends, found "\\r"/],
    ['no final newline', (t) => t.slice(0, -1), /line 11: text: expected a final newline, found none/],
    ['an unknown format', (t) => t.replace('edgeimage-pointer: 1', 'edgeimage-pointer: 2'), /line 1: edgeimage-pointer: expected format 1 \(the one this edgeimage reads\), found 2/],
    // L3: the format line is exactly `edgeimage-pointer: 1` (a device's `= 1` and `-eq 1` must agree).
    ['a format line with a leading zero', (t) => t.replace('edgeimage-pointer: 1\n', 'edgeimage-pointer: 01\n'), /line 1: edgeimage-pointer: expected format 1 \(the one this edgeimage reads\), found 01/],
    ['a format line 0001', (t) => t.replace('edgeimage-pointer: 1\n', 'edgeimage-pointer: 0001\n'), /line 1: edgeimage-pointer: expected format 1 \(the one this edgeimage reads\), found 0001/],
    // L4: no path segment a command could take for an option.
    ['a path that starts with -', (t) => t.replace('updates/acme.edge-pc.3.full.update', '-rf'), /line 10: update: expected a canonical store path, found "-rf", which is not a relative store path .* starting with '\.' or '-'/],
    ['a path segment that starts with -', (t) => t.replace('updates/acme.edge-pc.3.full.update', 'updates/-n'), /line 10: update: expected a canonical store path, found "updates\/-n"/],
    // M1: the sequence is a field in its place.
    ['no sequence', (t) => t.replace('sequence: 7\n', ''), /line 6: sequence: expected "sequence: …", found "expires: /],
    ['a sequence with a leading zero', (t) => t.replace('sequence: 7', 'sequence: 07'), /line 6: sequence: expected a sequence number \(0 or more, no leading zero\), found "07"/],
    ['a sequence past 2^53', (t) => t.replace('sequence: 7', 'sequence: 9007199254740992'), /line 6: sequence: expected at most 9007199254740991, found 9007199254740992/],
    ['an extra field', (t) => `${t}note: hi\n`, /line 12: update: expected "update: FROM-REVISION SHA256 SIZE PATH", found "note: hi"/],
  ];
  test.each(malformed)('refuses %s, naming the file, line, field, expected and found', (_, change, message) => {
    const e = refusal(() => parseChannelPointer(Buffer.from(change(text())), FILE));
    expect(e.code).toBe('ERR_POINTER_MALFORMED');
    expect(e.message).toMatch(new RegExp(`^${FILE.replace(/[.+]/g, '\\$&')}: `));
    expect(e.message).toMatch(message);
  });

  test('refuses an oversize pointer before reading it, and more than 64 update lines', () => {
    const big = Buffer.concat([encodeChannelPointer(pointer()), Buffer.alloc(POINTER_MAX_BYTES, 'x')]);
    const e = refusal(() => parseChannelPointer(big, FILE));
    expect(e.code).toBe('ERR_POINTER_MALFORMED');
    expect(e.message).toBe(`${FILE}: the pointer is ${big.length} bytes, more than the ${POINTER_MAX_BYTES} allowed`);
    const many = pointer({ revision: 100, updates: [{ from: 'full', sha256: SHA, size: 1, path: 'u' }, ...Array.from({ length: 64 }, (_, i) => ({ from: i, sha256: SHA, size: 1, path: `u${i}` }))] });
    expect(refusal(() => encodeChannelPointer(many)).message).toMatch(/line 74: update: expected at most 64 update lines, found 65/);
  });

  test('the encoder refuses what the parser would (a path with ..)', () => {
    const e = refusal(() => encodeChannelPointer(pointer({ updates: [{ from: 'full', sha256: SHA, size: 1, path: 'updates/../x' }] })));
    expect(e.code).toBe('ERR_POINTER_MALFORMED');
    expect(e.message).toMatch(/^the pointer being written: line 10: update: expected a canonical store path, found "updates\/..\/x", which contains \.\.$/);
  });
});

describe('verify', () => {
  test('a pointer signed by the pointer-only key of the brand verifies, at or above the installed revision', () => {
    const v = verifyChannelPointer(signed(pointer()), keys, { now: NOW, installedRevision: 3, brandId: 'acme', model: 'edge-pc', channel: 'latest/stable' });
    expect(v.pointer.revision).toBe(3);
    expect(v.key.id).toBe(pointerKey.publicKey.id);
    expect(verifyChannelPointer(signed(pointer()), keys, { now: NOW, installedRevision: 2 }).pointer.updates.map((u) => u.from)).toEqual(['full', 2]);
  });

  test('an expired pointer: ERR_POINTER_EXPIRED, naming expires, now and what was found', () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer({ expires: new Date('2026-06-01T11:59:59Z') })), keys, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_EXPIRED');
    expect(e.message).toBe(`${FILE}: expires: expected a time after 2026-06-01T12:00:00Z (now), found 2026-06-01T11:59:59Z: the pointer has expired (a store or mirror that keeps serving an old pointer is not trusted); the channel's publisher re-signs it with channel resign, or releases a new revision with update release`);
    expect(e.context).toMatchObject({ file: FILE, field: 'expires' });
  });

  test('a pointer signed by a key that is not among the trusted account-keys: ERR_POINTER_KEY_NOT_ALLOWED', () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer(), otherKey), keys, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toBe(`${FILE}: sign-key-sha3-384: expected a trusted account-key of "acme" constrained to sign pointers, found ${otherKey.publicKey.id}, which is not among the trusted account-keys (of "acme": ${keys.filter((k) => k.accountId === 'acme').map((k) => k.id).join(', ')})`);
  });

  test('a pointer signed by the brand\'s unconstrained model key: ERR_POINTER_KEY_NOT_ALLOWED (the model key stays offline)', () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer(), modelKey), keys, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toBe(`${FILE}: sign-key-sha3-384: expected a pointer-only account-key of "acme", found ${modelKey.publicKey.id}: it is an unconstrained key of "acme" (it may sign models); pointers are signed by a key whose account-key constraints are of type channel-pointer only, so that the model key can stay offline`);
  });

  test("another brand's pointer key: ERR_POINTER_KEY_NOT_ALLOWED", () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer(), rivalPointerKey), keys, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toContain(`found ${rivalPointerKey.publicKey.id}: it is a key of "rival", not of the brand "acme"`);
  });

  test('a signature that does not verify over the exact bytes (one byte changed): ERR_POINTER_SIGNATURE', () => {
    const s = signed(pointer());
    const changed = Buffer.from(s.bytes.toString().replace('revision: 3', 'revision: 4'));
    const e = refusal(() => verifyChannelPointer({ ...s, bytes: changed }, keys, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_SIGNATURE');
    expect(e.message).toBe(`${FILE}.sig: signature: expected an RSA SHA-256 signature of ${FILE} by key ${pointerKey.publicKey.id} of "acme", found one that does not verify over its bytes`);
  });

  test('a pointer to a lower revision than the installed one: ERR_POINTER_ROLLBACK', () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer()), keys, { now: NOW, installedRevision: 4 }));
    expect(e.code).toBe('ERR_POINTER_ROLLBACK');
    expect(e.message).toBe(`${FILE}: revision: expected at least the installed revision 4, found 3: a pointer to a lower revision is refused (anti-rollback)`);
  });

  // M1: the pointer's own counter refuses a replay of an older pointer of the same revision.
  test('an older pointer of the same revision (a lower sequence) after a newer one was accepted: ERR_POINTER_ROLLBACK', () => {
    const halted = signed(pointer({ sequence: 8, rollout: 0 }));
    const accepted = verifyChannelPointer(halted, keys, { now: NOW, installedRevision: 2 }).pointer;
    // The mirror replays the earlier, still unexpired pointer: same revision, rollout 100.
    const e = refusal(() => verifyChannelPointer(signed(pointer({ sequence: 7, rollout: 100 })), keys, { now: NOW, installedRevision: 2, lastAccepted: accepted }));
    expect(e.code).toBe('ERR_POINTER_ROLLBACK');
    expect(e.message).toBe(`${FILE}: sequence: expected at least the sequence 8 of the last pointer accepted, found 7: an older pointer is refused (a replay: the channel has been released or re-signed since)`);
    expect(e.context).toMatchObject({ field: 'sequence', found: 7 });
    // The same pointer fetched again, and a later one, are accepted.
    expect(verifyChannelPointer(halted, keys, { now: NOW, lastAccepted: accepted }).pointer.sequence).toBe(8);
    expect(verifyChannelPointer(signed(pointer({ sequence: 9 })), keys, { now: NOW, lastAccepted: accepted }).pointer.sequence).toBe(9);
    // A lower revision than the last accepted one, even with a higher sequence.
    const lower = refusal(() => verifyChannelPointer(signed(pointer({ revision: 2, sequence: 9, updates: [{ from: 'full', sha256: SHA, size: 1, path: 'u' }] })), keys, { now: NOW, lastAccepted: accepted }));
    expect([lower.code, lower.message]).toEqual(['ERR_POINTER_ROLLBACK', `${FILE}: revision: expected at least the revision 3 of the last pointer accepted, found 2: a pointer to a lower revision is refused (anti-rollback)`]);
  });

  test('an installed revision or sequence that is not a number is a programming error, not a skipped check', () => {
    expect(() => verifyChannelPointer(signed(pointer()), keys, { now: NOW, installedRevision: Number.NaN })).toThrow(/installedRevision: expected a revision or sequence number .*found NaN/);
    expect(() => verifyChannelPointer(signed(pointer()), keys, { now: NOW, lastAccepted: { revision: 0, sequence: Number.NaN } })).toThrow(/lastAccepted\.sequence/);
  });

  test('an expired pointer is accepted only with acceptExpired (the publisher re-signing it), every other check still made', () => {
    const old = signed(pointer({ expires: new Date('2026-06-01T11:59:59Z') }));
    expect(verifyChannelPointer(old, keys, { now: NOW, acceptExpired: true }).pointer.revision).toBe(3);
    expect(refusal(() => verifyChannelPointer(signed(pointer({ expires: new Date('2026-06-01T11:59:59Z') }), modelKey), keys, { now: NOW, acceptExpired: true })).code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
  });

  // M5: the pointer-only check is what keeps a key that may also sign models from signing pointers.
  test('a key constrained to both channel-pointer and model types: ERR_POINTER_KEY_NOT_ALLOWED (not pointer-only)', async () => {
    const mixed = await newKey();
    const constraints = [{ headers: { type: 'channel-pointer' } }, { headers: { type: 'model' } }];
    const { headers, body } = accountKeyHeaders(mixed.publicKey, { accountId: 'acme', authorityId: 'acme-root', since: SINCE, name: 'mixed', constraints });
    const ks = trustedSigningKeys(chain.anchors, [chain.account('acme'), chain.sign(headers, chain.rootKey, body)], NOW);
    expect(ks.find((k) => k.id === mixed.publicKey.id)?.constraints?.allowsHeaders({ type: 'channel-pointer', 'brand-id': 'acme', model: 'edge-pc', channel: 'latest/stable' })).toBe(true);
    const e = refusal(() => verifyChannelPointer(signed(pointer(), mixed), ks, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toBe(`${FILE}: sign-key-sha3-384: expected a pointer-only account-key of "acme", found ${mixed.publicKey.id}: its constraints [{"headers":{"type":"channel-pointer"}},{"headers":{"type":"model"}}] admit more than channel pointers; a pointer key's constraints are all of type channel-pointer`);
  });

  test('a pointer for another model, an empty or oversize signature', () => {
    const e = refusal(() => verifyChannelPointer(signed(pointer({ model: 'other-pc' })), keys, { now: NOW, model: 'edge-pc' }));
    expect([e.code, e.message]).toEqual(['ERR_POINTER_MISMATCH', `${FILE}: model: expected edge-pc, found other-pc: the pointer is for another model`]);
    for (const signature of [Buffer.alloc(0), Buffer.alloc(2048)]) {
      const m = refusal(() => verifyChannelPointer({ ...signed(pointer()), signature }, keys, { now: NOW }));
      expect([m.code, m.message]).toEqual(['ERR_POINTER_MALFORMED', `${FILE}.sig: signature: expected 1 to 1024 bytes, found ${signature.length}`]);
    }
  });

  test('a pointer-only key past its until: ERR_POINTER_KEY_NOT_ALLOWED, naming its validity', async () => {
    const old = await newKey();
    const { headers, body } = accountKeyHeaders(old.publicKey, { accountId: 'acme', authorityId: 'acme-root', since: SINCE, until: new Date('2026-05-01T00:00:00Z'), name: 'old-pointer', constraints: POINTER_ONLY_CONSTRAINTS });
    const ks = trustedSigningKeys(chain.anchors, [chain.account('acme'), chain.sign(headers, chain.rootKey, body)], NOW);
    const e = refusal(() => verifyChannelPointer(signed(pointer(), old), ks, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toContain(`found ${old.publicKey.id}: it is not valid at 2026-06-01T12:00:00Z (valid since 2026-01-01T00:00:00Z until 2026-05-01T00:00:00Z)`);
  });

  test('a pointer-only key narrowed to one model does not sign another model\'s pointer', async () => {
    const narrow = await newKey();
    const { headers, body } = accountKeyHeaders(narrow.publicKey, { accountId: 'acme', authorityId: 'acme-root', since: SINCE, name: 'kiosk-pointer', constraints: [{ headers: { type: 'channel-pointer', model: 'kiosk-.*' } }] });
    const ks = trustedSigningKeys(chain.anchors, [chain.account('acme'), chain.sign(headers, chain.rootKey, body)], NOW);
    expect(verifyChannelPointer(signed(pointer({ model: 'kiosk-1' }), narrow), ks, { now: NOW }).pointer.model).toBe('kiosk-1');
    const e = refusal(() => verifyChannelPointer(signed(pointer(), narrow), ks, { now: NOW }));
    expect(e.code).toBe('ERR_POINTER_KEY_NOT_ALLOWED');
    expect(e.message).toContain('do not admit model edge-pc channel latest/stable');
  });
});

describe('on the device: the strict reading in busybox sh (pointer-device.sh)', () => {
  const script = readFileSync(fileURLToPath(new URL('./pointer-device.sh', import.meta.url)), 'utf8');
  const bin = () => {
    const d = join(dir, 'busybox-bin');
    mkdirSync(d, { recursive: true });
    if (sh('busybox', ['--install', '-s', d]).status !== 0) throw new Error('busybox --install failed');
    return d;
  };
  let bb: string;
  beforeAll(() => {
    bb = bin();
  });
  /** Signs the exact bytes with the pointer key (a leaked key: the signature is good) and reads them as the device must. */
  const read = (bytes: Buffer, o: { now?: string; installed?: number; last?: number; key?: PrivateKey } = {}) => {
    const d = mkdtempSync(join(dir, 'device-'));
    writeFileSync(join(d, 'pointer'), bytes);
    writeFileSync(join(d, 'pointer.sig'), signChannelPointer(bytes, o.key ?? pointerKey));
    writeFileSync(join(d, 'key.pem'), pointerKey.publicKey.toPem());
    return sh('busybox', ['sh', '-c', script, 'sh', d, bb, 'acme', 'edge-pc', 'latest/stable', o.now ?? '2026-06-01T12:00:00Z', String(o.installed ?? 2), String(o.last ?? 7)]);
  };
  const good = () => encodeChannelPointer(pointer());

  test('a good pointer is read: revision, sequence, rollout', () => {
    const r = read(good());
    expect([r.status, r.stdout, r.stderr]).toEqual([0, 'OK revision=3 sequence=7 rollout=100\n', '']);
  });

  test('every pointer the parser refuses is refused by the device reading too (signed with a good key)', () => {
    expect(malformed.length).toBeGreaterThan(20);
    const read1 = malformed.map(([name, change]) => [name, read(Buffer.from(change(good().toString())))] as const);
    // Refused by a check (not by a shell error): exit 1, a REFUSED line naming it, nothing on stderr.
    const accepted = read1.filter(([, r]) => !(r.status === 1 && /^REFUSED [^\n]+\n$/.test(r.stdout) && r.stderr === '')).map(([name, r]) => `${name}: ${r.status} ${r.stdout}${r.stderr}`);
    expect(accepted).toEqual([]);
  });

  // What a lax reading (sed -n 's/^revision: //p', fields anywhere) would act on: the review's M3.
  const lax: [string, (t: string) => string, RegExp][] = [
    ['a second revision line', (t) => t.replace('sequence: 7\n', 'sequence: 7\nrevision: 9\n'), /^REFUSED line 7: expires\n$/],
    ['a path with a fifth word', (t) => t.replace('3.full.update\n', '3.full.update extra\n'), /^REFUSED update line\n$/],
    ['a path with .. inside a name', (t) => t.replace('updates/acme.edge-pc.3.full.update', 'updates/a..b'), /^REFUSED line 10: path with \.\.\n$/],
    ['an update line before the headers', (t) => t.replace('brand-id: acme\n', `update: full ${SHA} 1 x\nbrand-id: acme\n`), /^REFUSED line 2: brand-id\n$/],
    ['a CR at the end of a path', (t) => t.replace('3.full.update\n', '3.full.update\r\n'), /^REFUSED bytes\n$/],
    ['an update manifest (edgeimage-update: 1)', (t) => t.replace('edgeimage-pointer: 1', 'edgeimage-update: 1'), /^REFUSED line 1: format\n$/],
    ['a size over 1 TiB', (t) => t.replace(' 81920 ', ' 1099511627777 '), /^REFUSED line 10: size\n$/],
    ['a revision over 2^53', (t) => t.replace('revision: 3', 'revision: 9007199254740992'), /^REFUSED revision\n$/],
    ['23:59:60', (t) => t.replace('2026-06-08T12:00:00Z', '2026-06-08T23:59:60Z'), /^REFUSED expires: not a real time\n$/],
  ];
  test.each(lax)('%s: refused by the parser and by the device reading', (_, change, device) => {
    const bytes = Buffer.from(change(good().toString()));
    expect(refusal(() => parseChannelPointer(bytes, FILE)).code).toBe('ERR_POINTER_MALFORMED');
    const r = read(bytes);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(device);
  });

  test('expired, a lower revision, a lower sequence (a replay) and another key are refused', () => {
    expect(read(good(), { now: '2026-06-08T12:00:00Z' }).stdout).toBe('REFUSED expired\n');
    expect(read(good(), { installed: 4 }).stdout).toBe('REFUSED rollback: revision\n');
    expect(read(good(), { last: 8 }).stdout).toBe('REFUSED replay: sequence\n');
    expect(read(good(), { key: modelKey }).stdout).toBe('REFUSED signature\n');
  });
});

describe('on the device: busybox sh and openssl', () => {
  const device = (p: { bytes: Buffer; signature: Buffer }, pem: string) => {
    writeFileSync(join(dir, 'pointer'), p.bytes);
    writeFileSync(join(dir, 'pointer.sig'), p.signature);
    writeFileSync(join(dir, 'key.pem'), pem);
    // openssl over the exact bytes, then the fields of what was verified (every check a device
    // must make before acting on them is pointer-device.sh's, above).
    const script = [
      'set -eu',
      'cd "$1"',
      'openssl dgst -sha256 -verify key.pem -signature pointer.sig pointer >/dev/null || { echo "REFUSED signature"; exit 1; }',
      'field() { sed -n "s/^$1: //p" pointer; }',
      'echo "revision=$(field revision) expires=$(field expires) rollout=$(field rollout)"',
      'field update | while read -r from sha size path; do echo "from=$from size=$size path=$path"; done',
    ].join('\n');
    return sh('busybox', ['sh', '-c', script, 'sh', dir]);
  };

  test('openssl dgst -sha256 -verify accepts the pointer with the pointer key and busybox reads its fields', () => {
    const r = device(signed(pointer()), pointerKey.publicKey.toPem());
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      ['revision=3 expires=2026-06-08T12:00:00Z rollout=100', 'from=full size=81920 path=updates/acme.edge-pc.3.full.update', 'from=2 size=4096 path=updates/acme.edge-pc.3.from-2.update', ''].join('\n'),
    );
  });

  test('openssl refuses a changed pointer and the pointer checked with another key', () => {
    const s = signed(pointer());
    expect(device({ ...s, bytes: Buffer.from(s.bytes.toString().replace('revision: 3', 'revision: 4')) }, pointerKey.publicKey.toPem()).stdout).toBe('REFUSED signature\n');
    expect(device(s, modelKey.publicKey.toPem()).stdout).toBe('REFUSED signature\n');
  });
});
