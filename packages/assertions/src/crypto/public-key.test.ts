import { generateKeyPairSync } from 'node:crypto';
import {
  HASH_SHA512,
  PUBKEY_RSA,
  SUBPACKET_CREATION_TIME,
  TAG_SIGNATURE,
  buildHashedPart,
  buildSignatureBody,
  encodePacket,
  encodeRsaPublicKeyBody,
  encodeSubpacket,
  parseSignatureBody,
  readPacketHeader,
} from './openpgp.js';
import { PrivateKey } from './private-key.js';
import { PublicKey, V1_FIXED_TIMESTAMP } from './public-key.js';
import { describeWithFixtures, header, readFixture, splitAssertion } from '@edgeimage/testkit/key-fixtures';
import { decodeV1, encodeV1 } from './v1-envelope.js';

const ROOT_KEY_ID = '-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk';

/** Runs fn and returns the error's code (or fails the test if nothing was thrown). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('expected an error');
}

/** Decodes a signature text into its packet, lets `edit` change the bytes, re-encodes it. */
function editSignature(text: string, edit: (packet: Buffer) => Buffer): string {
  return encodeV1(edit(Buffer.from(decodeV1(text))));
}

/** Offset of the signature body within the packet (after the header). */
function bodyStart(packet: Buffer): number {
  return readPacketHeader(packet).bodyStart;
}

