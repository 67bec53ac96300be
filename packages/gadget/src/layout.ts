/**
 * Where every structure goes on the disk: snapd's implicit offsets, its ordering and overlap
 * rules (gadget.go `setImplicitForVolume`, `orderStructuresByOffset`,
 * `validateCrossVolumeStructure`; ondisk.go `OnDiskStructsFromGadget`), partition numbers and the
 * smallest disk that holds it all. Pure: no I/O, so `gadget layout` can print the plan and the
 * composer only executes it.
 */
import { GadgetError } from './errors.js';
import { MiB } from './lib/quantity.js';
import { describeOther, failAt } from './rules/context.js';
import { SIZE_LBA48_POINTER } from './rules/structure.js';
import type { ContentImage, GadgetInfo, LaidOutContent, LaidOutStructure, LaidOutVolume, Structure, Volume } from './types.js';

/** A structure without an offset starts at the previous end, but never below 1 MiB (the mbr excepted). */
export const NON_MBR_START_OFFSET = MiB;

/**
 * What a GPT volume needs after its last structure: the backup partition entry array (128
 * entries of 128 bytes = 32 sectors) and the backup header (1 sector), with 512-byte sectors:
 * 33 × 512 = 16896 bytes.
 */
export const GPT_BACKUP_SIZE = 33 * 512;

/** The sector size of the partition tables edgeimage writes. */
export const SECTOR = 512;

/** Partition table entries edgeimage writes: primary partitions only on MBR; 128 GPT entries. */
export const MAX_PARTITIONS = { mbr: 4, gpt: 128 } as const;

/**
 * Places every structure of a volume.
 *
 * - A structure without `offset` starts where the one before it (in gadget.yaml's order) ends,
 *   raised to 1 MiB for anything but the mbr. After a structure with `min-size` smaller than
 *   `size`, snapd considers the next start unknown unless given; it is placed after the full size.
 * - Structures are ordered by offset (runs of structures without offsets move with the structure
 *   before them), then each must start at or after the end of the one before it.
 * - The mbr structure must end up at 0; `offset-write` must stay inside what it refers to; declared
 *   image content (offset/size) must fit its structure.
 * - Partitions are every structure but the mbr and `type: bare`, numbered from 1 in disk order;
 *   each starts and ends on a 512-byte sector, and a table holds at most 4 (mbr) or 128 (gpt).
 *   (edgeimage's additions: snapd leaves these to the tools that write the table.)
 * - `minSize` is the end of the last structure; on GPT plus {@link GPT_BACKUP_SIZE} (16896 bytes:
 *   the backup entry array and header at the end of the disk, 33 sectors of 512 bytes).
 *
 * Errors are GadgetErrors naming `file` and the structure's line.
 *
 * @example
 * const g = readGadgetYaml('bundles/pc/meta/gadget.yaml');
 * const v = layoutVolume(g.volumes['pc']!, g.file);
 * v.structures.map((s) => [s.name, s.startOffset, s.size, s.partitionIndex]);
 * // [['system-boot', 1048576, 67108864, 1], ['system-a', 68157440, 201326592, 2], …]
 */
