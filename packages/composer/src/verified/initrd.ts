/**
 * The signed part of a verified slot's initrd: a small uncompressed newc cpio that goes with the
 * kernel bundle's (gzip) initrd inside the UKI / FIT ({@link verifiedInitrd} joins them). Linux
 * unpacks concatenated archives in order, so the initramfs /init finds these files next to its
 * own; being inside the signed payload, they are what the device trusts instead of the slot's
 * unsigned boot/slot.env:
 *
 * - `/etc/edgeimage/verified.env`: `EDGE_VERIFIED=1` and the slot.env variables (EDGE_BASE,
 *   EDGE_AGENT, EDGE_KERNEL, EDGE_APPS, EDGE_GRADE), sourced by /init;
 * - `/etc/edgeimage/verity.list`: one line `FILE DATA_BLOCKS ROOT_HEX SALT_HEX` per bundle the
 *   device mounts (the base first, then the agent, the kernel, then the apps in order): /init opens each FILE of the slot
 *   through dm-verity (format 1, sha256, 4096/4096) with FILE.verity as the hash device.
 *
 * Errors: `ERR_VERIFIED_PAYLOAD` (a value the device would reject or misread; `context.field`).
 */
import { ComposeError } from '../errors.js';
import { gunzipSync } from 'node:zlib';
import { cpioBytes } from '../initramfs/cpio.js';
import { INITRAMFS_FEATURES_PATH } from '../initramfs/build.js';
import { MAX_VERITY_DATA_BYTES, VERITY_BLOCK_SIZE, VERITY_HASH_ALGORITHM, type BundleVerityEntry } from '../verity/index.js';

export interface VerifiedInitrdOptions {
  /** The model's grade. */
  grade: string;
  /** The base bundle in the slot, `bundles/<name>_<revision>.snap`. */
  base: string;
  /** The device agent bundle in the slot (the model's snapd-type snap), `bundles/<name>_<revision>.snap`. */
  agent: string;
  /** The kernel bundle in the slot (mounted for its modules/), `bundles/<name>_<revision>.snap`. */
  kernel: string;
  /** The app bundles in the slot, in mount order. */
  apps: readonly string[];
  /**
   * The slot's verity entries (the composer's, one per bundle), all checked. The gadget's is left
   * out of the list: the device never mounts it, and reading it would only cost boot time.
   */
  verity: readonly BundleVerityEntry[];
  /** The boot key's public half (PEM): the device's updater checks a new slot's payload with it. */
  payloadKey?: string;
}

const GRADES = ['secured', 'signed', 'dangerous'];
/** A slot bundle path as the composer names them (no quoting needed in sh, no `..`). */
const BUNDLE_FILE = /^bundles\/([a-z0-9-]{2,40})_([0-9]{1,10})\.snap$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** More apps than any model lists; bounds the list the device reads. */
const MAX_APPS = 256;
const MAX_DATA_BLOCKS = MAX_VERITY_DATA_BYTES / VERITY_BLOCK_SIZE;

const fail = (field: string, message: string, found: unknown): never => {
  throw new ComposeError('ERR_VERIFIED_PAYLOAD', `verified boot payload: ${field}: ${message}, found ${JSON.stringify(found)}`, { field, found });
};

function checkBundleFile(field: string, file: unknown): string {
  if (typeof file !== 'string' || file.length > 128) return fail(field, 'expected a bundle path bundles/<name>_<revision>.snap', file);
  const m = BUNDLE_FILE.exec(file);
  const name = m?.[1] ?? '';
  // the snap name rule: a letter somewhere, no dash at either end or twice in a row
  if (!m || !/[a-z]/.test(name) || name.startsWith('-') || name.endsWith('-') || name.includes('--')) {
    return fail(field, 'expected a bundle path bundles/<name>_<revision>.snap (a snap name: 2-40 lower-case letters, digits and single inner dashes)', file);
  }
  return file;
}

