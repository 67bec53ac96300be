/**
 * The db RSA key as GRUB's OpenPGP key: GRUB 2.06 can only chainload under Secure Boot without
 * shim when its `pgp` verifier checks a detached signature, so the UKIs get one, made with the
 * same key that Authenticode-signs them. The packets are the assertions package's (v4, RSA,
 * SHA-512, creation time hashed, issuer key id unhashed: the only area GRUB looks for it in),
 * re-framed with old-format headers: GRUB 2.06 misreads new-format two-octet lengths.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { PrivateKey, PublicKey } from '@edgeimage/assertions';
import { ComposeError } from '../../errors.js';

/**
 * The signatures' creation time, fixed so the same file signs to the same bytes. It is the key
 * packet's creation time (the assertions package's fixed one): gpg refuses a signature older
 * than its key.
 */
const SIGNATURE_TIME = new Date(0x5685c180 * 1000);

function rsaPrivate(key: KeyObject): PrivateKey {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') {
    throw new ComposeError('ERR_SIGNER_KEY', `GRUB's OpenPGP key must be a private RSA key, got a ${key.type} ${key.asymmetricKeyType ?? ''} key`);
  }
  return PrivateKey.fromKeyObject(key);
}

/** A new-format packet (as the assertions package writes them) with an old-format header: tag, 2-octet length. */
function oldFormat(packet: Buffer): Buffer {
  const first = packet[0] ?? 0;
  const l0 = packet[1] ?? 0;
  let header: number;
  let length: number;
  if ((first & 0xc0) !== 0xc0 || packet.length < 2) throw new Error('expected a new-format OpenPGP packet');
  if (l0 < 192) [header, length] = [2, l0];
  else if (l0 < 224) [header, length] = [3, ((l0 - 192) << 8) + (packet[2] ?? 0) + 192];
  else if (l0 === 255) [header, length] = [6, packet.readUInt32BE(2)];
  else throw new Error('unexpected partial-length OpenPGP packet');
  if (header + length !== packet.length || length > 0xffff) throw new Error(`OpenPGP packet length ${length} does not match its ${packet.length} bytes`);
  const tag = first & 0x3f;
  return Buffer.concat([Buffer.from([0x80 | (tag << 2) | 1, length >> 8, length & 0xff]), packet.subarray(header)]);
}

/**
 * GRUB's `--pubkey` file: a lone v4 public-key packet of `key` (no user id or self-signature:
 * GRUB reads neither). Its key id is the issuer of {@link grubSignature}'s signatures.
 *
 * @example
 * writeFileSync('pubkey.pgp', grubPublicKey(signer.key));   // grub-mkimage --pubkey pubkey.pgp
 */
export function grubPublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'rsa' || key.type === 'secret') {
    throw new ComposeError('ERR_SIGNER_KEY', `GRUB's OpenPGP key must be an RSA key, got a ${key.type} ${key.asymmetricKeyType ?? ''} key`);
  }
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return oldFormat(PublicKey.fromKeyObject(pub).toOpenPgpPacket());
}

/**
 * A detached binary OpenPGP signature of `data` (`FILE.sig` next to FILE), SHA-512 (GRUB hashes
 * a UKI in software; SHA-512 is the faster one on 64-bit), deterministic.
 *
 * @example
 * writeFileSync('uki.efi.sig', grubSignature(uki, signer.key));
 */
export function grubSignature(data: Buffer, key: KeyObject): Buffer {
  const text = rsaPrivate(key).sign(data, SIGNATURE_TIME);
  // snapd's v1 envelope: base64 of 0x01 || the packet.
  const envelope = Buffer.from(text.replace(/\n/g, ''), 'base64');
  if (envelope[0] !== 0x01) throw new Error('unexpected signature envelope from PrivateKey.sign');
  return oldFormat(envelope.subarray(1));
}
