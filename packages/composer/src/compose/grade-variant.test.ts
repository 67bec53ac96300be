/**
 * The boot script of the model's grade: the composer installs the `.dangerous` variants of the
 * gadget's boot assets (bundles/bootloader/build-assets writes them) in a grade dangerous image
 * only, and leaves them out of a signed or secured one, so that a signed image carries no script
 * that reads the test hook edge_kargs from the boot partition. The slot says its grade to the
 * device (boot/slot.env, EDGE_GRADE).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { applyGradeVariants } from './grade-variant.js';
import { ext4Cat, fatCat, sfdiskJson } from '@edgeimage/testkit/image-read';
import { gadgetYaml, abStructures, snapYaml } from '@edgeimage/testkit/image-bundles';
import { makeImageWorld, SLOW, type ImageWorld } from '@edgeimage/testkit/image-world';
import { REPO } from '@edgeimage/testkit/repo';
import { requires } from '@edgeimage/testkit/skips';

const hasGrub = spawnSync('grub-mkimage', ['--version']).status === 0;

/** Every file under `dir` (relative path -> bytes), sorted. */
function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

describe('applyGradeVariants', () => {
  let world: ImageWorld;
  beforeAll(async () => {
    world = await makeImageWorld();
  }, SLOW);
  afterAll(() => world?.cleanup());

  const tree = () => {
    const d = world.tempDir('variants-');
    mkdirSync(join(d, 'EFI/BOOT'), { recursive: true });
    writeFileSync(join(d, 'EFI/BOOT/grub.cfg'), 'signed\n');
    writeFileSync(join(d, 'EFI/BOOT/grub.cfg.dangerous'), 'dangerous\n');
    writeFileSync(join(d, 'boot.scr'), 'signed scr\n');
    writeFileSync(join(d, 'boot.scr.dangerous'), 'dangerous scr\n');
    writeFileSync(join(d, '.dangerous'), 'not a variant: no name before the suffix\n');
    return d;
  };

  test('grade signed and secured: every .dangerous variant is left out, the signed files stay', () => {
    for (const grade of ['signed', 'secured', 'unset']) {
      const d = tree();
      expect(applyGradeVariants(d, grade)).toEqual(['EFI/BOOT/grub.cfg.dangerous', 'boot.scr.dangerous']);
      expect([...readTree(d).keys()]).toEqual(['.dangerous', 'EFI/BOOT/grub.cfg', 'boot.scr']);
      expect(readTree(d).get('EFI/BOOT/grub.cfg')!.toString()).toBe('signed\n');
    }
  });

  test('grade dangerous: each variant replaces its file', () => {
    const d = tree();
    applyGradeVariants(d, 'dangerous');
    expect([...readTree(d).keys()]).toEqual(['.dangerous', 'EFI/BOOT/grub.cfg', 'boot.scr']);
    expect(readTree(d).get('EFI/BOOT/grub.cfg')!.toString()).toBe('dangerous\n');
    expect(readTree(d).get('boot.scr')!.toString()).toBe('dangerous scr\n');
  });

  test('a tree deeper than any boot assets is refused (ERR_BOOT_ASSETS_DEPTH), nothing removed', () => {
    const d = world.tempDir('deep-');
    const deep = join(d, ...Array.from({ length: 20 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'x.dangerous'), 'x');
    writeFileSync(join(d, 'y.dangerous'), 'y');
    expect(() => applyGradeVariants(d, 'signed')).toThrow(expect.objectContaining({ code: 'ERR_BOOT_ASSETS_DEPTH', message: expect.stringContaining('is more than 16 folders deep') }));
    expect([...readTree(d).keys()].filter((p) => p.endsWith('.dangerous'))).toHaveLength(2);
  });
});

requires(hasGrub ? undefined : 'grub-mkimage is not installed').describe('the composer installs the boot script of the model grade (the real pc boot assets)', () => {
  let world: ImageWorld;
  beforeAll(async () => {
    world = await makeImageWorld();
    const assets = world.tempDir('assets-');
    execFileSync(join(REPO, 'bundles/bootloader/build-assets'), ['pc', assets]);
    const gadget: Record<string, Buffer | string> = { 'meta/snap.yaml': snapYaml('grub-pc', 'gadget', 'amd64'), 'meta/gadget.yaml': gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt')) };
    for (const [rel, bytes] of readTree(assets)) gadget[`boot-assets/${rel}`] = bytes;
    await world.publish('grub-pc', gadget);
  }, SLOW);
  afterAll(() => world?.cleanup());

  const build = async (grade: 'signed' | 'secured' | 'dangerous') => {
    const built = await world.compose(await world.resolve(await world.model({ model: `grub-${grade}`, gadget: 'grub-pc', grade })));
    const image = built.images[0]!.path;
    const parts = sfdiskJson(image).partitions;
    const boot = parts[0]!.start * 512;
    return {
      grubCfg: fatCat(image, boot, '/EFI/BOOT/grub.cfg')!.toString('utf8'),
      variant: fatCat(image, boot, '/EFI/BOOT/grub.cfg.dangerous'),
      slotEnv: ext4Cat(image, parts[1]!.start * 512, '/boot/slot.env')!.toString('utf8'),
      manifestGrade: built.manifest.model.grade,
    };
  };

  test.each(['signed', 'secured'] as const)('grade %s: grub.cfg never mentions edge_kargs, no .dangerous variant on system-boot; the slot says the grade', async (grade) => {
    const r = await build(grade);
    expect(r.grubCfg).toContain('edgeimage.slot=$1');
    expect(r.grubCfg).not.toContain('edge_kargs');
    expect(r.grubCfg).not.toContain('kargs');
    expect(r.variant).toBeUndefined();
    expect(r.slotEnv).toMatch(new RegExp(`^EDGE_GRADE=${grade}$`, 'm'));
    expect(r.manifestGrade).toBe(grade);
  }, SLOW);

  test('grade dangerous: grub.cfg is the variant that loads edge_kargs and appends it to the kernel command line', async () => {
    const r = await build('dangerous');
    expect(r.grubCfg).toMatch(/^\s*(?:(?:el)?if )?load_env .* edge_kargs(?:; then.*)?$/m);
    expect(r.grubCfg).toMatch(/^\s*elif linux .*edgeimage\.slot=\$1 .* \$edge_kargs; then$/m);
    expect(r.variant).toBeUndefined();
    expect(r.slotEnv).toMatch(/^EDGE_GRADE=dangerous$/m);
  }, SLOW);
});
