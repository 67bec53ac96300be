import type { Assertion } from '../assertion.js';
import { ACCOUNT_ID, HeaderChecks, SNAP_ID, VALIDATION_SET_NAME, describeValue, isMap, isValidSnapName, type HeaderMap } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

export type ModelGrade = 'dangerous' | 'signed' | 'secured';
export type StorageSafety = 'encrypted' | 'prefer-encrypted' | 'prefer-unencrypted';
export type ModelSnapType = 'app' | 'base' | 'gadget' | 'kernel' | 'core' | 'snapd';
export type ModelPresence = 'required' | 'optional';
export type ModelValidationSetMode = 'enforce' | 'prefer-enforce';

export interface ModelComponent {
  presence: ModelPresence;
  /** A subset of the snap's modes; the snap's modes when not given. */
  modes: string[];
}

export interface ModelSnap {
  name: string;
  /** Absent only in grade dangerous models (local, unpublished snaps) and for pre-UC20 snaps. */
  id?: string;
  /**
   * For pre-UC20 `required-snaps` the model does not say; they are listed as `app` and the snap's
   * own snap.yaml has the final word.
   */
  type: ModelSnapType;
  presence: ModelPresence;
  /** `[run, ephemeral]` for essential snaps of UC20+ models, `[run]` by default. */
  modes: string[];
  /** Always with a track: `latest/stable` when the model does not say. */
  defaultChannel: string;
  /** Pre-UC20 `kernel: pc-kernel=18` form: the track the snap is pinned to. */
  pinnedTrack?: string;
  /** snapd, kernel, gadget and the boot base: always installed, in every mode. */
  essential: boolean;
  /** A classic-confinement snap deliberately included in a classic model. */
  classic: boolean;
  components: Record<string, ModelComponent>;
}

export interface ModelValidationSet {
  /** The brand when the model does not say. */
  accountId: string;
  name: string;
  /** Absent: follow the latest sequence. */
  sequence?: number;
  mode: ModelValidationSetMode;
}

export interface ModelView extends ViewBase {
  series: string;
  brandId: string;
  model: string;
  displayName?: string;
  /** Absent only in pre-UC20 classic models (such as generic-classic). */
  architecture?: string;
  base?: string;
  classic: boolean;
  /** os-release ID; set exactly for classic UC20+ models. */
  distribution?: string;
  /** Whether the model uses the UC20+ `snaps` header (grade, storage-safety, modes…). */
  extended: boolean;
  /** `unset` for pre-UC20 models, which have no grade. */
  grade: ModelGrade | 'unset';
  /** `unset` for pre-UC20 models. */
  storageSafety: StorageSafety | 'unset';
  /**
   * Every snap in one shape whatever the model's shape, in snapd's seeding order: snapd, kernel,
   * boot base, gadget, then the others as listed. Pre-UC20 models are synthesised from `kernel`,
   * `gadget`, `base` and `required-snaps`.
   */
  snaps: ModelSnap[];
  validationSets: ModelValidationSet[];
  store?: string;
  /** Who may sign serials: always includes the brand. */
  serialAuthority: string[];
  /** Who may sign system-users: the brand by default, `'*'` for anyone. */
  systemUserAuthority: string[] | '*';
  preseedAuthority: string[];
  timestamp: Date;
}

const SNAP_TYPES: readonly ModelSnapType[] = ['app', 'base', 'gadget', 'kernel', 'core', 'snapd'];
const PRESENCES: readonly ModelPresence[] = ['required', 'optional'];
const GRADES: readonly ModelGrade[] = ['secured', 'signed', 'dangerous'];
const STORAGE_SAFETIES: readonly StorageSafety[] = ['encrypted', 'prefer-encrypted', 'prefer-unencrypted'];
const VALIDATION_SET_MODES: readonly ModelValidationSetMode[] = ['prefer-enforce', 'enforce'];
const RISKS = ['stable', 'candidate', 'beta', 'edge'];
const MODE = /^[a-z][-a-z]+$/;
/** Lower case only for now, as snapd: `model` is matched case-insensitively elsewhere. */
const MODEL_NAME = /^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$/;
/** os-release `ID=`. */
const DISTRIBUTION = /^[a-z0-9._-]*$/;
const ESSENTIAL_MODES = ['run', 'ephemeral'];
const DEFAULT_MODES = ['run'];
const SNAP_NAME_RULE = 'a snap name (2-40 lower-case letters, digits and single inner dashes, with a letter)';

