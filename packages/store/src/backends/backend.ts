import type { Readable } from 'node:stream';

/**
 * Where a store keeps its files. A store is a small set of named files (see `layout.ts`); a backend
 * maps those names onto a directory, a static web server, or an OCI registry. Names use '/'.
 */
export interface StoreBackend {
  /** The store's location as the user gave it (a path, file://, http(s)://, oci://). */
  readonly url: string;
  readonly writable: boolean;
  /** The bytes of a file, or undefined when it does not exist (HTTP 404, no such tag). */
  read(path: string): Promise<Buffer | undefined>;
  /** Replaces a file (small metadata and assertions). Read-only backends throw ERR_STORE_READ_ONLY. */
  write(path: string, data: Uint8Array): Promise<void>;
  /** Stores a bundle file from disk under `path` (streamed; may be hundreds of MB). */
  writeFile(path: string, file: string): Promise<void>;
  /**
   * Opens a file for download from byte `offset` (a Range request where the transport has one).
   * Throws StoreError ERR_STORE_NOT_FOUND when absent, ERR_STORE_UNREACHABLE / ERR_STORE_HTTP on
   * transport failures (the resolver retries those).
   */
  open(path: string, offset?: number): Promise<{ stream: Readable; size?: number }>;
  /** Where `path` is fetched from, for manifests and messages. */
  locate(path: string): string;
  /**
   * Optional: record that a channel points at a bundle, in the backend's own terms (an OCI tag
   * such as `latest_stable_amd64` on the bundle's manifest). The channel map in the snap's
   * index is the source of truth; this is for tools that speak only the backend's protocol.
   */
  tagChannel?(snapName: string, channelTag: string, bundlePath: string): Promise<void>;
}
