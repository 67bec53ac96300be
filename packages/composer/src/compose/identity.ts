import { createHash } from 'node:crypto';
import { deterministicGuid } from '../partition/guid.js';

/**
 * Everything that would otherwise be random or read from the clock, derived from the model and
 * the structure instead: the same inputs give the same image, byte for byte.
 */
export class ImageIdentity {
  constructor(
    readonly brandId: string,
    readonly model: string,
    readonly revision: number,
    /** The model's timestamp: every file time and filesystem time in the image. */
    readonly timestamp: Date,
  ) {}

  private digest(...parts: string[]): Buffer {
    return createHash('sha256').update(['edgeimage', this.brandId, this.model, ...parts].join('\0')).digest();
  }

  /** A GUID for `parts` of this model (partition, disk, filesystem UUIDs). */
  guid(...parts: string[]): string {
    return deterministicGuid('edgeimage', this.brandId, this.model, ...parts);
  }

  /** A 32-bit number (vfat volume id, MBR disk id) for `parts`. */
  u32(...parts: string[]): number {
    return this.digest('u32', ...parts).readUInt32LE(0);
  }

  get sourceDateEpoch(): number {
    return Math.floor(this.timestamp.getTime() / 1000);
  }
}
