import { createHash } from 'node:crypto';
import {
  HASH_SHA512,
  OpenPgpError,
  PUBKEY_RSA,
  SIGTYPE_BINARY,
  SUBPACKET_CREATION_TIME,
  SUBPACKET_ISSUER,
  SUBPACKET_ISSUER_FINGERPRINT,
  TAG_PUBLIC_KEY,
  TAG_SIGNATURE,
  buildHashedPart,
  buildSignatureBody,
  encodeMpi,
  encodePacket,
  encodeRsaPublicKeyBody,
  encodeSubpacket,
  parsePublicKeyBody,
  parseSignatureBody,
  parseSubpackets,
  readMpi,
  readPacketHeader,
  v4Fingerprint,
  v4HashTrailer,
  v4KeyId,
} from './openpgp.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function expectOpenPgpError(fn: () => unknown, kind: 'packet' | 'unsupported', message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(OpenPgpError);
  expect((thrown as OpenPgpError).kind).toBe(kind);
  if (message) expect((thrown as OpenPgpError).message).toMatch(message);
}

describe('readPacketHeader', () => {
  it('reads a new-format header with a one-octet length', () => {
    const h = readPacketHeader(hex('c2 03 aa bb cc'));
    expect(h).toEqual({ tag: 2, format: 'new', bodyStart: 2, bodyEnd: 5 });
  });

  it('reads a new-format header with a two-octet length (the UC22 model signature: c2 c1 5c = 540)', () => {
    const data = Buffer.concat([hex('c2 c1 5c'), Buffer.alloc(540)]);
    expect(readPacketHeader(data)).toEqual({ tag: 2, format: 'new', bodyStart: 3, bodyEnd: 543 });
  });

  it('reads a new-format header with a five-octet length', () => {
    const data = Buffer.concat([hex('c6 ff 00 00 20 00'), Buffer.alloc(8192)]);
    expect(readPacketHeader(data)).toEqual({ tag: 6, format: 'new', bodyStart: 6, bodyEnd: 6 + 8192 });
  });

  it('reads old-format headers with one-, two- and four-octet lengths', () => {
    expect(readPacketHeader(hex('88 02 aa bb'))).toEqual({ tag: 2, format: 'old', bodyStart: 2, bodyEnd: 4 });
    expect(readPacketHeader(Buffer.concat([hex('89 01 00'), Buffer.alloc(256)]))).toEqual({ tag: 2, format: 'old', bodyStart: 3, bodyEnd: 259 });
    expect(readPacketHeader(Buffer.concat([hex('9a 00 00 01 00'), Buffer.alloc(256)]))).toEqual({ tag: 6, format: 'old', bodyStart: 5, bodyEnd: 261 });
  });

  it('treats an old-format indeterminate length as running to the end of the input', () => {
    expect(readPacketHeader(hex('8b 01 02 03'))).toEqual({ tag: 2, format: 'old', bodyStart: 1, bodyEnd: 4 });
  });

  it('reads a header at an offset', () => {
    expect(readPacketHeader(hex('01 c2 01 ff'), 1)).toEqual({ tag: 2, format: 'new', bodyStart: 3, bodyEnd: 4 });
  });

  it('refuses a first octet without the packet bit', () => {
    expectOpenPgpError(() => readPacketHeader(hex('42 00')), 'packet', /not an OpenPGP packet/);
  });

  it('refuses a body shorter than the declared length', () => {
    expectOpenPgpError(() => readPacketHeader(hex('c2 05 00 00')), 'packet', /truncated/);
  });

  it('refuses a truncated length field', () => {
    expectOpenPgpError(() => readPacketHeader(hex('c2 c1')), 'packet', /truncated/);
    expectOpenPgpError(() => readPacketHeader(hex('c2 ff 00 00')), 'packet', /truncated/);
  });

  it('refuses empty input', () => {
    expectOpenPgpError(() => readPacketHeader(new Uint8Array()), 'packet', /empty/);
  });

  it('refuses partial body lengths as unsupported', () => {
    expectOpenPgpError(() => readPacketHeader(hex('c2 e0 00')), 'unsupported', /partial/);
  });
});