describeWithFixtures('PublicKey with real Canonical assertions', () => {
  const root = splitAssertion(readFixture('canonical-root.account-key'));
  const models = splitAssertion(readFixture('generic-models.account-key'));
  const model = splitAssertion(readFixture('generic-classic.model'));

  it('derives the Canonical root key id and size from its account-key body', () => {
    const key = PublicKey.fromAccountKeyBody(root.body);
    expect(key.id).toBe(ROOT_KEY_ID);
    expect(key.id).toBe(header(root.headers, 'public-key-sha3-384'));
    expect(key.bits).toBe(8192);
  });

  it('re-encodes the root key to the identical body text', () => {
    const key = PublicKey.fromAccountKeyBody(root.body);
    expect(key.encodeAccountKeyBody()).toBe(root.body);
    expect(Buffer.byteLength(key.encodeAccountKeyBody())).toBe(Number(header(root.headers, 'body-length')));
  });

  it('derives the generic models key id (RSA-4096) and re-encodes it identically', () => {
    const key = PublicKey.fromAccountKeyBody(models.body);
    expect(key.id).toBe(header(models.headers, 'public-key-sha3-384'));
    expect(key.bits).toBe(4096);
    expect(key.encodeAccountKeyBody()).toBe(models.body);
  });

  it('verifies the self-signature of the Canonical root account-key', () => {
    const key = PublicKey.fromAccountKeyBody(root.body);
    expect(() => key.verify(root.content, root.signature)).not.toThrow();
  });

  it('verifies the generic/models account-key with the root key', () => {
    expect(header(models.headers, 'sign-key-sha3-384')).toBe(ROOT_KEY_ID);
    expect(() => PublicKey.fromAccountKeyBody(root.body).verify(models.content, models.signature)).not.toThrow();
  });

  it('verifies generic-classic.model with the key in generic-models.account-key', () => {
    const key = PublicKey.fromAccountKeyBody(models.body);
    expect(header(model.headers, 'sign-key-sha3-384')).toBe(key.id);
    expect(() => key.verify(model.content, model.signature)).not.toThrow();
  });

  it('accepts the signature as bytes, and with or without the final newline', () => {
    const key = PublicKey.fromAccountKeyBody(models.body);
    expect(() => key.verify(model.content, Buffer.from(model.signature))).not.toThrow();
    expect(() => key.verify(model.content, model.signature.trimEnd())).not.toThrow();
    expect(() => key.verify(model.content, model.signature.replace(/\n/g, '\r\n'))).not.toThrow();
  });

  it('rejects the model when one content byte is flipped (ERR_SIGNATURE_INVALID)', () => {
    const key = PublicKey.fromAccountKeyBody(models.body);
    const tampered = Buffer.from(model.content);
    const at = tampered.indexOf('generic-classic');
    tampered[at] = tampered[at]! ^ 0x20; // 'g' -> 'G'
    expect(codeOf(() => key.verify(tampered, model.signature))).toBe('ERR_SIGNATURE_INVALID');
  });

  it('rejects the model signature under the wrong key (ERR_SIGNATURE_INVALID)', () => {
    const key = PublicKey.fromAccountKeyBody(root.body);
    expect(codeOf(() => key.verify(model.content, model.signature))).toBe('ERR_SIGNATURE_INVALID');
  });

  it('ignores the issuer subpacket, which in Canonical signatures does not match the normalised key', () => {
    const key = PublicKey.fromAccountKeyBody(root.body);
    const packet = Buffer.from(decodeV1(root.signature));
    // Hashed area: 00 06 05 02 <time>; unhashed area: 00 0a 09 10 <8-byte issuer>.
    const issuerAt = bodyStart(packet) + 6 + 6 + 4;
    expect(packet.subarray(issuerAt - 2, issuerAt).toString('hex')).toBe('0910');
    expect(packet.subarray(issuerAt, issuerAt + 8).toString('hex')).toBe('d4a55bea97d83720');
    expect(key.openpgpKeyId).toBe('A4F2265AAFD300BE');
    // Changing the (unsigned) issuer does not change the outcome either.
    const otherIssuer = editSignature(root.signature, (p) => {
      p.fill(0, issuerAt, issuerAt + 8);
      return p;
    });
    expect(() => key.verify(root.content, otherIssuer)).not.toThrow();
  });

  describe('malformed variants of a real signature', () => {
    const key = PublicKey.fromAccountKeyBody(models.body);

    it('a non-base64 character is ERR_SIGNATURE_ENCODING', () => {
      expect(codeOf(() => key.verify(model.content, `${model.signature.slice(0, 10)}*${model.signature.slice(11)}`))).toBe('ERR_SIGNATURE_ENCODING');
      expect(codeOf(() => key.verify(model.content, model.signature.replace('\n', ' \n')))).toBe('ERR_SIGNATURE_ENCODING');
    });

    it('a first byte other than 0x01 is ERR_SIGNATURE_ENCODING', () => {
      const raw = Buffer.from(model.signature.replace(/\n/g, ''), 'base64');
      raw[0] = 0x02;
      expect(codeOf(() => key.verify(model.content, raw.toString('base64')))).toBe('ERR_SIGNATURE_ENCODING');
    });

    it('data after the packet is ERR_SIGNATURE_ENCODING', () => {
      const trailing = editSignature(model.signature, (p) => Buffer.concat([p, Buffer.from([0])]));
      expect(codeOf(() => key.verify(model.content, trailing))).toBe('ERR_SIGNATURE_ENCODING');
    });

    it('an empty signature is ERR_SIGNATURE_ENCODING', () => {
      expect(codeOf(() => key.verify(model.content, ''))).toBe('ERR_SIGNATURE_ENCODING');
      expect(codeOf(() => key.verify(model.content, '\n'))).toBe('ERR_SIGNATURE_ENCODING');
    });

    it('version 3 is ERR_SIGNATURE_PACKET', () => {
      const v3 = editSignature(model.signature, (p) => {
        p[bodyStart(p)] = 3;
        return p;
      });
      expect(codeOf(() => key.verify(model.content, v3))).toBe('ERR_SIGNATURE_PACKET');
    });

    it('a packet that is not a signature is ERR_SIGNATURE_PACKET', () => {
      const notSig = encodeV1(key.toOpenPgpPacket());
      expect(codeOf(() => key.verify(model.content, notSig))).toBe('ERR_SIGNATURE_PACKET');
    });

    it('a truncated packet is ERR_SIGNATURE_PACKET', () => {
      const cut = editSignature(model.signature, (p) => p.subarray(0, 40));
      expect(codeOf(() => key.verify(model.content, cut))).toBe('ERR_SIGNATURE_PACKET');
    });

    it('hash algorithm SHA-256 is ERR_SIGNATURE_UNSUPPORTED, naming the algorithm found', () => {
      const sha256 = editSignature(model.signature, (p) => {
        p[bodyStart(p) + 3] = 8;
        return p;
      });
      expect(codeOf(() => key.verify(model.content, sha256))).toBe('ERR_SIGNATURE_UNSUPPORTED');
      expect(() => key.verify(model.content, sha256)).toThrow(/SHA-256 \(8\)/);
    });

    it('a DSA signature is ERR_SIGNATURE_UNSUPPORTED, naming the algorithm found', () => {
      const dsa = editSignature(model.signature, (p) => {
        p[bodyStart(p) + 2] = 17;
        return p;
      });
      expect(codeOf(() => key.verify(model.content, dsa))).toBe('ERR_SIGNATURE_UNSUPPORTED');
      expect(() => key.verify(model.content, dsa)).toThrow(/DSA \(17\)/);
    });

    it('a changed hashed creation time is ERR_SIGNATURE_INVALID (it is signed)', () => {
      const retimed = editSignature(model.signature, (p) => {
        p[bodyStart(p) + 11] = p[bodyStart(p) + 11]! ^ 1;
        return p;
      });
      expect(codeOf(() => key.verify(model.content, retimed))).toBe('ERR_SIGNATURE_INVALID');
    });

    it('a corrupted RSA value with a matching hash tag is ERR_SIGNATURE_INVALID', () => {
      const corrupted = editSignature(model.signature, (p) => {
        p[p.length - 1] = p[p.length - 1]! ^ 1;
        return p;
      });
      expect(codeOf(() => key.verify(model.content, corrupted))).toBe('ERR_SIGNATURE_INVALID');
      expect(() => key.verify(model.content, corrupted)).toThrow(/does not verify with key/);
    });
  });
});