/**
 * Snap ids of the snaps snapd lets a model leave out of `snaps` (naming/wellknown.go, production
 * store): their names are stable enough to stand for them.
 */
export const WELL_KNOWN_SNAP_IDS: Readonly<Record<string, string>> = {
  core: '99T7MUlRhtI3U0QFgl5mXXESAiSwt776',
  snapd: 'PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4',
  core18: 'CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6',
  core20: 'DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q',
  core22: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT',
  core24: 'dwTAh7MZZ01zyriOZErqd1JynQLiOGvM',
};

const oneOf = (xs: readonly string[]) => xs.join('|');

function isEssential(name: string, type: ModelSnapType, base: string | undefined): boolean {
  return type === 'snapd' || type === 'kernel' || type === 'gadget' || name === base;
}

/** snapd's `channel.ParseVerbatim` reduced to what the model needs: is it well-formed, has it a track. */
function channelProblem(ch: string): string | undefined {
  if (ch === '') return 'must not be empty';
  const p = ch.split('/');
  let track: string | undefined;
  let risk: string | undefined;
  let branch: string | undefined;
  if (p.length > 3) return 'has too many components (at most track/risk/branch)';
  if (p.length === 3) [track, risk, branch] = p;
  else if (p.length === 2) {
    if (RISKS.includes(p[0]!)) [risk, branch] = p;
    else [track, risk] = p;
  } else if (RISKS.includes(p[0]!)) risk = p[0];
  else track = p[0];
  if (risk !== undefined && !RISKS.includes(risk)) return `has an invalid risk ${JSON.stringify(risk)} (expected ${oneOf(RISKS)})`;
  if (track === '') return 'has an empty track';
  if (branch === '') return 'has an empty branch';
  if (track === undefined) return 'must specify a track, e.g. "latest/stable" or "22/stable"';
  return undefined;
}

function checkComponents(c: HeaderChecks, snapModes: string[], what: string): Record<string, ModelComponent> {
  const comps = c.map('components');
  const out: Record<string, ModelComponent> = {};
  if (!comps) return out;
  for (const [name, comp] of Object.entries(comps)) {
    if (!isValidSnapName(name)) c.fail('components', `"components" ${what} has an invalid component name ${JSON.stringify(name)}: expected ${SNAP_NAME_RULE}`);
    const compWhat = `of component ${JSON.stringify(name)} ${what}`;
    if (typeof comp === 'string') {
      if (!(PRESENCES as readonly string[]).includes(comp)) c.fail('components', `component ${JSON.stringify(name)} ${what} must be a presence (${oneOf(PRESENCES)}) or a map, found ${JSON.stringify(comp)}`);
      out[name] = { presence: comp as ModelPresence, modes: [...snapModes] };
      continue;
    }
    if (!isMap(comp)) c.fail('components', `${compWhat.replace(/^of /, '')} must be a map with presence and modes, or one of ${oneOf(PRESENCES)}, found ${describeValue(comp)}`);
    const cc = c.within('snaps', comp, compWhat);
    for (const key of Object.keys(comp)) {
      if (key !== 'presence' && key !== 'modes') cc.fail(key, `unknown entry ${JSON.stringify(key)} ${compWhat}: expected presence and modes only`);
    }
    const presence = cc.string('presence');
    if (!(PRESENCES as readonly string[]).includes(presence)) cc.failAbout('presence', `must be ${oneOf(PRESENCES)}, found ${JSON.stringify(presence)}`);
    const modes = cc.stringList('modes', { re: MODE, expected: 'mode names (lower-case letters and dashes)' }) ?? [];
    for (const m of modes) {
      if (!snapModes.includes(m)) cc.failAbout('modes', `must be a subset of the snap's modes (${snapModes.join(', ')}), found ${JSON.stringify(m)}`);
    }
    out[name] = { presence: presence as ModelPresence, modes: modes.length ? modes : [...snapModes] };
  }
  return out;
}

