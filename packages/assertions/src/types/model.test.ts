import { assembleAs, modelType, type ModelView } from './index.js';
import { assertionFixture, assertionFixtureNames, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { decodeOne } from '../format/decode.js';
import { build, edit, expectRefused } from '@edgeimage/testkit/assertion-text';

const GADGET = `  -
    default-channel: 22/stable
    id: UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH
    name: pc
    type: gadget`;
const KERNEL = `  -
    default-channel: 22/stable
    id: pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza
    name: pc-kernel
    type: kernel`;
const BASE = `  -
    default-channel: latest/stable
    id: amcUKQILKXHHTlmSa7NMdnXSx02dNeeT
    name: core22
    type: base`;
const SNAPD = `  -
    default-channel: latest/stable
    id: PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4
    name: snapd
    type: snapd`;
const APP = `  -
    id: ASctKBEHzVt3f1pbZLoekCvcigRjtuqw
    name: kiosk-app`;

const snaps = (...entries: string[]) => `\n${entries.join('\n')}`;

/** A UC22-style model by brand "acme", written as snapd would sign it. */
const UC22 = `type: model
authority-id: acme
series: 16
brand-id: acme
model: kiosk
architecture: amd64
base: core22
grade: signed
snaps:${snaps(GADGET, KERNEL, BASE, SNAPD, APP)}
timestamp: 2024-01-01T00:00:00Z`;

/** The pre-UC20 shape: kernel and gadget as name=track headers. */
const UC18 = `type: model
authority-id: acme
series: 16
brand-id: acme
model: kiosk18
architecture: armhf
base: core18
gadget: pi=18-pi
kernel: pi-kernel=18-pi
required-snaps:
  - kiosk-app
  - htop
timestamp: 2020-01-22T08:35:30+00:00`;

const model = (text: string): ModelView => assembleAs(modelType, build(text));

describe('model: both shapes assemble into one view', () => {
  test('a UC20+ model with defaults filled in', () => {
    const v = model(edit(UC22, { grade: null }));
    expect(v).toMatchObject({ series: '16', brandId: 'acme', model: 'kiosk', architecture: 'amd64', base: 'core22', classic: false, extended: true, grade: 'signed', storageSafety: 'prefer-encrypted' });
    expect(v.timestamp.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(v.validationSets).toEqual([]);
    expect(v.serialAuthority).toEqual(['acme']);
    expect(v.systemUserAuthority).toEqual(['acme']);
  });

  test('snaps come in snapd seeding order: snapd, kernel, base, gadget, then the rest as listed', () => {
    expect(model(UC22).snaps.map((s) => s.name)).toEqual(['snapd', 'pc-kernel', 'core22', 'pc', 'kiosk-app']);
  });

  test('essential snaps get run+ephemeral modes; others default to run, required, app, latest/stable', () => {
    const byName = Object.fromEntries(model(UC22).snaps.map((s) => [s.name, s]));
    expect(byName['pc']).toMatchObject({ type: 'gadget', presence: 'required', modes: ['run', 'ephemeral'], defaultChannel: '22/stable', essential: true });
    expect(byName['core22']).toMatchObject({ type: 'base', essential: true, modes: ['run', 'ephemeral'] });
    expect(byName['kiosk-app']).toEqual({
      name: 'kiosk-app',
      id: 'ASctKBEHzVt3f1pbZLoekCvcigRjtuqw',
      type: 'app',
      presence: 'required',
      modes: ['run'],
      defaultChannel: 'latest/stable',
      essential: false,
      classic: false,
      components: {},
    });
  });

  test('a well-known base left out of "snaps" is added with its snap id', () => {
    const v = model(edit(UC22, { snaps: snaps(GADGET, KERNEL, SNAPD) }));
    expect(v.snaps.find((s) => s.name === 'core22')).toMatchObject({ id: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT', type: 'base', modes: ['run', 'ephemeral'], defaultChannel: 'latest/stable' });
  });

  test('secured defaults to encrypted storage', () => {
    expect(model(edit(UC22, { grade: 'secured' })).storageSafety).toBe('encrypted');
  });

  test('a pre-UC20 model is synthesised into the same snaps list, tracks pinned', () => {
    const v = model(UC18);
    expect(v).toMatchObject({ extended: false, grade: 'unset', storageSafety: 'unset', base: 'core18', architecture: 'armhf' });
    expect(v.snaps).toEqual([
      { name: 'pi-kernel', type: 'kernel', presence: 'required', modes: ['run'], defaultChannel: '18-pi/stable', pinnedTrack: '18-pi', essential: true, classic: false, components: {} },
      { name: 'core18', type: 'base', presence: 'required', modes: ['run'], defaultChannel: 'latest/stable', essential: true, classic: false, components: {} },
      { name: 'pi', type: 'gadget', presence: 'required', modes: ['run'], defaultChannel: '18-pi/stable', pinnedTrack: '18-pi', essential: true, classic: false, components: {} },
      { name: 'kiosk-app', type: 'app', presence: 'required', modes: ['run'], defaultChannel: 'latest/stable', essential: false, classic: false, components: {} },
      { name: 'htop', type: 'app', presence: 'required', modes: ['run'], defaultChannel: 'latest/stable', essential: false, classic: false, components: {} },
    ]);
  });

  test('a track-less pre-UC20 kernel follows latest/stable', () => {
    const k = model(edit(UC18, { kernel: 'pi-kernel' })).snaps.find((s) => s.type === 'kernel');
    expect(k).toMatchObject({ defaultChannel: 'latest/stable' });
    expect(k?.pinnedTrack).toBeUndefined();
  });

  test('grade dangerous allows snaps without ids', () => {
    const v = model(edit(UC22, { grade: 'dangerous', snaps: snaps(GADGET, KERNEL, '  -\n    name: local-app') }));
    expect(v.snaps.find((s) => s.name === 'local-app')?.id).toBeUndefined();
  });

  test('presence, modes, components and classic snaps are read', () => {
    const entry = `  -
    classic: true
    components:
      comp-a: optional
      comp-b:
        presence: required
    id: ASctKBEHzVt3f1pbZLoekCvcigRjtuqw
    name: tool
    presence: optional`;
    const v = model(edit(UC22, { classic: 'true', distribution: 'ubuntu', snaps: snaps(GADGET, KERNEL, entry) }));
    expect(v.classic).toBe(true);
    expect(v.distribution).toBe('ubuntu');
    expect(v.snaps.find((s) => s.name === 'tool')).toMatchObject({
      presence: 'optional',
      classic: true,
      components: { 'comp-a': { presence: 'optional', modes: ['run'] }, 'comp-b': { presence: 'required', modes: ['run'] } },
    });
  });

  test('authorities: the brand is always included, system-user-authority may be "*"', () => {
    const v = model(edit(UC22, { 'serial-authority': '\n  - generic', 'system-user-authority': '*', 'preseed-authority': '\n  - acme\n  - other' }));
    expect(v.serialAuthority).toEqual(['acme', 'generic']);
    expect(v.systemUserAuthority).toBe('*');
    expect(v.preseedAuthority).toEqual(['acme', 'other']);
  });

  test('validation-sets: account-id defaults to the brand, sequence is optional', () => {
    const v = model(edit(UC22, { 'validation-sets': '\n  -\n    mode: enforce\n    name: base-set\n  -\n    account-id: other\n    mode: prefer-enforce\n    name: extra\n    sequence: 3' }));
    expect(v.validationSets).toEqual([
      { accountId: 'acme', name: 'base-set', mode: 'enforce' },
      { accountId: 'other', name: 'extra', sequence: 3, mode: 'prefer-enforce' },
    ]);
  });
});

describe('model: rules', () => {
  test('authority-id must be the brand', () => {
    const e = expectRefused(edit(UC22, { 'authority-id': 'canonical' }), 'authority-id', 'ERR_AUTHORITY_NOT_BRAND');
    expect(e.message).toContain('"brand-id"');
    expect(e.message).toContain('found authority-id "canonical" and brand-id "acme"');
  });

  test.each(['series', 'brand-id', 'model', 'architecture', 'base', 'timestamp'])('UC20+: "%s" is mandatory', (h) => {
    expect(expectRefused(edit(UC22, { [h]: null }), h).message).toContain(`"${h}" `);
  });

  test.each(['architecture', 'gadget', 'kernel', 'timestamp'])('pre-UC20: "%s" is mandatory', (h) => {
    expect(expectRefused(edit(UC18, { [h]: null }), h).message).toContain(`"${h}" header is mandatory`);
  });

  test('the model name is letters, digits and dashes, lower case only', () => {
    expectRefused(edit(UC22, { model: 'kiosk_1' }), 'model');
    expect(expectRefused(edit(UC22, { model: 'Kiosk' }), 'model').message).toContain('must not contain upper-case letters');
  });

  test('grade must be one of secured|signed|dangerous', () => {
    const e = expectRefused(edit(UC22, { grade: 'insecure' }), 'grade');
    expect(e.message).toContain('"grade" header must be one of secured|signed|dangerous, found "insecure"');
  });

  test('storage-safety must be a known value, and only "encrypted" for secured models', () => {
    expectRefused(edit(UC22, { 'storage-safety': 'maybe' }), 'storage-safety');
    const e = expectRefused(edit(UC22, { grade: 'secured', 'storage-safety': 'prefer-encrypted' }), 'storage-safety');
    expect(e.message).toContain('must be "encrypted" (or left out) in a secured grade model');
  });

  test('classic must be "true" or "false"', () => {
    expectRefused(edit(UC22, { classic: 'yes' }), 'classic');
  });

  test.each(['gadget', 'kernel'])('"%s" header conflicts with "snaps"', (h) => {
    expectRefused(edit(UC22, { [h]: 'pc' }), h);
  });

  test('"required-snaps" conflicts with "snaps"', () => {
    expectRefused(edit(UC22, { 'required-snaps': '\n  - htop' }), 'required-snaps');
  });

  test.each(['grade', 'storage-safety'])('pre-UC20 models cannot have "%s"', (h) => {
    expectRefused(edit(UC18, { [h]: h === 'grade' ? 'signed' : 'encrypted' }), h);
  });

  test('a pre-UC20 classic model cannot have a kernel or a base', () => {
    expectRefused(edit(UC18, { classic: 'true' }), 'kernel');
    expectRefused(edit(UC18, { classic: 'true', kernel: null }), 'base');
  });

  test('a pre-UC20 classic model may have a gadget and nothing else', () => {
    const v = model(edit(UC18, { classic: 'true', kernel: null, base: null, architecture: null, 'required-snaps': null }));
    expect(v.snaps.map((s) => s.name)).toEqual(['pi']);
  });

  test('distribution: mandatory for classic UC20+ models, a valid os-release ID, forbidden otherwise', () => {
    expectRefused(edit(UC22, { classic: 'true' }), 'distribution');
    expectRefused(edit(UC22, { classic: 'true', distribution: 'Ubuntu' }), 'distribution');
    expectRefused(edit(UC22, { distribution: 'ubuntu' }), 'distribution');
  });

  test('the base must be a valid snap name', () => {
    expectRefused(edit(UC22, { base: 'Core22' }), 'base');
  });

  describe('"snaps" entries', () => {
    test('"snaps" must be a list of maps', () => {
      expectRefused(edit(UC22, { snaps: 'pc' }), 'snaps');
    });

    test('every snap needs a valid name', () => {
      expect(expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, '  -\n    id: ASctKBEHzVt3f1pbZLoekCvcigRjtuqw') }), 'snaps').message).toContain('"name" of entry 3 in "snaps" header is mandatory');
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, '  -\n    name: Bad_Name') }), 'snaps');
    });

    test('the snap id is mandatory in a signed model', () => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, '  -\n    name: kiosk-app') }), 'snaps');
      expect(e.message).toContain('"id" of snap "kiosk-app" in "snaps" header is mandatory for a signed grade model');
    });

    test('the snap id must look like a snap id', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, '  -\n    id: short\n    name: kiosk-app') }), 'snaps');
    });

    test('type must be one of the snap types', () => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    type: os`) }), 'snaps');
      expect(e.message).toContain('"type" of snap "kiosk-app" in "snaps" header must be one of app|base|gadget|kernel|core|snapd, found "os"');
    });

    test('presence must be required or optional', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    presence: invalid`) }), 'snaps');
    });

    test('an essential snap cannot state its presence', () => {
      const e = expectRefused(edit(UC22, { snaps: snaps(`${GADGET}\n    presence: optional`, KERNEL) }), 'snaps');
      expect(e.message).toContain('"presence" of snap "pc" in "snaps" header must not be given: "pc" is an essential snap');
      // The model's base is essential too, whatever its type says.
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${BASE}\n    presence: required`) }), 'snaps');
    });

    test('an essential snap cannot state its modes', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, `${KERNEL}\n    modes:\n      - run`) }), 'snaps');
    });

    test('modes must be mode names', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    modes:\n      - Run`) }), 'snaps');
    });

    test.each([
      ['stable', 'must specify a track'],
      ['edge/fix-1', 'must specify a track'],
      ['22/unstable', 'invalid risk'],
      ['a/stable/b/c', 'too many components'],
      ['22/stable/', 'empty branch'],
    ])('default-channel %s is refused', (ch, why) => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    default-channel: ${ch}`) }), 'snaps');
      expect(e.message).toContain('"default-channel" of snap "kiosk-app"');
      expect(e.message).toContain(why);
    });

    test('a track-only default channel is accepted', () => {
      expect(model(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    default-channel: 22`) })).snaps.at(-1)?.defaultChannel).toBe('22');
    });

    test('classic snaps: only in classic models, only apps, only in run mode', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    classic: true`) }), 'snaps');
      const classic = { classic: 'true', distribution: 'ubuntu' };
      expectRefused(edit(UC22, { ...classic, snaps: snaps(GADGET, KERNEL, `${APP}\n    classic: true\n    type: base`) }), 'snaps');
      expectRefused(edit(UC22, { ...classic, snaps: snaps(GADGET, KERNEL, `${APP}\n    classic: true\n    modes:\n      - run\n      - install`) }), 'snaps');
    });

    test.each([
      ['a bad component name', '      c: required'],
      ['a bad presence', '      comp: invalid'],
      ['an unknown entry', '      comp:\n        presence: required\n        revision: 3'],
      ['a map without presence', '      comp:\n        modes:\n          - run'],
      ['modes the snap lacks', '      comp:\n        modes:\n          - install\n        presence: required'],
    ])('components with %s are refused', (_, lines) => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, `${APP}\n    components:\n${lines}`) }), 'snaps');
    });

    test('the same snap name twice is refused', () => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, APP, APP.replace('ASctKBEHzVt3f1pbZLoekCvcigRjtuqw', 'BSctKBEHzVt3f1pbZLoekCvcigRjtuqw')) }), 'snaps');
      expect(e.message).toContain('"snaps" header lists the snap "kiosk-app" more than once');
    });

    test('the same snap id twice is refused', () => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, APP, APP.replace('kiosk-app', 'other-app')) }), 'snaps');
      expect(e.message).toContain('gives the same snap id "ASctKBEHzVt3f1pbZLoekCvcigRjtuqw" to "kiosk-app" and "other-app"');
    });

    test.each([
      ['gadget', GADGET.replace('UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH', 'AqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH').replace('name: pc', 'name: pc2')],
      ['kernel', KERNEL.replace('pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza', 'AYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza').replace('name: pc-kernel', 'name: pc-kernel2')],
      ['snapd', SNAPD.replace('PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4', 'AMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4').replace('name: snapd', 'name: snapd2')],
    ])('at most one %s snap', (type, second) => {
      const e = expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, SNAPD, second) }), 'snaps');
      expect(e.message).toContain(`at most one ${type} snap`);
    });

    test('a non-classic model needs exactly one gadget and one kernel', () => {
      expect(expectRefused(edit(UC22, { snaps: snaps(KERNEL) }), 'snaps').message).toContain('one entry of type gadget');
      expect(expectRefused(edit(UC22, { snaps: snaps(GADGET) }), 'snaps').message).toContain('one entry of type kernel');
    });

    test('a classic UC20+ model may leave out kernel and gadget, but not have a kernel without a gadget', () => {
      const classic = { classic: 'true', distribution: 'ubuntu' };
      expect(model(edit(UC22, { ...classic, snaps: snaps(APP) })).snaps.map((s) => s.name)).toEqual(['core22', 'kiosk-app']);
      expectRefused(edit(UC22, { ...classic, snaps: snaps(KERNEL) }), 'snaps');
    });

    test('the entry for the base must have type base', () => {
      expectRefused(edit(UC22, { snaps: snaps(GADGET, KERNEL, BASE.replace('type: base', 'type: app')) }), 'snaps');
    });

    test('a base that is not well known must be listed unless grade is dangerous', () => {
      expect(expectRefused(edit(UC22, { base: 'acme-base' }), 'snaps').message).toContain('must have an entry for the base "acme-base"');
      expect(model(edit(UC22, { base: 'acme-base', grade: 'dangerous' })).snaps.find((s) => s.name === 'acme-base')?.id).toBeUndefined();
    });
  });

  describe('pre-UC20 kernel and gadget headers', () => {
    test('the track must be a track name, not a channel or a risk', () => {
      expect(expectRefused(edit(UC18, { kernel: 'pi-kernel=18/stable' }), 'kernel').message).toContain('track name only');
      expect(expectRefused(edit(UC18, { gadget: 'pi=stable' }), 'gadget').message).toContain('must pin a track, not a risk');
    });

    test('the name must be a snap name', () => {
      expectRefused(edit(UC18, { kernel: 'Pi_Kernel' }), 'kernel');
    });

    test('required-snaps must be a list of snap names', () => {
      expectRefused(edit(UC18, { 'required-snaps': '\n  - Not_A_Snap' }), 'required-snaps');
      expectRefused(edit(UC18, { 'required-snaps': 'htop' }), 'required-snaps');
    });
  });

  test('authority lists must be account ids', () => {
    expectRefused(edit(UC22, { 'serial-authority': '*' }), 'serial-authority');
    expectRefused(edit(UC22, { 'serial-authority': '\n  - bad/id' }), 'serial-authority');
    expectRefused(edit(UC22, { 'system-user-authority': 'acme' }), 'system-user-authority');
    expectRefused(edit(UC22, { 'preseed-authority': '\n  - x' }), 'preseed-authority');
  });

  describe('"validation-sets"', () => {
    const vs = (lines: string) => edit(UC22, { 'validation-sets': lines });

    test('must be a list of maps', () => {
      expectRefused(vs('base-set'), 'validation-sets');
    });

    test('each needs a valid name', () => {
      expectRefused(vs('\n  -\n    mode: enforce'), 'validation-sets');
      expectRefused(vs('\n  -\n    mode: enforce\n    name: Base'), 'validation-sets');
    });

    test('mode is mandatory and enforce|prefer-enforce', () => {
      expectRefused(vs('\n  -\n    name: base-set'), 'validation-sets');
      const e = expectRefused(vs('\n  -\n    mode: monitor\n    name: base-set'), 'validation-sets');
      expect(e.message).toContain('"mode" of validation-set "acme/base-set" in "validation-sets" header must be prefer-enforce|enforce, found "monitor"');
    });

    test('a sequence must be 1 or more', () => {
      expectRefused(vs('\n  -\n    mode: enforce\n    name: base-set\n    sequence: 0'), 'validation-sets');
    });

    test('the same set twice is refused, the brand default included', () => {
      const e = expectRefused(vs('\n  -\n    mode: enforce\n    name: base-set\n  -\n    account-id: acme\n    mode: prefer-enforce\n    name: base-set'), 'validation-sets');
      expect(e.message).toContain('lists the validation set "acme/base-set" more than once');
    });
  });

  test('format above 0 is unsupported', () => {
    expectRefused(edit(UC22, { format: '1' }), 'format', 'ERR_ASSERTION_UNSUPPORTED_FORMAT');
  });
});

describeFixtures('real models', () => {
  const models = assertionFixtureNames().filter((f) => f.endsWith('.model'));

  test('there are models to check', () => {
    expect(models.length).toBeGreaterThanOrEqual(10);
  });

  test.each(models)('%s assembles into a typed view', (file) => {
    const a = decodeOne(assertionFixture(file), { file });
    const v = assembleAs(modelType, a);
    expect(v.brandId).toBe(a.header('brand-id'));
    expect(v.model).toBe(a.header('model'));
    expect(v.timestamp.getTime()).not.toBeNaN();
    if (!v.classic) {
      expect(v.snaps.filter((s) => s.type === 'kernel')).toHaveLength(1);
      expect(v.snaps.filter((s) => s.type === 'gadget')).toHaveLength(1);
    }
  });

  const load = (file: string) => assembleAs(modelType, decodeOne(assertionFixture(file), { file }));

  test('ubuntu-core-18-amd64: the pre-UC20 headers become the snaps list', () => {
    const v = load('ubuntu-core-18-amd64.model');
    expect(v).toMatchObject({ extended: false, grade: 'unset', base: 'core18', displayName: 'Ubuntu Core 18 (amd64)' });
    expect(v.snaps.map((s) => [s.name, s.type, s.defaultChannel])).toEqual([
      ['pc-kernel', 'kernel', '18/stable'],
      ['core18', 'base', 'latest/stable'],
      ['pc', 'gadget', '18/stable'],
    ]);
    expect(v.timestamp.toISOString()).toBe('2018-08-13T09:00:00.000Z');
  });

  test('generic-classic: a classic model with no snaps at all', () => {
    const v = load('generic-classic.model');
    expect(v).toMatchObject({ classic: true, extended: false, brandId: 'generic', snaps: [] });
    expect(v.architecture).toBeUndefined();
  });

  test('ubuntu-core-22-amd64: grade signed, storage-safety defaulted, essential modes', () => {
    const v = load('ubuntu-core-22-amd64.model');
    expect(v).toMatchObject({ grade: 'signed', storageSafety: 'prefer-encrypted', base: 'core22' });
    expect(v.snaps.map((s) => s.name)).toEqual(['snapd', 'pc-kernel', 'core22', 'pc']);
    expect(v.snaps.every((s) => s.modes.join() === 'run,ephemeral')).toBe(true);
  });

  test('ubuntu-core-24-amd64: console-conf is optional', () => {
    expect(load('ubuntu-core-24-amd64.model').snaps.find((s) => s.name === 'console-conf')).toMatchObject({ presence: 'optional', type: 'app', modes: ['run'], defaultChannel: '24/stable', essential: false });
  });

  test('ubuntu-core-20-intel-iot-dangerous: dangerous, storage-safety as written, revision 3', () => {
    expect(load('ubuntu-core-20-intel-iot-dangerous.model')).toMatchObject({ grade: 'dangerous', storageSafety: 'prefer-unencrypted', revision: 3 });
  });

  test('xnox-core-22-arm64: a third-party brand with a serial authority', () => {
    const v = load('xnox-core-22-arm64.model');
    expect(v.serialAuthority).toEqual(['7InnfhhgqHTy1GnKMw83FDcBinWaYKbJ', 'generic']);
    expect(v.authorityId).toBe(v.brandId);
  });
});
