import type { Assertion } from '../assertion.js';
import { HeaderChecks, SNAP_ID, VALIDATION_SET_NAME, describeValue, isMap, isValidSnapName } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

export type ValidationSetPresence = 'required' | 'optional' | 'invalid';

export interface ValidationSetComponent {
  presence: ValidationSetPresence;
  /** Set exactly when the snap pins a revision and the component is not invalid. */
  revision?: number;
}

export interface ValidationSetSnap {
  name: string;
  id: string;
  /** `required` when the set does not say. */
  presence: ValidationSetPresence;
  /** The pinned revision; absent when any revision will do. */
  revision?: number;
  components: Record<string, ValidationSetComponent>;
}

export interface ValidationSetView extends ViewBase {
  series: string;
  accountId: string;
  name: string;
  sequence: number;
  snaps: ValidationSetSnap[];
  timestamp: Date;
}

const PRESENCES: readonly ValidationSetPresence[] = ['required', 'optional', 'invalid'];
const SNAP_NAME_RULE = 'a snap name (2-40 lower-case letters, digits and single inner dashes, with a letter)';

function checkComponents(c: HeaderChecks, snapName: string, snapRevision: number | undefined): Record<string, ValidationSetComponent> {
  const out: Record<string, ValidationSetComponent> = {};
  const comps = c.map('components');
  if (!comps) return out;
  for (const [compName, comp] of Object.entries(comps)) {
    if (!isValidSnapName(compName)) c.failAbout('components', `has an invalid component name ${JSON.stringify(compName)}: expected ${SNAP_NAME_RULE}`);
    const what = `of component "${snapName}+${compName}" in "snaps" header`;
    if (typeof comp !== 'string' && !isMap(comp)) {
      c.fail('components', `component "${snapName}+${compName}" in "snaps" header must be a presence string or a map, found ${describeValue(comp)}`);
    }
    const cc = c.within('snaps', typeof comp === 'string' ? { presence: comp } : comp, what);
    // Unlike a snap's, a component's presence must be spelled out when given as a map.
    const presence = cc.existingString('presence');
    if (!(PRESENCES as readonly string[]).includes(presence)) cc.failAbout('presence', `must be one of ${PRESENCES.join('|')}, found ${JSON.stringify(presence)}`);
    const revision = cc.optionalInt('revision', { min: 1 });
    if (revision !== undefined && presence === 'invalid') cc.failAbout('revision', `must not be given when the component's presence is invalid, found ${revision}`);
    // A pinned snap with unpinned components would not say which component build goes with it.
    if (snapRevision !== undefined && revision === undefined && presence !== 'invalid') {
      cc.failAbout('revision', `is mandatory because snap ${JSON.stringify(snapName)} pins revision ${snapRevision}`);
    }
    if (snapRevision === undefined && revision !== undefined) {
      cc.failAbout('revision', `must not be given because snap ${JSON.stringify(snapName)} pins no revision, found ${revision}`);
    }
    out[compName] = { presence: presence as ValidationSetPresence, ...(revision !== undefined ? { revision } : {}) };
  }
  return out;
}

/** `validation-set` (snapd validation_set.go): a sequence-forming list of snap revisions that go together. */
export const validationSetType: AssertionType<ValidationSetView> = {
  name: 'validation-set',
  primaryKey: ['series', 'account-id', 'name', 'sequence'],
  maxFormat: 0,
  hasTimestamp: true,
  assemble(a: Assertion): ValidationSetView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const base = viewBase(c);
    const series = c.string('series');
    const accountId = c.string('account-id');
    // A set speaks for its account: only that account may sign it.
    if (base.authorityId !== accountId) {
      c.fail(
        'authority-id',
        `"authority-id" header must equal "account-id": validation-set assertions are signed by the account that issues them, found authority-id ${JSON.stringify(base.authorityId)} and account-id ${JSON.stringify(accountId)}`,
        'ERR_AUTHORITY_NOT_ACCOUNT',
      );
    }
    const name = c.matching('name', VALIDATION_SET_NAME, 'a validation-set name (lower-case letters, digits and single dashes)');
    const sequence = c.int('sequence', { min: 1 });

    if (!c.has('snaps')) c.failAbout('snaps', 'is mandatory');
    const entries = c.mapList('snaps')!;
    const seenNames = new Set<string>();
    const seenIds = new Map<string, string>();
    const snaps = entries.map((entry, i): ValidationSetSnap => {
      const first = c.within('snaps', entry, `of entry ${i + 1} in "snaps" header`);
      const snapName = first.string('name');
      if (!isValidSnapName(snapName)) first.failAbout('name', `must be ${SNAP_NAME_RULE}, found ${JSON.stringify(snapName)}`);
      const s = c.within('snaps', entry, `of snap ${JSON.stringify(snapName)} in "snaps" header`);
      const id = s.matching('id', SNAP_ID, 'a snap id (32 letters and digits)');
      const presenceStr = s.optionalNonEmptyString('presence');
      if (presenceStr !== undefined && !(PRESENCES as readonly string[]).includes(presenceStr)) {
        s.failAbout('presence', `must be one of ${PRESENCES.join('|')}, found ${JSON.stringify(presenceStr)}`);
      }
      const presence = (presenceStr ?? 'required') as ValidationSetPresence;
      const revision = s.optionalInt('revision', { min: 1 });
      if (revision !== undefined && presence === 'invalid') {
        s.failAbout('revision', `must not be given when the snap's presence is invalid (an invalid snap has no acceptable revision), found ${revision}`);
      }
      const components = checkComponents(s, snapName, revision);

      if (seenNames.has(snapName)) c.fail('snaps', `"snaps" header lists the snap ${JSON.stringify(snapName)} more than once`);
      seenNames.add(snapName);
      const under = seenIds.get(id);
      if (under !== undefined) c.fail('snaps', `"snaps" header gives the same snap id ${JSON.stringify(id)} to ${JSON.stringify(under)} and ${JSON.stringify(snapName)}`);
      seenIds.set(id, snapName);
      return { name: snapName, id, presence, ...(revision !== undefined ? { revision } : {}), components };
    });

    const timestamp = c.date('timestamp');
    return { ...base, series, accountId, name, sequence, snaps, timestamp };
  },
};

registerType(validationSetType);