/** One entry of the UC20+ `snaps` header (snapd `checkModelSnap`). */
function checkModelSnap(top: HeaderChecks, entry: HeaderMap, index: number, base: string | undefined, grade: ModelGrade, modelIsClassic: boolean): ModelSnap {
  const first = top.within('snaps', entry, `of entry ${index + 1} in "snaps" header`);
  const name = first.string('name');
  if (!isValidSnapName(name)) first.failAbout('name', `must be ${SNAP_NAME_RULE}, found ${JSON.stringify(name)}`);
  const c = top.within('snaps', entry, `of snap ${JSON.stringify(name)} in "snaps" header`);

  let id: string | undefined;
  if (c.has('id')) id = c.matching('id', SNAP_ID, 'a snap id (32 letters and digits)');
  // Ids may be left out only where unasserted, not-yet-published snaps are allowed.
  else if (grade !== 'dangerous') c.failAbout('id', `is mandatory for a ${grade} grade model (only grade dangerous models may list snaps without ids)`);

  const typeStr = c.optionalNonEmptyString('type') ?? 'app';
  if (!(SNAP_TYPES as readonly string[]).includes(typeStr)) c.failAbout('type', `must be one of ${oneOf(SNAP_TYPES)}, found ${JSON.stringify(typeStr)}`);
  const type = typeStr as ModelSnapType;

  const presenceStr = c.optionalNonEmptyString('presence');
  if (presenceStr !== undefined && !(PRESENCES as readonly string[]).includes(presenceStr)) {
    c.failAbout('presence', `must be one of ${oneOf(PRESENCES)}, found ${JSON.stringify(presenceStr)}`);
  }
  const essential = isEssential(name, type, base);
  if (essential && presenceStr !== undefined) {
    c.failAbout('presence', `must not be given: ${JSON.stringify(name)} is an essential snap (snapd, kernel, gadget or the model's base), which is always present`);
  }
  const presence = (presenceStr ?? 'required') as ModelPresence;

  let modes = c.stringList('modes', { re: MODE, expected: 'mode names (lower-case letters and dashes, e.g. "run")' }) ?? [];
  if (essential) {
    if (modes.length) c.failAbout('modes', `must not be given: ${JSON.stringify(name)} is an essential snap, available in every mode`);
    modes = ESSENTIAL_MODES;
  }
  if (modes.length === 0) modes = DEFAULT_MODES;

  const defaultChannel = c.optionalNonEmptyString('default-channel') ?? 'latest/stable';
  const problem = channelProblem(defaultChannel);
  if (problem) c.failAbout('default-channel', `${problem}, found ${JSON.stringify(defaultChannel)}`);

  const classic = c.bool('classic');
  if (classic && !modelIsClassic) c.failAbout('classic', 'must not be true in a model that is not classic');
  if (classic && type !== 'app') c.failAbout('classic', `can only be true for snaps of type app, found type ${JSON.stringify(type)}`);
  if (classic && (modes.length !== 1 || modes[0] !== 'run')) c.failAbout('classic', `must not be true for a snap available outside run mode, found modes ${modes.join(', ')}`);

  const components = checkComponents(c, modes, `of snap ${JSON.stringify(name)} in "snaps" header`);
  return { name, ...(id !== undefined ? { id } : {}), type, presence, modes: [...modes], defaultChannel, essential, classic, components };
}

interface Sorted {
  snapd?: ModelSnap;
  kernel?: ModelSnap;
  base?: ModelSnap;
  gadget?: ModelSnap;
  others: ModelSnap[];
}

/** The order in which snapd seeds (`modelSnaps.list`): later stages may rely on it. */
function inSeedOrder(s: Sorted): ModelSnap[] {
  return [s.snapd, s.kernel, s.base, s.gadget].filter((x): x is ModelSnap => x !== undefined).concat(s.others);
}

