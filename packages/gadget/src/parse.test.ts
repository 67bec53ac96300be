import { parseGadgetYaml } from './parse.js';
import { expectGadgetError, yaml } from '@edgeimage/testkit/gadget-fixtures';

const F = 'gadget.yaml';
const parse = (text: string) => parseGadgetYaml(text, F);

/** A small valid gpt volume; `extra` lines go at the end of the structure list (line 12 on). */
const gpt = (...extra: string[]) =>
  yaml(
    'volumes:', // 1
    '  pc:', // 2
    '    bootloader: grub', // 3
    '    structure:', // 4
    '      - name: mbr', // 5
    '        type: mbr', // 6
    '        size: 440', // 7
    '      - name: efi', // 8
    '        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B', // 9
    '        filesystem: vfat', // 10
    '        size: 50M', // 11
    ...extra,
  );

/** An mbr volume with a single structure; `extra` lines continue that structure (line 8 on). */
const mbr = (...extra: string[]) =>
  yaml(
    'volumes:', // 1
    '  pi:', // 2
    '    schema: mbr', // 3
    '    bootloader: u-boot', // 4
    '    structure:', // 5
    '      - name: boot', // 6
    '        size: 64M', // 7
    ...extra,
  );

describe('parseGadgetYaml: values and implicit values', () => {
  it('reads a valid gadget with snapd implicit values: schema gpt, min-size = size, type mbr → role mbr', () => {
    const g = parse(gpt());
    expect(g.volumeOrder).toEqual(['pc']);
    const v = g.volumes['pc']!;
    expect(v.schema).toBe('gpt');
    expect(v.bootloader).toBe('grub');
    expect(v.structures.map((s) => [s.name, s.role, s.type, s.size, s.minSize, s.filesystem, s.line, s.col])).toEqual([
      ['mbr', 'mbr', 'mbr', 440, 440, 'none', 5, 9],
      ['efi', undefined, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 50 * 1024 * 1024, 50 * 1024 * 1024, 'vfat', 8, 9],
    ]);
    expect(v.structures[1]!.gptType).toBe('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  });

  it('implies role system-boot from filesystem-label: system-boot (UC16/18 gadgets such as pc 16)', () => {
    const g = parse(mbr('        type: 0C', '        filesystem: vfat', '        filesystem-label: system-boot'));
    expect(g.volumes['pi']!.structures[0]!.role).toBe('system-boot');
  });

  it('does not apply the UC20 implicit labels (ubuntu-seed, ubuntu-boot …)', () => {
    const g = parse(gpt('        role: system-boot'));
    expect(g.volumes['pc']!.structures[1]!.filesystemLabel).toBeUndefined();
  });

  it('reads sizes as snapd: bytes, M = MiB, G = GiB', () => {
    const g = parse(mbr('        type: 0C', '        min-size: 1G', '        offset: 2M').replace('size: 64M', 'size: 2G'));
    const s = g.volumes['pi']!.structures[0]!;
    expect([s.size, s.minSize, s.offset]).toEqual([2 * 1024 ** 3, 1024 ** 3, 2 * 1024 ** 2]);
  });

  it.each([
    ['1K', 'invalid suffix "K"'],
    ['1MB', 'invalid suffix "MB"'],
    ['1.5G', 'invalid suffix ".5G"'],
    ['0x8400', 'invalid suffix "x8400"'],
    ['1e3', 'invalid suffix "e3"'],
    ['-1M', 'cannot be negative'],
    ['M', 'no numerical prefix'],
  ])('refuses the size %s: %s', (size, why) => {
    expectGadgetError(() => parse(mbr('        type: 0C').replace('size: 64M', `size: ${size}`)), {
      code: 'ERR_GADGET_VALUE',
      line: 7,
      col: 15,
      structure: 'boot',
      message: [`gadget.yaml:7:15: structure "boot": "size": cannot parse ${JSON.stringify(size)}: ${why}`],
    });
  });

  it('reads `type: 83` (a YAML number) as the MBR type "83", and quoted types alike', () => {
    const g = parse(mbr('        type: 83'));
    expect(g.volumes['pi']!.structures[0]!.mbrType).toBe('83');
    expect(parse(mbr('        type: "0C"')).volumes['pi']!.structures[0]!.type).toBe('0C');
  });

  it('accepts the hybrid type XX,GUID on both schemas', () => {
    expect(parse(mbr('        type: 83,0FC63DAF-8483-4772-8E79-3D69D8477DE4')).volumes['pi']!.structures[0]).toMatchObject({ mbrType: '83', gptType: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' });
    const g = parse(gpt().replace('type: C12A7328', 'type: EF,C12A7328'));
    expect(g.volumes['pc']!.structures[1]).toMatchObject({ mbrType: 'EF', gptType: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B' });
  });

  it('reads content, offset-write and update', () => {
    const g = parse(
      yaml(
        'volumes:',
        '  pc:',
        '    bootloader: grub',
        '    structure:',
        '      - name: mbr',
        '        type: mbr',
        '        size: 440',
        '        content:',
        '          - image: pc-boot.img',
        '      - name: BIOS Boot',
        '        type: DA,21686148-6449-6E6F-744E-656564454649',
        '        size: 1M',
        '        offset: 1M',
        '        offset-write: mbr+92',
        '        content:',
        '          - image: pc-core.img',
        '            offset: 0',
        '            size: 4096',
        '      - name: ESP',
        '        type: EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
        '        filesystem: vfat',
        '        size: 50M',
        '        update:',
        '          edition: 2',
        '          preserve: [EFI/ubuntu/grubenv]',
        '        content:',
        '          - source: grubx64.efi',
        '            target: EFI/boot/grubx64.efi',
        '            unpack: false',
        '          - source: $kernel:dtbs/dtbs/broadcom/',
        '            target: /',
      ),
    );
    const [m, bios, esp] = g.volumes['pc']!.structures;
    expect(m!.content).toEqual([{ kind: 'image', image: 'pc-boot.img', line: 9, col: 13 }]);
    expect(bios!.offsetWrite).toEqual({ relativeTo: 'mbr', offset: 92 });
    expect(bios!.content).toEqual([{ kind: 'image', image: 'pc-core.img', offset: 0, size: 4096, line: 16, col: 13 }]);
    expect(esp!.update).toEqual({ edition: 2, preserve: ['EFI/ubuntu/grubenv'] });
    expect(esp!.content).toEqual([
      { kind: 'file', source: 'grubx64.efi', target: 'EFI/boot/grubx64.efi', unpack: false, line: 27, col: 13 },
      { kind: 'file', source: '$kernel:dtbs/dtbs/broadcom/', target: '/', line: 30, col: 13 },
    ]);
  });

  it('keeps volumes in the order of the file', () => {
    const g = parse(
      yaml('volumes:', '  zz:', '    schema: mbr', '    structure: []', '  aa:', '    bootloader: grub', '    structure: []', '  "12":', '    structure: []'),
    );
    expect(g.volumeOrder).toEqual(['zz', 'aa', '12']);
  });

  it('accepts the other top-level keys snapd knows (defaults, connections, kernel-cmdline, volume-assignments, device-tree…)', () => {
    const g = parse(
      yaml(
        'device-tree: bcm2710-rpi-cm3.dtb',
        'device-tree-origin: kernel',
        'format: 1',
        'defaults:',
        '  system:',
        '    refresh:',
        '      retain: 2',
        '  99T7MUlRhtI3U0QFgl5mXXESAiSwt776:',
        '    service: {rsyslog: {disable: true}}',
        'connections:',
        '  - plug: 99T7MUlRhtI3U0QFgl5mXXESAiSwt776:network',
        'kernel-cmdline:',
        '  append: [quiet]',
        'volume-assignments:',
        '  - assignment-name: board',
        '    assignment:',
        '      pc: {device: /dev/disk/by-path/platform-1}',
        ...gpt().split('\n'),
      ),
    );
    expect(g.volumeOrder).toEqual(['pc']);
  });
});

describe('parseGadgetYaml: every error names file:line:col and the structure', () => {
  it('YAML syntax error', () => {
    expectGadgetError(() => parse(yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: efi: x', '        size: 1M')), {
      code: 'ERR_GADGET_YAML',
      line: 5,
      col: 15,
      message: ['gadget.yaml:5:15: invalid YAML: Nested mappings are not allowed in compact mappings'],
    });
    expectGadgetError(() => parse(yaml('volumes:', '  pc:', '    bootloader: grub', '    structure:', '\t- name: efi')), {
      code: 'ERR_GADGET_YAML',
      line: 5,
      col: 1,
      message: ['gadget.yaml:5:1: invalid YAML: Tabs are not allowed as indentation'],
    });
  });

  it('duplicate key', () => {
    expectGadgetError(() => parse(gpt('        size: 60M')), { code: 'ERR_GADGET_YAML', line: 12, col: 9, message: ['gadget.yaml:12:9: invalid YAML: Map keys must be unique'] });
  });

  it('unknown key in a structure, with a suggestion and the keys allowed', () => {
    expectGadgetError(() => parse(gpt('        filesystem-lable: ESP')), {
      code: 'ERR_GADGET_UNKNOWN_KEY',
      line: 12,
      col: 9,
      structure: 'efi',
      message: ['gadget.yaml:12:9: structure "efi": unknown key "filesystem-lable" in a structure (did you mean "filesystem-label"?); the keys here are: name, filesystem-label,'],
    });
  });

  it('unknown key in a volume', () => {
    expectGadgetError(() => parse(gpt().replace('    structure:', '    structures:')), {
      code: 'ERR_GADGET_UNKNOWN_KEY',
      line: 4,
      col: 5,
      message: ['gadget.yaml:4:5: unknown key "structures" in volume "pc" (did you mean "structure"?)'],
    });
  });

  it('unknown key at the top level and in content', () => {
    expectGadgetError(() => parse(`${gpt()}volume-assignment: []\n`), { code: 'ERR_GADGET_UNKNOWN_KEY', line: 12, col: 1, message: ['unknown key "volume-assignment" at the top level'] });
    expectGadgetError(() => parse(gpt('        content:', '          - source: a', '            target: b', '            mode: 0644')), {
      code: 'ERR_GADGET_UNKNOWN_KEY',
      line: 15,
      col: 13,
      structure: 'efi',
      message: ['unknown key "mode" in content #0'],
    });
  });

  it('a value of the wrong kind', () => {
    expectGadgetError(() => parse(gpt('        content: grubx64.efi')), {
      code: 'ERR_GADGET_VALUE',
      line: 12,
      col: 18,
      structure: 'efi',
      message: ['"content": expected a list, found "grubx64.efi"'],
    });
  });

  it('unknown role', () => {
    expectGadgetError(() => parse(gpt('        role: system-recovery')), {
      code: 'ERR_GADGET_ROLE',
      line: 12,
      col: 15,
      structure: 'efi',
      message: ['gadget.yaml:12:15: structure "efi": unsupported role "system-recovery"; the roles are mbr, system-boot,', 'system-a, system-b'],
    });
  });

  it('overlapping structures', () => {
    expectGadgetError(() => parse(gpt('      - name: data', '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        offset: 10M', '        size: 1M')), {
      code: 'ERR_GADGET_OVERLAP',
      line: 12,
      col: 9,
      structure: 'data',
      message: ['gadget.yaml:12:9: structure "data": overlaps with the preceding structure "efi" (line 8): it starts at 10485760, before that one ends at 53477376'],
    });
  });

  it('overlap between two structures with explicit offsets listed out of order', () => {
    const text = yaml(
      'volumes:',
      '  pc:',
      '    bootloader: grub',
      '    structure:',
      '      - name: b',
      '        type: bare',
      '        offset: 2M',
      '        size: 1M',
      '      - type: bare',
      '        offset: 1M',
      '        size: 1048577',
    );
    expectGadgetError(() => parse(text), { code: 'ERR_GADGET_OVERLAP', line: 5, structure: 'b', message: ['overlaps with the preceding structure #1 (line 9)'] });
  });

  it('MBR structure not at offset 0 (explicit)', () => {
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        offset: 512')), {
      code: 'ERR_GADGET_MBR',
      line: 8,
      col: 17,
      structure: 'mbr',
      message: ['gadget.yaml:8:17: structure "mbr": the mbr structure must start at offset 0, not 512'],
    });
  });

  it('MBR structure not at offset 0 (after implicit offsets: listed after another structure)', () => {
    const text = yaml(
      'volumes:',
      '  pc:',
      '    bootloader: grub',
      '    structure:',
      '      - name: efi',
      '        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
      '        size: 1M',
      '      - name: mbr',
      '        type: mbr',
      '        size: 440',
    );
    expectGadgetError(() => parse(text), { code: 'ERR_GADGET_MBR', line: 8, col: 9, structure: 'mbr', message: ['has role mbr and must start at offset 0, but it would start at 2097152'] });
  });

  it('MBR structure too big', () => {
    expectGadgetError(() => parse(gpt().replace('size: 440', 'size: 447')), {
      code: 'ERR_GADGET_MBR',
      line: 7,
      col: 15,
      structure: 'mbr',
      message: ['structure "mbr": the mbr structure is 447 bytes: it cannot be larger than 446 bytes'],
    });
    expect(() => parse(gpt().replace('size: 440', 'size: 446'))).not.toThrow();
  });

  it('MBR structure with a filesystem or an id', () => {
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        filesystem: vfat')), { code: 'ERR_GADGET_MBR', line: 8, structure: 'mbr', message: ['cannot have a filesystem'] });
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        id: 6B29FC40-CA47-1067-B31D-00DD010662DA')), { code: 'ERR_GADGET_MBR', line: 8, structure: 'mbr', message: ['cannot have a partition id'] });
  });

  it('size missing', () => {
    expectGadgetError(() => parse(gpt('      - name: data', '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        filesystem: ext4')), {
      code: 'ERR_GADGET_SIZE',
      line: 12,
      col: 9,
      structure: 'data',
      message: ['gadget.yaml:12:9: structure "data": size is missing'],
    });
  });

  it('size missing in an unnamed structure names it #N', () => {
    expectGadgetError(() => parse(gpt('      - type: bare')), { code: 'ERR_GADGET_SIZE', line: 12, col: 9, structure: '#2', message: ['gadget.yaml:12:9: structure #2: size is missing'] });
  });

  it('size smaller than min-size', () => {
    expectGadgetError(() => parse(gpt('        min-size: 60M')), {
      code: 'ERR_GADGET_SIZE',
      line: 12,
      col: 19,
      structure: 'efi',
      message: ['structure "efi": min-size (62914560) is bigger than size (52428800)'],
    });
  });

  it('GUID type on an mbr schema', () => {
    expectGadgetError(() => parse(mbr('        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B')), {
      code: 'ERR_GADGET_TYPE',
      line: 8,
      col: 15,
      structure: 'boot',
      message: ['gadget.yaml:8:15: structure "boot": invalid type "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": a GUID type on a volume with schema mbr'],
    });
  });

  it('MBR-only type on a gpt schema', () => {
    expectGadgetError(() => parse(gpt().replace('type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'type: EF')), {
      code: 'ERR_GADGET_TYPE',
      line: 9,
      col: 15,
      structure: 'efi',
      message: ['invalid type "EF": an MBR type on a volume with schema gpt'],
    });
  });

  it.each(['0c', 'EFI', 'C12A7328', '0C,', 'EF;C12A7328-F81F-11D2-BA4B-00A0C93EC93B'])('malformed type %s', (type) => {
    expectGadgetError(() => parse(mbr(`        type: "${type}"`)), { code: 'ERR_GADGET_TYPE', line: 8, col: 15, structure: 'boot', message: [`invalid type ${JSON.stringify(type)}: expected bare, mbr`] });
  });

  it('type missing', () => {
    expectGadgetError(() => parse(mbr()), { code: 'ERR_GADGET_TYPE', line: 6, structure: 'boot', message: ['type is missing'] });
  });

  it('duplicate structure names', () => {
    expectGadgetError(() => parse(gpt('      - name: efi', '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        size: 1M')), {
      code: 'ERR_GADGET_DUPLICATE',
      line: 12,
      col: 15,
      structure: 'efi',
      message: ['gadget.yaml:12:15: structure "efi": structure name "efi" is not unique in volume "pc": structure #1 (line 8) has it too'],
    });
  });

  it('duplicate filesystem labels, vfat ones compared case-insensitively', () => {
    const two = (l1: string, fs1: string, l2: string, fs2: string) =>
      gpt(
        '        filesystem-label: ' + l1,
        '      - name: data',
        '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4',
        '        filesystem: ' + fs2,
        '        filesystem-label: ' + l2,
        '        size: 1M',
      ).replace('filesystem: vfat', `filesystem: ${fs1}`);
    expectGadgetError(() => parse(two('boot', 'ext4', 'boot', 'ext4')), {
      code: 'ERR_GADGET_DUPLICATE',
      line: 16,
      col: 27,
      structure: 'data',
      message: ['filesystem label "boot" is not unique in volume "pc": structure "efi" (line 8) has "boot"'],
    });
    expectGadgetError(() => parse(two('BOOT', 'vfat', 'boot', 'ext4')), { code: 'ERR_GADGET_DUPLICATE', line: 16, structure: 'data', message: ['(vfat labels compare case-insensitively)'] });
    expect(() => parse(two('BOOT', 'ext4', 'boot', 'ext4'))).not.toThrow();
  });

  it('image content in a structure with a filesystem', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - image: esp.img')), {
      code: 'ERR_GADGET_CONTENT',
      line: 13,
      col: 13,
      structure: 'efi',
      message: ['content #0: "image" is raw image content, which a structure with a filesystem (vfat) cannot take; give source and target'],
    });
  });

  it('file content in a bare structure', () => {
    expectGadgetError(() => parse(gpt('      - name: spl', '        type: bare', '        size: 1M', '        content:', '          - source: spl.bin', '            target: /')), {
      code: 'ERR_GADGET_CONTENT',
      line: 16,
      col: 13,
      structure: 'spl',
      message: ['content #0: "source" is file content, which needs a filesystem; a bare structure takes raw images only'],
    });
  });

  it('content with source but no target, or no image', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - source: grub.cfg')), { code: 'ERR_GADGET_CONTENT', line: 13, structure: 'efi', message: ['content #0: target is missing'] });
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        content:\n          - offset: 0')), { code: 'ERR_GADGET_CONTENT', line: 9, structure: 'mbr', message: ['content #0: image is missing'] });
  });

  it('a content path that escapes the gadget with ../', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - source: boot/../../etc/passwd', '            target: /')), {
      code: 'ERR_GADGET_CONTENT_ESCAPE',
      line: 13,
      col: 21,
      structure: 'efi',
      message: ['gadget.yaml:13:21: structure "efi": content #0: source "boot/../../etc/passwd" leaves the gadget (..)'],
    });
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        content:\n          - image: ../pc-boot.img')), {
      code: 'ERR_GADGET_CONTENT_ESCAPE',
      line: 9,
      col: 20,
      structure: 'mbr',
      message: ['content #0: image "../pc-boot.img" leaves the gadget'],
    });
  });

  it('a content path that is absolute', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - source: /etc/passwd', '            target: /')), {
      code: 'ERR_GADGET_CONTENT_ESCAPE',
      line: 13,
      col: 21,
      structure: 'efi',
      message: ['content #0: source "/etc/passwd" is an absolute path'],
    });
  });

  it('a content target that leaves the filesystem root', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - source: a', '            target: ../../x')), { code: 'ERR_GADGET_CONTENT_ESCAPE', line: 14, structure: 'efi', message: ['target "../../x" leaves'] });
    expect(() => parse(gpt('        content:', '          - source: a/../b', '            target: /EFI/../boot'))).not.toThrow();
  });

  it('a malformed $kernel: reference', () => {
    expectGadgetError(() => parse(gpt('        content:', '          - source: $kernel:dtbs', '            target: /')), { code: 'ERR_GADGET_CONTENT', line: 13, structure: 'efi', message: ['invalid kernel reference'] });
    expectGadgetError(() => parse(gpt('        content:', '          - source: $kernel:dtbs/../x', '            target: /')), { code: 'ERR_GADGET_CONTENT', line: 13, message: ['invalid content path'] });
  });

  it('image content larger than its structure (declared size)', () => {
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        content:\n          - image: pc-boot.img\n            size: 512')), {
      code: 'ERR_GADGET_CONTENT_TOO_BIG',
      line: 9,
      col: 13,
      structure: 'mbr',
      message: ['content #0 ("pc-boot.img", 512 bytes at offset 0) does not fit in the structure (440 bytes)'],
    });
  });
});

