import { verify } from 'node:crypto';
import { CHANNEL_POINTER_TYPE, SigningKey, TrustDatabase, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { signManifest } from './create.js';
import { PointerError } from './errors.js';
import { formatExpires, parseChannelPointer, POINTER_SIG_MAX_BYTES, type ChannelPointer } from './pointer.js';

/** What the caller expects of a pointer besides a good signature. */
export interface PointerCheck {
  /** The time of checking (default now): a pointer whose `expires` is not after it is refused. */
  now?: Date;
  /** The revision installed: a pointer to a lower revision is refused (ERR_POINTER_ROLLBACK). */
  installedRevision?: number;
  /**
   * The last pointer accepted for this channel (what a device keeps): a pointer with a lower
   * sequence, or to a lower revision, is refused (ERR_POINTER_ROLLBACK), so that an older pointer
   * that has not expired yet (a halted rollout, a replaced delta) cannot be replayed. The same
   * sequence is accepted: it is the same pointer, fetched again.
   */
  lastAccepted?: Pick<ChannelPointer, 'revision' | 'sequence'>;
  /**
   * Accept a pointer past its expiry (everything else is checked): for the publisher re-signing a
   * head that expired (`channel resign`), never for a device.
   */
  acceptExpired?: boolean;
  /** When given, a pointer for another brand, model or channel is refused (ERR_POINTER_MISMATCH). */
  brandId?: string;
  model?: string;
  channel?: string;
}

export interface PointerInput {
  bytes: Buffer;
  signature: Buffer;
  /** Where the pointer and its signature were read from, for messages. */
  file: string;
  signatureFile?: string;
}

export interface VerifiedPointer {
  pointer: ChannelPointer;
  /** The pointer-only account-key that signed it. */
  key: SigningKey;
}

/**
 * RSA PKCS#1 v1.5 over SHA-256 of the pointer's exact bytes, as for an update manifest: what
 * `openssl dgst -sha256 -verify PUB.pem -signature POINTER.sig POINTER` checks on the device.
 */
export function signChannelPointer(bytes: Buffer, key: PrivateKey): Buffer {
  return signManifest(bytes, key);
}

/**
 * Why `key` may not sign this pointer, or undefined: it must be an account-key of the pointer's
 * brand, valid at `at`, constrained to sign channel pointers only (so that the brand's model key,
 * which signs what devices install, can stay offline while the pointer is re-signed every few
 * days), and its constraints must admit this model and channel.
 */
export function pointerKeyProblem(key: SigningKey, p: Pick<ChannelPointer, 'brand-id' | 'model' | 'channel'>, at: Date): string | undefined {
  const declared = JSON.stringify(key.assertion.headers['constraints'] ?? null);
  if (key.accountId !== p['brand-id']) return `it is a key of "${key.accountId}", not of the brand "${p['brand-id']}"`;
  if (!key.constraints) return `it is an unconstrained key of "${key.accountId}" (it may sign models); pointers are signed by a key whose account-key constraints are of type ${CHANNEL_POINTER_TYPE} only, so that the model key can stay offline`;
  if (!key.constraints.pointerOnly) return `its constraints ${declared} admit more than channel pointers; a pointer key's constraints are all of type ${CHANNEL_POINTER_TYPE}`;
  if (!key.constraints.allowsHeaders({ type: CHANNEL_POINTER_TYPE, 'brand-id': p['brand-id'], model: p.model, channel: p.channel })) return `its constraints ${declared} do not admit model ${p.model} channel ${p.channel}`;
  if (!key.isValidAt(at)) return `it is not valid at ${formatExpires(at)} (valid since ${formatExpires(key.since)}${key.until ? ` until ${formatExpires(key.until)}` : ''})`;
  return undefined;
}

/**
 * The account-keys usable for checking pointers: the trusted ones (anchors, taken as given) and
 * those among `others` whose chain to an anchor verifies at `at`. Other assertion types and keys
 * that do not verify are left out.
 *
 * ```ts
 * const keys = trustedSigningKeys(anchors, [brandAccount, pointerAccountKey], new Date());
 * ```
 */
export function trustedSigningKeys(anchors: readonly Assertion[], others: readonly Assertion[], at: Date): SigningKey[] {
  const db = new TrustDatabase({ trusted: anchors.filter((a) => a.type === 'account' || a.type === 'account-key'), at });
  db.addAll(others.filter((a) => a.type === 'account' || a.type === 'account-key'));
  const keys = new Map<string, SigningKey>();
  for (const a of [...anchors.filter((x) => x.type === 'account-key'), ...db.all('account-key')]) {
    const k = SigningKey.fromAccountKey(a);
    keys.set(k.id, k);
  }
  return [...keys.values()];
}

/**
 * Checks a channel pointer as a device does, and returns it: the format (ERR_POINTER_MALFORMED),
 * the brand, model and channel asked for (ERR_POINTER_MISMATCH), the key it names among `keys`
 * (ERR_POINTER_KEY_NOT_ALLOWED: absent, another brand's, unconstrained, not pointer-only, not
 * valid now), the signature over its exact bytes (ERR_POINTER_SIGNATURE), its expiry
 * (ERR_POINTER_EXPIRED) and, given the installed revision or the last pointer accepted,
 * anti-rollback and anti-replay (ERR_POINTER_ROLLBACK).
 *
 * ```ts
 * const { pointer } = verifyChannelPointer({ bytes, signature, file: 'channels/acme.edge-pc.latest+stable.pointer' }, keys, { installedRevision: 2 });
 * pointer.updates.find((u) => u.from === 2) ?? pointer.updates[0]; // the delta for revision 2, else the full update
 * ```
 */
export function verifyChannelPointer(input: PointerInput, keys: readonly SigningKey[], check: PointerCheck = {}): VerifiedPointer {
  const { file } = input;
  const sigFile = input.signatureFile ?? `${file}.sig`;
  const now = check.now ?? new Date();
  const bound = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new TypeError(`verifyChannelPointer: ${name}: expected a revision or sequence number (a safe integer, 0 or more), found ${v}`);
  };
  bound('installedRevision', check.installedRevision);
  bound('lastAccepted.revision', check.lastAccepted?.revision);
  bound('lastAccepted.sequence', check.lastAccepted?.sequence);
  if (input.signature.length === 0 || input.signature.length > POINTER_SIG_MAX_BYTES) {
    throw new PointerError('ERR_POINTER_MALFORMED', `${sigFile}: signature: expected 1 to ${POINTER_SIG_MAX_BYTES} bytes, found ${input.signature.length}`, { file: sigFile, field: 'signature', expected: `1 to ${POINTER_SIG_MAX_BYTES} bytes`, found: input.signature.length });
  }
  const p = parseChannelPointer(input.bytes, file);
  for (const [field, want, found] of [['brand-id', check.brandId, p['brand-id']], ['model', check.model, p.model], ['channel', check.channel, p.channel]] as const) {
    if (want !== undefined && want !== found) {
      throw new PointerError('ERR_POINTER_MISMATCH', `${file}: ${field}: expected ${want}, found ${found}: the pointer is for another ${field === 'brand-id' ? 'brand' : field}`, { file, field, expected: want, found });
    }
  }
  const keyId = p['sign-key-sha3-384'];
  const key = keys.find((k) => k.id === keyId);
  if (!key) {
    const ofBrand = keys.filter((k) => k.accountId === p['brand-id']).map((k) => k.id);
    throw new PointerError(
      'ERR_POINTER_KEY_NOT_ALLOWED',
      `${file}: sign-key-sha3-384: expected a trusted account-key of "${p['brand-id']}" constrained to sign pointers, found ${keyId}, which is not among the trusted account-keys (of "${p['brand-id']}": ${ofBrand.length ? ofBrand.join(', ') : 'none'})`,
      { file, field: 'sign-key-sha3-384', expected: ofBrand, found: keyId },
    );
  }
  const problem = pointerKeyProblem(key, p, now);
  if (problem) {
    throw new PointerError('ERR_POINTER_KEY_NOT_ALLOWED', `${file}: sign-key-sha3-384: expected a pointer-only account-key of "${p['brand-id']}", found ${keyId}: ${problem}`, { file, field: 'sign-key-sha3-384', expected: 'a pointer-only key', found: keyId });
  }
  let ok = false;
  try {
    ok = verify('sha256', input.bytes, key.publicKey.keyObject, input.signature);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new PointerError('ERR_POINTER_SIGNATURE', `${sigFile}: signature: expected an RSA SHA-256 signature of ${file} by key ${keyId} of "${key.accountId}", found one that does not verify over its bytes`, { file: sigFile, field: 'signature', expected: keyId, found: 'a signature that does not verify' });
  }
  if (!check.acceptExpired && !(p.expires.getTime() > now.getTime())) {
    throw new PointerError(
      'ERR_POINTER_EXPIRED',
      `${file}: expires: expected a time after ${formatExpires(now)} (now), found ${formatExpires(p.expires)}: the pointer has expired (a store or mirror that keeps serving an old pointer is not trusted); the channel's publisher re-signs it with channel resign, or releases a new revision with update release`,
      { file, field: 'expires', expected: `after ${formatExpires(now)}`, found: formatExpires(p.expires) },
    );
  }
  if (check.installedRevision !== undefined && p.revision < check.installedRevision) {
    throw new PointerError(
      'ERR_POINTER_ROLLBACK',
      `${file}: revision: expected at least the installed revision ${check.installedRevision}, found ${p.revision}: a pointer to a lower revision is refused (anti-rollback)`,
      { file, field: 'revision', expected: `>= ${check.installedRevision}`, found: p.revision },
    );
  }
  const last = check.lastAccepted;
  if (last && p.revision < last.revision) {
    throw new PointerError(
      'ERR_POINTER_ROLLBACK',
      `${file}: revision: expected at least the revision ${last.revision} of the last pointer accepted, found ${p.revision}: a pointer to a lower revision is refused (anti-rollback)`,
      { file, field: 'revision', expected: `>= ${last.revision}`, found: p.revision },
    );
  }
  if (last && p.sequence < last.sequence) {
    throw new PointerError(
      'ERR_POINTER_ROLLBACK',
      `${file}: sequence: expected at least the sequence ${last.sequence} of the last pointer accepted, found ${p.sequence}: an older pointer is refused (a replay: the channel has been released or re-signed since)`,
      { file, field: 'sequence', expected: `>= ${last.sequence}`, found: p.sequence },
    );
  }
  return { pointer: p, key };
}
