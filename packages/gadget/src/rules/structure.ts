/**
 * One structure: its typed form with snapd's implicit values, and the rules that concern it
 * alone (snapd's `validateVolumeStructure`, `validateStructureType`, `validateRole`, the content
 * checkers and `validateStructureUpdate`), plus edgeimage's path and id checks.
 */
import { posix } from 'node:path';
import type { RawContent, RawStructure } from '../lib/schema.js';
import { MiB, parseQuantity } from '../lib/quantity.js';
import type { ContentFile, ContentImage, Filesystem, OffsetWrite, Schema, Structure } from '../types.js';
import { type Ctx, structurePath } from './context.js';

/** snapd's roles (gadget.go), in the order the README lists them. */
export const SNAPD_ROLES = [
  'mbr',
  'system-boot',
  'system-data',
  'system-seed',
  'system-seed-null',
  'system-save',
  'system-boot-state',
  'system-boot-image',
  'system-boot-select',
  'system-seed-image',
  'system-seed-select',
  'bootimg',
  'bootselect',
] as const;
/** edgeimage's slot roles. */
export const SLOT_ROLES = ['system-a', 'system-b'] as const;
export const KNOWN_ROLES: readonly string[] = [...SNAPD_ROLES, ...SLOT_ROLES];

export const FILESYSTEMS: readonly Filesystem[] = ['vfat', 'vfat-16', 'vfat-32', 'ext4', 'none'];

/** Largest `mbr` structure: the boot code area in front of the partition table. */
export const SIZE_MBR = 446;
/** Bytes written by `offset-write` (a 32-bit LBA). */
export const SIZE_LBA48_POINTER = 4;
/** Type GUID of the `system-boot-state` role (U-Boot environment partition). */
export const SYSTEM_BOOT_STATE_GUID = '3DE21764-95BD-54BD-A5C3-4ABE786F38A8';

/** UTF-16 code units in a GPT partition entry's name. */
export const GPT_NAME_MAX = 36;

const MBR_TYPE = /^[0-9A-F]{2}$/;
const GUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const KERNEL_ASSET = /^[a-zA-Z0-9][a-zA-Z0-9-]*$/;
const EMMC_NAMES = ['boot0', 'boot1'];

export interface VolumeContext {
  name: string;
  schema: Schema;
}

