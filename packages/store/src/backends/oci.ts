/**
 * The OCI registry store backend: a store kept as OCI artifacts in any registry that speaks the OCI
 * distribution API (CNCF distribution, Harbor, Zot, GHCR …), through Node's built-in fetch.
 *
 * ## Store URL
 *
 *   oci://HOST[:PORT][/NAMESPACE]        https; plain http when HOST is a loopback host
 *                                        (localhost, 127.0.0.0/8, [::1]), as docker does
 *   oci+https://HOST[:PORT][/NAMESPACE]  always https
 *   oci+http://HOST[:PORT][/NAMESPACE]   always plain http (a test registry, a registry behind a
 *                                        TLS-terminating proxy on a private network)
 *
 * NAMESPACE is zero or more '/'-separated repository path components, each lower-case
 * (`[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, the distribution spec's rule). No user, query or
 * fragment. Registry authentication is out of scope: the backend sends no credentials, and a 401 or
 * 403 from the registry is StoreError ERR_REGISTRY_AUTH naming the registry's challenge.
 *
 * ## Where a store file goes
 *
 *   store file DIR/NAME   → repository NAMESPACE/DIR,  tag ociTag(NAME)
 *   store file NAME       → repository NAMESPACE/meta, tag ociTag(NAME)   (top level: store.json, index.json)
 *
 * so `snaps/hello/3.snap` in `oci://reg:5000/acme/store` is `reg:5000/acme/store/snaps/hello:3.snap`,
 * `assertions/snap-revision/KEY.assert` is `…/acme/store/assertions/snap-revision:KEY.assert`, and
 * `store.json` is `…/acme/store/meta:store.json` (`oras pull` any of them). Every segment of DIR must
 * be a valid repository component as it is (store dirs are lower-case by construction; nothing is
 * lower-cased here, which could merge two dirs), `meta` is reserved as the first segment of DIR, and
 * the whole repository name is at most 255 characters. A path that breaks this is StoreError
 * ERR_STORE_PATH: distribution answers an invalid name or tag with a bare "404 page not found", which
 * would read as "no such file", so nothing unchecked is sent.
 *
 * OCI tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. ociTag(NAME) is:
 *
 *   NAME               when NAME starts with a letter or digit and is a valid tag
 *                      (every name the store layout makes: `3.snap`, `index.json`, most assertion keys)
 *   '_' + NAME         when NAME is made of tag characters, starts with '-', '.' or '_', and is at
 *                      most 127 characters (a base64url digest key may start with '-' or '_');
 *                      reversible: drop the '_'
 *   '_sha256_' + HEX   otherwise (longer names, other characters): HEX is the sha256 of NAME in
 *                      lower-case hex, 72 characters in all; not reversible from the tag, so read()
 *                      checks that the layer's title annotation is NAME
 *
 * The three forms cannot collide: the first starts with a letter or digit; the second has '-', '.'
 * or '_' as its second character; the third has 's'. ociTagName() inverts the first two.
 *
 * Channel tags (tagChannel) live next to the bundles in `NAMESPACE/snaps/NAME`: `latest_stable_amd64`
 * names the same manifest as the revision it points at, so
 * `oras pull reg:5000/acme/store/snaps/hello:latest_stable_amd64` fetches that bundle. A channel tag
 * may not end in `.snap`, `.json` or `.assert` or start with '_', so it never hides a store file.
 *
 * ## The artifact
 *
 * Each file is an OCI image manifest (deterministic: the same file gives the same manifest bytes):
 *
 *   { "schemaVersion": 2,
 *     "mediaType": "application/vnd.oci.image.manifest.v1+json",
 *     "artifactType": "application/vnd.edgeimage.file.v1",
 *     "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136f…" (of `{}`),
 *                 "size": 2, "data": "e30=" },
 *     "layers": [ { "mediaType": layerMediaType(NAME), "digest": "sha256:…", "size": N,
 *                   "annotations": { "org.opencontainers.image.title": NAME } } ],
 *     "annotations": { "vnd.edgeimage.store.path": "DIR/NAME" } }
 *
 * layerMediaType: `.snap` → application/vnd.edgeimage.snap.v1+squashfs, `.assert` →
 * application/vnd.edgeimage.assertion.v1, `.json` → application/json, else application/octet-stream.
 * A manifest under a store tag that is not an OCI image manifest with exactly one layer of the
 * expected media type (say, pushed by hand) is StoreError ERR_REGISTRY_MANIFEST naming repo:tag and
 * what was found. Blobs are checked against their descriptor's digest and size (ERR_DIGEST_MISMATCH,
 * ERR_SIZE_MISMATCH); a manifest against the registry's Docker-Content-Digest header.
 *
 * ## What CNCF distribution 2.8.2 (Debian's docker-registry) does, and how this copes
 *
 * - It accepts `artifactType` and the empty config, but like any blob a manifest names, the `{}`
 *   config blob must have been uploaded to the repository first (else 400 MANIFEST_BLOB_UNKNOWN),
 *   `data` notwithstanding. It is uploaded once per repository.
 * - Blobs are linked per repository: HEAD in one repository is 404 for a blob only another one holds,
 *   so a blob is uploaded again (storage keeps one copy). Uploads are POST then a monolithic PUT
 *   `?digest=`, streamed with a Content-Length.
 * - GET of an OCI manifest without OCI in Accept is 404 MANIFEST_UNKNOWN ("accept header does not
 *   support OCI manifests"): we always send Accept.
 * - A Range from exactly the end of a blob is 416 with a Content-Length that does not match its body
 *   (fetch then fails reading it): open() at offset == size returns an empty stream without asking.
 *   Other Ranges get a proper 206; a registry that ignores Range (200) is coped with by skipping.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { StoreError } from '../errors.js';
import type { StoreBackend } from './backend.js';
import { headersTimeoutMs, idleTimeoutMs, MAX_ERROR_BODY_BYTES, MAX_MANIFEST_BYTES, MAX_STORE_FILE_BYTES, readBounded, Watchdog } from './transfer.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const EDGEIMAGE_ARTIFACT = 'application/vnd.edgeimage.file.v1';
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';
export const PATH_ANNOTATION = 'vnd.edgeimage.store.path';
/** The repository (under the namespace) of the store's top-level files. */
export const META_REPOSITORY = 'meta';