export function layoutVolume(v: Volume, file: string): LaidOutVolume {
  const out: LaidOutVolume = { name: v.name, schema: v.schema, structures: [], minSize: 0 };
  if (v.bootloader !== undefined) out.bootloader = v.bootloader;
  if (v.id !== undefined) out.id = v.id;
  if (v.schema === 'emmc') {
    // eMMC hardware partitions are whole devices of their own: no offsets, no table.
    out.structures = v.structures.map((s) => ({ ...s, startOffset: 0 }));
    return out;
  }

  // 1. Implicit offsets, in gadget.yaml's order.
  let previousEnd: number | undefined = 0;
  const placed = v.structures.map((s) => {
    let offset = s.offset;
    if (offset === undefined && previousEnd !== undefined) {
      offset = s.role !== 'mbr' && previousEnd < NON_MBR_START_OFFSET ? NON_MBR_START_OFFSET : previousEnd;
    }
    previousEnd = offset !== undefined && s.size === s.minSize ? offset + s.size : undefined;
    return { s, offset };
  });

  // 2. Order: runs that start with a known offset, sorted (stably) by that offset.
  const runs: (typeof placed)[] = [];
  for (const p of placed) {
    if (p.offset !== undefined || runs.length === 0) runs.push([p]);
    else runs[runs.length - 1]!.push(p);
  }
  runs.sort((a, b) => a[0]!.offset! - b[0]!.offset!);
  const ordered = runs.flat();

  // 3. Cross-structure rules, in disk order.
  const first = ordered[0];
  const volumeMinSize = minSizeOf(ordered);
  let end = 0;
  ordered.forEach(({ s, offset }, i) => {
    if (s.role === 'mbr' && offset !== 0) {
      failAt('ERR_GADGET_MBR', `has role mbr and must start at offset 0, but it would start at ${offset ?? 'an unknown offset'}; list it first, or give offset: 0`, file, s);
    }
    if (s.offsetWrite) checkOffsetWrite(s, first!.s, first!.offset, volumeMinSize, file);
    if (offset !== undefined) {
      if (offset < end) {
        const prev = ordered[i - 1]!.s;
        failAt('ERR_GADGET_OVERLAP', `overlaps with the preceding structure ${describeOther(prev)}: it starts at ${offset}, before that one ends at ${end}`, file, s);
      }
      end = offset + s.size;
    } else {
      end += s.size;
    }
  });

  // 4. Positions (snapd's OnDiskStructsFromGadget): a known offset, else right after the previous structure.
  let cursor = 0;
  let partitions = 0;
  for (const { s, offset } of ordered) {
    const startOffset = offset ?? cursor;
    cursor = startOffset + s.size;
    const los: LaidOutStructure = { ...s, startOffset };
    if (isPartition(s)) los.partitionIndex = ++partitions;
    out.structures.push(los);
  }
  for (const s of out.structures) {
    if (s.partitionIndex !== undefined && (s.startOffset % SECTOR !== 0 || s.size % SECTOR !== 0)) {
      failAt(
        'ERR_GADGET_PARTITIONS',
        `a partition starts and ends on a ${SECTOR}-byte sector, but this one ${s.startOffset % SECTOR !== 0 ? `starts at ${s.startOffset}` : `is ${s.size} bytes`}; ` +
          'give offsets and sizes in whole sectors (M and G always are)',
        file,
        s,
      );
    }
  }
  const max = MAX_PARTITIONS[v.schema];
  if (partitions > max) {
    const over = out.structures.filter((s) => s.partitionIndex !== undefined)[max]!;
    failAt(
      'ERR_GADGET_PARTITIONS',
      v.schema === 'mbr'
        ? `volume ${JSON.stringify(v.name)} has ${partitions} partitions: an MBR partition table holds 4 (edgeimage writes primary partitions only); use schema gpt`
        : `volume ${JSON.stringify(v.name)} has ${partitions} partitions: a GPT holds ${max}`,
      file,
      over,
    );
  }

  // 5. Image content declared with an offset or size must fit.
  for (const s of out.structures) checkDeclaredContent(s, file);

  // 6. Size, and snapd's warnings about the primary GPT.
  const lastEnd = out.structures.reduce((m, s) => Math.max(m, s.startOffset + s.size), 0);
  out.minSize = lastEnd + (v.schema === 'gpt' ? GPT_BACKUP_SIZE : 0);
  if (v.schema === 'gpt') {
    const warnings: string[] = [];
    for (const s of out.structures) {
      const start = s.startOffset;
      const endMin = start + s.minSize;
      const ref = s.name ? JSON.stringify(s.name) : `#${s.yamlIndex}`;
      const where = `${file}${s.line ? `:${s.line}` : ''}`;
      if (start < 512 * 34 && endMin > 4096) {
        warnings.push(`${where}: structure ${ref} (bytes ${start}-${endMin}) overlaps the primary GPT (header and partition entries, bytes 512-17408 with 512-byte sectors)`);
      } else if (start < 4096 * 6 && endMin > 512) {
        warnings.push(`${where}: structure ${ref} (bytes ${start}-${endMin}) might overlap the primary GPT (bytes 512-17408 with 512-byte sectors, 4096-24576 with 4096-byte sectors)`);
      }
    }
    if (warnings.length > 0) out.warnings = warnings;
  }
  return out;
}

/**
 * Lays out every volume, in gadget.yaml's order of volumes.
 *
 * @example
 * const layouts = layoutGadget(readGadgetYaml('gadget.yaml'));
 * layouts['pc']!.minSize;
 */
export function layoutGadget(g: GadgetInfo): Record<string, LaidOutVolume> {
  const out: Record<string, LaidOutVolume> = {};
  for (const name of g.volumeOrder) out[name] = layoutVolume(g.volumes[name]!, g.file);
  return out;
}

/** A structure that gets a partition table entry: everything but the mbr and `type: bare`. */
export function isPartition(s: Pick<Structure, 'type' | 'role'>): boolean {
  return s.type !== 'bare' && s.role !== 'mbr';
}

/**
 * Places the raw images of a structure without a filesystem, given the size of each image file
 * (in the order of `s.content`), as snapd's `layOutStructureContent`: an image starts at its
 * `offset`, else where the previous one ends; a declared `size` must hold the file; every image
 * must fit the structure and none may overlap another. Pure; the composer measures the files.
 *
 * @example
 * layoutContent(laidOut.structures[1]!, [statSync('pc-core.img').size], g.file);
 * // [{ index: 0, image: 'pc-core.img', offset: 0, size: 31232, startOffset: 1048576 }]
 */