function checkEntry(field: string, e: BundleVerityEntry): string {
  const where = `${field} (${e.file})`;
  if (e.version !== 1) fail(`${where} version`, 'expected dm-verity format 1', e.version);
  if (e['hash-algorithm'] !== VERITY_HASH_ALGORITHM) fail(`${where} hash-algorithm`, `expected ${VERITY_HASH_ALGORITHM}`, e['hash-algorithm']);
  if (e['data-block-size'] !== VERITY_BLOCK_SIZE) fail(`${where} data-block-size`, `expected ${VERITY_BLOCK_SIZE}`, e['data-block-size']);
  if (e['hash-block-size'] !== VERITY_BLOCK_SIZE) fail(`${where} hash-block-size`, `expected ${VERITY_BLOCK_SIZE}`, e['hash-block-size']);
  const blocks = e['data-blocks'];
  if (!Number.isSafeInteger(blocks) || blocks < 1 || blocks > MAX_DATA_BLOCKS) fail(`${where} data-blocks`, `expected a whole number of blocks from 1 to ${MAX_DATA_BLOCKS}`, blocks);
  if (typeof e['root-hash'] !== 'string' || !HEX64.test(e['root-hash'])) fail(`${where} root-hash`, 'expected 64 lower-case hex digits (sha256)', e['root-hash']);
  if (typeof e.salt !== 'string' || !HEX64.test(e.salt)) fail(`${where} salt`, 'expected 64 lower-case hex digits', e.salt);
  return `${e.file.slice(0, -'.verity'.length)} ${blocks} ${e['root-hash']} ${e.salt}\n`;
}

/**
 * The cpio (uncompressed newc, mtime 0, owner 0:0) to append to the kernel bundle's initrd of a
 * verified slot. Every value is checked: a bad one fails the build here, not the device at boot.
 *
 * ```ts
 * const initrd = Buffer.concat([readFileSync('slot/boot/initrd.img'), verifiedInitrdPart({ grade: 'signed', base: 'bundles/base_3.snap', apps: [], verity })]);
 * ```
 */
export function verifiedInitrdPart(opts: VerifiedInitrdOptions): Buffer {
  if (!GRADES.includes(opts.grade)) fail('grade', `expected one of ${GRADES.join(', ')}`, opts.grade);
  const base = checkBundleFile('base', opts.base);
  const agent = checkBundleFile('agent', opts.agent);
  const kernel = checkBundleFile('kernel', opts.kernel);
  if (!Array.isArray(opts.apps) || opts.apps.length > MAX_APPS) fail('apps', `expected a list of at most ${MAX_APPS} bundle paths`, Array.isArray(opts.apps) ? opts.apps.length : opts.apps);
  const apps = opts.apps.map((a, i) => checkBundleFile(`apps[${i}]`, a));
  const mounted = [base, agent, kernel, ...apps];
  const names = new Map<string, string>();
  for (const f of mounted) {
    // /init names the dm device and the app's mount point after the bundle's name
    const name = BUNDLE_FILE.exec(f)![1]!;
    if (names.has(name)) fail('apps', `two bundles of one name (${names.get(name)} and ${f})`, f);
    names.set(name, f);
  }
  const lines = new Map<string, string>();
  if (!Array.isArray(opts.verity) || opts.verity.length > MAX_APPS + 4) fail('verity', `expected a list of at most ${MAX_APPS + 4} entries`, Array.isArray(opts.verity) ? opts.verity.length : opts.verity);
  for (const [i, e] of opts.verity.entries()) {
    if (typeof e?.file !== 'string' || !e.file.endsWith('.snap.verity')) fail(`verity[${i}] file`, 'expected the bundle path with .verity appended', e?.file);
    if (lines.has(e.file)) fail(`verity[${i}] file`, 'a second entry for the same tree', e.file);
    lines.set(e.file, checkEntry(`verity[${i}]`, e));
  }
  const list = mounted.map((f, i) => lines.get(`${f}.verity`) ?? fail(['base', 'agent', 'kernel'][i] ?? `apps[${i - 3}]`, `no verity entry for ${f}.verity`, f));
  const env = `EDGE_VERIFIED=1\nEDGE_BASE=${base}\nEDGE_AGENT=${agent}\nEDGE_KERNEL=${kernel}\nEDGE_APPS="${apps.join(' ')}"\nEDGE_GRADE=${opts.grade}\n`;
  if (opts.payloadKey !== undefined && !/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]{1,4096}-----END PUBLIC KEY-----\n$/.test(opts.payloadKey)) fail('payloadKey', 'expected one PEM public key', opts.payloadKey.slice(0, 80));
  return cpioBytes([
    { path: 'etc/edgeimage/verified.env', type: 'file', mode: 0o644, data: env },
    { path: 'etc/edgeimage/verity.list', type: 'file', mode: 0o644, data: list.join('') },
    ...(opts.payloadKey !== undefined ? [{ path: 'etc/edgeimage/payload-key.pem', type: 'file' as const, mode: 0o644, data: opts.payloadKey }] : []),
  ], { mtime: 0 });
}

