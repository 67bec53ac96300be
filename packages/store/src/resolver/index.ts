export { resolveModel, type Resolution, type ResolvedBundle, type ResolveEvent, type ResolveOptions } from './resolve.js';
export { BundleCache, defaultCacheDir } from './cache.js';
export { downloadToCache, type DownloadRequest, type DownloadHooks } from './download.js';
export { withRetry, defaultRetryPolicy, isTransient, type RetryPolicy } from './retry.js';
