import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type Assertion, PublicKey } from '@edgeimage/assertions';
import { UpdateError } from './errors.js';
import { MANIFEST_ENTRY, parseUpdateManifest, SIGNATURE_ENTRY, SLOT_PREFIX, type UpdateManifest } from './manifest.js';
import { readTar, readTarEntry } from './tar.js';

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

/**
 * Reads an update file: checks the entries are the manifest, its signature and slot files the
 * manifest lists (with the digests it gives), and, given keys, verifies the signature.
 */
export async function readUpdate(file: string, verifiers?: UpdateVerifier[]): Promise<UpdateInfo> {
  const entries = readTar(file);
  const bad = (why: string): never => {
    throw new UpdateError('ERR_UPDATE_FORMAT', `${file}: ${why}`, { file });
  };
  if (entries[0]?.name !== MANIFEST_ENTRY || entries[1]?.name !== SIGNATURE_ENTRY) bad(`expected ${MANIFEST_ENTRY} and ${SIGNATURE_ENTRY} as the first two entries, found ${entries.slice(0, 2).map((e) => e.name).join(', ') || 'nothing'}`);
  const manifestBytes = readTarEntry(file, entries[0]!);
  const sig = readTarEntry(file, entries[1]!, 64 << 10);
  const manifest = parseUpdateManifest(manifestBytes, `${file}:${MANIFEST_ENTRY}`);
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const included = new Set<string>();
  for (const e of entries.slice(2)) {
    if (e.type === 'directory' && (`${e.name.replace(/\/$/, '')}/` === SLOT_PREFIX || SLOT_PREFIX.startsWith(e.name))) continue;
    if (!e.name.startsWith(SLOT_PREFIX)) bad(`entry ${e.name} is outside ${SLOT_PREFIX}`);
    const path = e.name.slice(SLOT_PREFIX.length).replace(/\/$/, '');
    if (e.type === 'directory') continue;
    const f = listed.get(path);
    if (!f) bad(`entry ${e.name} is not in the manifest`);
    if (included.has(path)) bad(`entry ${e.name} appears twice`);
    const sha = await sha256Range(file, e.offset, e.size);
    if (e.size !== f!.size || sha !== f!.sha256) bad(`entry ${e.name} (${e.size} bytes, sha256 ${sha}) does not match the manifest (${f!.size} bytes, sha256 ${f!.sha256})`);
    included.add(path);
  }
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
