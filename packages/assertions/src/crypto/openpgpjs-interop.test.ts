/**
 * Independent check against openpgp.js (devDependency only): what we write must be an OpenPGP
 * signature another implementation verifies, and what it writes we must verify.
 */
import { createPublicKey } from 'node:crypto';
import * as openpgp from 'openpgp';
import { PrivateKey } from './private-key.js';
import { PublicKey } from './public-key.js';
import { describeWithFixtures, readFixture, splitAssertion } from '@edgeimage/testkit/key-fixtures';
import { decodeV1, encodeV1 } from './v1-envelope.js';

/** Reads one public-key packet with openpgp.js (a bare packet: no user id, so not a usable Key). */
async function readKeyPacket(packet: Uint8Array): Promise<openpgp.PublicKeyPacket> {
  const key = await openpgp.readKey({ binaryKey: packet });
  return key.keyPacket as openpgp.PublicKeyPacket;
}

async function readSignaturePacket(packet: Uint8Array): Promise<openpgp.SignaturePacket> {
  const signature = await openpgp.readSignature({ binarySignature: packet });
  expect(signature.packets).toHaveLength(1);
  return signature.packets[0]!;
}

/** The literal-data packet openpgp.js hashes for a binary-document signature over `content`. */
async function literal(content: Uint8Array): Promise<openpgp.LiteralDataPacket> {
  const message = await openpgp.createMessage({ binary: content });
  const packet = message.packets[0];
  expect(packet).toBeInstanceOf(openpgp.LiteralDataPacket);
  return packet as openpgp.LiteralDataPacket;
}

describe('openpgp.js reads and verifies our signatures', () => {
  let key: PrivateKey;
  const content = Buffer.from('type: model\nauthority-id: acme\nbrand-id: acme\nmodel: kiosk\nseries: 16\n');

  beforeAll(async () => {
    key = await PrivateKey.generate(2048);
  });

  it('parses our signature packet with the fields snapd writes', async () => {
    const when = new Date('2024-01-02T03:04:05Z');
    const sig = await readSignaturePacket(decodeV1(key.sign(content, when)));
    expect(sig.version).toBe(4);
    expect(sig.signatureType).toBe(openpgp.enums.signature.binary);
    expect(sig.publicKeyAlgorithm).toBe(openpgp.enums.publicKey.rsaEncryptSign);
    expect(sig.hashAlgorithm).toBe(openpgp.enums.hash.sha512);
    expect(sig.created?.getTime()).toBe(when.getTime());
    expect(sig.issuerKeyID.toHex().toUpperCase()).toBe(key.publicKey.openpgpKeyId);
  });

  it('reads our public-key packet with the same key id and size', async () => {
    const keyPacket = await readKeyPacket(key.publicKey.toOpenPgpPacket());
    expect(keyPacket.getKeyID().toHex().toUpperCase()).toBe(key.publicKey.openpgpKeyId);
    expect(keyPacket.getCreationTime().toISOString()).toBe('2016-01-01T00:00:00.000Z');
    expect(keyPacket.getAlgorithmInfo()).toEqual({ algorithm: 'rsaEncryptSign', bits: 2048 });
  });

  it('verifies our signature over the content with our public-key packet', async () => {
    const sig = await readSignaturePacket(decodeV1(key.sign(content)));
    const keyPacket = await readKeyPacket(key.publicKey.toOpenPgpPacket());
    await expect(sig.verify(keyPacket, openpgp.enums.signature.binary, await literal(content))).resolves.toBeUndefined();
  });

  it('rejects our signature over different content', async () => {
    const sig = await readSignaturePacket(decodeV1(key.sign(content)));
    const keyPacket = await readKeyPacket(key.publicKey.toOpenPgpPacket());
    await expect(sig.verify(keyPacket, openpgp.enums.signature.binary, await literal(Buffer.from('other')))).rejects.toThrow();
  });
});

describe('we verify signatures made by openpgp.js', () => {
  it('accepts its SHA-512 detached binary signature, salt notation and issuer fingerprint included', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 2048,
      userIDs: [{ name: 'interop' }],
      format: 'object',
      config: { preferredHashAlgorithm: openpgp.enums.hash.sha512 },
    });
    const content = Buffer.from('signed by openpgp.js\n');
    const detached = await openpgp.sign({
      message: await openpgp.createMessage({ binary: content }),
      signingKeys: privateKey,
      detached: true,
      format: 'binary',
      config: { preferredHashAlgorithm: openpgp.enums.hash.sha512 },
    });
    const packetBytes = Buffer.from(detached as Uint8Array);
    const sig = await readSignaturePacket(packetBytes);
    expect(sig.hashAlgorithm).toBe(openpgp.enums.hash.sha512);

    const { n, e } = privateKey.keyPacket.publicParams as { n: Uint8Array; e: Uint8Array };
    const ours = PublicKey.fromKeyObject(
      createPublicKey({ key: { kty: 'RSA', n: Buffer.from(n).toString('base64url'), e: Buffer.from(e).toString('base64url') }, format: 'jwk' }),
    );
    const signatureText = encodeV1(packetBytes);
    expect(() => ours.verify(content, signatureText)).not.toThrow();
    expect(() => ours.verify(Buffer.from('tampered\n'), signatureText)).toThrow(expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID' }));
  });
});

describeWithFixtures('openpgp.js on the Canonical root account-key', () => {
  const root = splitAssertion(readFixture('canonical-root.account-key'));

  it('agrees with our key id derivation input: the body is 0x01 || a packet openpgp.js reads as RSA-8192', async () => {
    const keyPacket = await readKeyPacket(decodeV1(root.body));
    expect(keyPacket.getAlgorithmInfo()).toEqual({ algorithm: 'rsaEncryptSign', bits: 8192 });
    expect(keyPacket.getKeyID().toHex().toUpperCase()).toBe(PublicKey.fromAccountKeyBody(root.body).openpgpKeyId);
  });

  it('verifies the self-signature only once told to ignore the mismatching issuer key id, as snapd does', async () => {
    const keyPacket = await readKeyPacket(decodeV1(root.body));
    const sig = await readSignaturePacket(decodeV1(root.signature));
    await expect(sig.verify(keyPacket, openpgp.enums.signature.binary, await literal(root.content))).rejects.toThrow(/not issued by the given public key/);
    // The issuer sits in the unhashed area, so replacing it does not touch the signed bytes.
    sig.issuerKeyID = keyPacket.getKeyID();
    await expect(sig.verify(keyPacket, openpgp.enums.signature.binary, await literal(root.content))).resolves.toBeUndefined();
  });
});