function checkExtendedSnaps(c: HeaderChecks, base: string | undefined, grade: ModelGrade, classic: boolean): Sorted {
  const entries = c.mapList('snaps')!;
  const sorted: Sorted = { others: [] };
  const seenNames = new Set<string>();
  const seenIds = new Map<string, string>();
  entries.forEach((entry, i) => {
    const snap = checkModelSnap(c, entry, i, base, grade, classic);
    if (seenNames.has(snap.name)) c.fail('snaps', `"snaps" header lists the snap ${JSON.stringify(snap.name)} more than once`);
    seenNames.add(snap.name);
    if (snap.id !== undefined) {
      const under = seenIds.get(snap.id);
      if (under !== undefined) c.fail('snaps', `"snaps" header gives the same snap id ${JSON.stringify(snap.id)} to ${JSON.stringify(under)} and ${JSON.stringify(snap.name)}`);
      seenIds.set(snap.id, snap.name);
    }
    const single = (slot: 'snapd' | 'kernel' | 'gadget') => {
      const prev = sorted[slot];
      if (prev) c.fail('snaps', `"snaps" header must have at most one ${slot} snap, found ${JSON.stringify(prev.name)} and ${JSON.stringify(snap.name)}`);
      sorted[slot] = snap;
    };
    if (snap.type === 'snapd') single('snapd');
    else if (snap.type === 'kernel') single('kernel');
    else if (snap.type === 'gadget') single('gadget');
    else if (snap.name === base) {
      if (snap.type !== 'base') c.fail('snaps', `"snaps" header entry for the boot base ${JSON.stringify(base)} must have type "base", found ${JSON.stringify(snap.type)}`);
      sorted.base = snap;
    }
    if (!snap.essential) sorted.others.push(snap);
  });
  return sorted;
}

/** Pre-UC20 `kernel: pc-kernel=18`: a name, optionally pinned to a track (snapd `checkSnapWithTrack`). */
function checkSnapWithTrack(c: HeaderChecks, header: 'kernel' | 'gadget'): ModelSnap | undefined {
  const value = c.optionalString(header);
  if (value === undefined) return undefined;
  const eq = value.indexOf('=');
  const name = eq === -1 ? value : value.slice(0, eq);
  const track = eq === -1 ? '' : value.slice(eq + 1);
  if (!isValidSnapName(name)) c.failAbout(header, `must be ${SNAP_NAME_RULE}, optionally followed by =<track>, found ${JSON.stringify(value)}`);
  if (track.includes('/')) c.failAbout(header, `track must be a track name only (no risk or branch, e.g. "${name}=22"), found ${JSON.stringify(value)}`);
  if (RISKS.includes(track)) c.failAbout(header, `must pin a track, not a risk, found ${JSON.stringify(value)}`);
  return {
    name,
    type: header,
    presence: 'required',
    modes: [...DEFAULT_MODES],
    defaultChannel: track ? `${track}/stable` : 'latest/stable',
    ...(track ? { pinnedTrack: track } : {}),
    essential: true,
    classic: false,
    components: {},
  };
}

function plainSnap(name: string, type: ModelSnapType, essential: boolean): ModelSnap {
  return { name, type, presence: 'required', modes: [...DEFAULT_MODES], defaultChannel: 'latest/stable', essential, classic: false, components: {} };
}

/** `serial-authority` and the like (snapd `checkOptionalAuthority`): the brand is always included. */
function checkAuthorityList(c: HeaderChecks, name: string, brandId: string, acceptsWildcard: boolean): string[] | '*' {
  const v = c.raw(name);
  if (v === undefined) return [brandId];
  if (acceptsWildcard && v === '*') return '*';
  const expected = acceptsWildcard ? `"*" or a list of account ids` : 'a list of account ids';
  if (!Array.isArray(v)) c.failAbout(name, `must be ${expected}, found ${describeValue(v)}`);
  const ids = c.stringList(name, { re: ACCOUNT_ID, expected: 'account ids' })!;
  return ids.includes(brandId) ? ids : [brandId, ...ids];
}

