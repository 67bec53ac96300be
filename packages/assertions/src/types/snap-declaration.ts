import type { Assertion } from '../assertion.js';
import { ACCOUNT_ID, ALIAS, APP_NAME, HeaderChecks, PROVENANCE, type HeaderMap } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

/** Who besides the store may sign revisions of the snap, and which (snapd `RevisionAuthority`). */
export interface RevisionAuthority {
  accountId: string;
  provenance: string[];
  minRevision: number;
  /** Absent: no upper bound. */
  maxRevision?: number;
  /** The device-scope constraints (`on-store`, `on-brand`, `on-model`) as written; not interpreted here. */
  deviceScope: HeaderMap;
}

export interface SnapDeclarationView extends ViewBase {
  series: string;
  snapId: string;
  /** May be empty: the store blanks the name of a snap that gave it up. */
  snapName: string;
  publisherId: string;
  timestamp: Date;
  refreshControl: string[];
  /** Interface rules as written (interpreting them is the job of interface policy, not image building). */
  plugs?: HeaderMap;
  slots?: HeaderMap;
  autoAliases: string[];
  /** alias → app. */
  aliases: Record<string, string>;
  revisionAuthorities: RevisionAuthority[];
}

function checkAliases(c: HeaderChecks): Record<string, string> {
  const out: Record<string, string> = {};
  (c.mapList('aliases') ?? []).forEach((item, i) => {
    const first = c.within('aliases', item, `of entry ${i + 1} in "aliases" header`);
    const name = first.matching('name', ALIAS, 'an alias (letters, digits, ".", "_" and "-", not starting with a symbol)');
    const target = c.within('aliases', item, `of alias ${JSON.stringify(name)} in "aliases" header`).matching('target', APP_NAME, 'an app name (letters, digits and single inner dashes)');
    if (name in out) c.fail('aliases', `"aliases" header defines the alias ${JSON.stringify(name)} more than once`);
    out[name] = target;
  });
  return out;
}

function checkRevisionAuthorities(c: HeaderChecks): RevisionAuthority[] {
  return (c.mapList('revision-authority') ?? []).map((item, i) => {
    const r = c.within('revision-authority', item, `of entry ${i + 1} in "revision-authority" header`);
    const accountId = r.matching('account-id', ACCOUNT_ID, 'an account id');
    const provenance = r.stringList('provenance', { re: PROVENANCE, expected: 'provenance names (letters, digits and single inner dashes)' }) ?? [];
    if (provenance.length === 0) r.failAbout('provenance', 'is mandatory and must list at least one provenance');
    const minRevision = r.optionalInt('min-revision', { min: 1 }) ?? 1;
    const maxRevision = r.optionalInt('max-revision', { min: 1 });
    if (maxRevision !== undefined && maxRevision < minRevision) r.failAbout('max-revision', `must not be less than "min-revision" (${minRevision}), found ${maxRevision}`);
    const deviceScope: Record<string, HeaderMap[string]> = {};
    for (const k of ['on-store', 'on-brand', 'on-model']) if (item[k] !== undefined) deviceScope[k] = item[k];
    return { accountId, provenance, minRevision, ...(maxRevision !== undefined ? { maxRevision } : {}), deviceScope };
  });
}

/**
 * `snap-declaration` (snapd snap_asserts.go). Plug and slot rules are only checked to be maps:
 * image building needs the declaration to tie a snap id to its name and publisher, not interface
 * policy. That it is signed by a trusted authority is a trust-layer cross-check.
 */
export const snapDeclarationType: AssertionType<SnapDeclarationView> = {
  name: 'snap-declaration',
  primaryKey: ['series', 'snap-id'],
  maxFormat: 7,
  hasTimestamp: true,
  assemble(a: Assertion): SnapDeclarationView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const base = viewBase(c);
    const series = c.string('series');
    const snapId = c.string('snap-id');
    const snapName = c.existingString('snap-name');
    const publisherId = c.string('publisher-id');
    const timestamp = c.date('timestamp');
    const refreshControl = c.stringList('refresh-control') ?? [];
    const plugs = c.map('plugs');
    const slots = c.map('slots');
    const autoAliases = c.stringList('auto-aliases', { re: ALIAS, expected: 'aliases' }) ?? [];
    const aliases = checkAliases(c);
    const revisionAuthorities = checkRevisionAuthorities(c);
    return {
      ...base,
      series,
      snapId,
      snapName,
      publisherId,
      timestamp,
      refreshControl,
      ...(plugs ? { plugs } : {}),
      ...(slots ? { slots } : {}),
      autoAliases,
      aliases,
      revisionAuthorities,
    };
  },
};

registerType(snapDeclarationType);
