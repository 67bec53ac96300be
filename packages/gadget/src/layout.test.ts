import { GPT_BACKUP_SIZE, layoutContent, layoutGadget, layoutVolume } from './layout.js';
import { parseGadgetYaml, readGadgetYaml } from './parse.js';
import { describeFixtures, expectGadgetError, fixtureFile, fixtureGadgets, snapdLayout, yaml } from '@edgeimage/testkit/gadget-fixtures';
import type { LaidOutVolume } from './types.js';

const MiB = 1024 * 1024;
const F = 'gadget.yaml';
const layout = (text: string, volume = 'pc'): LaidOutVolume => {
  const g = parseGadgetYaml(text, F);
  return layoutVolume(g.volumes[volume]!, F);
};
const rows = (v: LaidOutVolume) => v.structures.map((s) => [s.name ?? '', s.startOffset, s.size, s.partitionIndex]);

describeFixtures('layout of the real gadgets in ../shared/fixtures/gadgets', () => {
  const names = fixtureGadgets();
  const withSnapd = names.filter((n) => snapdLayout(n));

  it('has the 19 gadgets, 5 of them with snapd-layout.txt', () => {
    expect(names).toHaveLength(19);
    expect(withSnapd.sort()).toEqual(['beaglebone-black-uc16', 'pc-18', 'pc-20', 'pc-22-amd64', 'pi-22-arm64']);
  });

  it.each(withSnapd)('%s: offsets and sizes equal snapd-layout.txt exactly', (name) => {
    const want = snapdLayout(name)!;
    const got = layoutGadget(readGadgetYaml(fixtureFile(name)));
    expect(Object.keys(got)).toEqual([...want.keys()]);
    for (const [volume, structures] of want) {
      expect(got[volume]!.structures.map((s) => [s.name ?? '', s.startOffset, s.size])).toEqual(structures);
    }
  });

  it.each(names)('%s: validates and lays out without overlaps, every structure inside minSize', (name) => {
    const layouts = layoutGadget(readGadgetYaml(fixtureFile(name)));
    for (const v of Object.values(layouts)) {
      let end = 0;
      for (const s of v.structures) {
        expect(s.startOffset).toBeGreaterThanOrEqual(end);
        end = s.startOffset + s.size;
      }
      expect(v.minSize).toBe(end + (v.schema === 'gpt' ? GPT_BACKUP_SIZE : 0));
      expect(v.warnings).toBeUndefined();
    }
  });

  it('pc 22: ubuntu-data follows ubuntu-save at its full size (min-size makes snapd leave its offset open)', () => {
    const v = layoutGadget(readGadgetYaml(fixtureFile('pc-22-amd64')))['pc']!;
    const save = v.structures.find((s) => s.name === 'ubuntu-save')!;
    const data = v.structures.find((s) => s.name === 'ubuntu-data')!;
    expect([save.minSize, save.size]).toEqual([16 * MiB, 32 * MiB]);
    expect(data.offset).toBeUndefined();
    expect(data.startOffset).toBe(save.startOffset + 32 * MiB);
  });

  it('numbers partitions in disk order, leaving out the mbr and bare structures', () => {
    const pc = layoutGadget(readGadgetYaml(fixtureFile('pc-20')))['pc']!;
    expect(pc.structures.map((s) => [s.name, s.partitionIndex])).toEqual([
      ['mbr', undefined],
      ['BIOS Boot', 1],
      ['ubuntu-seed', 2],
      ['ubuntu-boot', 3],
      ['ubuntu-save', 4],
      ['ubuntu-data', 5],
    ]);
    const bbb = layoutGadget(readGadgetYaml(fixtureFile('beaglebone-black-uc16')))['beaglebone']!;
    expect(bbb.structures.map((s) => [s.name, s.partitionIndex])).toEqual([
      ['mlo', undefined],
      ['u-boot', undefined],
      ['system-boot', 1],
    ]);
    expect(bbb.minSize).toBe(1179648 + 128 * MiB);
  });

  it('keeps the unnamed structures of cm3 and pi 18 (named #0 in messages)', () => {
    const v = layoutGadget(readGadgetYaml(fixtureFile('cm3-uc18')))['cm3']!;
    expect(v.structures.map((s) => [s.name, s.role, s.startOffset, s.partitionIndex])).toEqual([[undefined, 'system-boot', MiB, 1]]);
  });
});