describe('encodePacket', () => {
  it.each([
    [0, 'c2 00'],
    [191, 'c2 bf'],
    [192, 'c2 c0 00'],
    [540, 'c2 c1 5c'],
    [1037, 'c2 c3 4d'],
    [8383, 'c2 df ff'],
    [8384, 'c2 ff 00 00 20 c0'],
  ])('uses the shortest new-format length for a %i-byte body', (len, header) => {
    const packet = encodePacket(TAG_SIGNATURE, Buffer.alloc(len, 7));
    expect(packet.subarray(0, packet.length - len).toString('hex')).toBe(header.replace(/ /g, ''));
    const h = readPacketHeader(packet);
    expect(h.tag).toBe(TAG_SIGNATURE);
    expect(h.bodyEnd - h.bodyStart).toBe(len);
    expect(h.bodyEnd).toBe(packet.length);
  });
});

describe('MPIs', () => {
  it('encodes 65537 as 17 bits', () => {
    expect(encodeMpi(hex('01 00 01')).toString('hex')).toBe('0011010001');
  });

  it('drops leading zero octets so the bit count describes the number', () => {
    expect(encodeMpi(hex('00 00 ff')).toString('hex')).toBe('0008ff');
    expect(encodeMpi(hex('00 7f ff')).toString('hex')).toBe('000f7fff');
  });

  it('encodes zero as a zero bit count and no octets', () => {
    expect(encodeMpi(hex('00 00')).toString('hex')).toBe('0000');
  });

  it('reads back what it wrote, with the end offset', () => {
    const buf = Buffer.concat([hex('aa'), encodeMpi(hex('12 34 56')), hex('bb')]);
    const { value, bits, end } = readMpi(buf, 1);
    expect(value.toString('hex')).toBe('123456');
    expect(bits).toBe(21);
    expect(end).toBe(buf.length - 1);
  });

  it('reads a value whose bit count is lower than its top octet suggests, as x/crypto does', () => {
    // 4092-bit MPIs appear in real signatures; the byte count comes from the bit count.
    expect(readMpi(hex('00 0c 0f ff'), 0).value.toString('hex')).toBe('0fff');
  });

  it('refuses a truncated MPI', () => {
    expectOpenPgpError(() => readMpi(hex('00 10 ff'), 0), 'packet', /MPI truncated/);
    expectOpenPgpError(() => readMpi(hex('00'), 0), 'packet', /MPI truncated/);
  });
});

describe('v4 RSA public-key packets', () => {
  const params = { n: hex('c5 01 02 03 04 05 06 07'), e: hex('01 00 01') };

  it('lays out version, creation time, algorithm and the two MPIs', () => {
    expect(encodeRsaPublicKeyBody(params, 0x5685c180).toString('hex')).toBe('045685c180' + '01' + '0040c501020304050607' + '0011010001');
  });

  it('parses what it builds', () => {
    const parsed = parsePublicKeyBody(encodeRsaPublicKeyBody(params, 0x5685c180));
    expect(parsed.version).toBe(4);
    expect(parsed.created).toBe(0x5685c180);
    expect(parsed.algorithm).toBe(PUBKEY_RSA);
    expect(parsed.rsa?.n.equals(params.n)).toBe(true);
    expect(parsed.rsa?.e.equals(params.e)).toBe(true);
  });

  it('reports a non-RSA algorithm without parsing its fields', () => {
    const dsa = hex('04 5685c180 11 0008ff');
    const parsed = parsePublicKeyBody(dsa);
    expect(parsed.algorithm).toBe(17);
    expect(parsed.rsa).toBeUndefined();
  });

  it('refuses version 3 keys and trailing bytes', () => {
    expectOpenPgpError(() => parsePublicKeyBody(hex('03 5685c180 0000 01 0008ff 0008ff')), 'packet', /version 3/);
    expectOpenPgpError(() => parsePublicKeyBody(Buffer.concat([encodeRsaPublicKeyBody(params, 0), hex('00')])), 'packet', /trailing/);
  });

  it('computes the v4 fingerprint as SHA-1 over 0x99, a 16-bit length and the body, and the key id as its low 64 bits', () => {
    // RFC 4880 §12.2 worked by hand with node's sha1.
    const body = encodeRsaPublicKeyBody(params, 0);
    const expected = createHash('sha1').update(Buffer.concat([hex('99'), hex(body.length.toString(16).padStart(4, '0')), body])).digest();
    expect(v4Fingerprint(body).equals(expected)).toBe(true);
    expect(v4KeyId(body).equals(expected.subarray(12))).toBe(true);
  });
});

