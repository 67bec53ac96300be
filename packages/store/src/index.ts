/**
 * @edgeimage/store — bundles (snap files), stores (directory, HTTP, OCI registry) and the resolver
 * that turns a signed model into verified bundle files in a content-addressed cache.
 */
export * from './errors.js';
export * from './layout.js';
export type { StoreBackend } from './backends/backend.js';
export { parseSnapYaml, isSnapName, type SnapYaml, type SnapApp } from './bundle/snap-yaml.js';
export { pack, bundleFileName, type PackResult } from './bundle/pack.js';
export { readBundleInfo, readSnapYaml, type BundleInfo } from './bundle/inspect.js';
export { fileDigest } from './bundle/digest.js';
export { Store, checkChannel, assertionPathOf, type PublishResult } from './store.js';
export { openBackend } from './backends/open.js';
export { DirBackend } from './backends/dir.js';
export { HttpBackend } from './backends/http.js';
export { OciBackend, parseOciUrl, isOciUrl } from './backends/oci.js';
export * from './resolver/index.js';