/** Reads structure `index` of a volume: implicit values applied, every per-structure rule checked. */
export function buildStructure(ctx: Ctx, vol: VolumeContext, raw: RawStructure, index: number): Structure {
  const path = structurePath(vol.name, index);
  const ref = raw.name ? raw.name : `#${index}`;
  function fail(code: Parameters<Ctx['fail']>[0], message: string, ...rest: (string | number)[]): never {
    return ctx.fail(code, message, [...path, ...rest], ref);
  }
  const pos = ctx.src.pos(path);

  if (vol.schema === 'emmc') return buildEmmcStructure(ctx, vol, raw, index);

  const size = raw.size ?? 0;
  // snapd: min-size defaults to size (an explicit 0 counts as not given).
  const minSize = raw['min-size'] || size;
  if (size === 0) {
    if (raw.size === undefined) fail('ERR_GADGET_SIZE', 'size is missing: every structure needs a size (bytes, or with M or G)');
    fail('ERR_GADGET_SIZE', 'size must be greater than 0', 'size');
  }
  if (minSize > size) fail('ERR_GADGET_SIZE', `min-size (${minSize}) is bigger than size (${size})`, 'min-size');

  // type, in all its forms, and whether the schema allows it
  const type = raw.type ?? '';
  const parts = parseType(type);
  if (type === '') fail('ERR_GADGET_TYPE', 'type is missing: give bare, an MBR type such as 0C, a GPT type GUID, or both as 0C,GUID');
  if (!parts) {
    fail(
      'ERR_GADGET_TYPE',
      `invalid type ${JSON.stringify(type)}: expected bare, mbr, two upper-case hex digits (an MBR type such as 0C), a GUID (a GPT type), or both as 0C,C12A7328-F81F-11D2-BA4B-00A0C93EC93B`,
      'type',
    );
  }
  if (parts.gptType && !parts.mbrType && vol.schema !== 'gpt') {
    fail('ERR_GADGET_TYPE', `invalid type ${JSON.stringify(type)}: a GUID type on a volume with schema ${vol.schema}; MBR partition tables have one-byte types: give one (such as 0C), or both as XX,GUID`, 'type');
  }
  if (parts.mbrType && !parts.gptType && vol.schema !== 'mbr') {
    fail('ERR_GADGET_TYPE', `invalid type ${JSON.stringify(type)}: an MBR type on a volume with schema ${vol.schema}; give a GPT type GUID, or both as ${type},GUID`, 'type');
  }

  // role, with snapd's implicit roles
  let role = raw.role;
  if (!role && type === 'mbr') role = 'mbr';
  else if (!role && raw['filesystem-label'] === 'system-boot') role = 'system-boot';
  if (type === 'bare' && role && role !== 'mbr') {
    fail('ERR_GADGET_ROLE', `role ${JSON.stringify(role)} conflicts with type bare: a bare structure is not a partition and can have no role but mbr`, 'role');
  }
  if (type === 'mbr' && role !== 'mbr') {
    fail('ERR_GADGET_ROLE', `role ${JSON.stringify(role)} conflicts with the legacy type mbr (which means role mbr)`, 'role');
  }
  if (role && !KNOWN_ROLES.includes(role)) {
    fail('ERR_GADGET_ROLE', `unsupported role ${JSON.stringify(role)}; the roles are ${KNOWN_ROLES.join(', ')}`, 'role');
  }

  // filesystem
  const fsText = raw.filesystem ?? 'none';
  if (!FILESYSTEMS.includes(fsText as Filesystem)) {
    fail('ERR_GADGET_FILESYSTEM', `invalid filesystem ${JSON.stringify(fsText)}: one of ${FILESYSTEMS.join(', ')}`, 'filesystem');
  }
  const filesystem = fsText as Filesystem;
  const hasFilesystem = filesystem !== 'none';

  if (role === 'mbr') {
    if (size > SIZE_MBR) {
      fail('ERR_GADGET_MBR', `the mbr structure is ${size} bytes: it cannot be larger than ${SIZE_MBR} bytes (the boot code in front of the partition table; pc gadgets use 440)`, 'size');
    }
    if (raw.offset !== undefined && raw.offset !== 0) fail('ERR_GADGET_MBR', `the mbr structure must start at offset 0, not ${raw.offset}`, 'offset');
    if (raw.id !== undefined) fail('ERR_GADGET_MBR', 'the mbr structure cannot have a partition id: it is not a partition', 'id');
    if (hasFilesystem) fail('ERR_GADGET_MBR', `the mbr structure cannot have a filesystem (found ${filesystem})`, 'filesystem');
  }
  if (role === 'system-boot-state') {
    if (raw.offset === undefined) fail('ERR_GADGET_ROLE', 'role system-boot-state needs an explicit offset', 'role');
    if (minSize !== size) fail('ERR_GADGET_ROLE', 'role system-boot-state does not support min-size', 'min-size');
    if (size < MiB) fail('ERR_GADGET_ROLE', `a system-boot-state structure must be at least 1 MiB, not ${size} bytes`, 'size');
    if (hasFilesystem) fail('ERR_GADGET_ROLE', 'a system-boot-state structure has no filesystem', 'filesystem');
    if (type.toUpperCase() !== SYSTEM_BOOT_STATE_GUID) fail('ERR_GADGET_ROLE', `role system-boot-state needs type ${SYSTEM_BOOT_STATE_GUID}, not ${type}`, 'type');
  }

  // content
  const content = (raw.content ?? []).map((c, i) =>
    hasFilesystem ? fileContent(ctx, c, [...path, 'content', i], ref, filesystem) : imageContent(ctx, c, [...path, 'content', i], ref, type, role),
  );

  // update
  let update: Structure['update'];
  if (raw.update) {
    const preserve = raw.update.preserve ?? [];
    if (!hasFilesystem && preserve.length > 0) fail('ERR_GADGET_UPDATE', 'update.preserve applies to structures with a filesystem only', 'update', 'preserve');
    const seen = new Set<string>();
    preserve.forEach((p, i) => {
      if (seen.has(p)) fail('ERR_GADGET_UPDATE', `duplicate "preserve" entry ${JSON.stringify(p)}`, 'update', 'preserve', i);
      seen.add(p);
    });
    update = { edition: raw.update.edition ?? 0, preserve };
  }

  // offset-write
  let offsetWrite: OffsetWrite | undefined;
  if (raw['offset-write'] !== undefined) {
    const r = parseRelativeOffset(raw['offset-write']);
    if ('error' in r) fail('ERR_GADGET_OFFSET_WRITE', `cannot parse offset-write ${JSON.stringify(raw['offset-write'])}: ${r.error}`, 'offset-write');
    offsetWrite = r;
  }

  // id: edgeimage writes it into the GPT partition entry
  if (raw.id !== undefined) {
    if (vol.schema !== 'gpt') fail('ERR_GADGET_VALUE', `a partition id (GUID) exists only on GPT volumes; this volume's schema is ${vol.schema}`, 'id');
    if (!GUID.test(raw.id)) fail('ERR_GADGET_VALUE', `invalid partition id ${JSON.stringify(raw.id)}: expected a GUID such as 6B29FC40-CA47-1067-B31D-00DD010662DA`, 'id');
  }

  // The name of a GPT partition is stored in its table entry: 36 UTF-16 code units.
  if (vol.schema === 'gpt' && raw.name !== undefined && type !== 'bare' && role !== 'mbr' && raw.name.length > GPT_NAME_MAX) {
    fail('ERR_GADGET_VALUE', `name ${JSON.stringify(raw.name)} is too long for a GPT partition name (${raw.name.length} UTF-16 code units, at most ${GPT_NAME_MAX})`, 'name');
  }

  const s: Structure = {
    yamlIndex: index,
    type,
    size,
    minSize,
    filesystem,
    content,
  };
  if (pos) {
    s.line = pos.line;
    s.col = pos.col;
  }
  if (raw.name !== undefined) s.name = raw.name;
  if (role) s.role = role;
  if (parts.mbrType) s.mbrType = parts.mbrType;
  if (parts.gptType) s.gptType = parts.gptType;
  if (raw.offset !== undefined) s.offset = raw.offset;
  if (offsetWrite) s.offsetWrite = offsetWrite;
  if (raw['filesystem-label'] !== undefined) s.filesystemLabel = raw['filesystem-label'];
  if (raw.id !== undefined) s.id = raw.id.toUpperCase();
  if (update) s.update = update;
  return s;
}

