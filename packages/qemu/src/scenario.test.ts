/**
 * The scenario logic that needs no VM: names and options refused before anything is copied or
 * booted, the update file reader and the tampering helper on real tar files, and the shape of the
 * --json report. The scenarios themselves boot in test/scenarios-*.qemu.test.ts (the matrix: @edgeimage/testkit/scenario-boards).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootTestError } from './errors.js';
import { runScenario } from './scenario.js';
import { CRASH_POINTS, parseCrashPoint, parseScenario, SCENARIO_MARKERS } from './scenario-contract.js';
import type { ScenarioResult } from './scenario-harness.js';
import { checkScenarioOptions, type ScenarioOptions } from './scenario-options.js';
import { scenarioReport } from './report.js';
import { readUpdateManifest, tamperUpdate, tarEntries } from './update-file.js';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { thrownBy } from '@edgeimage/testkit/refusals';

let tmp: string;
let update: string;
let image: string;
const MANIFEST = ['edgeimage-update: 1', 'brand-id: acme', 'model: kiosk', 'revision: 7', `sign-key-sha3-384: ${'abc'.padEnd(64, 'c')}`, 'file: 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6 bin/app', 'file: 0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f 4 model.assert', ''].join('\n');

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'edgeimage-scenario-test-'));
  const tree = join(tmp, 'tree');
  mkdirSync(join(tree, 'edgeimage-update/slot/bin'), { recursive: true });
  writeFileSync(join(tree, 'edgeimage-update/manifest'), MANIFEST);
  writeFileSync(join(tree, 'edgeimage-update/manifest.sig'), Buffer.alloc(256, 7));
  writeFileSync(join(tree, 'edgeimage-update/slot/bin/app'), 'hello\n');
  // a real tar as update create writes it (ustar), made by GNU tar
  update = join(tmp, 'u.update');
  execFileSync('tar', ['--format=ustar', '-cf', update, '-C', tree, 'edgeimage-update/manifest', 'edgeimage-update/manifest.sig', 'edgeimage-update/slot/bin/app']);
  image = join(tmp, 'disk.img');
  writeFileSync(image, Buffer.alloc(4096));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const refusal = (f: () => unknown): BootTestError => thrownBy(f, BootTestError);

const opts = (o: Partial<ScenarioOptions>): ScenarioOptions => ({ image, scenario: 'update', update, ...o });

describe('names and options refused before anything runs', () => {
  test('an unknown crash point is refused naming every valid one', () => {
    const e = refusal(() => parseCrashPoint('half-way'));
    expect(e.code).toBe('ERR_CRASH_POINT');
    expect(e.message).toContain('unknown crash point "half-way"');
    for (const p of CRASH_POINTS) expect(e.message).toContain(p);
    expect(e.context['valid']).toEqual(['mid-slot-write', 'after-slot-write', 'env-between-copies', 'after-env', 'try-before-commit']);
    expect(parseCrashPoint('after-env')).toBe('after-env');
  });

  test('an unknown scenario is refused naming the scenarios', () => {
    const e = refusal(() => parseScenario('upgrade'));
    expect(e.code).toBe('ERR_SCENARIO');
    expect(e.message).toMatch(/update, rollback, refuse, power-cut/);
  });

  test('a scenario needs an update file that exists and is an update', () => {
    expect(refusal(() => checkScenarioOptions(opts({ update: '' }))).code).toBe('ERR_USAGE');
    const missing = refusal(() => checkScenarioOptions(opts({ update: join(tmp, 'nope.update') })));
    expect(missing.code).toBe('ERR_UPDATE_OPEN');
    expect(missing.message).toContain('nope.update does not exist');
    const notTar = join(tmp, 'not-a-tar');
    writeFileSync(notTar, 'x'.repeat(1024));
    expect(refusal(() => checkScenarioOptions(opts({ update: notTar }))).code).toBe('ERR_UPDATE_FILE');
    const noImage = refusal(() => checkScenarioOptions(opts({ image: join(tmp, 'nope.img') })));
    expect(noImage.code).toBe('ERR_IMAGE_OPEN');
  });

  test('options that do not go together: a crash point outside power-cut, every point in place, an expected refusal outside refuse', () => {
    expect(refusal(() => checkScenarioOptions(opts({ scenario: 'update', crashAt: 'after-env' }))).message).toMatch(/^crashAt belongs to scenario power-cut, not update$/);
    expect(refusal(() => checkScenarioOptions(opts({ scenario: 'power-cut', crashAt: 'sideways' as never }))).code).toBe('ERR_CRASH_POINT');
    const inPlace = refusal(() => checkScenarioOptions(opts({ scenario: 'power-cut', inPlace: true })));
    expect(inPlace.code).toBe('ERR_USAGE');
    expect(inPlace.message).toMatch(/fresh copy .* name one point/);
    expect(checkScenarioOptions(opts({ scenario: 'power-cut', inPlace: true, crashAt: 'after-env' })).revision).toBe(7);
    expect(refusal(() => checkScenarioOptions(opts({ scenario: 'rollback', refusal: /signature/ }))).code).toBe('ERR_USAGE');
    expect(refusal(() => checkScenarioOptions(opts({ bootTimeoutSeconds: 0 }))).message).toMatch(/bootTimeoutSeconds: expected a positive number/);
  });

  test('runScenario refuses before it copies anything: no temp folder, no log folder', async () => {
    const dir = mkdtempSync(join(tmp, 'run-'));
    await expect(runScenario(opts({ scenario: 'power-cut', crashAt: 'nowhere' as never, tmpDir: dir }))).rejects.toMatchObject({ code: 'ERR_CRASH_POINT' });
    await expect(runScenario(opts({ update: join(tmp, 'gone'), tmpDir: dir }))).rejects.toMatchObject({ code: 'ERR_UPDATE_OPEN' });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('power-cut refuses an image that has no crash points', () => {
  let world: ImageWorld;
  let signed: string;
  beforeAll(async () => {
    world = await makeImageWorld();
    signed = (await world.compose(await world.resolve(await world.model({ grade: 'signed' })))).images[0]!.path;
  }, SLOW);
  afterAll(() => world?.cleanup());

  test('an image of a grade signed model, and a disk with no slot at all: ERR_SCENARIO_GRADE before anything is copied', async () => {
    const dir = mkdtempSync(join(tmp, 'grade-'));
    await expect(runScenario(opts({ image: signed, scenario: 'power-cut', crashAt: 'after-env', tmpDir: dir }))).rejects.toMatchObject({
      code: 'ERR_SCENARIO_GRADE',
      context: { grade: 'signed' },
      message: expect.stringContaining('power-cut needs an image of a grade dangerous model, but ' + signed + ' is grade signed'),
    });
    await expect(runScenario(opts({ scenario: 'power-cut', crashAt: 'after-env', tmpDir: dir }))).rejects.toMatchObject({
      code: 'ERR_SCENARIO_GRADE',
      message: expect.stringContaining('of no known grade (slot a has no EDGE_GRADE in boot/slot.env)'),
    });
    expect(readdirSync(dir)).toEqual([]);
  }, SLOW);
});

describe('the update file', () => {
  test('its entries and manifest headers are read from the tar', () => {
    expect(tarEntries(update).map((e) => [e.name, e.size])).toEqual([
      ['edgeimage-update/manifest', MANIFEST.length],
      ['edgeimage-update/manifest.sig', 256],
      ['edgeimage-update/slot/bin/app', 6],
    ]);
    expect(readUpdateManifest(update)).toEqual({ brandId: 'acme', model: 'kiosk', revision: 7, files: 2, carried: ['bin/app'] });
  });

  test('tampered copies differ in exactly one byte of the slot file or the manifest, and stay well-formed tars', () => {
    const original = readFileSync(update);
    for (const [what, path] of [['slot-file', 'edgeimage-update/slot/bin/app'], ['manifest', 'edgeimage-update/manifest']] as const) {
      const out = join(tmp, `${what}.update`);
      expect(tamperUpdate(update, out, what)).toBe(path);
      const t = readFileSync(out);
      const diff = [...t.keys()].filter((i) => t[i] !== original[i]);
      expect(diff).toHaveLength(1);
      const entry = tarEntries(out).find((e) => e.name === path)!;
      expect(diff[0]).toBeGreaterThanOrEqual(entry.offset);
      expect(diff[0]).toBeLessThan(entry.offset + entry.size);
      // GNU tar still reads it, and the changed file is what differs
      const x = join(tmp, `x-${what}`);
      mkdirSync(x);
      execFileSync('tar', ['-xf', out, '-C', x]);
      expect(readFileSync(join(x, path)).equals(readFileSync(join(tmp, 'tree', path)))).toBe(false);
    }
    // the manifest still parses: a digest digit changed, the headers did not
    expect(readUpdateManifest(join(tmp, 'manifest.update')).revision).toBe(7);
  });
});

describe('the console lines of the device contract', () => {
  test('the markers match the device lines and capture the slot, the revision and the reason', () => {
    expect(SCENARIO_MARKERS.booting('b').exec('edgeimage-uboot: booting slot b (status try: trying b)')?.groups).toMatchObject({ slot: 'b', why: 'status try: trying b' });
    expect(SCENARIO_MARKERS.booting().test('edgeimage-grub: booting slot a (status empty)')).toBe(true);
    expect(SCENARIO_MARKERS.applied().exec('edge-update: applied revision 2 to slot b; rebooting to try it')?.groups).toMatchObject({ revision: '2', target: 'b' });
    expect(SCENARIO_MARKERS.refused.exec('edge-update: REFUSED: revision 0 is not higher than the installed revision 1')?.groups?.['reason']).toMatch(/not higher/);
    expect(SCENARIO_MARKERS.crash('after-env').test('edgeimage: crash point after-env: rebooting at once')).toBe(true);
    expect(SCENARIO_MARKERS.crash('after-env').test('edgeimage: crash point after-slot-write: rebooting at once')).toBe(false);
    expect(SCENARIO_MARKERS.healthy('a').test('edgeimage-health: healthy on slot b')).toBe(false);
  });
});

test('the --json report: scenario and steps (each boot: slot, markers with pattern/seconds/line, seconds, passed), checks, failure', () => {
  const marker = (pattern: string, seconds: number, line: string) => ({ pattern, seconds, line });
  const r: ScenarioResult = {
    scenario: 'rollback',
    passed: false,
    image,
    update,
    manifest: { brandId: 'acme', model: 'kiosk', revision: 7, files: 2, carried: ['bin/app'] },
    slot: null,
    steps: [
      { name: 'boot 1: apply', boot: 1, updateDisk: true, slot: 'a', outcome: 'applied', summary: 'slot a: applied', markers: [marker('booting', 5.12345, 'edgeimage-grub: booting slot a (status empty)'), marker('applied', 30.5, 'edge-update: applied revision 7 to slot b; rebooting to try it')], status: ['edge-update: status: booted a good a failed -'], seconds: 31.01, passed: true, log: '/l/1.log' },
      { name: 'boot 2: try', boot: 2, updateDisk: false, slot: 'b', outcome: 'failed', summary: 'timed out', markers: [], status: [], seconds: 300, passed: false, log: '/l/2.log', reason: 'timed out', code: 'ERR_BOOT_TIMEOUT', tail: 'last lines' },
    ],
    checks: [{ name: 'the update went to the inactive slot', passed: true, detail: 'b' }],
    env: { edge_slot: 'a', edge_try_slot: '', edge_status: 'trying' },
    failure: { step: 'boot 2: try', code: 'ERR_BOOT_TIMEOUT', reason: 'timed out', tail: 'last lines', log: '/l/2.log' },
    kept: [],
    logDir: '/l',
    seconds: 331.04,
  };
  const j = JSON.parse(JSON.stringify(scenarioReport(r)));
  expect(j).toMatchObject({ passed: false, slot: null, scenario: 'rollback', code: 'ERR_BOOT_TIMEOUT', reason: 'boot 2: try: timed out', log: '/l/2.log', update: { revision: 7, model: 'kiosk', 'brand-id': 'acme' } });
  expect(j.steps).toHaveLength(2);
  expect(j.steps[0]).toMatchObject({ slot: 'a', seconds: 31.01, passed: true, updateDisk: true, outcome: 'applied', markers: [{ pattern: 'booting', seconds: 5.123, line: 'edgeimage-grub: booting slot a (status empty)' }, { seconds: 30.5 }] });
  expect(j.steps[0]).not.toHaveProperty('reason');
  expect(j.steps[1]).toMatchObject({ slot: 'b', passed: false, code: 'ERR_BOOT_TIMEOUT', reason: 'timed out' });
  expect(j.checks).toEqual(r.checks);
  expect(j.env).toEqual(r.env);
  expect(j).not.toHaveProperty('powerCut');
  const ok = scenarioReport({ ...r, scenario: 'power-cut', passed: true, failure: undefined, slot: 'b', powerCut: [{ point: 'after-env', passed: true, slot: 'b', boots: 1, why: 'tried and committed' }] });
  expect(ok).toMatchObject({ passed: true, slot: 'b', powerCut: [{ point: 'after-env', slot: 'b' }] });
  expect(ok).not.toHaveProperty('code');
});