describe('layoutVolume', () => {
  it('starts structures without an offset at the previous end, raised to 1 MiB except for the mbr', () => {
    const v = layout(
      yaml(
        'volumes:',
        '  pc:',
        '    bootloader: grub',
        '    structure:',
        '      - name: mbr',
        '        type: mbr',
        '        size: 440',
        '      - name: a',
        '        type: bare',
        '        size: 1024',
        '      - name: b',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        size: 1M',
      ),
    );
    expect(rows(v)).toEqual([
      ['mbr', 0, 440, undefined],
      ['a', MiB, 1024, undefined],
      ['b', MiB + 1024, MiB, 1],
    ]);
    expect(v.minSize).toBe(2 * MiB + 1024 + 33 * 512);
  });

  it('orders by offset: a structure listed first but placed later moves with the structures that follow it', () => {
    const v = layout(
      yaml(
        'volumes:',
        '  pc:',
        '    bootloader: grub',
        '    structure:',
        '      - name: late',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        offset: 10M',
        '        size: 1M',
        '      - name: after-late',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        size: 1M',
        '      - name: early',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        offset: 2M',
        '        size: 1M',
      ),
    );
    expect(rows(v)).toEqual([
      ['early', 2 * MiB, MiB, 1],
      ['late', 10 * MiB, MiB, 2],
      ['after-late', 11 * MiB, MiB, 3],
    ]);
  });

  it('leaves the offset after a min-size structure open (placed after the full size) and checks the next explicit offset against it', () => {
    const text = (off: string) =>
      yaml(
        'volumes:',
        '  pc:',
        '    bootloader: grub',
        '    structure:',
        '      - name: grow',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        min-size: 1M',
        '        size: 4M',
        '      - name: next',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        size: 1M',
        '      - name: fixed',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        `        offset: ${off}`,
        '        size: 1M',
      );
    expect(rows(layout(text('6M')))).toEqual([
      ['grow', MiB, 4 * MiB, 1],
      ['next', 5 * MiB, MiB, 2],
      ['fixed', 6 * MiB, MiB, 3],
    ]);
    expectGadgetError(() => layout(text('5M')), { code: 'ERR_GADGET_OVERLAP', line: 12, structure: 'fixed', message: ['overlaps with the preceding structure "next" (line 9)'] });
  });

  it('refuses partitions that do not start and end on a 512-byte sector (bare structures may)', () => {
    const text = (offset: string, size: string) =>
      yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: a', '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', `        offset: ${offset}`, `        size: ${size}`);
    expectGadgetError(() => layout(text('1048577', '1M')), { code: 'ERR_GADGET_PARTITIONS', line: 5, structure: 'a', message: ['a partition starts and ends on a 512-byte sector, but this one starts at 1048577'] });
    expectGadgetError(() => layout(text('1M', '1000')), { code: 'ERR_GADGET_PARTITIONS', line: 5, message: ['but this one is 1000 bytes'] });
    expect(layout(text('1M', '1000').replace('0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'bare')).structures[0]!.size).toBe(1000);
  });

  it('refuses a GPT partition name longer than 36 UTF-16 code units', () => {
    const text = (name: string) => yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', `      - name: ${name}`, '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        size: 1M');
    expect(() => layout(text('x'.repeat(36)))).not.toThrow();
    expectGadgetError(() => layout(text('x'.repeat(37))), { code: 'ERR_GADGET_VALUE', line: 5, col: 15, message: ['too long for a GPT partition name (37 UTF-16 code units, at most 36)'] });
  });

  it('adds the GPT backup area (33 sectors of 512 bytes) on gpt only', () => {
    const one = (schema: string, type: string) =>
      layout(yaml('volumes:', '  pc:', `    schema: ${schema}`, '    bootloader: grub', '    structure:', '      - name: a', `        type: ${type}`, '        size: 1M'));
    expect(one('gpt', '0FC63DAF-8483-4772-8E79-3D69D8477DE4').minSize).toBe(2 * MiB + 16896);
    expect(one('mbr', '83').minSize).toBe(2 * MiB);
  });

  it("warns as snapd does about structures in the primary GPT's area, and still lays out", () => {
    const v = layout(yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: spl', '        type: bare', '        offset: 8192', '        size: 16K'.replace('16K', '16384')));
    expect(v.warnings).toEqual([`${F}:5: structure "spl" (bytes 8192-24576) overlaps the primary GPT (header and partition entries, bytes 512-17408 with 512-byte sectors)`]);
    const soft = layout(yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: spl', '        type: bare', '        offset: 17408', '        size: 4096'));
    expect(soft.warnings?.[0]).toContain('might overlap the primary GPT');
  });

  it('lays out emmc volumes as separate hardware partitions at 0', () => {
    const g = parseGadgetYaml(
      yaml('volumes:', '  pc:', '    bootloader: grub', '    structure: []', '  emmc:', '    schema: emmc', '    structure:', '      - name: boot0', '        content: [{image: b.img}]'),
      F,
    );
    const v = layoutGadget(g)['emmc']!;
    expect(rows(v)).toEqual([['boot0', 0, 0, undefined]]);
    expect(v.minSize).toBe(0);
  });

  it('is pure: laying out twice gives the same plan and leaves the volume as it was', () => {
    const g = readGadgetYaml(new URL('../../../bundles/pc/meta/gadget.yaml', import.meta.url).pathname);
    const before = JSON.stringify(g);
    expect(layoutGadget(g)).toEqual(layoutGadget(g));
    expect(JSON.stringify(g)).toBe(before);
    expect(rows(layoutGadget(g)['pc']!)).toEqual([
      ['system-boot', MiB, 64 * MiB, 1],
      ['system-a', 65 * MiB, 192 * MiB, 2],
      ['system-b', 257 * MiB, 192 * MiB, 3],
      ['system-data', 449 * MiB, 64 * MiB, 4],
    ]);
  });
});

describe('layoutContent', () => {
  const bare = (...content: string[]) =>
    layout(yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: blob', '        type: bare', '        offset: 1M', '        size: 1M', '        content:', ...content));

  it('places images one after the other, or at their offset', () => {
    const v = bare('          - image: a.bin', '          - image: b.bin', '          - image: c.bin', '            offset: 512K'.replace('512K', '524288'));
    expect(layoutContent(v.structures[0]!, [1000, 24, 10], F)).toEqual([
      { index: 0, image: 'a.bin', offset: 0, size: 1000, startOffset: MiB },
      { index: 1, image: 'b.bin', offset: 1000, size: 24, startOffset: MiB + 1000 },
      { index: 2, image: 'c.bin', offset: 524288, size: 10, startOffset: MiB + 524288 },
    ]);
  });

  it('content larger than its structure', () => {
    const v = bare('          - image: u-boot.bin');
    expectGadgetError(() => layoutContent(v.structures[0]!, [MiB + 1], F), {
      code: 'ERR_GADGET_CONTENT_TOO_BIG',
      line: 10,
      col: 13,
      structure: 'blob',
      message: ['gadget.yaml:10:13: structure "blob": content #0 ("u-boot.bin", 1048577 bytes at offset 0) does not fit in the structure (1048576 bytes)'],
    });
  });

  it('content larger than its declared size', () => {
    const v = bare('          - image: u-boot.bin', '            size: 4096');
    expectGadgetError(() => layoutContent(v.structures[0]!, [4097], F), { code: 'ERR_GADGET_CONTENT_TOO_BIG', line: 10, structure: 'blob', message: ['is 4097 bytes, larger than its declared size 4096'] });
  });

  it('images that overlap', () => {
    const v = bare('          - image: a.bin', '          - image: b.bin', '            offset: 100');
    expectGadgetError(() => layoutContent(v.structures[0]!, [200, 10], F), { code: 'ERR_GADGET_OVERLAP', line: 11, structure: 'blob', message: ['content #1 ("b.bin") overlaps with the preceding image "a.bin"'] });
  });

  it('declared sizes that overlap are refused when parsing already', () => {
    expectGadgetError(() => bare('          - image: a.bin', '            size: 200', '          - image: b.bin', '            offset: 100', '            size: 10'), {
      code: 'ERR_GADGET_OVERLAP',
      line: 12,
      message: ['content #1 ("b.bin") overlaps with the preceding image "a.bin"'],
    });
  });
});
