import type { GadgetUpdateDefaults } from './updates.js';
/** A gadget.yaml after validation, with snapd's implicit values applied (sizes and offsets in bytes). */
export interface GadgetInfo {
  file: string;
  volumes: Record<string, Volume>;
  /** Volume names in the order gadget.yaml gives them. */
  volumeOrder: string[];
  /** `edgeimage-updates:`: defaults for the device's update.conf (the build's options win). */
  updates?: GadgetUpdateDefaults;
}

export type Schema = 'gpt' | 'mbr' | 'emmc';
export type Filesystem = 'vfat' | 'vfat-16' | 'vfat-32' | 'ext4' | 'none';

export interface Volume {
  name: string;
  schema: Schema;
  bootloader?: string;
  /** MBR disk id (2 hex digits or 8) or GPT disk GUID, when the gadget gives one. */
  id?: string;
  /**
   * In gadget.yaml's order (not disk order), each with the offset as written; {@link layoutVolume}
   * computes the implicit offsets and the disk order.
   */
  structures: Structure[];
}

export interface ContentFile {
  kind: 'file';
  /** A path inside the gadget (a trailing `/` means a directory's contents) or a `$kernel:ASSET/PATH` reference. */
  source: string;
  target: string;
  unpack?: boolean;
  /** Where this content entry starts in gadget.yaml (1-based), for messages. */
  line?: number;
  col?: number;
}

export interface ContentImage {
  kind: 'image';
  image: string;
  /** Offset inside the structure (bytes). */
  offset?: number;
  size?: number;
  /** Where this content entry starts in gadget.yaml (1-based), for messages. */
  line?: number;
  col?: number;
}

export interface OffsetWrite {
  /** Name of the structure the offset is relative to (must be the first, at 0); undefined: absolute. */
  relativeTo?: string;
  offset: number;
}

export interface Structure {
  /** Position in gadget.yaml's structure list (0-based), for messages. */
  yamlIndex: number;
  /** Where this structure's entry starts in gadget.yaml (1-based), for messages. */
  line?: number;
  col?: number;
  name?: string;
  /** The role, with the implicit ones applied (`type: mbr` → `mbr`, label `system-boot` → `system-boot`). */
  role?: string;
  /** As written: `bare`, `mbr`, `XX`, a GUID or `XX,GUID`; see mbrType/gptType for the parts. */
  type: string;
  mbrType?: string;
  /** The GUID part of the type, upper case. */
  gptType?: string;
  offset?: number;
  offsetWrite?: OffsetWrite;
  size: number;
  minSize: number;
  filesystem: Filesystem;
  filesystemLabel?: string;
  /** GPT partition GUID when the gadget gives one. */
  id?: string;
  content: (ContentFile | ContentImage)[];
  update?: { edition: number; preserve: string[] };
}

/** A structure placed on the disk. */
export interface LaidOutStructure extends Structure {
  /** Start on the disk, bytes. */
  startOffset: number;
  /** 1-based partition number in the table, or undefined for bare structures and the mbr. */
  partitionIndex?: number;
}

export interface LaidOutVolume {
  name: string;
  schema: Schema;
  bootloader?: string;
  id?: string;
  /** In disk order (by start offset). */
  structures: LaidOutStructure[];
  /** End of the last structure: the smallest disk that holds the layout (plus GPT backup area). */
  minSize: number;
  /**
   * What snapd only warns about (a structure in the area of the primary GPT); the layout is still
   * returned. One sentence each.
   */
  warnings?: string[];
}

/** A raw image placed inside its structure (see `layoutContent`). */
export interface LaidOutContent {
  /** Index of the entry in the structure's `content`. */
  index: number;
  image: string;
  /** Start inside the structure, bytes. */
  offset: number;
  /** Bytes the image occupies: its declared size, else the file's size. */
  size: number;
  /** Start on the disk, bytes. */
  startOffset: number;
}
