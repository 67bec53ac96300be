import { generateKeyPairSync } from 'node:crypto';
import { parseSignatureBody, readPacketHeader } from './openpgp.js';
import { PrivateKey } from './private-key.js';
import { rsaNumbers } from './rsa-numbers.js';
import { PublicKey } from './public-key.js';
import { decodeV1 } from './v1-envelope.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('expected an error');
}

function parse(signatureText: string) {
  const packet = decodeV1(signatureText);
  const h = readPacketHeader(packet);
  expect(h.bodyEnd).toBe(packet.length);
  return { header: h, sig: parseSignatureBody(packet.subarray(h.bodyStart, h.bodyEnd)) };
}

describe('PrivateKey signing (2048-bit key)', () => {
  let key: PrivateKey;
  const content = Buffer.from('type: model\nauthority-id: acme\nseries: 16\nbrand-id: acme\nmodel: kiosk\n');

  beforeAll(async () => {
    key = await PrivateKey.generate(2048);
  });

  it('generates the requested size with e = 65537', () => {
    expect(key.bits).toBe(2048);
    expect(rsaNumbers(key.publicKey.keyObject).e).toEqual(Buffer.from([1, 0, 1]));
  });

  it('produces a signature its public key verifies', () => {
    expect(() => key.publicKey.verify(content, key.sign(content))).not.toThrow();
  });

  it('produces a signature that verifies after the public key goes through an account-key body', () => {
    const again = PublicKey.fromAccountKeyBody(key.publicKey.encodeAccountKeyBody());
    expect(again.id).toBe(key.publicKey.id);
    expect(() => again.verify(content, key.sign(content))).not.toThrow();
  });

  it('produces a signature that fails on changed content with ERR_SIGNATURE_INVALID', () => {
    const sig = key.sign(content);
    const tampered = Buffer.from(content);
    tampered[0] = tampered[0]! ^ 1;
    expect(codeOf(() => key.publicKey.verify(tampered, sig))).toBe('ERR_SIGNATURE_INVALID');
  });

  it('produces a signature another key rejects with ERR_SIGNATURE_INVALID', async () => {
    const other = await PrivateKey.generate(2048);
    expect(codeOf(() => other.publicKey.verify(content, key.sign(content)))).toBe('ERR_SIGNATURE_INVALID');
  });

  it('writes snapd text: 76-column base64 lines, no trailing newline, starting with 0x01 and a new-format tag 2', () => {
    const text = key.sign(content);
    const lines = text.split('\n');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(0, -1).every((l) => l.length === 76)).toBe(true);
    expect(text.endsWith('\n')).toBe(false);
    expect(text).toMatch(/^[A-Za-z0-9+/=\n]+$/);
    const raw = Buffer.from(text.replace(/\n/g, ''), 'base64');
    expect(raw[0]).toBe(0x01);
    expect(raw[1]).toBe(0xc2);
  });

  it('writes a v4 SHA-512 RSA binary signature whose hashed area holds only the creation time', () => {
    const now = new Date('2024-05-06T07:08:09.999Z');
    const { sig } = parse(key.sign(content, now));
    expect(sig).toMatchObject({ version: 4, sigType: 0x00, pubkeyAlgo: 1, hashAlgo: 10 });
    expect(sig.hashed.map((s) => s.type)).toEqual([2]);
    expect(sig.created).toBe(Math.floor(now.getTime() / 1000));
    expect(sig.hashedPart.subarray(0, 8).toString('hex')).toBe('0400010a00060502');
  });

  it('puts the OpenPGP key id of the 2016-normalised key packet in the unhashed issuer subpacket', () => {
    const { sig } = parse(key.sign(content));
    expect(sig.unhashed.map((s) => [s.type, s.data.length])).toEqual([[16, 8]]);
    expect(sig.issuerKeyId?.toString('hex').toUpperCase()).toBe(key.publicKey.openpgpKeyId);
  });

  it('signs the same content differently at different times, both valid', () => {
    const a = key.sign(content, new Date('2020-01-01T00:00:00Z'));
    const b = key.sign(content, new Date('2030-01-01T00:00:00Z'));
    expect(a).not.toBe(b);
    expect(() => key.publicKey.verify(content, a)).not.toThrow();
    expect(() => key.publicKey.verify(content, b)).not.toThrow();
  });

  it('refuses a signing time outside the 32-bit OpenPGP range', () => {
    expect(() => key.sign(content, new Date(Number.NaN))).toThrow(RangeError);
    expect(() => key.sign(content, new Date('1969-12-31T00:00:00Z'))).toThrow(RangeError);
  });
});

