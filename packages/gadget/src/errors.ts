import { EdgeimageError } from '@edgeimage/assertions';

/**
 * The codes a {@link GadgetError} carries; callers and tests switch on these, never on message text.
 *
 * | code | what is wrong |
 * | --- | --- |
 * | `ERR_GADGET_YAML` | not YAML (syntax error, duplicate key), or not a map at the top |
 * | `ERR_GADGET_UNKNOWN_KEY` | a key gadget.yaml does not have (top level, volume, structure, content, update) |
 * | `ERR_GADGET_VALUE` | a value of the wrong form: a map where a string goes, a size such as `1K`, a bad edition |
 * | `ERR_GADGET_VOLUME` | no volumes, a bad volume name, schema or id, `partial`, eMMC rules |
 * | `ERR_GADGET_BOOTLOADER` | not exactly one bootloader across the volumes, or an unknown one |
 * | `ERR_GADGET_SIZE` | size missing (or 0), min-size bigger than size, a number too large |
 * | `ERR_GADGET_TYPE` | type missing or malformed, or not allowed by the schema (a GUID on `mbr`…) |
 * | `ERR_GADGET_ROLE` | unknown role, role/type conflicts, a role used twice, snapd's role consistency |
 * | `ERR_GADGET_MBR` | the `mbr` structure: over 446 bytes, not at offset 0, with a filesystem or id |
 * | `ERR_GADGET_FILESYSTEM` | filesystem not one of vfat, vfat-16, vfat-32, ext4, none |
 * | `ERR_GADGET_DUPLICATE` | two structures of a volume with the same name or filesystem label |
 * | `ERR_GADGET_LABEL` | a reserved filesystem label, or a label that does not fit the role |
 * | `ERR_GADGET_CONTENT` | content of the wrong kind for its structure, source/target/image missing, bad path |
 * | `ERR_GADGET_CONTENT_ESCAPE` | a content path leaves the gadget (`../`, absolute, or through a symlink) |
 * | `ERR_GADGET_CONTENT_MISSING` | a content source or image is not in the gadget |
 * | `ERR_GADGET_CONTENT_TOO_BIG` | image content larger than its structure (or its declared size) |
 * | `ERR_GADGET_OFFSET_WRITE` | a malformed offset-write or one outside its structure |
 * | `ERR_GADGET_OVERLAP` | a structure overlaps the one before it (also content images inside a structure) |
 * | `ERR_GADGET_PARTITIONS` | more partitions than the table holds (4 on mbr, 128 on gpt) |
 * | `ERR_GADGET_UPDATE` | a bad `update` (preserve on a raw structure, duplicate preserve entries) |
 * | `ERR_GADGET_AB` | the A/B roles used, but not by edgeimage's rules |
 * | `ERR_GADGET_NOT_AB` | no A/B roles: `build` needs them |
 */
export type GadgetErrorCode =
  | 'ERR_GADGET_YAML'
  | 'ERR_GADGET_UNKNOWN_KEY'
  | 'ERR_GADGET_VALUE'
  | 'ERR_GADGET_VOLUME'
  | 'ERR_GADGET_BOOTLOADER'
  | 'ERR_GADGET_SIZE'
  | 'ERR_GADGET_TYPE'
  | 'ERR_GADGET_ROLE'
  | 'ERR_GADGET_MBR'
  | 'ERR_GADGET_FILESYSTEM'
  | 'ERR_GADGET_DUPLICATE'
  | 'ERR_GADGET_LABEL'
  | 'ERR_GADGET_CONTENT'
  | 'ERR_GADGET_CONTENT_ESCAPE'
  | 'ERR_GADGET_CONTENT_MISSING'
  | 'ERR_GADGET_CONTENT_TOO_BIG'
  | 'ERR_GADGET_OFFSET_WRITE'
  | 'ERR_GADGET_OVERLAP'
  | 'ERR_GADGET_PARTITIONS'
  | 'ERR_GADGET_UPDATE'
  | 'ERR_GADGET_AB'
  | 'ERR_GADGET_NOT_AB';

/**
 * gadget.yaml breaks a rule: names the file, line and column, and the structure.
 *
 * `structure` is the structure's name, or `#N` (its 0-based index in the volume's `structure`
 * list) when it has none. The message reads `FILE:LINE:COL: structure "NAME": WHAT` (or
 * `structure #N: WHAT`).
 */
export class GadgetError extends EdgeimageError {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly col?: number,
    readonly structure?: string,
    code: GadgetErrorCode | (string & {}) = 'ERR_GADGET',
  ) {
    super(code, `${file}${line ? `:${line}${col ? `:${col}` : ''}` : ''}: ${structure !== undefined ? `structure ${describeStructureRef(structure)}: ` : ''}${message}`, {
      file,
      line,
      col,
      structure,
    });
  }
}

/** `#3` stays as is; a name is quoted (names may hold spaces, as snapd's "BIOS Boot"). */
function describeStructureRef(structure: string): string {
  return /^#\d+$/.test(structure) ? structure : JSON.stringify(structure);
}