describe('subpackets', () => {
  it('encodes a creation time as 05 02 <uint32>', () => {
    expect(encodeSubpacket(SUBPACKET_CREATION_TIME, hex('624ba6aa')).toString('hex')).toBe('0502624ba6aa');
  });

  it('sets the critical bit on request', () => {
    expect(encodeSubpacket(SUBPACKET_CREATION_TIME, hex('00000001'), true).toString('hex')).toBe('058200000001');
  });

  it('parses one-, two- and five-octet subpacket lengths', () => {
    const big = Buffer.alloc(300, 0xab);
    const area = Buffer.concat([
      hex('05 02 624ba6aa'),
      encodeSubpacket(20, big),
      hex('ff 00000003 65 0102'), // five-octet length 3: type 101, two data bytes
    ]);
    const subs = parseSubpackets(area);
    expect(subs.map((s) => [s.type, s.critical, s.data.length])).toEqual([
      [2, false, 4],
      [20, false, 300],
      [101, false, 2],
    ]);
  });

  it('refuses a zero-length or truncated subpacket', () => {
    expectOpenPgpError(() => parseSubpackets(hex('00')), 'packet', /zero-length/);
    expectOpenPgpError(() => parseSubpackets(hex('05 02 00')), 'packet', /truncated/);
  });
});