function checkValidationSets(c: HeaderChecks, brandId: string): ModelValidationSet[] {
  const raw = c.raw('validation-sets');
  if (raw === undefined) return [];
  const entries = c.mapList('validation-sets')!;
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const first = c.within('validation-sets', entry, `of entry ${i + 1} in "validation-sets" header`);
    const name = first.matching('name', VALIDATION_SET_NAME, 'a validation-set name (lower-case letters, digits and single dashes)');
    const named = c.within('validation-sets', entry, `of validation-set ${JSON.stringify(name)} in "validation-sets" header`);
    const given = named.optionalString('account-id');
    const accountId = given ? given : brandId;
    const vs = c.within('validation-sets', entry, `of validation-set "${accountId}/${name}" in "validation-sets" header`);
    const sequence = vs.optionalInt('sequence');
    if (sequence !== undefined && sequence < 1) vs.failAbout('sequence', 'must be 1 or more, or left out to follow the latest sequence, found 0');
    const mode = vs.string('mode');
    if (!(VALIDATION_SET_MODES as readonly string[]).includes(mode)) vs.failAbout('mode', `must be ${oneOf(VALIDATION_SET_MODES)}, found ${JSON.stringify(mode)}`);
    const key = `${accountId}/${name}`;
    if (seen.has(key)) c.fail('validation-sets', `"validation-sets" header lists the validation set ${JSON.stringify(key)} more than once`);
    seen.add(key);
    return { accountId, name, ...(sequence !== undefined ? { sequence } : {}), mode: mode as ModelValidationSetMode };
  });
}

/**
 * `model` (snapd model.go), in both shapes: pre-UC20 (`kernel`, `gadget`, `required-snaps`) and
 * UC20+ (`snaps`). Rules are checked in snapd's order so the first error reported is snapd's.
 */
