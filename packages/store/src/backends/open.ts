import { StoreError } from '../errors.js';
import type { StoreBackend } from './backend.js';
import { DirBackend } from './dir.js';
import { HttpBackend } from './http.js';
import { OciBackend, isOciUrl } from './oci.js';

/**
 * The backend for a store location:
 *
 * | location                                   | backend                           |
 * | ------------------------------------------ | --------------------------------- |
 * | a path (`./store`, `/srv/store`), file://  | DirBackend (read and write)       |
 * | http://, https://                          | HttpBackend (read-only)           |
 * | oci://host:port/namespace, oci+http://…    | OciBackend (read and write)       |
 *
 * Any other `scheme://` is refused with ERR_STORE_URL.
 *
 * ```ts
 * const backend = openBackend('https://cdn.example.com/store');
 * ```
 */
export function openBackend(url: string): StoreBackend {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') {
    if (!url) throw new StoreError('ERR_STORE_URL', 'no store given: expected a directory, file://, http(s):// or oci:// URL', { url });
    return new DirBackend(url);
  }
  if (scheme === 'http' || scheme === 'https') return new HttpBackend(url);
  if (isOciUrl(url)) return new OciBackend(url);
  throw new StoreError('ERR_STORE_URL', `unsupported store URL ${JSON.stringify(url)}: expected a directory, file://, http(s):// or oci:// (oci+http:// for a plain-HTTP registry)`, { url, scheme });
}
