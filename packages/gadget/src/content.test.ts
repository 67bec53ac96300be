import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkContentPath, checkGadgetContent } from './content.js';
import { parseGadgetYaml } from './parse.js';
import { expectGadgetError, yaml } from '@edgeimage/testkit/gadget-fixtures';

let base: string;
let gadget: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'edgeimage-gadget-content-'));
  gadget = join(base, 'gadget');
  mkdirSync(join(gadget, 'meta'), { recursive: true });
  mkdirSync(join(gadget, 'boot-assets/overlays'), { recursive: true });
  writeFileSync(join(gadget, 'grubx64.efi'), 'grub');
  writeFileSync(join(gadget, 'pc-boot.img'), Buffer.alloc(440));
  writeFileSync(join(gadget, 'boot-assets/config.txt'), 'x');
  writeFileSync(join(base, 'secret'), 'outside the gadget');
  // Links that stay inside the gadget are fine…
  symlinkSync('grubx64.efi', join(gadget, 'shim.efi'));
  symlinkSync('../../grubx64.efi', join(gadget, 'boot-assets/overlays/grub-link'));
  // …and these leave it.
  symlinkSync('../secret', join(gadget, 'escape-relative'));
  symlinkSync(join(base, 'secret'), join(gadget, 'escape-absolute'));
  symlinkSync('..', join(gadget, 'up'));
  symlinkSync('nothing-here', join(gadget, 'dangling'));
  symlinkSync('loop-b', join(gadget, 'loop-a'));
  symlinkSync('loop-a', join(gadget, 'loop-b'));
  mkdirSync(join(gadget, 'tree-with-escape/sub'), { recursive: true });
  symlinkSync('../../../secret', join(gadget, 'tree-with-escape/sub/link'));
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('checkContentPath', () => {
  it('returns the real path of files, directories and links that stay inside the gadget', () => {
    const real = realpathSync(gadget);
    expect(checkContentPath(gadget, 'grubx64.efi')).toBe(join(real, 'grubx64.efi'));
    expect(checkContentPath(gadget, 'shim.efi')).toBe(join(real, 'grubx64.efi'));
    expect(checkContentPath(gadget, 'boot-assets/')).toBe(join(real, 'boot-assets'));
    expect(checkContentPath(gadget, './boot-assets/../grubx64.efi')).toBe(join(real, 'grubx64.efi'));
  });

  it('refuses a path that escapes through a symlink (relative or absolute)', () => {
    expectGadgetError(() => checkContentPath(gadget, 'escape-relative', { file: 'meta/gadget.yaml', line: 12, col: 13, structure: 'efi', what: 'content #0: source' }), {
      code: 'ERR_GADGET_CONTENT_ESCAPE',
      line: 12,
      col: 13,
      structure: 'efi',
      message: ['meta/gadget.yaml:12:13: structure "efi": content #0: source "escape-relative" leaves the gadget: escape-relative is a symbolic link to ../secret'],
    });
    expectGadgetError(() => checkContentPath(gadget, 'escape-absolute'), { code: 'ERR_GADGET_CONTENT_ESCAPE', message: [`content path "escape-absolute" leaves the gadget: escape-absolute is a symbolic link to ${join(base, 'secret')}`] });
    expectGadgetError(() => checkContentPath(gadget, 'up/secret'), { code: 'ERR_GADGET_CONTENT_ESCAPE', message: ['"up/secret" leaves the gadget: up is a symbolic link to ..'] });
  });

  it('refuses ../ and absolute paths even when they exist', () => {
    expectGadgetError(() => checkContentPath(gadget, '../secret'), { code: 'ERR_GADGET_CONTENT_ESCAPE', message: ['"../secret" leaves the gadget'] });
    expectGadgetError(() => checkContentPath(gadget, join(base, 'secret')), { code: 'ERR_GADGET_CONTENT_ESCAPE', message: ['is an absolute path'] });
  });

  it('refuses a directory holding a link that escapes', () => {
    expectGadgetError(() => checkContentPath(gadget, 'tree-with-escape/'), {
      code: 'ERR_GADGET_CONTENT_ESCAPE',
      message: ['"tree-with-escape/" holds tree-with-escape/sub/link, which is a symbolic link to ../../../secret, outside the gadget'],
    });
  });

  it('refuses a missing source, a dangling link and a link loop', () => {
    expectGadgetError(() => checkContentPath(gadget, 'grub.cfg', { file: 'meta/gadget.yaml', line: 20, col: 13, structure: 'efi', what: 'content #2: source' }), {
      code: 'ERR_GADGET_CONTENT_MISSING',
      line: 20,
      col: 13,
      structure: 'efi',
      message: ['meta/gadget.yaml:20:13: structure "efi": content #2: source "grub.cfg" is not in the gadget (no grub.cfg)'],
    });
    expectGadgetError(() => checkContentPath(gadget, 'dangling'), { code: 'ERR_GADGET_CONTENT_MISSING', message: ['dangling is a symbolic link to nothing-here, which does not exist'] });
    expectGadgetError(() => checkContentPath(gadget, 'loop-a'), { code: 'ERR_GADGET_CONTENT_MISSING', message: ['too many levels of symbolic links'] });
  });

  it('refuses a trailing / on a file', () => {
    expectGadgetError(() => checkContentPath(gadget, 'grubx64.efi/'), { code: 'ERR_GADGET_CONTENT', message: ['ends with "/" but is not a directory'] });
  });
});

describe('checkGadgetContent', () => {
  const text = (source: string) =>
    yaml(
      'volumes:', // 1
      '  pc:', // 2
      '    bootloader: grub', // 3
      '    structure:', // 4
      '      - name: mbr', // 5
      '        type: mbr', // 6
      '        size: 440', // 7
      '        content:', // 8
      '          - image: pc-boot.img', // 9
      '      - name: efi', // 10
      '        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B', // 11
      '        filesystem: vfat', // 12
      '        size: 50M', // 13
      '        content:', // 14
      '          - source: $kernel:dtbs/dtbs/', // 15
      '            target: /dtbs', // 16
      `          - source: ${source}`, // 17
      '            target: EFI/boot/bootx64.efi', // 18
    );

  it('checks every source and image of a gadget against its folder, skipping $kernel: references', () => {
    expect(() => checkGadgetContent(parseGadgetYaml(text('shim.efi'), join(gadget, 'meta/gadget.yaml')), gadget)).not.toThrow();
  });

  it('names gadget.yaml, the line of the content entry and the structure', () => {
    const file = join(gadget, 'meta/gadget.yaml');
    expectGadgetError(() => checkGadgetContent(parseGadgetYaml(text('shim.efi.signed'), file), gadget), {
      code: 'ERR_GADGET_CONTENT_MISSING',
      line: 17,
      col: 13,
      structure: 'efi',
      message: [`${file}:17:13: structure "efi": content #1: source "shim.efi.signed" is not in the gadget`],
    });
    expectGadgetError(() => checkGadgetContent(parseGadgetYaml(text('escape-absolute'), file), gadget), { code: 'ERR_GADGET_CONTENT_ESCAPE', line: 17, structure: 'efi', message: ['content #1: source "escape-absolute" leaves the gadget'] });
  });
});
