/** A gadget.yaml after validation, with snapd's implicit values applied (sizes and offsets in bytes). */
export interface GadgetInfo {
  file: string;
  volumes: Record<string, Volume>;
  /** Volume names in the order gadget.yaml gives them. */
  volumeOrder: string[];
}

export type Schema = 'gpt' | 'mbr' | 'emmc';
export type Filesystem = 'vfat' | 'vfat-16' | 'vfat-32' | 'ext4' | 'none';

export interface Volume {
  name: string;
  schema: Schema;
  bootloader?: string;
  /** MBR disk id (2 hex digits or 8) or GPT disk GUID, when the gadget gives one. */
  id?: string;
  structures: Structure[];
}

export interface ContentFile {
  kind: 'file';
  source: string;
  target: string;
  unpack?: boolean;
}

export interface ContentImage {
  kind: 'image';
  image: string;
  /** Offset inside the structure (bytes). */
  offset?: number;
  size?: number;
}

export interface OffsetWrite {
  /** Name of the structure the offset is relative to (must be the first, at 0); undefined: absolute. */
  relativeTo?: string;
  offset: number;
}

export interface Structure {
  /** Position in gadget.yaml's structure list (0-based), for messages. */
  yamlIndex: number;
  name?: string;
  role?: string;
  /** As written: `bare`, `mbr`, `XX`, a GUID or `XX,GUID`; see mbrType/gptType for the parts. */
  type: string;
  mbrType?: string;
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
  structures: LaidOutStructure[];
  /** End of the last structure: the smallest disk that holds the layout (plus GPT backup area). */
  minSize: number;
}
