/**
 * @edgeimage/base: base bundles (snaps of `type: base`) built from Debian packages with
 * mmdebstrap, for amd64 and arm64 from an amd64 host, pinned by BASE.lock and reproducible.
 * See build.ts for the stages and the decisions, spec.ts for BASE.yaml, lock.ts for BASE.lock.
 *
 * ```ts
 * const r = await buildBase({ yamlPath: 'bundles/robot-base/BASE.yaml', arch: 'arm64' });
 * r.path; r.lockPath; formatLockChanges(r.changes);
 * ```
 */
export { BaseError, type BaseErrorCode } from './errors.js';
export { parseBaseYaml, parseBaseYamlText, resolveBaseFile, writablePaths, DEFAULT_WRITABLE_PATHS, DEFAULT_MIRROR, DEFAULT_HOSTNAME, BASE_ARCHITECTURES, type BaseArch, type BaseSpec, type BaseFile, type BaseUser, type BaseGroup, type WritablePath } from './spec.js';
export { parseLock, readLock, serializeLock, lockPath, lockInputs, diffLocks, formatLockChanges, compareDebVersions, type BaseLock, type LockedPackage, type LockChange } from './lock.js';
export { cacheRoot, debPool, cachedDeb, putDeb } from './cache.js';
export { buildBase, checkBinfmt, defaultBundlePath, hostArch, removeBaseInProgress, debArTime, type BuildBaseOptions, type BuildBaseResult, type BuildStage } from './build.js';

import { serializeLock, type BaseLock } from './lock.js';
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';

/** Writes a lock file (temp + rename). */
export function writeLock(file: string, lock: BaseLock): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, serializeLock(lock));
  renameSync(tmp, file);
}