describe('PublicKey.fromAccountKeyBody errors', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = PublicKey.fromKeyObject(publicKey);

  it('round-trips a body it wrote', () => {
    expect(PublicKey.fromAccountKeyBody(key.encodeAccountKeyBody()).id).toBe(key.id);
  });

  it('ignores the creation time inside the packet: the id is always of the 2016-normalised packet', () => {
    const packet = key.toOpenPgpPacket();
    const h = readPacketHeader(packet);
    packet.writeUInt32BE(1_700_000_000, h.bodyStart + 1);
    const reread = PublicKey.fromAccountKeyBody(encodeV1(packet));
    expect(reread.id).toBe(key.id);
    expect(reread.encodeAccountKeyBody()).toBe(key.encodeAccountKeyBody());
  });

  it('a non-RSA key is SignatureError ERR_KEY_UNSUPPORTED', () => {
    const dsaBody = Buffer.concat([Buffer.from([4]), Buffer.from('5685c180', 'hex'), Buffer.from([17]), Buffer.from('0008ff0008ff0008ff0008ff', 'hex')]);
    const text = encodeV1(encodePacket(6, dsaBody));
    expect(() => PublicKey.fromAccountKeyBody(text)).toThrow(expect.objectContaining({ name: 'SignatureError', code: 'ERR_KEY_UNSUPPORTED' }));
    expect(() => PublicKey.fromAccountKeyBody(text)).toThrow(/DSA \(17\)/);
  });

  it('bad base64, a wrong format byte or trailing data is ERR_KEY_ENCODING', () => {
    expect(codeOf(() => PublicKey.fromAccountKeyBody('not base64!'))).toBe('ERR_KEY_ENCODING');
    expect(codeOf(() => PublicKey.fromAccountKeyBody(''))).toBe('ERR_KEY_ENCODING');
    expect(codeOf(() => PublicKey.fromAccountKeyBody(Buffer.concat([Buffer.from([2]), key.toOpenPgpPacket()]).toString('base64')))).toBe('ERR_KEY_ENCODING');
    expect(codeOf(() => PublicKey.fromAccountKeyBody(encodeV1(Buffer.concat([key.toOpenPgpPacket(), Buffer.from([0])]))))).toBe('ERR_KEY_ENCODING');
  });

  it('a signature packet or a version 3 key is ERR_KEY_PACKET', () => {
    const hashed = buildHashedPart(0, PUBKEY_RSA, HASH_SHA512, encodeSubpacket(SUBPACKET_CREATION_TIME, Buffer.alloc(4)));
    const sig = encodePacket(TAG_SIGNATURE, buildSignatureBody(hashed, Buffer.alloc(0), Buffer.alloc(2), [Buffer.from([1])]));
    expect(codeOf(() => PublicKey.fromAccountKeyBody(encodeV1(sig)))).toBe('ERR_KEY_PACKET');
    const v3 = key.toOpenPgpPacket();
    v3[readPacketHeader(v3).bodyStart] = 3;
    expect(codeOf(() => PublicKey.fromAccountKeyBody(encodeV1(v3)))).toBe('ERR_KEY_PACKET');
  });

  it('RSA numbers node cannot use are ERR_KEY_PACKET', () => {
    const body = encodeRsaPublicKeyBody({ n: Buffer.alloc(0), e: Buffer.from([3]) }, V1_FIXED_TIMESTAMP);
    expect(codeOf(() => PublicKey.fromAccountKeyBody(encodeV1(encodePacket(6, body))))).toBe('ERR_KEY_PACKET');
  });
});

