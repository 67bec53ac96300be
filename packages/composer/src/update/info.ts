import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type Assertion, PublicKey } from '@edgeimage/assertions';
import { UpdateError } from './errors.js';
import { MANIFEST_ENTRY, parseUpdateManifest, SIGNATURE_ENTRY, SLOT_PREFIX, type UpdateManifest } from './manifest.js';
import { readTar, readTarEntry, type TarEntry } from './tar.js';

/** A key `update info` may check the signature with. */
export interface UpdateVerifier {
  /** For messages: the file and, for account-keys, the account. */
  name: string;
  /** snapd's key id, when known (account-keys). */
  keyId?: string;
  key: KeyObject;
}

export interface UpdateInfo {
  file: string;
  manifest: UpdateManifest;
  /** Manifest files, each with whether its bytes are in the update (and match the manifest). */
  files: { path: string; sha256: string; size: number; included: boolean }[];
  bytes: number;
  fullBytes: number;
  signature: { checked: false } | { checked: true; valid: boolean; by?: string };
}

/** Verifiers from account-key assertions (others in the list are ignored). */
export function verifiersFromAssertions(assertions: Assertion[], source: string): UpdateVerifier[] {
  return assertions
    .filter((a) => a.type === 'account-key' && a.body)
    .map((a) => ({ name: `${source}: account-key of ${a.header('account-id')}`, keyId: a.header('public-key-sha3-384'), key: PublicKey.fromAccountKeyBody(a.body!.toString()).keyObject }));
}

/** A verifier from a PEM public key (what the device trust store holds). */
export function verifierFromPem(pem: string, source: string): UpdateVerifier {
  return { name: source, key: createPublicKey(pem) };
}

/** An update file's entries, checked against its manifest (digests not yet computed). */
export interface UpdateLayout {
  file: string;
  /** The manifest's exact bytes: what the signature covers and what was parsed. */
  manifestBytes: Buffer;
  signature: Buffer;
  manifest: UpdateManifest;
  /** The slot entries, by slot path. */
  carried: Map<string, TarEntry>;
}

/**
 * The structure of an update file, as the device checks it before anything else: the manifest,
 * its signature, then `slot/PATH` entries, each a regular file named once, in canonical form, and
 * listed by the manifest (typed `ERR_UPDATE_*` errors otherwise). The manifest is parsed from the
 * very bytes returned for the signature check.
 */
export function readUpdateLayout(file: string): UpdateLayout {
  const entries = readTar(file);
  const entryError = (code: string, e: TarEntry, why: string): never => {
    throw new UpdateError(code, `${file}: entry ${e.name} ${why}`, { file, entry: e.name, offset: e.offset });
  };
  const [first, second] = entries;
  if (first?.name !== MANIFEST_ENTRY || second?.name !== SIGNATURE_ENTRY) {
    const found = entries.slice(0, 2).map((e) => e.name).join(', ') || 'nothing';
    throw new UpdateError('ERR_UPDATE_ENTRY_NAME', `${file}: expected ${MANIFEST_ENTRY} and ${SIGNATURE_ENTRY} as the first two entries, found ${found}`, { file, entry: found });
  }
  const manifestBytes = readTarEntry(file, first, 1 << 20);
  const signature = readTarEntry(file, second, 64 << 10);
  const manifest = parseUpdateManifest(manifestBytes, `${file}:${MANIFEST_ENTRY}`);
  const listed = new Set(manifest.files.map((f) => f.path));
  const carried = new Map<string, TarEntry>();
  for (const e of entries.slice(2)) {
    if (e.name === MANIFEST_ENTRY || e.name === SIGNATURE_ENTRY) entryError('ERR_UPDATE_ENTRY_DUPLICATE', e, 'appears twice');
    if (!e.name.startsWith(SLOT_PREFIX)) entryError('ERR_UPDATE_ENTRY_NAME', e, `is neither the manifest, its signature nor a file under ${SLOT_PREFIX}`);
    const path = e.name.slice(SLOT_PREFIX.length);
    if (carried.has(path)) entryError('ERR_UPDATE_ENTRY_DUPLICATE', e, 'appears twice');
    if (!listed.has(path)) entryError('ERR_UPDATE_ENTRY_UNLISTED', e, 'is in the update but not in its manifest');
    carried.set(path, e);
  }
  return { file, manifestBytes, signature, manifest, carried };
}

/**
 * Reads an update file: checks its layout (readUpdateLayout), that each slot entry has the
 * digest and size the manifest gives, and, given keys, verifies the signature.
 */
export async function readUpdate(file: string, verifiers?: UpdateVerifier[]): Promise<UpdateInfo> {
  const { manifestBytes, signature: sig, manifest, carried } = readUpdateLayout(file);
  const byPath = new Map(manifest.files.map((f) => [f.path, f]));
  for (const [path, e] of carried) {
    const f = byPath.get(path)!;
    const sha = await sha256Range(file, e.offset, e.size);
    if (e.size !== f.size || sha !== f.sha256) throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: entry ${e.name} (${e.size} bytes, sha256 ${sha}) does not match the manifest (${f.size} bytes, sha256 ${f.sha256})`, { file, entry: e.name });
  }
  const included = new Set(carried.keys());
  const files = manifest.files.map((f) => ({ ...f, included: included.has(f.path) }));
  let signature: UpdateInfo['signature'] = { checked: false };
  if (verifiers?.length) {
    // The key the manifest names first; the others too, since a PEM carries no snapd key id.
    const ordered = [...verifiers].sort((a, b) => Number(b.keyId === manifest['sign-key-sha3-384']) - Number(a.keyId === manifest['sign-key-sha3-384']));
    const by = ordered.find((v) => verifies(manifestBytes, v.key, sig));
    signature = by ? { checked: true, valid: true, by: by.name } : { checked: true, valid: false };
  }
  return {
    file,
    manifest,
    files,
    bytes: files.filter((f) => f.included).reduce((n, f) => n + f.size, 0),
    fullBytes: files.reduce((n, f) => n + f.size, 0),
    signature,
  };
}

function verifies(data: Buffer, key: KeyObject, sig: Buffer): boolean {
  try {
    return verify('sha256', data, key, sig);
  } catch {
    // A key of another kind (EC PEM) or a malformed signature: not a valid signature by this key.
    return false;
  }
}

async function sha256Range(file: string, start: number, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size > 0) for await (const chunk of createReadStream(file, { start, end: start + size - 1, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