describe('PrivateKey.generate', () => {
  it('refuses fewer than 2048 bits with KeyError ERR_KEY_BITS', async () => {
    await expect(PrivateKey.generate(1024)).rejects.toMatchObject({ name: 'KeyError', code: 'ERR_KEY_BITS' });
    await expect(PrivateKey.generate(2047.5)).rejects.toMatchObject({ code: 'ERR_KEY_BITS' });
  });

  it('defaults to 4096 bits like snapd, and such a key signs and verifies', async () => {
    const key = await PrivateKey.generate();
    expect(key.bits).toBe(4096);
    const content = Buffer.from('x');
    expect(() => key.publicKey.verify(content, key.sign(content))).not.toThrow();
    // A 4096-bit key's packet has a two-octet length, c6 c1 4d (525), like real account-keys.
    const raw = Buffer.from(key.publicKey.encodeAccountKeyBody().replace(/\n/g, ''), 'base64');
    expect(raw.subarray(0, 4).toString('hex')).toBe('01c6c14d');
    expect(Buffer.byteLength(key.publicKey.encodeAccountKeyBody())).toBe(717);
  }, 120_000);
});

describe('PrivateKey PEM', () => {
  let key: PrivateKey;
  beforeAll(async () => {
    key = await PrivateKey.generate(2048);
  });

  it('round-trips unencrypted PKCS#8', () => {
    const pem = key.toPem();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(PrivateKey.fromPem(pem).publicKey.id).toBe(key.publicKey.id);
  });

  it('round-trips encrypted PKCS#8 with the right passphrase', () => {
    const pem = key.toPem('correct horse');
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const again = PrivateKey.fromPem(pem, 'correct horse');
    expect(again.publicKey.id).toBe(key.publicKey.id);
    const content = Buffer.from('hello');
    expect(() => key.publicKey.verify(content, again.sign(content))).not.toThrow();
  });

  it('refuses a wrong passphrase with KeyError ERR_KEY_PASSPHRASE', () => {
    const pem = key.toPem('correct horse');
    expect(() => PrivateKey.fromPem(pem, 'wrong horse')).toThrow(expect.objectContaining({ name: 'KeyError', code: 'ERR_KEY_PASSPHRASE' }));
    expect(codeOf(() => PrivateKey.fromPem(pem, ''))).toBe('ERR_KEY_PASSPHRASE');
  });

  it('refuses a missing passphrase for an encrypted key with ERR_KEY_PASSPHRASE', () => {
    expect(codeOf(() => PrivateKey.fromPem(key.toPem('correct horse')))).toBe('ERR_KEY_PASSPHRASE');
  });

  it('reads a legacy encrypted PKCS#1 key and reports its wrong passphrase the same way', () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'pw' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(PrivateKey.fromPem(privateKey, 'pw').bits).toBe(2048);
    expect(codeOf(() => PrivateKey.fromPem(privateKey, 'nope'))).toBe('ERR_KEY_PASSPHRASE');
    expect(codeOf(() => PrivateKey.fromPem(privateKey))).toBe('ERR_KEY_PASSPHRASE');
  });

  it('refuses to encrypt with an empty passphrase', () => {
    expect(codeOf(() => key.toPem(''))).toBe('ERR_KEY_PASSPHRASE');
  });

  it('refuses a non-RSA key with KeyError ERR_KEY_UNSUPPORTED', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => PrivateKey.fromPem(pem)).toThrow(expect.objectContaining({ name: 'KeyError', code: 'ERR_KEY_UNSUPPORTED' }));
  });

  it('refuses text that is not a private key with ERR_KEY_FORMAT', () => {
    expect(codeOf(() => PrivateKey.fromPem('not a key'))).toBe('ERR_KEY_FORMAT');
    expect(codeOf(() => PrivateKey.fromPem(key.publicKey.toPem()))).toBe('ERR_KEY_FORMAT');
  });
});
