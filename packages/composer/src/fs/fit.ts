import { ComposeError } from '../errors.js';
import { MiB } from './tree.js';

export interface FitSearch {
  /** The filesystem being sized, for the message: `ext4 filesystem "system-a" (…)`. */
  what: string;
  filesystem: 'ext4' | 'vfat';
  /** The structure's name, for the error's context. */
  structure?: string;
  /** Bytes of content to hold (for the message). */
  payload: number;
  /** A size known not to hold the content (the structure's), in bytes. */
  tooSmall: number;
  /** A first guess at a size that holds it, in MiB (default twice `tooSmall`). */
  guess?: number;
  /** The largest size tried, in MiB: the filesystem's (or its tools') limit. */
  limit: number;
  /** Why nothing fits, when the caller knows (appended to the message). */
  why?: string;
  /** Whether an empty filesystem of `mib` MiB, built as the real one is, holds the content. */
  fits: (mib: number) => Promise<boolean>;
}

/**
 * The smallest whole number of MiB whose filesystem holds the content, in bytes: doubling from a
 * size that does not fit until one does, then halving the gap. Both ext4 and vfat size their
 * "it needs about N MiB" hint with it. Bounded: at most log2(limit) doublings and as many halvings.
 *
 * Throws ERR_FS_NO_FIT when not even `limit` MiB holds the content (say a FAT16 root directory
 * with more entries than FAT16 allows, at any size).
 */
export async function smallestFit(o: FitSearch): Promise<number> {
  let lo = Math.max(1, Math.floor(o.tooSmall / MiB));
  let hi = Math.min(o.limit, Math.max(lo + 1, o.guess ?? lo * 2));
  while (!(await o.fits(hi))) {
    if (hi >= o.limit) {
      throw new ComposeError(
        'ERR_FS_NO_FIT',
        `${o.what}: the content (${o.payload} bytes) fits in no ${o.filesystem} filesystem of any size: the largest tried, ${hi * MiB} bytes (${hi} MiB), does not hold it either${o.why ? `; ${o.why}` : ''}`,
        { filesystem: o.filesystem, structure: o.structure, payload: o.payload, largestTried: hi * MiB },
      );
    }
    lo = hi;
    hi = Math.min(o.limit, hi * 2);
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await o.fits(mid)) hi = mid;
    else lo = mid;
  }
  return hi * MiB;
}
