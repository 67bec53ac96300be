/**
 * gadget.yaml → a checked {@link GadgetInfo}: the YAML read as written (failsafe schema), its shape
 * checked with zod (unknown keys refused at every level), then snapd's implicit values and rules
 * (those that need no model) and edgeimage's additions. Every failure is a GadgetError naming
 * `file:line:col` and the structure.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar } from 'yaml';
import type { z } from 'zod';
import { layoutVolume } from './layout.js';
import { allowedKeys, describeMap, gadgetSchema } from './lib/schema.js';
import { type Path, type Raw, YamlSource } from './lib/yaml-source.js';
import { Ctx } from './rules/context.js';
import { checkBootloaders, checkConnections, checkDefaults, checkVolumeAssignments } from './rules/gadget.js';
import { checkRoles } from './rules/roles.js';
import { checkUpdateDefaults } from './rules/updates.js';
import { buildVolume } from './rules/volume.js';
import { GadgetError } from './errors.js';
import type { GadgetInfo, Volume } from './types.js';

/**
 * Parses and validates gadget.yaml text with the rules that need no model: snapd's (as snapd
 * applies them without a model, plus the UC16 implicit role of `filesystem-label: system-boot`),
 * then edgeimage's (A/B roles, content paths inside the gadget, partition counts). The layout of
 * every volume is computed once to check overlaps; call {@link layoutVolume} for it.
 *
 * @example
 * const g = parseGadgetYaml(readFileSync('meta/gadget.yaml', 'utf8'), 'meta/gadget.yaml');
 * g.volumes['pc']!.structures[0]!.role; // 'mbr' (implied by type: mbr)
 */
export function parseGadgetYaml(text: string, file: string): GadgetInfo {
  const src = YamlSource.parse(text, file);
  const ctx: Ctx = new Ctx(src);
  if (src.raw === null) ctx.fail('ERR_GADGET_YAML', 'gadget.yaml is empty: it needs at least one volume', []);
  if (typeof src.raw !== 'object' || Array.isArray(src.raw)) ctx.fail('ERR_GADGET_YAML', 'expected a map at the top level (volumes:, defaults: …)', []);

  const parsed = gadgetSchema.safeParse(src.raw);
  if (!parsed.success) throw shapeError(src, parsed.error.issues);
  const raw = parsed.data;

  checkDefaults(ctx, raw);
  checkConnections(ctx, raw);
  const updates = checkUpdateDefaults(ctx, raw);

  const names = keysInOrder(src, ['volumes']);
  if (!raw.volumes || names.length === 0) {
    ctx.fail('ERR_GADGET_VOLUME', 'no volumes: a gadget describes at least one volume (a disk) with its bootloader and structures', ['volumes']);
  }
  const volumes: Volume[] = [];
  for (const name of names) {
    const v = buildVolume(ctx, name, raw.volumes[name] ?? null);
    // Overlaps, the mbr at 0, offset-write, partition counts, declared content sizes.
    layoutVolume(v, file);
    volumes.push(v);
  }
  checkBootloaders(ctx, volumes);
  checkVolumeAssignments(ctx, raw, new Set(names));

  const g: GadgetInfo = { file, volumes: Object.fromEntries(volumes.map((v) => [v.name, v])), volumeOrder: names, ...(updates ? { updates } : {}) };
  checkRoles(g);
  return g;
}

/**
 * Reads and validates a gadget.yaml file (see {@link parseGadgetYaml}).
 *
 * @example
 * const g = readGadgetYaml('bundles/pc/meta/gadget.yaml');
 * g.volumeOrder; // ['pc']
 */
export function readGadgetYaml(file: string): GadgetInfo {
  return parseGadgetYaml(readFileSync(file, 'utf8'), file);
}

/** The keys of the map at `path`, in the order the file writes them. */
function keysInOrder(src: YamlSource, path: Path): string[] {
  const node = src.node(path);
  if (!isMap(node)) return [];
  return node.items.flatMap((p) => (isScalar(p.key) ? [String(p.key.value)] : []));
}

// ---- shape errors (zod issues) → GadgetError at the right line

type Issue = z.core.$ZodIssue;

/** The first problem in the file (by position) among zod's issues. */
function shapeError(src: YamlSource, issues: readonly Issue[]): GadgetError {
  const errors = issues.map((i) => issueError(src, i));
  errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  return errors[0]!;
}

function issueError(src: YamlSource, issue: Issue): GadgetError {
  const path = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
  const structure = structureOf(src, path);
  if (issue.code === 'unrecognized_keys') {
    const key = firstKeyInFile(src, path, issue.keys);
    const allowed = allowedKeys(path);
    const hint = suggest(key, allowed);
    const p = src.keyPos(path, key);
    return new GadgetError(
      `unknown key ${JSON.stringify(key)} ${describeMap(path)}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ''}; the keys here are: ${allowed.join(', ')}`,
      src.file,
      p?.line,
      p?.col,
      structure,
      'ERR_GADGET_UNKNOWN_KEY',
    );
  }
  const p = src.pos(path);
  const field = describeField(path);
  let message: string;
  if (issue.code === 'invalid_type') {
    const found = src.get(path);
    if (structure !== undefined && path.length === 4) {
      // The structure itself: the "structure #N:" prefix already names it.
      message = `expected a map (name:, type:, size: …), found ${describeRaw(found ?? null)}`;
    } else {
      message = found === undefined ? `${field} is missing` : `${field}: expected ${expectedWord(issue.expected)}, found ${describeRaw(found)}`;
    }
  } else {
    message = `${field}: ${issue.message}`;
  }
  return new GadgetError(message, src.file, p?.line, p?.col, structure, 'ERR_GADGET_VALUE');
}

/** For a path inside a structure: the structure's name, else `#N`. */
function structureOf(src: YamlSource, path: Path): string | undefined {
  if (path[0] !== 'volumes' || path[2] !== 'structure' || typeof path[3] !== 'number') return undefined;
  const name = src.get([...path.slice(0, 4), 'name']);
  return typeof name === 'string' && name !== '' ? name : `#${path[3]}`;
}

function firstKeyInFile(src: YamlSource, path: Path, keys: readonly string[]): string {
  let best = keys[0]!;
  let bestPos = src.keyPos(path, best);
  for (const k of keys.slice(1)) {
    const p = src.keyPos(path, k);
    if (p && bestPos && (p.line < bestPos.line || (p.line === bestPos.line && p.col < bestPos.col))) {
      best = k;
      bestPos = p;
    }
  }
  return best;
}

function describeField(path: Path): string {
  const last = path[path.length - 1];
  if (last === undefined) return 'the document';
  if (typeof last === 'number') {
    const parent = path[path.length - 2];
    if (parent === 'structure') return `structure #${last}`;
    return `${String(parent)} #${last}`;
  }
  const parent = path[path.length - 2];
  if (parent === 'volumes') return `volume ${JSON.stringify(last)}`;
  return JSON.stringify(last);
}

function expectedWord(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a single value';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
    case 'map':
      return 'a map';
    default:
      return expected;
  }
}

function describeRaw(v: Raw): string {
  if (v === null) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  return 'a map';
}

/** A near miss among the allowed keys (`structures` → `structure`), if any. */
function suggest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = distance(key.toLowerCase(), a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
