import { fileURLToPath } from 'node:url';
import { checkABRoles } from './ab-roles.js';
import { parseGadgetYaml, readGadgetYaml } from './parse.js';
import { describeFixtures, expectGadgetError, fixtureFile, fixtureGadgets, yaml } from '@edgeimage/testkit/gadget-fixtures';

const F = 'gadget.yaml';
const EXAMPLES = fileURLToPath(new URL('../../../bundles/', import.meta.url));

interface Part {
  name?: string;
  role?: string;
  fs?: string;
  label?: string;
  type?: string;
}
const A: Part = { name: 'system-a', role: 'system-a', fs: 'ext4', label: 'system-a' };
const B: Part = { name: 'system-b', role: 'system-b', fs: 'ext4', label: 'system-b' };
const BOOT: Part = { name: 'system-boot', role: 'system-boot', fs: 'vfat', type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B' };
const DATA: Part = { name: 'system-data', role: 'system-data', fs: 'ext4' };

/** A gpt volume "pc" of the given structures: line 5 is the first structure, 6 lines each. */
function gadget(parts: Part[], schema = 'gpt'): string {
  const linux = schema === 'gpt' ? '0FC63DAF-8483-4772-8E79-3D69D8477DE4' : '83';
  const lines = ['volumes:', '  pc:', `    schema: ${schema}`, '    bootloader: grub', '    structure:'];
  for (const p of parts) {
    lines.push(
      p.name ? `      - name: ${p.name}` : '      - size: 16M',
      p.role ? `        role: ${p.role}` : '        # no role',
      `        type: ${p.type ?? linux}`,
      `        filesystem: ${p.fs ?? 'none'}`,
      p.label ? `        filesystem-label: ${p.label}` : '        # no label',
      p.name ? '        size: 16M' : '        # unnamed',
    );
  }
  return yaml(...lines);
}
const lineOf = (index: number) => 6 + 6 * index;

describe('checkABRoles', () => {
  it("accepts the example gadgets (pc, arm64-efi: gpt; arm64-uboot: mbr) and returns the volume", () => {
    for (const [b, vol] of [
      ['pc', 'pc'],
      ['arm64-efi', 'arm64-efi'],
      ['arm64-uboot', 'arm64-uboot'],
    ] as const) {
      expect(checkABRoles(readGadgetYaml(`${EXAMPLES}${b}/meta/gadget.yaml`)).name).toBe(vol);
    }
  });

  it('a gadget without A/B roles validates, but checkABRoles refuses it saying what to add', () => {
    const g = parseGadgetYaml(gadget([{ ...BOOT }, { ...DATA, label: 'writable' }]), F);
    expectGadgetError(() => checkABRoles(g), {
      code: 'ERR_GADGET_NOT_AB',
      message: [
        'gadget.yaml: no A/B roles',
        'add structures with role system-a (ext4: system slot a), system-b (ext4: system slot b) (this gadget has system-boot, system-data)',
        'see packages/gadget/README.md, "A/B roles"',
      ],
    });
  });

  it('refuses a gadget with one slot only (at parse time, too)', () => {
    const text = gadget([BOOT, A, DATA]);
    expectGadgetError(() => parseGadgetYaml(text, F), { code: 'ERR_GADGET_AB', line: lineOf(1), structure: 'system-a', message: ['role system-b missing', 'found system-boot, system-a, system-data'] });
  });

  it('refuses slots that are not ext4', () => {
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, A, { ...B, fs: 'vfat' }, DATA]), F), {
      code: 'ERR_GADGET_AB',
      line: lineOf(2),
      structure: 'system-b',
      message: ['a system slot (role system-b) must have filesystem ext4 (GRUB and U-Boot both read it), not vfat'],
    });
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, { ...A, fs: 'none' }, B, DATA]), F), { code: 'ERR_GADGET_AB', line: lineOf(1), message: ['not none'] });
  });

  it('refuses system-data that is not ext4 and system-boot without a filesystem', () => {
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, A, B, { ...DATA, fs: 'vfat' }]), F), { code: 'ERR_GADGET_AB', line: lineOf(3), message: ['system-data must have filesystem ext4'] });
    expectGadgetError(() => parseGadgetYaml(gadget([{ ...BOOT, fs: 'none' }, A, B, DATA]), F), { code: 'ERR_GADGET_AB', line: lineOf(0), message: ['system-boot needs a filesystem'] });
  });

  it('refuses two structures with the same A/B role', () => {
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, A, B, { ...A, name: 'a2', label: 'a2' }, DATA]), F), {
      code: 'ERR_GADGET_ROLE',
      line: lineOf(3),
      structure: 'a2',
      message: ['cannot have more than one structure with role system-a: structure "system-a" (line 12) has it too'],
    });
  });

  it('refuses A/B roles spread over two volumes', () => {
    const text = `${gadget([BOOT, A, B])}${yaml('  disk2:', '    structure:', '      - name: system-data', '        role: system-data', '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        filesystem: ext4', '        size: 1G')}`;
    expectGadgetError(() => parseGadgetYaml(text, F), { code: 'ERR_GADGET_AB', line: 26, structure: 'system-data', message: ['role system-data is on volume "disk2", system-a on "pc": the A/B roles are all on one volume'] });
  });

  it('needs slot names on gpt (partition names) and filesystem labels on mbr', () => {
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, { ...A, name: undefined }, B, DATA]), F), { code: 'ERR_GADGET_AB', line: lineOf(1), structure: '#1', message: ['on a GPT volume needs a name'] });
    expectGadgetError(() => parseGadgetYaml(gadget([{ ...BOOT, type: '0C' }, A, { ...B, label: undefined }, DATA], 'mbr'), F), {
      code: 'ERR_GADGET_AB',
      line: lineOf(2),
      structure: 'system-b',
      message: ['on an MBR volume needs a filesystem-label'],
    });
  });

  it('refuses a slot labelled other than its role: the bootloaders find a slot by that label', () => {
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, { ...A, label: 'rootfs-a' }, B, DATA]), F), {
      code: 'ERR_GADGET_AB',
      line: lineOf(1),
      structure: 'system-a',
      message: ['a system slot (role system-a) must have the filesystem-label "system-a" or none (it is implied), not "rootfs-a"', 'the bootloaders find a slot by that label'],
    });
    // on GPT the label may be left out: it is implied
    expect(checkABRoles(parseGadgetYaml(gadget([BOOT, { ...A, label: undefined }, { ...B, label: undefined }, DATA]), F)).name).toBe('pc');
  });

  it('accepts the slots anywhere among partitions 1-9 (a BIOS-boot partition first), refuses a slot at partition 10', () => {
    const bios: Part = { name: 'bios-boot', type: '21686148-6449-6E6F-744E-656564454649' };
    expect(checkABRoles(parseGadgetYaml(gadget([{ ...bios }, BOOT, B, A, DATA]), F)).structures.map((s) => s.role ?? s.name)).toEqual(['bios-boot', 'system-boot', 'system-b', 'system-a', 'system-data']);
    const fillers: Part[] = Array.from({ length: 8 }, (_, i) => ({ name: `firmware-${i + 1}`, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' }));
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, ...fillers, A, B, DATA]), F), {
      code: 'ERR_GADGET_AB',
      line: lineOf(9),
      structure: 'system-a',
      message: ['a system slot (role system-a) is partition 10 of the disk: the bootloaders look for the slots among partitions 1-9 only'],
    });
  });

  it("does not apply snapd's UC20 role rules to an A/B gadget: no seed or save needed, any labels", () => {
    const g = parseGadgetYaml(gadget([BOOT, A, B, { ...DATA, label: 'my-data' }]), F);
    expect(checkABRoles(g).structures.map((s) => s.role)).toEqual(['system-boot', 'system-a', 'system-b', 'system-data']);
    // snapd's rules would want system-data labelled "writable" (or nothing) without a seed:
    expectGadgetError(() => parseGadgetYaml(gadget([BOOT, { ...DATA, label: 'my-data' }]), F), { code: 'ERR_GADGET_LABEL', line: lineOf(1), message: ['"writable"'] });
  });
});

describeFixtures('checkABRoles on the real gadgets', () => {
  it.each(fixtureGadgets())('%s: validates, and build would refuse it (no A/B roles)', (name) => {
    const g = readGadgetYaml(fixtureFile(name));
    expectGadgetError(() => checkABRoles(g), { code: 'ERR_GADGET_NOT_AB', message: ['no A/B roles', 'add structures with role'] });
  });
});