/**
 * The whole initrd of a verified slot: {@link verifiedInitrdPart} FIRST, then the kernel bundle's
 * initrd. Not the other way round: after a compressed archive Linux takes the next one only at a
 * 4-byte aligned offset of the input, and a cpio appended to a gzip member of any other length is
 * dropped with no more than "Initramfs unpacking failed: invalid magic" in the kernel log (seen on
 * a real boot) — the device would then boot unverified, from the slot's unsigned boot/slot.env if
 * one were planted there. First, the signed part is always unpacked (an uncompressed cpio at offset
 * 0, whose length newc keeps a multiple of 4), and a kernel initrd that does not unpack leaves no
 * /init: the boot fails closed. The kernel bundle's /init runs the boot anyway, so its archive
 * coming second (its files win a name clash) gives it nothing it did not have.
 *
 * ```ts
 * writeFileSync('initrd', verifiedInitrd(readFileSync('slot/boot/initrd.img'), { grade, base, apps, verity }));
 * ```
 */
export function verifiedInitrd(bundleInitrd: Uint8Array, opts: VerifiedInitrdOptions): Buffer {
  if (bundleInitrd.length === 0) fail('initrd', "expected the kernel bundle's initrd", 'an empty file');
  checkBundleInitrd(bundleInitrd);
  return Buffer.concat([verifiedInitrdPart(opts), bundleInitrd]);
}

/** Larger than any initramfs unpacks to: bounds the decompression of the kernel bundle's. */
const MAX_INITRD_UNPACKED = 512 << 20;
const SIGNED_NAMES = new Set(['etc/edgeimage/verified.env', 'etc/edgeimage/verity.list', 'etc/edgeimage/payload-key.pem']);

/**
 * The kernel bundle's initramfs must be one whose /init honours the signed part (it says so in
 * etc/edgeimage/initramfs.features), and must not carry files of the signed part itself: its
 * archive is unpacked second, so its copy would replace the signed one. Otherwise the payload would
 * be signed around an initramfs that boots the slot unverified.
 */
function checkBundleInitrd(initrd: Uint8Array): void {
  let cpio: Buffer;
  try {
    const b = Buffer.from(initrd.buffer, initrd.byteOffset, initrd.byteLength);
    cpio = b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b, { maxOutputLength: MAX_INITRD_UNPACKED }) : b;
  } catch (e) {
    fail('initrd', `the kernel bundle's initrd.img as a gzip-compressed cpio archive (the edgeimage initramfs); it does not unpack (${(e as Error).message})`, 'something else');
  }
  let features: string | undefined;
  let at = 0;
  // newc: a 110-byte header, the name, the data, each padded to 4 bytes; bounded by the buffer
  for (let n = 0; at + 110 <= cpio!.length && n < 1_000_000; n++) {
    const magic = cpio!.toString('latin1', at, at + 6);
    if (magic !== '070701' && magic !== '070702') fail('initrd', `a newc cpio archive; at byte ${at} of the unpacked kernel bundle's initrd there is no cpio header`, magic);
    const size = parseInt(cpio!.toString('latin1', at + 54, at + 62), 16);
    const nameSize = parseInt(cpio!.toString('latin1', at + 94, at + 102), 16);
    if (!Number.isFinite(size) || !Number.isFinite(nameSize) || nameSize < 1) fail('initrd', 'valid cpio header sizes', cpio!.toString('latin1', at, at + 110));
    const name = cpio!.toString('latin1', at + 110, at + 110 + nameSize - 1).replace(/^\.?\//, '');
    const data = at + 110 + nameSize + ((4 - ((110 + nameSize) % 4)) % 4);
    if (name === 'TRAILER!!!') break;
    if (SIGNED_NAMES.has(name)) fail('initrd', `no ${name} in the kernel bundle's initrd: the signed part carries it, and the bundle's copy would replace it`, name);
    if (name === INITRAMFS_FEATURES_PATH) features = cpio!.toString('utf8', data, Math.min(data + size, data + 4096));
    at = data + size + ((4 - (size % 4)) % 4);
  }
  if (!features?.split('\n').includes('verified-boot')) {
    fail('initrd', `an edgeimage initramfs whose /init opens bundles through dm-verity (${INITRAMFS_FEATURES_PATH} saying verified-boot); this one's /init would ignore the signed bundle list and boot the slot unverified: rebuild the kernel bundle (bundles/build)`, features === undefined ? 'no features file' : features.trim());
  }
}