/** eMMC hardware partitions: only a name (boot0 or boot1) and image content. */
function buildEmmcStructure(ctx: Ctx, vol: VolumeContext, raw: RawStructure, index: number): Structure {
  const path = structurePath(vol.name, index);
  const ref = raw.name ? raw.name : `#${index}`;
  const forbidden = ['size', 'min-size', 'filesystem-label', 'offset', 'offset-write', 'filesystem', 'type', 'id', 'role'] as const;
  for (const key of forbidden) {
    const v = raw[key];
    if (v === undefined || (key === 'offset' && v === 0)) continue;
    ctx.failKey('ERR_GADGET_VOLUME', `${JSON.stringify(key)} is not allowed in an emmc volume: its structures have only a name (boot0 or boot1) and image content`, path, key, ref);
  }
  if (!raw.name || !EMMC_NAMES.includes(raw.name)) {
    ctx.fail('ERR_GADGET_VOLUME', `an emmc structure is named boot0 or boot1, not ${JSON.stringify(raw.name ?? '')}`, [...path, 'name'], ref);
  }
  const content = (raw.content ?? []).map((c, i): ContentImage => {
    const cpath = [...path, 'content', i];
    if (c.offset !== undefined || c.size !== undefined) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: emmc content cannot have an offset or size`, cpath, ref);
    if (c.source !== undefined || c.target !== undefined) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: emmc content is an image, not source/target files`, cpath, ref);
    return imageContent(ctx, c, cpath, ref, 'bare', undefined);
  });
  const pos = ctx.src.pos(path);
  const s: Structure = { yamlIndex: index, name: raw.name, type: '', size: 0, minSize: 0, offset: 0, filesystem: 'none', content };
  if (pos) {
    s.line = pos.line;
    s.col = pos.col;
  }
  if (raw.update) s.update = { edition: raw.update.edition ?? 0, preserve: raw.update.preserve ?? [] };
  return s;
}

/** `bare`, `mbr`, `0C`, a GUID, or `0C,GUID`; undefined when the form is none of these. */
export function parseType(type: string): { mbrType?: string; gptType?: string } | undefined {
  if (type === 'bare' || type === 'mbr') return {};
  const comma = type.indexOf(',');
  if (comma === -1) {
    if (MBR_TYPE.test(type)) return { mbrType: type };
    if (GUID.test(type)) return { gptType: type.toUpperCase() };
    return undefined;
  }
  const code = type.slice(0, comma);
  const guid = type.slice(comma + 1);
  if (MBR_TYPE.test(code) && GUID.test(guid)) return { mbrType: code, gptType: guid.toUpperCase() };
  return undefined;
}

/** `[NAME+]OFFSET`, the offset at most 4 GiB (snapd's parseRelativeOffset). */
export function parseRelativeOffset(text: string): OffsetWrite | { error: string } {
  let relativeTo: string | undefined;
  let spec = text;
  const plus = text.indexOf('+');
  if (plus !== -1) {
    relativeTo = text.slice(0, plus);
    spec = text.slice(plus + 1);
    if (relativeTo === '') return { error: 'missing structure name before "+"' };
  }
  if (spec === '') return { error: 'missing offset' };
  const q = parseQuantity(spec);
  if ('error' in q) return { error: `offset ${JSON.stringify(spec)}: ${q.error}` };
  if (q.bytes > 4 * 1024 * MiB) return { error: 'offset above the 4G limit' };
  return relativeTo === undefined ? { offset: q.bytes } : { relativeTo, offset: q.bytes };
}

