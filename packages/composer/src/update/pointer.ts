import { checkChannel } from '@edgeimage/store';
import { PointerError } from './errors.js';

/** One update a device may download: from its installed revision (`full`: from any), digest, size, store path. */
export interface PointerUpdate {
  /** The revision the update applies to, or `full` for the full update (any revision). */
  from: number | 'full';
  sha256: string;
  size: number;
  /** The update file in the store, relative to the store's root (`updates/…`). */
  path: string;
}

/**
 * A channel pointer: the signed, expiring statement "channel CH of BRAND/MODEL is at REVISION,
 * and these are its updates", the head of a channel in a store. The device fetches it, checks it
 * with `openssl dgst -sha256 -verify` over its exact bytes, and reads it with busybox.
 */
export interface ChannelPointer {
  'brand-id': string;
  model: string;
  /** The channel in its full form, `track/risk[/branch]` (`latest/stable`). */
  channel: string;
  revision: number;
  /**
   * The pointer's own counter, one higher on every release or re-sign of the channel: a device
   * refuses a pointer with a lower sequence than the last one it accepted (ERR_POINTER_ROLLBACK),
   * so that an older, still unexpired pointer of the same revision (a halted rollout, a replaced
   * delta) cannot be replayed.
   */
  sequence: number;
  /** After this instant the pointer is refused (a store or mirror replaying it: a freeze). Whole seconds. */
  expires: Date;
  /** Percentage (0–100) of the devices that take the revision. */
  rollout: number;
  /** The id of the key that signs it (a pointer-only account-key of the brand). */
  'sign-key-sha3-384': string;
  /** The full update first, then deltas by from-revision, each lower than `revision`. */
  updates: PointerUpdate[];
}