describe('parseGadgetYaml: the other rules', () => {
  it('bootloader: exactly one across volumes', () => {
    expectGadgetError(() => parse(gpt().replace('    bootloader: grub\n', '    schema: gpt\n')), { code: 'ERR_GADGET_BOOTLOADER', line: 1, col: 1, message: ['bootloader not declared in any volume'] });
    expectGadgetError(() => parse(`${gpt()}  two:\n    bootloader: u-boot\n    structure: []\n`), { code: 'ERR_GADGET_BOOTLOADER', line: 13, col: 17, message: ['too many (2) bootloaders declared: volumes "pc", "two"'] });
    expectGadgetError(() => parse(gpt().replace('bootloader: grub', 'bootloader: syslinux')), { code: 'ERR_GADGET_BOOTLOADER', line: 3, col: 17, message: ['bootloader must be one of grub, u-boot, android-boot, piboot or lk, not "syslinux"'] });
  });

  it('volume names, schema, id, partial', () => {
    expectGadgetError(() => parse(gpt().replace('  pc:', '  p:')), { code: 'ERR_GADGET_VOLUME', line: 2, col: 3, message: ['invalid volume name "p"'] });
    expectGadgetError(() => parse(gpt().replace('  pc:', '  -pc:')), { code: 'ERR_GADGET_VOLUME', line: 2, message: ['invalid volume name "-pc"'] });
    expectGadgetError(() => parse(gpt().replace('    bootloader: grub', '    bootloader: grub\n    schema: GPT')), { code: 'ERR_GADGET_VOLUME', line: 4, col: 13, message: ['invalid schema "GPT"'] });
    expectGadgetError(() => parse(gpt().replace('    bootloader: grub', '    bootloader: grub\n    id: 12')), { code: 'ERR_GADGET_VOLUME', line: 4, message: ['a GPT disk id is a GUID'] });
    expect(parse(mbr('        type: 0C').replace('    schema: mbr', '    schema: mbr\n    id: 1a2b3c4d')).volumes['pi']!.id).toBe('1a2b3c4d');
    expectGadgetError(() => parse(gpt().replace('    bootloader: grub', '    bootloader: grub\n    partial: [size]')), { code: 'ERR_GADGET_VOLUME', line: 4, col: 5, message: ['partial volumes'] });
    expectGadgetError(() => parse(yaml('volumes:', '  pc:')), { code: 'ERR_GADGET_VOLUME', line: 2, message: ['volume "pc" is empty'] });
    expectGadgetError(() => parse(yaml('defaults:', '  system: {}')), { code: 'ERR_GADGET_VOLUME', line: 1, message: ['no volumes'] });
    expectGadgetError(() => parse(''), { code: 'ERR_GADGET_YAML', message: ['gadget.yaml is empty'] });
  });

  it('bare structures take no role but mbr', () => {
    expectGadgetError(() => parse(gpt('      - name: spl', '        type: bare', '        role: system-boot', '        size: 1M')), { code: 'ERR_GADGET_ROLE', line: 14, col: 15, structure: 'spl', message: ['role "system-boot" conflicts with type bare'] });
  });

  it('invalid filesystem', () => {
    expectGadgetError(() => parse(gpt().replace('filesystem: vfat', 'filesystem: btrfs')), { code: 'ERR_GADGET_FILESYSTEM', line: 10, col: 21, structure: 'efi', message: ['invalid filesystem "btrfs": one of vfat, vfat-16, vfat-32, ext4, none'] });
  });

  it('system-boot-state: explicit offset, ≥ 1 MiB, no filesystem, its type GUID', () => {
    const state = (...l: string[]) => gpt('      - name: state', '        role: system-boot-state', ...l);
    expectGadgetError(() => parse(state('        type: 3DE21764-95BD-54BD-A5C3-4ABE786F38A8', '        size: 1M')), { code: 'ERR_GADGET_ROLE', structure: 'state', line: 13, message: ['needs an explicit offset'] });
    expectGadgetError(() => parse(state('        type: 3DE21764-95BD-54BD-A5C3-4ABE786F38A8', '        offset: 60M', '        size: 4096')), { code: 'ERR_GADGET_ROLE', structure: 'state', line: 16, message: ['at least 1 MiB'] });
    expectGadgetError(() => parse(state('        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        offset: 60M', '        size: 1M')), { code: 'ERR_GADGET_ROLE', line: 14, message: ['needs type 3DE21764-95BD-54BD-A5C3-4ABE786F38A8'] });
    expect(() => parse(state('        type: 3de21764-95bd-54bd-a5c3-4abe786f38a8', '        offset: 60M', '        size: 1M'))).not.toThrow();
  });

  it('offset-write: relative to the first structure only, inside it, at most 4G', () => {
    const ow = (v: string) => gpt('      - name: bios', '        type: 21686148-6449-6E6F-744E-656564454649', '        size: 1M', `        offset-write: ${v}`);
    expect(parse(ow('mbr+92')).volumes['pc']!.structures[2]!.offsetWrite).toEqual({ relativeTo: 'mbr', offset: 92 });
    expectGadgetError(() => parse(ow('efi+92')), { code: 'ERR_GADGET_OFFSET_WRITE', line: 12, structure: 'bios', message: ['offset-write refers to "efi", but it may refer only to the first structure of the volume ("mbr")'] });
    expectGadgetError(() => parse(ow('mbr+437')), { code: 'ERR_GADGET_OFFSET_WRITE', line: 12, message: ['outside of the referred structure "mbr" (440 bytes)'] });
    expectGadgetError(() => parse(ow('+92')), { code: 'ERR_GADGET_OFFSET_WRITE', line: 15, col: 23, message: ['missing structure name'] });
    expectGadgetError(() => parse(ow('5G')), { code: 'ERR_GADGET_OFFSET_WRITE', line: 15, message: ['above the 4G limit'] });
  });

  it('at most one structure per system-* role across volumes', () => {
    expectGadgetError(
      () => parse(gpt('        role: system-boot', '      - name: boot2', '        role: system-boot', '        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B', '        filesystem: vfat', '        size: 1M')),
      { code: 'ERR_GADGET_ROLE', line: 13, structure: 'boot2', message: ['cannot have more than one structure with role system-boot: structure "efi" (line 8) has it too'] },
    );
  });

  it("snapd's role consistency without a model: seed needs data, save needs seed, reserved labels", () => {
    const role = (r: string, name = 'x') => [`      - name: ${name}`, `        role: ${r}`, '        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4', '        filesystem: ext4', '        size: 1M'];
    expectGadgetError(() => parse(gpt('        role: system-seed')), { code: 'ERR_GADGET_ROLE', line: 8, structure: 'efi', message: ['the system-seed role requires system-data'] });
    expectGadgetError(() => parse(gpt(...role('system-save'), ...role('system-data', 'd'))), { code: 'ERR_GADGET_ROLE', line: 12, structure: 'x', message: ['system-save role needs system-seed'] });
    expectGadgetError(() => parse(gpt('        filesystem-label: ubuntu-data')), { code: 'ERR_GADGET_LABEL', line: 8, message: ['filesystem label "ubuntu-data" is reserved'] });
    expectGadgetError(() => parse(gpt(...role('system-data'), '        filesystem-label: data')), { code: 'ERR_GADGET_LABEL', line: 12, message: ['system-data structure must have the implicit label or "writable", not "data"'] });
    expect(() => parse(gpt('        role: system-seed', ...role('system-data'), ...role('system-save', 's')))).not.toThrow();
  });

  it('more than 4 partitions on an mbr volume', () => {
    const part = (n: number) => [`      - name: p${n}`, '        type: 83', '        size: 1M'];
    const text = mbr('        type: 0C', ...[1, 2, 3, 4].flatMap(part));
    expectGadgetError(() => parse(text), { code: 'ERR_GADGET_PARTITIONS', line: 18, structure: 'p4', message: ['volume "pi" has 5 partitions: an MBR partition table holds 4'] });
    expect(() => parse(mbr('        type: 0C', ...[1, 2, 3].flatMap(part)))).not.toThrow();
  });

  it('partition ids are GUIDs, on GPT only', () => {
    expect(parse(gpt('        id: 6b29fc40-ca47-1067-b31d-00dd010662da')).volumes['pc']!.structures[1]!.id).toBe('6B29FC40-CA47-1067-B31D-00DD010662DA');
    expectGadgetError(() => parse(gpt('        id: 1234')), { code: 'ERR_GADGET_VALUE', line: 12, message: ['invalid partition id "1234"'] });
    expectGadgetError(() => parse(mbr('        type: 0C', '        id: 6b29fc40-ca47-1067-b31d-00dd010662da')), { code: 'ERR_GADGET_VALUE', line: 9, message: ['exists only on GPT volumes'] });
  });

  it('update: edition is a number, preserve only with a filesystem and without duplicates', () => {
    expectGadgetError(() => parse(gpt('        update: {edition: two}')), { code: 'ERR_GADGET_VALUE', line: 12, message: ['structure "efi": "edition": must be a positive number (at most 4294967295), not "two"'] });
    expectGadgetError(() => parse(gpt('        update: {preserve: [a, a]}')), { code: 'ERR_GADGET_UPDATE', line: 12, message: ['duplicate "preserve" entry "a"'] });
    expectGadgetError(() => parse(gpt().replace('        size: 440', '        size: 440\n        update: {preserve: [a]}')), { code: 'ERR_GADGET_UPDATE', line: 8, message: ['filesystem only'] });
  });

  it('defaults, connections and volume-assignments follow snapd', () => {
    expectGadgetError(() => parse(`${gpt()}defaults:\n  some-snap: {}\n`), { code: 'ERR_GADGET_VALUE', line: 13, col: 3, message: ['default stanza not keyed by "system" or a snap-id'] });
    expectGadgetError(() => parse(`${gpt()}connections:\n  - plug: network\n`), { code: 'ERR_GADGET_VALUE', line: 13, message: ['connection #0: plug: expected "(<snap-id>|system):name"'] });
    expectGadgetError(() => parse(`${gpt()}volume-assignments:\n  - assignment-name: a\n    assignment:\n      other: {device: /dev/disk/by-id/x}\n`), {
      code: 'ERR_GADGET_VALUE',
      line: 15,
      message: ['volume "other" is not defined'],
    });
    expectGadgetError(() => parse(`${gpt()}volume-assignments:\n  - assignment-name: a\n    assignment:\n      pc: {device: /dev/sda}\n`), { code: 'ERR_GADGET_VALUE', line: 15, message: ['unsupported device path "/dev/sda"'] });
  });

  it('emmc volumes: only boot0/boot1 with image content', () => {
    const emmc = (...l: string[]) => `${gpt()}${yaml('  emmc:', '    schema: emmc', '    structure:', ...l)}`;
    const g = parse(emmc('      - name: boot0', '        content:', '          - image: boot0.img'));
    expect(g.volumes['emmc']!.structures[0]).toMatchObject({ name: 'boot0', size: 0, offset: 0, content: [{ kind: 'image', image: 'boot0.img' }] });
    expectGadgetError(() => parse(emmc('      - name: boot0', '        size: 1M')), { code: 'ERR_GADGET_VOLUME', line: 16, message: ['"size" is not allowed in an emmc volume'] });
    expectGadgetError(() => parse(emmc('      - name: boot2')), { code: 'ERR_GADGET_VOLUME', line: 15, col: 15, message: ['named boot0 or boot1'] });
  });
});
