import { ComposeError } from '../errors.js';

/**
 * A failure of `update create` or `update info`. `code` is stable:
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_UPDATE_KEY_NOT_BRAND` | the signing key is not an account-key of the model's brand (`context.brandKeys`) |
 * | `ERR_UPDATE_FROM_MISMATCH` | `--from` is a system of another brand or model |
 * | `ERR_UPDATE_NOT_NEWER` | `--from` has a revision not lower than the update's |
 * | `ERR_UPDATE_FROM_UNKNOWN` | `--from` is neither a disk image nor an assertion |
 * | `ERR_UPDATE_FROM_IMAGE` | an image whose active slot cannot be read (no boot environment, empty slot) |
 * | `ERR_UPDATE_PATH` | a slot path outside `[A-Za-z0-9._+/-]`, absolute, or with `.`/`..` |
 * | `ERR_UPDATE_FILE_TYPE` | a slot entry that is not a regular file or folder |
 * | `ERR_UPDATE_MANIFEST` | an update manifest that does not follow the format |
 * | `ERR_UPDATE_FORMAT` | an update file that is not a ustar tar (checksum, magic, size field, truncated), or whose slot entry does not match the manifest |
 * | `ERR_UPDATE_ENTRY_TYPE` | an update entry that is not a regular file: hard link, symbolic link, folder, pax or GNU record, device (`context.entry`, `context.type`) |
 * | `ERR_UPDATE_ENTRY_NAME` | an update entry name not in canonical form, or not the manifest, then its signature, then `slot/PATH` entries (`context.entry`) |
 * | `ERR_UPDATE_ENTRY_DUPLICATE` | an update entry name that appears twice (`context.entry`) |
 * | `ERR_UPDATE_ENTRY_UNLISTED` | a `slot/PATH` entry the manifest does not list (`context.entry`) |
 * | `ERR_UPDATE_SIGNATURE` | the manifest signature does not verify |
 */
export class UpdateError extends ComposeError {}

/**
 * A channel pointer (`update/pointer.ts`) that is refused, or a release (`update release`) that
 * cannot be made. The message names the file, the field, what was expected and what was found;
 * `context` carries `file`, `field`, `expected`, `found` where they apply. `code` is stable:
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_POINTER_MALFORMED` | the pointer (or its signature file) does not follow the format: a line, a field, a bound (`context.line`) |
 * | `ERR_POINTER_SIGNATURE` | the signature does not verify over the pointer's exact bytes with the key it names |
 * | `ERR_POINTER_KEY_NOT_ALLOWED` | the signing key is not a trusted, valid account-key of the pointer's brand constrained to sign pointers only (and admitting this model and channel) |
 * | `ERR_POINTER_EXPIRED` | `expires` is not after the time of checking (a store or mirror serving an old pointer: a freeze) |
 * | `ERR_POINTER_ROLLBACK` | `revision` is lower than the installed revision the caller gave |
 * | `ERR_POINTER_MISMATCH` | the pointer is for another brand, model or channel than the caller asked for |
 * | `ERR_POINTER_NOT_FOUND` | the store has no pointer for the channel |
 * | `ERR_RELEASE` | a release that cannot be made: the model is not newer than the channel's, a `--from` revision has no full update in the store, a bad `--expires` or `--rollout` |
 */
export class PointerError extends ComposeError {}