export const POINTER_FORMAT = 1;
/** The largest pointer accepted: a device reads it into memory before it is verified. */
export const POINTER_MAX_BYTES = 16 * 1024;
/** The largest signature file accepted (an RSA-4096 signature is 512 bytes). */
export const POINTER_SIG_MAX_BYTES = 1024;
/** At most this many `update` lines (one full update and deltas from earlier revisions). */
export const POINTER_MAX_UPDATES = 64;
/** Bytes of an update a pointer may name (1 TiB): a bound the device can hold a download to. */
export const POINTER_MAX_UPDATE_SIZE = 2 ** 40;
export const POINTER_MAX_PATH = 255;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const KEY_ID = /^[A-Za-z0-9_-]{64}$/;
const REVISION = /^(0|[1-9]\d{0,15})$/;
const SIZE = /^[1-9]\d{0,15}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ROLLOUT = /^(0|[1-9]\d?|100)$/;
const EXPIRES = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
// A store path: '/'-separated names the device's shell and a URL need never quote, none of them
// starting with '.' or '-' (no name a command could read as an option), and no `..` anywhere (the
// device's `case *..*` refuses it, as for slot paths).
const PATH = /^[A-Za-z0-9_][A-Za-z0-9._+-]*(\/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$/;

/** The header lines, in this order, before the `update` lines. */
export const POINTER_FIELDS = ['edgeimage-pointer', 'brand-id', 'model', 'channel', 'revision', 'sequence', 'expires', 'rollout', 'sign-key-sha3-384'] as const;

/**
 * `2026-06-01T00:00:00Z`: RFC 3339 in UTC, whole seconds. Fixed width, so two such times compare
 * as strings in time order (busybox `[ "$exp" \> "$now" ]` with `now=$(date -u +%Y-%m-%dT%H:%M:%SZ)`).
 * Busybox `date -u -d` does not read this form ("invalid date"), and with `-D` it normalises
 * 02-30 and 23:59:60 where the parser refuses them: a device checks the form, then compares strings.
 */
export function formatExpires(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Why a pointer `update` path is not in its canonical form, or undefined. */
export function pointerPathProblem(path: string): string | undefined {
  if (path.length > POINTER_MAX_PATH) return `is ${path.length} characters, more than ${POINTER_MAX_PATH}`;
  if (path.includes('..')) return 'contains ..';
  if (!PATH.test(path)) return "is not a relative store path of '/'-separated names of [A-Za-z0-9._+-], none empty or starting with '.' or '-'";
  return undefined;
}

const fromOrder = (u: PointerUpdate) => (u.from === 'full' ? -1 : u.from);

/**
 * The pointer's bytes: the text the signature covers. Throws ERR_POINTER_MALFORMED for a value
 * the parser would refuse, so that nothing is signed that a device cannot read.
 *
 * ```ts
 * const bytes = encodeChannelPointer({ 'brand-id': 'acme', model: 'edge-pc', channel: 'latest/stable', revision: 2, sequence: 5,
 *   expires: new Date('2026-06-08T00:00:00Z'), rollout: 100, 'sign-key-sha3-384': key.publicKey.id,
 *   updates: [{ from: 'full', sha256, size, path: 'updates/acme.edge-pc.2.full.update' }] });
 * ```
 */
export function encodeChannelPointer(p: ChannelPointer): Buffer {
  const updates = [...p.updates].sort((a, b) => fromOrder(a) - fromOrder(b));
  const lines = [
    `edgeimage-pointer: ${POINTER_FORMAT}`,
    `brand-id: ${p['brand-id']}`,
    `model: ${p.model}`,
    `channel: ${p.channel}`,
    `revision: ${p.revision}`,
    `sequence: ${p.sequence}`,
    `expires: ${formatExpires(p.expires)}`,
    `rollout: ${p.rollout}`,
    `sign-key-sha3-384: ${p['sign-key-sha3-384']}`,
    ...updates.map((u) => `update: ${u.from} ${u.sha256} ${u.size} ${u.path}`),
  ];
  const bytes = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
  // One set of rules: what is encoded must parse back to the same pointer.
  parseChannelPointer(bytes, 'the pointer being written');
  return bytes;
}

/**
 * Parses a pointer strictly: every line in its place, every value in its domain and bounds; what
 * the device's shell could read differently is refused (ERR_POINTER_MALFORMED, naming the file,
 * the line, the field, what was expected and what was found). Parsing is not verifying: see
 * `verifyChannelPointer`.
 */
export function parseChannelPointer(bytes: Buffer, file = 'channel pointer'): ChannelPointer {
  const fail = (line: number, field: string, expected: string, found: string): never => {
    throw new PointerError('ERR_POINTER_MALFORMED', `${file}: line ${line}: ${field}: expected ${expected}, found ${found}`, { file, line, field, expected, found });
  };
  if (bytes.length > POINTER_MAX_BYTES) {
    throw new PointerError('ERR_POINTER_MALFORMED', `${file}: the pointer is ${bytes.length} bytes, more than the ${POINTER_MAX_BYTES} allowed`, { file, field: 'size', expected: `at most ${POINTER_MAX_BYTES} bytes`, found: bytes.length });
  }
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) fail(1, 'text', 'UTF-8 text', 'bytes that are not UTF-8');
  if (!text.endsWith('\n')) fail(text.split('\n').length, 'text', 'a final newline', 'none');
  const bad = /[^\x20-\x7e\n]/.exec(text);
  if (bad) fail(text.slice(0, bad.index).split('\n').length, 'text', 'printable ASCII and LF line ends', JSON.stringify(bad[0]));
  const lines = text.slice(0, -1).split('\n');
  const updateLines = lines.length - POINTER_FIELDS.length;
  if (updateLines > POINTER_MAX_UPDATES) fail(POINTER_FIELDS.length + POINTER_MAX_UPDATES + 1, 'update', `at most ${POINTER_MAX_UPDATES} update lines`, `${updateLines}`);
  const value = (i: number, key: string, re: RegExp, what: string): string => {
    const l = lines[i];
    if (l === undefined || !l.startsWith(`${key}: `)) return fail(i + 1, key, `"${key}: …"`, JSON.stringify(l ?? 'the end of the pointer'));
    const v = l.slice(key.length + 2);
    if (!re.test(v)) return fail(i + 1, key, what, JSON.stringify(v));
    return v;
  };
  const format = value(0, 'edgeimage-pointer', /^\d{1,4}$/, `${POINTER_FORMAT}`);
  // Exactly `1`: a device's `[ "$f" = 1 ]` and `-eq 1` must agree (`01` is not format 1).
  if (format !== String(POINTER_FORMAT)) fail(1, 'edgeimage-pointer', `format ${POINTER_FORMAT} (the one this edgeimage reads)`, format);
  const brand = value(1, 'brand-id', NAME, 'an account id ([A-Za-z0-9._+-], at most 128)');
  const model = value(2, 'model', NAME, 'a model name ([A-Za-z0-9._+-], at most 128)');
  const channel = value(3, 'channel', /^[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$/, 'a channel track/risk[/branch]');
  let full: string;
  try {
    full = checkChannel(channel);
  } catch (e) {
    return fail(4, 'channel', 'a channel track/risk[/branch]', `${JSON.stringify(channel)} (${(e as Error).message})`);
  }
  if (full !== channel) fail(4, 'channel', `the channel in its full form (${full})`, JSON.stringify(channel));
  const revision = Number(value(4, 'revision', REVISION, 'a revision number (0 or more, no leading zero)'));
  if (!Number.isSafeInteger(revision)) fail(5, 'revision', `at most ${Number.MAX_SAFE_INTEGER}`, `${revision}`);
  const sequence = Number(value(5, 'sequence', REVISION, 'a sequence number (0 or more, no leading zero)'));
  if (!Number.isSafeInteger(sequence)) fail(6, 'sequence', `at most ${Number.MAX_SAFE_INTEGER}`, `${sequence}`);
  const expiresText = value(6, 'expires', EXPIRES, 'a UTC RFC 3339 time to the second (2026-06-08T00:00:00Z)');
  const expires = new Date(expiresText);
  if (Number.isNaN(expires.getTime()) || formatExpires(expires) !== expiresText) fail(7, 'expires', 'a real UTC time to the second', JSON.stringify(expiresText));
  const rollout = Number(value(7, 'rollout', ROLLOUT, 'a percentage from 0 to 100'));
  const keyId = value(8, 'sign-key-sha3-384', KEY_ID, 'a key id (64 base64url characters)');
  const updates: PointerUpdate[] = [];
  for (let i = POINTER_FIELDS.length; i < lines.length; i++) {
    const l = lines[i]!;
    const n = i + 1;
    const m = /^update: (\S+) (\S+) (\S+) (\S+)$/.exec(l);
    if (!m) fail(n, 'update', '"update: FROM-REVISION SHA256 SIZE PATH"', JSON.stringify(l));
    const [, fromText, sha256, sizeText, path] = m!;
    if (fromText !== 'full' && !REVISION.test(fromText!)) fail(n, 'update', 'a from-revision: "full" or a revision number', JSON.stringify(fromText));
    const from = fromText === 'full' ? 'full' : Number(fromText);
    if (from !== 'full' && !(from < revision)) fail(n, 'update', `a from-revision lower than the pointer's revision ${revision}`, `${from}`);
    if (!SHA256.test(sha256!)) fail(n, 'update', 'a sha256 (64 lower-case hex digits)', JSON.stringify(sha256));
    if (!SIZE.test(sizeText!) || Number(sizeText) > POINTER_MAX_UPDATE_SIZE) fail(n, 'update', `a size from 1 to ${POINTER_MAX_UPDATE_SIZE} bytes`, JSON.stringify(sizeText));
    const problem = pointerPathProblem(path!);
    if (problem) fail(n, 'update', 'a canonical store path', `${JSON.stringify(path)}, which ${problem}`);
    const prev = updates.at(-1);
    if (prev ? !(fromOrder(prev) < (from === 'full' ? -1 : from)) : from !== 'full') {
      fail(n, 'update', 'the full update first, then deltas by increasing from-revision, each once', `from ${fromText} after ${prev ? `from ${prev.from}` : 'no full update'}`);
    }
    updates.push({ from, sha256: sha256!, size: Number(sizeText), path: path! });
  }
  if (updates.length === 0) fail(lines.length + 1, 'update', 'at least the full update ("update: full …")', 'none');
  return { 'brand-id': brand, model, channel, revision, sequence, expires, rollout, 'sign-key-sha3-384': keyId, updates };
}
