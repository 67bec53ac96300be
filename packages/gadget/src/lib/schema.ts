/**
 * The shape of gadget.yaml (zod): which keys exist at each level, and which values are strings,
 * lists or maps. Sizes, offsets, booleans and editions are parsed here; the rules that relate
 * values to each other are in `../rules/`.
 */
import { z } from 'zod';
import { UPDATE_KEYS_GADGET } from '../updates.js';
import { parseQuantity } from './quantity.js';

export const TOP_KEYS = ['volumes', 'defaults', 'connections', 'volume-assignments', 'kernel-cmdline', 'format', 'device-tree', 'device-tree-origin', 'edgeimage-updates'] as const;
export const VOLUME_KEYS = ['schema', 'bootloader', 'id', 'structure', 'partial'] as const;
export const STRUCTURE_KEYS = ['name', 'filesystem-label', 'offset', 'offset-write', 'min-size', 'size', 'type', 'role', 'id', 'filesystem', 'content', 'update'] as const;
export const CONTENT_KEYS = ['source', 'target', 'unpack', 'image', 'offset', 'size'] as const;
export const UPDATE_KEYS = ['edition', 'preserve'] as const;

/** Optional: absent, empty or `null` all mean "not given". */
function opt<T extends z.ZodType>(s: T) {
  return s.nullish().transform((v) => (v === null ? undefined : v) as Exclude<z.output<T>, null> | undefined);
}

const str = z.string();

/** A size or offset (`440`, `1M`, `2G`), as bytes. */
const quantity = z.string().transform((v, ctx) => {
  const r = parseQuantity(v);
  if ('error' in r) {
    ctx.addIssue({ code: 'custom', message: `cannot parse ${JSON.stringify(v)}: ${r.error}` });
    return z.NEVER;
  }
  return r.bytes;
});

const TRUE = new Set(['true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'y', 'Y']);
const FALSE = new Set(['false', 'False', 'FALSE', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'n', 'N']);
/** YAML 1.1 booleans, as snapd's yaml.v2 reads them. */
const bool = z.string().transform((v, ctx) => {
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true or false, found ${JSON.stringify(v)}` });
  return z.NEVER;
});

/** An update edition: a decimal uint32. */
const edition = z.string().transform((v, ctx) => {
  if (/^[0-9]+$/.test(v) && Number(v) <= 0xffffffff) return Number(v);
  ctx.addIssue({ code: 'custom', message: `must be a positive number (at most ${0xffffffff}), not ${JSON.stringify(v)}` });
  return z.NEVER;
});

export const contentSchema = z.strictObject({
  source: opt(str),
  target: opt(str),
  unpack: opt(bool),
  image: opt(str),
  offset: opt(quantity),
  size: opt(quantity),
});

export const updateSchema = z.strictObject({
  edition: opt(edition),
  preserve: opt(z.array(str)),
});

export const structureSchema = z.strictObject({
  name: opt(str),
  'filesystem-label': opt(str),
  offset: opt(quantity),
  'offset-write': opt(str),
  'min-size': opt(quantity),
  size: opt(quantity),
  type: opt(str),
  role: opt(str),
  id: opt(str),
  filesystem: opt(str),
  content: opt(z.array(contentSchema)),
  update: opt(updateSchema),
});

export const volumeSchema = z.strictObject({
  schema: opt(str),
  bootloader: opt(str),
  id: opt(str),
  structure: opt(z.array(structureSchema)),
  partial: opt(z.array(str)),
});

export const gadgetSchema = z.strictObject({
  // A volume given as `name:` with nothing under it stays null here: "volume stanza is empty".
  volumes: opt(z.record(str, volumeSchema.nullable())),
  defaults: opt(z.record(str, z.unknown())),
  connections: opt(z.array(z.strictObject({ plug: str, slot: opt(str) }))),
  'volume-assignments': opt(z.array(z.strictObject({ 'assignment-name': str, assignment: z.record(str, z.strictObject({ device: str })) }))),
  'kernel-cmdline': opt(z.strictObject({ allow: opt(z.array(str)), append: opt(z.array(str)), remove: opt(z.array(str)) })),
  format: opt(str),
  'device-tree': opt(str),
  'device-tree-origin': opt(str),
  // edgeimage's own: the device's update settings' defaults (values checked in rules/updates.ts).
  'edgeimage-updates': opt(z.strictObject({ interval: opt(str), jitter: opt(str), window: opt(str), mode: opt(str) })),
});

export type RawGadget = z.output<typeof gadgetSchema>;
export type RawVolume = NonNullable<NonNullable<RawGadget['volumes']>[string]>;
export type RawStructure = NonNullable<RawVolume['structure']>[number];
export type RawContent = NonNullable<RawStructure['content']>[number];

/** The keys allowed in the map at a path, for "unknown key" messages. */
export function allowedKeys(path: readonly PropertyKey[]): readonly string[] {
  const p = path.map((k) => (typeof k === 'number' ? '#' : String(k)));
  if (p.length === 0) return TOP_KEYS;
  if (p[0] === 'volumes') {
    if (p.length === 2) return VOLUME_KEYS;
    if (p.length === 4) return STRUCTURE_KEYS;
    if (p.length === 6 && p[4] === 'content') return CONTENT_KEYS;
    if (p.length === 5 && p[4] === 'update') return UPDATE_KEYS;
  }
  if (p[0] === 'kernel-cmdline') return ['allow', 'append', 'remove'];
  if (p[0] === 'edgeimage-updates') return UPDATE_KEYS_GADGET;
  if (p[0] === 'connections') return ['plug', 'slot'];
  if (p[0] === 'volume-assignments') return p.length === 2 ? ['assignment-name', 'assignment'] : ['device'];
  return [];
}

/** What kind of map is at a path, for messages: "a structure", "volume \"pc\"", "content #0"… */
export function describeMap(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'at the top level';
  if (path[0] === 'volumes') {
    if (path.length === 2) return `in volume ${JSON.stringify(path[1])}`;
    if (path.length === 4) return 'in a structure';
    if (path.length === 6 && path[4] === 'content') return `in content #${String(path[5])}`;
    if (path.length === 5 && path[4] === 'update') return 'in update';
  }
  return `in ${path.filter((k) => typeof k === 'string').join('.')}`;
}