describe('v4 signature packets', () => {
  const created = hex('624ba6aa');
  const keyId = hex('e04f9be8b6dcc012');
  const hashedPart = buildHashedPart(SIGTYPE_BINARY, PUBKEY_RSA, HASH_SHA512, encodeSubpacket(SUBPACKET_CREATION_TIME, created));

  it('starts like the UC22 model signature: 04 00 01 0a 00 06 05 02 <time>', () => {
    expect(hashedPart.toString('hex')).toBe('0400010a00060502624ba6aa');
  });

  it('computes the v4 trailer as hashedPart || 04 ff || uint32be(length)', () => {
    expect(v4HashTrailer(hashedPart).toString('hex')).toBe('0400010a00060502624ba6aa' + '04ff' + '0000000c');
  });

  it('builds the body in the same layout as the UC22 model signature and parses it back', () => {
    const body = buildSignatureBody(hashedPart, encodeSubpacket(SUBPACKET_ISSUER, keyId), hex('beef'), [hex('7f ff')]);
    expect(body.subarray(0, 26).toString('hex')).toBe('0400010a00060502624ba6aa' + '000a0910e04f9be8b6dcc012' + 'beef');
    const sig = parseSignatureBody(body);
    expect(sig).toMatchObject({ version: 4, sigType: 0, pubkeyAlgo: 1, hashAlgo: 10, created: 0x624ba6aa });
    expect(sig.hashedPart.equals(hashedPart)).toBe(true);
    expect(sig.hashTag.toString('hex')).toBe('beef');
    expect(sig.issuerKeyId?.equals(keyId)).toBe(true);
    expect(sig.mpis.map((m) => m.toString('hex'))).toEqual(['7fff']);
  });

  it('accepts an issuer fingerprint (type 33) in the hashed area, as gpg writes', () => {
    const fpr = Buffer.concat([hex('04'), Buffer.alloc(20, 0x11)]);
    const hashed = Buffer.concat([encodeSubpacket(SUBPACKET_ISSUER_FINGERPRINT, fpr), encodeSubpacket(SUBPACKET_CREATION_TIME, created)]);
    expect(hashed.subarray(0, 3).toString('hex')).toBe('162104');
    const body = buildSignatureBody(buildHashedPart(0, 1, 10, hashed), Buffer.alloc(0), hex('0000'), [hex('01')]);
    const sig = parseSignatureBody(body);
    expect(sig.hashed.map((s) => s.type)).toEqual([33, 2]);
    expect(sig.issuerKeyId).toBeUndefined();
  });

  it('accepts unknown non-critical subpackets anywhere', () => {
    const hashed = Buffer.concat([encodeSubpacket(SUBPACKET_CREATION_TIME, created), encodeSubpacket(99, hex('00'))]);
    const body = buildSignatureBody(buildHashedPart(0, 1, 10, hashed), encodeSubpacket(100, hex('01')), hex('0000'), [hex('01')]);
    expect(() => parseSignatureBody(body)).not.toThrow();
  });

  it('refuses an unknown critical subpacket, as x/crypto does', () => {
    const hashed = Buffer.concat([encodeSubpacket(SUBPACKET_CREATION_TIME, created), encodeSubpacket(99, hex('00'), true)]);
    const body = buildSignatureBody(buildHashedPart(0, 1, 10, hashed), Buffer.alloc(0), hex('0000'), [hex('01')]);
    expectOpenPgpError(() => parseSignatureBody(body), 'unsupported', /critical signature subpacket type 99/);
  });

  it('refuses a signature without a hashed creation time', () => {
    const none = buildSignatureBody(buildHashedPart(0, 1, 10, Buffer.alloc(0)), Buffer.alloc(0), hex('0000'), [hex('01')]);
    expectOpenPgpError(() => parseSignatureBody(none), 'packet', /no creation time/);
    const unhashed = buildSignatureBody(buildHashedPart(0, 1, 10, Buffer.alloc(0)), encodeSubpacket(2, created), hex('0000'), [hex('01')]);
    expectOpenPgpError(() => parseSignatureBody(unhashed), 'packet', /unhashed area/);
  });

  it('refuses versions other than 4', () => {
    expectOpenPgpError(() => parseSignatureBody(hex('03 05 00 624ba6aa e04f9be8b6dcc012 01 0a beef 0001 01')), 'packet', /version 3/);
  });

  it('refuses truncated bodies', () => {
    const body = buildSignatureBody(hashedPart, Buffer.alloc(0), hex('beef'), [hex('7f ff')]);
    for (const cut of [3, 10, 13, 15, body.length - 1]) {
      expectOpenPgpError(() => parseSignatureBody(body.subarray(0, cut)), 'packet');
    }
  });

  it('reads every trailing MPI so a verifier can tell RSA (one) from DSA (two)', () => {
    const body = buildSignatureBody(buildHashedPart(0, 17, 10, encodeSubpacket(2, created)), Buffer.alloc(0), hex('0000'), [hex('01'), hex('02')]);
    expect(parseSignatureBody(body).mpis).toHaveLength(2);
  });

  it('round-trips through packet framing', () => {
    const body = buildSignatureBody(hashedPart, encodeSubpacket(SUBPACKET_ISSUER, keyId), hex('beef'), [Buffer.alloc(512, 0x5a)]);
    const packet = encodePacket(TAG_SIGNATURE, body);
    const h = readPacketHeader(packet);
    expect(h.tag).toBe(TAG_SIGNATURE);
    expect(parseSignatureBody(packet.subarray(h.bodyStart, h.bodyEnd)).mpis[0]?.equals(Buffer.alloc(512, 0x5a))).toBe(true);
    expect(TAG_PUBLIC_KEY).toBe(6);
  });
});