export function layoutContent(s: LaidOutStructure, imageSizes: readonly number[], file: string): LaidOutContent[] {
  const images = s.content.flatMap((c, index) => (c.kind === 'image' ? [{ c, index }] : []));
  const out: LaidOutContent[] = [];
  let previousEnd = 0;
  images.forEach(({ c, index }, i) => {
    const fileSize = imageSizes[i];
    if (fileSize === undefined) throw new Error(`layoutContent: no size given for image #${i} (${c.image})`);
    if (c.size !== undefined && c.size < fileSize) {
      contentFail(`content #${index} (${JSON.stringify(c.image)}) is ${fileSize} bytes, larger than its declared size ${c.size}`, 'ERR_GADGET_CONTENT_TOO_BIG', file, s, c);
    }
    const offset = c.offset ?? previousEnd;
    const size = c.size ?? fileSize;
    previousEnd = offset + size;
    if (s.size !== 0 && previousEnd > s.size) {
      contentFail(
        `content #${index} (${JSON.stringify(c.image)}, ${size} bytes at offset ${offset}) does not fit in the structure (${s.size} bytes)`,
        'ERR_GADGET_CONTENT_TOO_BIG',
        file,
        s,
        c,
      );
    }
    out.push({ index, image: c.image, offset, size, startOffset: s.startOffset + offset });
  });
  checkContentOverlap(out, s, file);
  return out;
}

function checkContentOverlap(placed: LaidOutContent[], s: LaidOutStructure, file: string): void {
  const sorted = [...placed].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.size) {
      const c = s.content[cur.index] as ContentImage;
      contentFail(`content #${cur.index} (${JSON.stringify(cur.image)}) overlaps with the preceding image ${JSON.stringify(prev.image)}`, 'ERR_GADGET_OVERLAP', file, s, c);
    }
  }
}

/** Without the files, what gadget.yaml declares: offset + size within the structure, no overlaps among declared images. */
function checkDeclaredContent(s: LaidOutStructure, file: string): void {
  const known: LaidOutContent[] = [];
  let previousEnd: number | undefined = 0;
  s.content.forEach((c, index) => {
    if (c.kind !== 'image') return;
    const offset = c.offset ?? previousEnd;
    if (offset !== undefined && offset + (c.size ?? 0) > s.size) {
      contentFail(
        c.size !== undefined
          ? `content #${index} (${JSON.stringify(c.image)}, ${c.size} bytes at offset ${offset}) does not fit in the structure (${s.size} bytes)`
          : `content #${index} (${JSON.stringify(c.image)}) starts at offset ${offset}, past the end of the structure (${s.size} bytes)`,
        'ERR_GADGET_CONTENT_TOO_BIG',
        file,
        s,
        c,
      );
    }
    if (offset !== undefined && c.size !== undefined) {
      known.push({ index, image: c.image, offset, size: c.size, startOffset: s.startOffset + offset });
      previousEnd = offset + c.size;
    } else {
      previousEnd = undefined;
    }
  });
  checkContentOverlap(known, s, file);
}

function contentFail(message: string, code: 'ERR_GADGET_CONTENT_TOO_BIG' | 'ERR_GADGET_OVERLAP', file: string, s: Structure, c: ContentImage): never {
  throw new GadgetError(message, file, c.line ?? s.line, c.line ? c.col : s.col, s.name ? s.name : `#${s.yamlIndex}`, code);
}

/** snapd's Volume.MinSize over the ordered structures: known offsets plus min-sizes. */
function minSizeOf(ordered: { s: Structure; offset: number | undefined }[]): number {
  let end = 0;
  for (const { s, offset } of ordered) end = offset !== undefined ? offset + s.minSize : end + s.minSize;
  return end;
}

/** snapd's validateOffsetWrite: relative only to the first structure, which sits at 0; 4 bytes that fit. */
function checkOffsetWrite(s: Structure, first: Structure, firstOffset: number | undefined, volumeMinSize: number, file: string): void {
  const ow = s.offsetWrite!;
  if (ow.relativeTo !== undefined) {
    if (ow.relativeTo !== first.name) {
      failAt('ERR_GADGET_OFFSET_WRITE', `offset-write refers to ${JSON.stringify(ow.relativeTo)}, but it may refer only to the first structure of the volume${first.name ? ` (${JSON.stringify(first.name)})` : ''}`, file, s);
    }
    if (firstOffset !== 0) failAt('ERR_GADGET_OFFSET_WRITE', `offset-write refers to ${JSON.stringify(ow.relativeTo)}, which does not start at offset 0`, file, s);
    if (ow.offset + SIZE_LBA48_POINTER > first.minSize) {
      failAt('ERR_GADGET_OFFSET_WRITE', `offset-write writes ${SIZE_LBA48_POINTER} bytes at ${ow.offset}, outside of the referred structure ${JSON.stringify(ow.relativeTo)} (${first.minSize} bytes)`, file, s);
    }
  } else if (ow.offset + SIZE_LBA48_POINTER > volumeMinSize) {
    failAt('ERR_GADGET_OFFSET_WRITE', `offset-write writes ${SIZE_LBA48_POINTER} bytes at ${ow.offset}, outside of the volume (min size ${volumeMinSize})`, file, s);
  }
}