/** Content of a structure with a filesystem: files copied from `source` to `target`. */
function fileContent(ctx: Ctx, c: RawContent, path: (string | number)[], ref: string, filesystem: Filesystem): ContentFile {
  const i = path[path.length - 1];
  for (const key of ['image', 'offset', 'size'] as const) {
    if (c[key] !== undefined) {
      ctx.failKey(
        'ERR_GADGET_CONTENT',
        `content #${i}: ${JSON.stringify(key)} is raw image content, which a structure with a filesystem (${filesystem}) cannot take; give source and target (files copied into the filesystem)`,
        path,
        key,
        ref,
      );
    }
  }
  if (c.source === undefined) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: source is missing (a path in the gadget, or $kernel:ASSET/PATH)`, path, ref);
  if (c.target === undefined) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: target is missing (where in the filesystem to put ${c.source})`, path, ref);
  if (c.source.startsWith('$kernel:')) {
    const why = checkKernelRef(c.source);
    if (why) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: invalid kernel reference ${JSON.stringify(c.source)}: ${why}`, [...path, 'source'], ref);
  } else {
    const why = escapes(c.source);
    if (why) ctx.fail('ERR_GADGET_CONTENT_ESCAPE', `content #${i}: source ${JSON.stringify(c.source)} ${why}`, [...path, 'source'], ref);
  }
  if (escapesRoot(c.target)) ctx.fail('ERR_GADGET_CONTENT_ESCAPE', `content #${i}: target ${JSON.stringify(c.target)} leaves the filesystem's root (..)`, [...path, 'target'], ref);
  const pos = ctx.src.pos(path);
  const out: ContentFile = { kind: 'file', source: c.source, target: c.target };
  if (c.unpack !== undefined) out.unpack = c.unpack;
  if (pos) {
    out.line = pos.line;
    out.col = pos.col;
  }
  return out;
}

/** Content of a structure without a filesystem: raw images written at an offset. */
function imageContent(ctx: Ctx, c: RawContent, path: (string | number)[], ref: string, type: string, role: string | undefined): ContentImage {
  const i = path[path.length - 1];
  const what = role === 'mbr' ? 'the mbr structure' : type === 'bare' ? 'a bare structure' : 'a structure without a filesystem';
  for (const key of ['source', 'target', 'unpack'] as const) {
    if (c[key] !== undefined) {
      ctx.failKey(
        'ERR_GADGET_CONTENT',
        `content #${i}: ${JSON.stringify(key)} is file content, which needs a filesystem; ${what} takes raw images only (image, with optional offset and size)`,
        path,
        key,
        ref,
      );
    }
  }
  if (c.image === undefined) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: image is missing (a file in the gadget, written raw into the structure)`, path, ref);
  if (c.image.startsWith('$kernel:')) ctx.fail('ERR_GADGET_CONTENT', `content #${i}: image cannot be a kernel reference (only source can)`, [...path, 'image'], ref);
  const why = escapes(c.image);
  if (why) ctx.fail('ERR_GADGET_CONTENT_ESCAPE', `content #${i}: image ${JSON.stringify(c.image)} ${why}`, [...path, 'image'], ref);
  const pos = ctx.src.pos(path);
  const out: ContentImage = { kind: 'image', image: c.image };
  if (c.offset !== undefined) out.offset = c.offset;
  if (c.size !== undefined) out.size = c.size;
  if (pos) {
    out.line = pos.line;
    out.col = pos.col;
  }
  return out;
}

/**
 * Why a content path leaves the gadget (absolute, or `..` above its root), or undefined. Symlinks
 * are checked against the unpacked gadget by `checkContentPath`.
 */
export function escapes(p: string): string | undefined {
  if (p.startsWith('/')) return 'is an absolute path: content paths are relative to the gadget\'s root';
  if (escapesRoot(p)) return 'leaves the gadget (..): content paths stay inside the gadget';
  return undefined;
}

function escapesRoot(p: string): boolean {
  const n = posix.normalize(p.replace(/^\/+/, ''));
  return n === '..' || n.startsWith('../');
}

/** snapd's splitKernelRef rules for `$kernel:ASSET/PATH`; the reason when broken. */
function checkKernelRef(ref: string): string | undefined {
  const rest = ref.slice('$kernel:'.length);
  const slash = rest.indexOf('/');
  if (slash === -1) return 'expected $kernel:ASSET/PATH';
  const asset = rest.slice(0, slash);
  const content = rest.slice(slash + 1);
  if (asset === '' || content === '') return 'missing asset name or content';
  const nonDir = content.endsWith('/') ? content.slice(0, -1) : content;
  if (posix.normalize(nonDir) !== nonDir || content.includes('..') || nonDir === '/' || nonDir.startsWith('/')) return 'invalid content path';
  if (!KERNEL_ASSET.test(asset)) return 'invalid asset name';
  return undefined;
}