export const modelType: AssertionType<ModelView> = {
  name: 'model',
  primaryKey: ['series', 'brand-id', 'model'],
  maxFormat: 0,
  hasTimestamp: true,
  assemble(a: Assertion): ModelView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const base0 = viewBase(c);
    const series = c.string('series');
    const brandId = c.string('brand-id');
    // A model is the brand's statement about its device: nobody else may make it.
    if (base0.authorityId !== brandId) {
      c.fail(
        'authority-id',
        `"authority-id" header must equal "brand-id": model assertions are signed by the brand, found authority-id ${JSON.stringify(base0.authorityId)} and brand-id ${JSON.stringify(brandId)}`,
        'ERR_AUTHORITY_NOT_BRAND',
      );
    }
    const model = c.matching('model', MODEL_NAME, 'letters, digits and single inner dashes');
    if (model.toLowerCase() !== model) c.failAbout('model', `must not contain upper-case letters, found ${JSON.stringify(model)}`);

    const classic = c.bool('classic');
    const extended = c.has('snaps');
    if (extended) {
      for (const h of ['gadget', 'kernel', 'required-snaps']) {
        if (c.has(h)) c.failAbout(h, 'must not be used together with the "snaps" header: list the snap in "snaps" instead');
      }
    } else {
      if (c.has('grade')) c.failAbout('grade', 'is only allowed in models with a "snaps" header (UC20 and later)');
      if (c.has('storage-safety')) c.failAbout('storage-safety', 'is only allowed in models with a "snaps" header (UC20 and later)');
    }
    if (classic && !extended) {
      if (c.has('kernel')) c.failAbout('kernel', 'is not allowed in a classic model without a "snaps" header');
      if (c.has('base')) c.failAbout('base', 'is not allowed in a classic model without a "snaps" header');
    }

    let distribution: string | undefined;
    if (classic && extended) {
      distribution = c.matching('distribution', DISTRIBUTION, 'an os-release ID (lower-case letters, digits, ".", "_" and "-")');
    } else if (c.has('distribution')) {
      c.failAbout('distribution', 'is only allowed in classic models with a "snaps" header');
    }

    const mandatory = extended ? ['architecture', 'base'] : classic ? [] : ['architecture', 'gadget', 'kernel'];
    for (const h of mandatory) c.string(h);
    const architecture = c.optionalNonEmptyString('architecture');
    if (!extended && classic) c.optionalString('gadget');

    const base = c.optionalNonEmptyString('base');
    if (base !== undefined && !isValidSnapName(base)) c.failAbout('base', `must be ${SNAP_NAME_RULE}, found ${JSON.stringify(base)}`);
    const store = c.optionalNonEmptyString('store');
    const displayName = c.optionalNonEmptyString('display-name');

    let grade: ModelGrade | 'unset' = 'unset';
    let storageSafety: StorageSafety | 'unset' = 'unset';
    let sorted: Sorted;
    if (extended) {
      const gradeStr = c.optionalNonEmptyString('grade');
      if (gradeStr !== undefined && !(GRADES as readonly string[]).includes(gradeStr)) {
        c.failAbout('grade', `must be one of ${oneOf(GRADES)}, found ${JSON.stringify(gradeStr)}`);
      }
      const g = (gradeStr ?? 'signed') as ModelGrade;
      grade = g;
      const ssStr = c.optionalNonEmptyString('storage-safety');
      if (ssStr !== undefined && !(STORAGE_SAFETIES as readonly string[]).includes(ssStr)) {
        c.failAbout('storage-safety', `must be one of ${oneOf(STORAGE_SAFETIES)}, found ${JSON.stringify(ssStr)}`);
      }
      storageSafety = (ssStr ?? (g === 'secured' ? 'encrypted' : 'prefer-encrypted')) as StorageSafety;
      // Secured devices promise encryption; the model cannot weaken that.
      if (g === 'secured' && storageSafety !== 'encrypted') {
        c.failAbout('storage-safety', `must be "encrypted" (or left out) in a secured grade model, found ${JSON.stringify(storageSafety)}`);
      }

      sorted = checkExtendedSnaps(c, base, g, classic);
      if (!classic) {
        if (!sorted.gadget) c.fail('snaps', '"snaps" header must have one entry of type gadget (the model\'s gadget snap)');
        if (!sorted.kernel) c.fail('snaps', '"snaps" header must have one entry of type kernel (the model\'s kernel snap)');
      } else if (sorted.kernel && !sorted.gadget) {
        c.fail('snaps', '"snaps" header of a classic model must not have a kernel without a gadget');
      }
      if (!sorted.base && base !== undefined) {
        const id = WELL_KNOWN_SNAP_IDS[base];
        if (id === undefined && g !== 'dangerous') {
          c.fail('snaps', `"snaps" header must have an entry for the base ${JSON.stringify(base)}: only well-known bases (${Object.keys(WELL_KNOWN_SNAP_IDS).filter((n) => n.startsWith('core')).join(', ')}) may be left out`);
        }
        sorted.base = { ...plainSnap(base, 'base', true), ...(id !== undefined ? { id } : {}), modes: [...ESSENTIAL_MODES] };
      }
    } else {
      sorted = { others: [] };
      if (base !== undefined) sorted.base = plainSnap(base, 'base', true);
      sorted.kernel = checkSnapWithTrack(c, 'kernel');
      sorted.gadget = checkSnapWithTrack(c, 'gadget');
      const required = c.stringList('required-snaps') ?? [];
      for (const name of required) {
        if (!isValidSnapName(name)) c.failAbout('required-snaps', `entries must be snap names, found ${JSON.stringify(name)}`);
        sorted.others.push(plainSnap(name, 'app', false));
      }
    }

    const serialAuthority = checkAuthorityList(c, 'serial-authority', brandId, false) as string[];
    const systemUserAuthority = checkAuthorityList(c, 'system-user-authority', brandId, true);
    const preseedAuthority = checkAuthorityList(c, 'preseed-authority', brandId, false) as string[];
    const timestamp = c.date('timestamp');
    const validationSets = checkValidationSets(c, brandId);

    return {
      ...base0,
      series,
      brandId,
      model,
      ...(displayName !== undefined ? { displayName } : {}),
      ...(architecture !== undefined ? { architecture } : {}),
      ...(base !== undefined ? { base } : {}),
      classic,
      ...(distribution !== undefined ? { distribution } : {}),
      extended,
      grade,
      storageSafety,
      snaps: inSeedOrder(sorted),
      validationSets,
      ...(store !== undefined ? { store } : {}),
      serialAuthority,
      systemUserAuthority,
      preseedAuthority,
      timestamp,
    };
  },
};

registerType(modelType);
