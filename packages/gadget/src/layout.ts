// STUB — to be implemented (gadget helper).
import type { GadgetInfo, LaidOutVolume, Volume } from './types.js';
/** Places every structure: implicit offsets (1 MiB floor), ordering, overlap checks. Pure. */
export function layoutVolume(_v: Volume, _file: string): LaidOutVolume {
  throw new Error('not implemented');
}
export function layoutGadget(_g: GadgetInfo): Record<string, LaidOutVolume> {
  throw new Error('not implemented');
}