const EMPTY_JSON = Buffer.from('{}');
const EMPTY_DIGEST = `sha256:${createHash('sha256').update(EMPTY_JSON).digest('hex')}`;
const EMPTY_DESCRIPTOR = { mediaType: OCI_EMPTY, digest: EMPTY_DIGEST, size: 2, data: EMPTY_JSON.toString('base64') };
/** What we ask for: OCI first; the others only so that a wrong kind of manifest gets a clear error. */
const ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const USER_AGENT = 'edgeimage';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// distribution's grammar writes the dash separator `[-]*`, which can match nothing and so nests
// `[a-z0-9]+` inside a star: exponential backtracking on a long component that fails at its end.
// `-+` accepts the same components (an empty separator only joins two runs of letters).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_REPOSITORY = 255;

/** The layer media type of a store file, by its extension. */
export function layerMediaType(name: string): string {
  if (name.endsWith('.snap')) return 'application/vnd.edgeimage.snap.v1+squashfs';
  if (name.endsWith('.assert')) return 'application/vnd.edgeimage.assertion.v1';
  if (name.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

/**
 * The OCI tag of a store file name (the last path segment); see the mapping above.
 *
 * @example ociTag('3.snap') === '3.snap'; ociTag('-x.assert') === '_-x.assert'
 */
export function ociTag(name: string): string {
  if (name === '' || name.includes('/')) throw new StoreError('ERR_STORE_PATH', `not a store file name: '${name}'`, { name });
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) return name;
  if (/^[-._][A-Za-z0-9_.-]{0,126}$/.test(name)) return `_${name}`;
  return `_sha256_${createHash('sha256').update(name, 'utf8').digest('hex')}`;
}

/** The store file name of an OCI tag made by ociTag, or undefined for a hashed (or foreign) tag. */
export function ociTagName(tag: string): string | undefined {
  if (!TAG.test(tag)) return undefined;
  if (/^[A-Za-z0-9]/.test(tag)) return tag;
  if (/^_[-._]/.test(tag)) return tag.slice(1);
  return undefined;
}

export interface OciReference {
  /** The repository, namespace included: `acme/store/snaps/hello`. */
  repository: string;
  tag: string;
  /** The store file name the tag was made from. */
  name: string;
}

/**
 * The repository and tag of a store file.
 *
 * @example ociReference('acme/store', 'snaps/hello/3.snap') → { repository: 'acme/store/snaps/hello', tag: '3.snap', name: '3.snap' }
 */
export function ociReference(namespace: string, path: string): OciReference {
  const bad = (why: string) => new StoreError('ERR_STORE_PATH', `store path '${path}' has no OCI name: ${why}`, { path, namespace });
  const parts = path.split('/');
  const name = parts.pop()!;
  if (name === '') throw bad('it names no file');
  for (const p of parts) if (!COMPONENT.test(p)) throw bad(`'${p}' is not a repository name component (lower-case letters and digits, joined by '.', '_', '__' or '-')`);
  if (parts[0] === META_REPOSITORY) throw bad(`'${META_REPOSITORY}' is reserved for the store's top-level files`);
  const repository = [...(namespace ? [namespace] : []), ...(parts.length > 0 ? parts : [META_REPOSITORY])].join('/');
  if (repository.length > MAX_REPOSITORY) throw bad(`repository '${repository}' is longer than ${MAX_REPOSITORY} characters`);
  return { repository, tag: ociTag(name), name };
}

export interface OciStoreLocation {
  /** The scheme as written: oci, oci+http or oci+https. */
  scheme: string;
  /** The transport chosen for it. */
  protocol: 'http' | 'https';
  /** HOST[:PORT] as written. */
  host: string;
  /** '' or 'a/b'. */
  namespace: string;
}

/** True when `url` is an OCI store URL (oci://, oci+http://, oci+https://). */
export function isOciUrl(url: string): boolean {
  return /^oci(\+https?)?:\/\//i.test(url);
}

function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Parses an OCI store URL.
 *
 * @example parseOciUrl('oci+http://127.0.0.1:5000/acme/store') → { scheme: 'oci+http', protocol: 'http', host: '127.0.0.1:5000', namespace: 'acme/store' }
 */
export function parseOciUrl(url: string): OciStoreLocation {
  const bad = (why: string) => new StoreError('ERR_STORE_URL', `'${url}' is not an OCI store URL: ${why}`, { url });
  if (!isOciUrl(url)) throw bad('expected oci://HOST[:PORT]/NAMESPACE (or oci+http://, oci+https://)');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad('it does not parse as a URL');
  }
  if (!u.host) throw bad('it names no registry host');
  if (u.username || u.password) throw bad('credentials in the URL are not supported (registry authentication is out of scope)');
  if (u.search || u.hash) throw bad('no query or fragment is allowed');
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const protocol = scheme === 'oci+http' ? 'http' : scheme === 'oci+https' ? 'https' : isLoopback(u.hostname) ? 'http' : 'https';
  const namespace = u.pathname.replace(/^\/+|\/+$/g, '');
  if (namespace) {
    for (const p of namespace.split('/')) {
      if (!COMPONENT.test(p)) throw bad(`namespace component '${p}' is not a valid repository name component (lower-case letters and digits, joined by '.', '_', '__' or '-')`);
    }
  }
  return { scheme, protocol, host: u.host, namespace };
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

interface ResolvedManifest {
  bytes: Buffer;
  layer: Layer;
  url: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const stripQuery = (url: string) => url.split('?')[0]!;
const hex = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest('hex');

/** The watchdog of each response's transfer (see send). */
const watchdogs = new WeakMap<Response, Watchdog>();

/** Throws away a response body we do not read, so the connection can be reused. */
async function discard(res: Response): Promise<void> {
  watchdogs.get(res)?.stop();
  await res.body?.cancel().catch(() => undefined);
}

const isAsyncIterable = (v: unknown): v is AsyncIterable<Uint8Array> => typeof v === 'object' && v !== null && Symbol.asyncIterator in v;

/** The code of a network error behind fetch's "fetch failed" (ECONNREFUSED, UND_ERR_SOCKET, …). */
function causeCode(e: unknown): string {
  let c: unknown = e;
  let message = e instanceof Error ? e.message : String(e);
  for (let i = 0; i < 5 && typeof c === 'object' && c !== null; i++) {
    const o = c as { code?: unknown; cause?: unknown; errors?: unknown; message?: unknown };
    if (typeof o.code === 'string') return o.code;
    if (typeof o.message === 'string' && o.message) message = o.message;
    c = o.cause ?? (Array.isArray(o.errors) ? (o.errors as unknown[])[0] : undefined);
  }
  return message;
}

function unreachable(method: string, url: string, e: unknown, during = 'request', dog?: Watchdog): StoreError {
  const code = dog?.fired ? `no data for ${dog.ms / 1000} s` : causeCode(e);
  const hint = /SSL|TLS|CERT|EPROTO/i.test(code) ? ' (a plain-HTTP registry? use oci+http://)' : '';
  const err = new StoreError('ERR_STORE_UNREACHABLE', `registry unreachable: ${method} ${stripQuery(url)} failed during the ${during}: ${code}${hint}`, { method, url: stripQuery(url), cause: code });
  err.cause = e;
  return err;
}

/**
 * A store in an OCI registry (see the top of this file for the URL, the mapping and the artifact).
 *
 * @example
 *   const b = new OciBackend('oci+http://127.0.0.1:5000/acme/store');
 *   await b.write('index.json', Buffer.from('{"snaps":[]}'));
 *   await b.writeFile('snaps/hello/1.snap', 'hello_1.0_amd64.snap');
 *   const { stream, size } = await b.open('snaps/hello/1.snap', 4096); // the bytes from 4096 on
 */
export interface OciBackendOptions {
  /** Give up when the registry has not answered with headers within this time after a request, or after the end of an upload (default 30 s, or $EDGEIMAGE_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs?: number;
  /** Give up on a body, down or up, when no bytes move for this long (default 60 s, or $EDGEIMAGE_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** The largest store file other than a bundle that `read` accepts (default 16 MiB). */
  maxFileBytes?: number;
}

export class OciBackend implements StoreBackend {
  readonly writable = true;
  readonly location: OciStoreLocation;
  private readonly base: string;
  /** Repositories known to hold the empty config blob. */
  private readonly haveConfig = new Set<string>();
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxFileBytes: number;

  constructor(
    readonly url: string,
    opts: OciBackendOptions = {},
  ) {
    this.location = parseOciUrl(url);
    this.base = `${this.location.protocol}://${this.location.host}`;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? headersTimeoutMs();
    this.idleTimeoutMs = opts.idleTimeoutMs ?? idleTimeoutMs();
    this.maxFileBytes = opts.maxFileBytes ?? MAX_STORE_FILE_BYTES;
  }

  /** The repository and tag of a store path. */
  reference(path: string): OciReference {
    return ociReference(this.location.namespace, path);
  }

  /** `oci://host:port/ns/snaps/hello:3.snap` (with the store's own scheme). */
  locate(path: string): string {
    const r = this.reference(path);
    return `${this.location.scheme}://${this.location.host}/${r.repository}:${r.tag}`;
  }

  async read(path: string): Promise<Buffer | undefined> {
    const ref = this.reference(path);
    const m = await this.resolve(ref);
    if (!m) return undefined;
    // Read into memory: refused from the descriptor's size before a byte of the blob is asked for
    // (and checkedBody holds the blob to that size).
    if (m.layer.size > this.maxFileBytes) {
      throw new StoreError('ERR_STORE_TOO_BIG', `${this.locate(path)}: ${ref.name} is ${m.layer.size} bytes (its manifest says), more than the ${this.maxFileBytes} bytes a store file other than a bundle may be; refused`, {
        url: this.locate(path),
        path,
        size: m.layer.size,
        max: this.maxFileBytes,
      });
    }
    const { body, url, dog } = await this.getBlob(ref, m.layer, 0);
    const chunks: Buffer[] = [];
    for await (const b of this.checkedBody(body, url, ref, m.layer, 0, 0, dog)) chunks.push(b);
    return Buffer.concat(chunks);
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    const ref = this.reference(path);
    const layer = { mediaType: layerMediaType(ref.name), digest: `sha256:${hex('sha256', data)}`, size: data.byteLength };
    await this.ensureBlob(ref.repository, layer.digest, layer.size, () => data);
    await this.putManifest(ref, ref.tag, this.manifestFor(ref, path, layer));
  }

  async writeFile(path: string, file: string): Promise<void> {
    const ref = this.reference(path);
    // First pass: the digest and size, streamed (bundles may be hundreds of MB).
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const layer = { mediaType: layerMediaType(ref.name), digest: `sha256:${hash.digest('hex')}`, size };
    // Second pass: the upload, streamed again (fetch pulls from the file as it sends).
    await this.ensureBlob(ref.repository, layer.digest, size, () => createReadStream(file, { highWaterMark: 1 << 20 }));
    await this.putManifest(ref, ref.tag, this.manifestFor(ref, path, layer));
  }

  /**
   * The file's bytes from `offset` on: `size` is what the stream delivers (the blob's size minus
   * `offset`). From offset 0 the stream also checks the blob's sha256 and fails with
   * ERR_DIGEST_MISMATCH at its end; from a later offset only the byte count is checked (the caller
   * verifies the whole file, as the resolver does with the snap-revision's sha3-384).
   */
  async open(path: string, offset = 0): Promise<{ stream: Readable; size?: number }> {
    const ref = this.reference(path);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new StoreError('ERR_STORE_RANGE', `bad offset ${offset} for ${this.locate(path)}`, { url: this.locate(path), offset });
    const m = await this.resolve(ref);
    if (!m) throw new StoreError('ERR_STORE_NOT_FOUND', `${this.locate(path)}: no such tag in the registry`, { url: this.locate(path), path });
    const total = m.layer.size;
    if (offset > total) {
      throw new StoreError('ERR_STORE_RANGE', `${this.locate(path)} is ${total} bytes; cannot read from offset ${offset}`, { url: this.locate(path), offset, size: total });
    }
    if (offset === total) return { stream: Readable.from([], { objectMode: false }), size: 0 };
    const { body, url, skip, dog } = await this.getBlob(ref, m.layer, offset);
    const stream = Readable.from(this.checkedBody(body, url, ref, m.layer, offset, skip, dog), { objectMode: false });
    return { stream, size: total - offset };
  }

  /** Puts the manifest of `bundlePath` also under `channelTag` in the same repository (`snapName` is for messages). */
  async tagChannel(snapName: string, channelTag: string, bundlePath: string): Promise<void> {
    if (!TAG.test(channelTag) || channelTag.startsWith('_') || /\.(snap|json|assert)$/.test(channelTag)) {
      throw new StoreError('ERR_STORE_PATH', `'${channelTag}' cannot be a channel tag of ${snapName}: tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, and a channel tag may not start with '_' or end in .snap, .json or .assert (store files' tags)`, { snap: snapName, tag: channelTag });
    }
    const ref = this.reference(bundlePath);
    const m = await this.resolve(ref);
    if (!m) throw new StoreError('ERR_STORE_NOT_FOUND', `cannot tag ${snapName} ${channelTag}: ${this.locate(bundlePath)} is not in the registry`, { url: this.locate(bundlePath), path: bundlePath });
    await this.putManifest(ref, channelTag, m.bytes);
  }

  // ---- the distribution API ----

  /**
   * One request, watched: no headers within headersTimeoutMs (counted from the end of a streamed
   * upload, which is watched for idleness chunk by chunk) aborts it. The response's watchdog is
   * re-armed with idleTimeoutMs for its body (readers kick it per chunk; discard stops it).
   */
  private async send(method: string, url: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<Response> {
    const controller = new AbortController();
    const dog = new Watchdog(controller);
    let body = init.body;
    if (isAsyncIterable(body)) {
      const upload = body;
      const idle = this.idleTimeoutMs;
      const headers = this.headersTimeoutMs;
      body = (async function* () {
        for await (const chunk of upload) {
          dog.kick(idle);
          yield chunk;
        }
        dog.kick(headers);
      })() as unknown as RequestInit['body'];
      dog.kick(idle);
    } else {
      dog.kick(this.headersTimeoutMs);
    }
    let res: Response;
    try {
      res = await fetch(url, { ...init, body, method, signal: controller.signal, headers: { 'user-agent': USER_AGENT, ...(init.headers as Record<string, string> | undefined) } });
    } catch (e) {
      dog.stop();
      if (dog.fired) {
        throw new StoreError('ERR_STORE_UNREACHABLE', `registry unreachable: ${method} ${stripQuery(url)}: no answer within ${dog.ms / 1000} s`, { method, url: stripQuery(url), cause: 'timeout' });
      }
      if (causeCode(e) === 'unexpected redirect') {
        throw new StoreError('ERR_STORE_HTTP', `${method} ${stripQuery(url)}: the registry answered with a redirect, which a streamed blob upload does not follow`, { method, url: stripQuery(url) });
      }
      throw unreachable(method, url, e);
    }
    dog.kick(this.idleTimeoutMs);
    watchdogs.set(res, dog);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      const challenge = res.headers.get('www-authenticate') ?? undefined;
      throw new StoreError(
        'ERR_REGISTRY_AUTH',
        `registry ${this.location.host} refused ${method} ${stripQuery(url)} with HTTP ${res.status}${challenge ? ` (${challenge})` : ''}: registry authentication is not supported; use a registry or namespace open to anonymous access`,
        { status: res.status, method, url: stripQuery(url), challenge },
      );
    }
    return res;
  }

  /** ERR_STORE_HTTP for an unexpected status, with the registry's own error codes when it sent them. */
  private async httpError(res: Response, method: string, url: string, what: string): Promise<StoreError> {
    let detail = '';
    let errors: unknown;
    try {
      // Only the start of an error body is read: a hostile answer cannot be made to fill memory.
      const text = (await readBounded(res.body, MAX_ERROR_BODY_BYTES, () => new Error('error body too long'), watchdogs.get(res), this.idleTimeoutMs)).toString('utf8').slice(0, 4096);
      try {
        const j: unknown = JSON.parse(text);
        errors = isObject(j) ? j.errors : undefined;
        if (Array.isArray(errors)) detail = errors.map((e) => (isObject(e) ? `${String(e.code)}: ${String(e.message)}` : String(e))).join('; ');
      } catch {
        detail = text.trim().slice(0, 200);
      }
    } catch {
      // the body is not needed for the error
    }
    return new StoreError('ERR_STORE_HTTP', `${what}: HTTP ${res.status} from ${method} ${stripQuery(url)}${detail ? ` (${detail})` : ''}`, {
      status: res.status,
      method,
      url: stripQuery(url),
      registryErrors: errors,
    });
  }

  /** A manifest's bytes: at most MAX_MANIFEST_BYTES, with the idle timeout. */
  private async readAll(res: Response, method: string, url: string): Promise<Buffer> {
    const dog = watchdogs.get(res);
    const tooBig = (found: string) =>
      new StoreError('ERR_STORE_TOO_BIG', `${method} ${stripQuery(url)}: the manifest is ${found}, more than the ${MAX_MANIFEST_BYTES} bytes a manifest may be; refused`, { method, url: stripQuery(url), max: MAX_MANIFEST_BYTES });
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (length > MAX_MANIFEST_BYTES) {
      await discard(res);
      throw tooBig(`${length} bytes (Content-Length)`);
    }
    try {
      return await readBounded(res.body, MAX_MANIFEST_BYTES, (n) => tooBig(`at least ${n} bytes`), dog, this.idleTimeoutMs);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw unreachable(method, url, e, 'download', dog);
    }
  }

  /** The manifest under ref.tag, checked to be one of ours; undefined when the tag does not exist. */
  private async resolve(ref: OciReference): Promise<ResolvedManifest | undefined> {
    const url = `${this.base}/v2/${ref.repository}/manifests/${ref.tag}`;
    const res = await this.send('GET', url, { headers: { accept: ACCEPT } });
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) throw await this.httpError(res, 'GET', url, `reading manifest ${ref.repository}:${ref.tag}`);
    const bytes = await this.readAll(res, 'GET', url);
    const said = res.headers.get('docker-content-digest');
    if (said && DIGEST.test(said)) {
      const [alg, expected] = said.split(':') as [string, string];
      const actual = hex(alg, bytes);
      if (actual !== expected) {
        throw new StoreError('ERR_DIGEST_MISMATCH', `manifest ${ref.repository}:${ref.tag} from ${url}: its ${alg} is ${actual}, but the registry says ${expected}`, {
          repository: ref.repository,
          tag: ref.tag,
          url,
          expected: said,
          actual: `${alg}:${actual}`,
        });
      }
    }
    return { bytes, layer: this.checkManifest(ref, bytes, res.headers.get('content-type'), url), url };
  }

  private checkManifest(ref: OciReference, bytes: Buffer, contentType: string | null, url: string): Layer {
    const bad = (found: string) =>
      new StoreError('ERR_REGISTRY_MANIFEST', `registry manifest ${ref.repository}:${ref.tag} is not an edgeimage store file: ${found}`, {
        repository: ref.repository,
        tag: ref.tag,
        url,
        found,
      });
    let m: unknown;
    try {
      m = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw bad('it is not JSON');
    }
    if (!isObject(m)) throw bad('it is not a JSON object');
    const mediaType = typeof m.mediaType === 'string' ? m.mediaType : contentType?.split(';')[0]?.trim();
    if (mediaType !== OCI_MANIFEST) throw bad(`found media type ${mediaType ?? '(none)'}, expected ${OCI_MANIFEST}`);
    if (m.schemaVersion !== 2) throw bad(`found schemaVersion ${JSON.stringify(m.schemaVersion)}, expected 2`);
    const layers = m.layers;
    if (!Array.isArray(layers) || layers.length !== 1) throw bad(`found ${Array.isArray(layers) ? layers.length : 'no'} layers, expected exactly 1`);
    const layer: unknown = layers[0];
    if (!isObject(layer)) throw bad('found a layer that is not a descriptor');
    const expected = layerMediaType(ref.name);
    if (layer.mediaType !== expected) throw bad(`found layer media type ${String(layer.mediaType)}, expected ${expected}`);
    if (typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) throw bad(`found layer digest ${String(layer.digest)}, expected sha256:<64 hex> or sha512:<128 hex>`);
    if (typeof layer.size !== 'number' || !Number.isSafeInteger(layer.size) || layer.size < 0) throw bad(`found layer size ${String(layer.size)}`);
    if (ociTagName(ref.tag) === undefined) {
      // A hashed tag: the title annotation is the only record of the name.
      const title = isObject(layer.annotations) ? layer.annotations[TITLE_ANNOTATION] : undefined;
      if (title !== ref.name) throw bad(`found layer title ${JSON.stringify(title)}, expected ${JSON.stringify(ref.name)}`);
    }
    return { mediaType: expected, digest: layer.digest, size: layer.size };
  }

  /** GETs a blob from `offset`; `skip` is what the caller must drop (a registry that ignored Range). */
  private async getBlob(ref: OciReference, layer: Layer, offset: number): Promise<{ body: ReadableStream<Uint8Array>; url: string; skip: number; dog?: Watchdog }> {
    const url = `${this.base}/v2/${ref.repository}/blobs/${layer.digest}`;
    const res = await this.send('GET', url, offset > 0 ? { headers: { range: `bytes=${offset}-` } } : {});
    if (res.status === 404) {
      await discard(res);
      throw new StoreError('ERR_STORE_NOT_FOUND', `manifest ${ref.repository}:${ref.tag} names blob ${layer.digest}, which the registry does not have (${url})`, {
        repository: ref.repository,
        tag: ref.tag,
        url,
        digest: layer.digest,
      });
    }
    let skip = 0;
    if (res.status === 206 && offset > 0) {
      const range = res.headers.get('content-range') ?? '';
      if (!range.startsWith(`bytes ${offset}-`)) {
        await discard(res);
        throw new StoreError('ERR_STORE_HTTP', `GET ${url} from byte ${offset}: the registry sent Content-Range '${range}'`, { status: 206, method: 'GET', url, offset, contentRange: range });
      }
    } else if (res.status === 200) {
      skip = offset;
    } else if (res.status === 416) {
      await discard(res); // distribution's 416 body does not match its Content-Length: don't read it
      throw new StoreError('ERR_STORE_RANGE', `GET ${url} from byte ${offset}: HTTP 416, the range is not satisfiable`, { status: 416, url, offset, size: layer.size });
    } else {
      throw await this.httpError(res, 'GET', url, `reading blob ${layer.digest} of ${ref.repository}:${ref.tag}`);
    }
    if (!res.body) throw new StoreError('ERR_STORE_HTTP', `GET ${url}: HTTP ${res.status} without a body`, { status: res.status, method: 'GET', url });
    return { body: res.body, url, skip, dog: watchdogs.get(res) };
  }

  /**
   * A blob's bytes from `offset` on, from a response body: drops `skip` bytes (a registry that ignored
   * Range), checks that exactly the rest of the descriptor's size arrives and, when the whole blob is
   * read (offset 0), its digest. Transport failures become ERR_STORE_UNREACHABLE.
   */
  private async *checkedBody(body: ReadableStream<Uint8Array>, url: string, ref: OciReference, layer: Layer, offset: number, skip: number, dog?: Watchdog): AsyncGenerator<Buffer> {
    const [alg, expected] = layer.digest.split(':') as [string, string];
    const hash = offset === 0 ? createHash(alg) : undefined;
    const want = layer.size - offset;
    let toSkip = skip;
    let got = 0;
    const context = { repository: ref.repository, tag: ref.tag, url, digest: layer.digest };
    const tooLong = () =>
      new StoreError('ERR_SIZE_MISMATCH', `blob ${layer.digest} of ${ref.repository}:${ref.tag} from ${url}: more than the ${layer.size} bytes its descriptor says`, { ...context, expected: layer.size });
    try {
      dog?.kick(this.idleTimeoutMs);
      for await (const chunk of body) {
        dog?.kick(this.idleTimeoutMs);
        let b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (toSkip > 0) {
          if (b.length <= toSkip) {
            toSkip -= b.length;
            continue;
          }
          b = b.subarray(toSkip);
          toSkip = 0;
        }
        got += b.length;
        if (got > want) throw tooLong();
        hash?.update(b);
        yield b;
      }
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw unreachable('GET', url, e, 'download', dog);
    } finally {
      dog?.stop();
    }
    if (got !== want) {
      throw new StoreError('ERR_SIZE_MISMATCH', `blob ${layer.digest} of ${ref.repository}:${ref.tag} from ${url}: ${got} bytes arrived, ${want} expected`, { ...context, expected: want, actual: got });
    }
    if (hash) {
      const actual = hash.digest('hex');
      if (actual !== expected) {
        throw new StoreError('ERR_DIGEST_MISMATCH', `blob of ${ref.repository}:${ref.tag} from ${url}: its ${alg} is ${actual}, but the manifest says ${expected}`, {
          ...context,
          expected: layer.digest,
          actual: `${alg}:${actual}`,
        });
      }
    }
  }

  private manifestFor(ref: OciReference, path: string, layer: Layer): Buffer {
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: EDGEIMAGE_ARTIFACT,
      config: EMPTY_DESCRIPTOR,
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: { [TITLE_ANNOTATION]: ref.name } }],
      annotations: { [PATH_ANNOTATION]: path },
    };
    return Buffer.from(JSON.stringify(manifest));
  }

  private async putManifest(ref: OciReference, tag: string, bytes: Buffer): Promise<void> {
    if (!this.haveConfig.has(ref.repository)) {
      await this.ensureBlob(ref.repository, EMPTY_DIGEST, EMPTY_JSON.length, () => EMPTY_JSON);
      this.haveConfig.add(ref.repository);
    }
    const url = `${this.base}/v2/${ref.repository}/manifests/${tag}`;
    const res = await this.send('PUT', url, { headers: { 'content-type': OCI_MANIFEST }, body: bytes });
    if (res.status !== 201 && res.status !== 200) throw await this.httpError(res, 'PUT', url, `writing manifest ${ref.repository}:${tag}`);
    await discard(res);
  }

  /** Uploads a blob unless the repository has it (HEAD): POST an upload, then one PUT ?digest=. */
  private async ensureBlob(repository: string, digest: string, size: number, body: () => Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    const blobUrl = `${this.base}/v2/${repository}/blobs/${digest}`;
    const head = await this.send('HEAD', blobUrl);
    await discard(head);
    if (head.status === 200) return;
    if (head.status !== 404) throw await this.httpError(head, 'HEAD', blobUrl, `checking blob ${digest} in ${repository}`);

    const postUrl = `${this.base}/v2/${repository}/blobs/uploads/`;
    const post = await this.send('POST', postUrl);
    if (post.status !== 202) throw await this.httpError(post, 'POST', postUrl, `starting an upload to ${repository}`);
    await discard(post);
    const location = post.headers.get('location');
    if (!location) throw new StoreError('ERR_STORE_HTTP', `POST ${postUrl}: HTTP 202 without a Location header`, { status: 202, method: 'POST', url: postUrl });
    const putUrl = new URL(location, postUrl);
    putUrl.searchParams.set('digest', digest);
    const put = await this.send('PUT', putUrl.href, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: body() as RequestInit['body'],
      duplex: 'half',
      // Node 20's fetch keeps a copy of a streamed body for following redirects (all of a 400 MB
      // bundle: ~500 MB RSS); with redirect 'error' it streams in constant memory (~90 MB RSS).
      redirect: 'error',
    });
    if (put.status !== 201) throw await this.httpError(put, 'PUT', putUrl.href, `uploading blob ${digest} to ${repository}`);
    await discard(put);
  }
}