describe('PublicKey from node keys and PEM', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('gives the same id whether built from the public or the private KeyObject', () => {
    expect(PublicKey.fromKeyObject(privateKey).id).toBe(PublicKey.fromKeyObject(publicKey).id);
  });

  it('round-trips through SPKI PEM', () => {
    const key = PublicKey.fromKeyObject(publicKey);
    const pem = key.toPem();
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const again = PublicKey.fromPem(pem);
    expect(again.id).toBe(key.id);
    expect(again.bits).toBe(2048);
  });

  it('writes a 76-column body whose first bytes are 01 c6 (v1 format, new-format tag 6)', () => {
    const body = PublicKey.fromKeyObject(publicKey).encodeAccountKeyBody();
    expect(body.split('\n').every((l) => l.length <= 76)).toBe(true);
    expect(body.endsWith('\n')).toBe(false);
    const raw = Buffer.from(body.replace(/\n/g, ''), 'base64');
    expect(raw.subarray(0, 2).toString('hex')).toBe('01c6');
    // version 4, creation time fixed at 2016-01-01T00:00:00Z, algorithm RSA.
    expect(raw.subarray(4, 10).toString('hex')).toBe('045685c18001');
  });

  it('refuses non-RSA keys with KeyError ERR_KEY_UNSUPPORTED', () => {
    const ed = generateKeyPairSync('ed25519');
    expect(() => PublicKey.fromKeyObject(ed.publicKey)).toThrow(expect.objectContaining({ name: 'KeyError', code: 'ERR_KEY_UNSUPPORTED' }));
    expect(codeOf(() => PublicKey.fromPem(ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()))).toBe('ERR_KEY_UNSUPPORTED');
  });

  it('refuses text that is not a PEM key with KeyError ERR_KEY_FORMAT', () => {
    expect(codeOf(() => PublicKey.fromPem('hello'))).toBe('ERR_KEY_FORMAT');
  });
});

describe('verify with short RSA values', () => {
  it('left-pads a signature MPI that is shorter than the modulus', async () => {
    // About 1 in 256 RSA signatures has a leading zero octet, which the MPI drops; find one.
    const key = await PrivateKey.generate(2048);
    let found = false;
    for (let i = 0; i < 4000 && !found; i++) {
      const content = Buffer.from(`content ${i}`);
      const sig = key.sign(content, new Date(0));
      const packet = decodeV1(sig);
      const h = readPacketHeader(packet);
      if (parseSignatureBody(packet.subarray(h.bodyStart, h.bodyEnd)).mpis[0]!.length === 256) continue;
      found = true;
      expect(() => key.publicKey.verify(content, sig)).not.toThrow();
    }
    expect(found).toBe(true);
  }, 60_000);
});
