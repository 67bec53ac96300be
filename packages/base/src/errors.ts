import { EdgeimageError } from '@edgeimage/assertions';

/**
 * The codes of {@link BaseError}:
 * - `ERR_BASE_YAML`: BASE.yaml is not valid (file, line, field, expected, found).
 * - `ERR_BASE_FILE`: a `files:` source is missing, not a regular file, too big, or outside BASE.yaml's folder.
 * - `ERR_BASE_LOCK`: a lock file is malformed (file, field, expected, found).
 * - `ERR_BASE_LOCK_STALE`: the lock was made for other package inputs than BASE.yaml's now; `--update` refreshes it.
 * - `ERR_BASE_LOCK_UNAVAILABLE`: a locked .deb is in neither the cache nor the archive.
 * - `ERR_BASE_LOCK_MISMATCH`: the archive's .deb of a locked version has another sha256 than the lock's.
 * - `ERR_BASE_PACKAGE_UNKNOWN`: the archive has no package of a name in `packages:`.
 * - `ERR_BASE_NO_INIT`: the tree has no /sbin/init.
 * - `ERR_BASE_SERVICE`: a unit named in `services:` does not exist in the tree.
 * - `ERR_BASE_BINFMT`: a foreign architecture's programs cannot run on this host (binfmt_misc + qemu-user-static).
 * - `ERR_BASE_BUILD`: mmdebstrap, apt or tar2sqfs failed otherwise (the tool's last lines).
 */
export type BaseErrorCode =
  | 'ERR_BASE_YAML'
  | 'ERR_BASE_FILE'
  | 'ERR_BASE_LOCK'
  | 'ERR_BASE_LOCK_STALE'
  | 'ERR_BASE_LOCK_UNAVAILABLE'
  | 'ERR_BASE_LOCK_MISMATCH'
  | 'ERR_BASE_PACKAGE_UNKNOWN'
  | 'ERR_BASE_NO_INIT'
  | 'ERR_BASE_SERVICE'
  | 'ERR_BASE_BINFMT'
  | 'ERR_BASE_BUILD';

export class BaseError extends EdgeimageError {
  declare readonly code: BaseErrorCode;
  constructor(code: BaseErrorCode, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}
