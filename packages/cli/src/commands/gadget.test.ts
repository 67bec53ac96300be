import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { run, runOk, useTempDirs } from '@edgeimage/testkit/cli-run';
import { GADGET_FIXTURES_DIR, missingGadgetFixtures } from '@edgeimage/testkit/gadget-fixtures';
import { requires } from '@edgeimage/testkit/skips';

const tempDir = useTempDirs('edgeimage-gadget-cli-test-');
const BUNDLES = fileURLToPath(new URL('../../../../bundles/', import.meta.url));
const FIXTURES = GADGET_FIXTURES_DIR;
const itFixtures = requires(missingGadgetFixtures).test;

/** A gadget .snap made from a folder (as `pack` would, without its checks). */
async function snapOf(dir: string, out: string): Promise<string> {
  await execa('mksquashfs', [dir, out, '-noappend', '-quiet', '-no-progress', '-all-root', '-no-xattrs']);
  return out;
}

describe('edgeimage gadget validate', () => {
  it('accepts the example A/B gadget folder, checks its content and prints a summary', async () => {
    const r = await runOk(['gadget', 'validate', join(BUNDLES, 'pc')]);
    expect(r.out).toBe(
      [
        `valid: ${join(BUNDLES, 'pc', 'meta', 'gadget.yaml')}`,
        'volume pc: schema gpt, bootloader grub, 4 structures (4 partitions), needs 537936384 bytes (513.02 MiB)',
        'A/B roles: system-boot, system-a, system-b, system-data on volume pc',
        'content: 1 path found inside the gadget',
        '',
      ].join('\n'),
    );
    expect(r.err).toBe('');
  });

  itFixtures('accepts a real gadget without A/B roles and says what build wants added', async () => {
    const r = await runOk(['gadget', 'validate', join(FIXTURES, 'pi-22-arm64', 'gadget.yaml')]);
    expect(r.out).toContain('volume pi: schema mbr, bootloader piboot, 4 structures (4 partitions), needs 3652190208 bytes (3.40 GiB)');
    expect(r.out).toContain('A/B roles: none; `edgeimage build` refuses this gadget: no A/B roles');
    expect(r.out).toContain('add structures with role system-a (ext4: system slot a), system-b (ext4: system slot b)');
    expect(r.out).toContain('content: not checked (a gadget.yaml without its gadget)');
  });

  it('reads a gadget .snap with unsquashfs, and checks its content', async () => {
    const snap = await snapOf(join(BUNDLES, 'pc'), join(tempDir(), 'pc_0.1_amd64.snap'));
    const r = await runOk(['gadget', 'validate', snap]);
    expect(r.out).toContain(`valid: ${snap}:meta/gadget.yaml\n`);
    expect(r.out).toContain('content: 1 path found inside the gadget');
  });

  it('refuses a .snap whose content source is missing, naming snap:meta/gadget.yaml:line', async () => {
    const dir = join(tempDir(), 'g');
    cpSync(join(BUNDLES, 'pc'), dir, { recursive: true, dereference: true });
    const yaml = join(dir, 'meta', 'gadget.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('source: boot-assets/', 'source: grub/'));
    const snap = await snapOf(dir, join(tempDir(), 'broken.snap'));
    const r = await run(['gadget', 'validate', snap]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(new RegExp(`^edgeimage: error: ${snap.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:meta/gadget.yaml:17:13: structure "system-boot": content #0: source "grub/" is not in the gadget \\(no grub\\) \\[ERR_GADGET_CONTENT_MISSING\\]`));
  });

  it('refuses an unpacked gadget whose content escapes through a symlink', async () => {
    const dir = join(tempDir(), 'g');
    cpSync(join(BUNDLES, 'pc'), dir, { recursive: true, dereference: true });
    symlinkSync('/etc', join(dir, 'boot-assets', 'etc'));
    const r = await run(['gadget', 'validate', dir]);
    expect(r.status).toBe(1);
    expect(r.err).toContain('content #0: source "boot-assets/" holds boot-assets/etc, which is a symbolic link to /etc, outside the gadget [ERR_GADGET_CONTENT_ESCAPE]');
  });

  it('prints a gadget.yaml error with file:line:col, the structure and the code, exit status 1', async () => {
    const dir = tempDir();
    const file = join(dir, 'gadget.yaml');
    writeFileSync(
      file,
      ['volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: a', '        type: bare', '        offset: 2M', '        size: 2M', '      - name: b', '        type: bare', '        offset: 3M', '        size: 1M', ''].join('\n'),
    );
    const r = await run(['gadget', 'validate', file]);
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`edgeimage: error: ${file}:9:9: structure "b": overlaps with the preceding structure "a" (line 5): it starts at 3145728, before that one ends at 4194304 [ERR_GADGET_OVERLAP]\n`);
    // A folder with a plain gadget.yaml works too.
    expect((await run(['gadget', 'validate', dir])).err).toContain('[ERR_GADGET_OVERLAP]');
  });

  it('says when a folder has no gadget.yaml, and when a .snap is not a gadget', async () => {
    const dir = tempDir();
    const r = await run(['gadget', 'validate', dir]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${dir}: no meta/gadget.yaml or gadget.yaml in this folder [ERR_GADGET_NOT_FOUND]`);
    mkdirSync(join(dir, 'meta'));
    writeFileSync(join(dir, 'meta', 'snap.yaml'), 'name: x\n');
    const snap = await snapOf(dir, join(tempDir(), 'app.snap'));
    const s = await run(['gadget', 'validate', snap]);
    expect(s.status).toBe(1);
    expect(s.err).toContain('cannot read meta/gadget.yaml: it has no meta/gadget.yaml (not a gadget snap?) [ERR_GADGET_NOT_FOUND]');
  });

  it('has --help with examples', async () => {
    const r = await runOk(['gadget', 'validate', '--help']);
    expect(r.out).toContain('edgeimage gadget validate bundles/pc');
    expect(r.out).toContain('edgeimage gadget validate pc_0.1_amd64.snap');
    const top = await runOk(['gadget', '--help']);
    expect(top.out).toContain('edgeimage gadget validate <path>');
    expect(top.out).toContain('edgeimage gadget layout <path>');
  });
});

describe('edgeimage gadget layout', () => {
  it('prints a table: volume, structure, role, type, offset, size, filesystem', async () => {
    const r = await runOk(['gadget', 'layout', join(BUNDLES, 'arm64-uboot')]);
    expect(r.out).toBe(
      [
        'VOLUME       STRUCTURE    ROLE         TYPE     OFFSET       SIZE  FILESYSTEM',
        'arm64-uboot  system-boot  system-boot  0C      1048576   67108864  vfat',
        'arm64-uboot  system-a     system-a     83     68157440  201326592  ext4',
        'arm64-uboot  system-b     system-b     83    269484032  201326592  ext4',
        'arm64-uboot  system-data  system-data  83    470810624   67108864  ext4',
        '',
        'volume arm64-uboot: min size 537919488 bytes (513 MiB)',
        '',
      ].join('\n'),
    );
  });

  itFixtures('prints JSON exactly as specified, in disk order, null for no name/role/filesystem', async () => {
    const r = await runOk(['gadget', 'layout', join(FIXTURES, 'pc-18', 'gadget.yaml'), '--json']);
    expect(JSON.parse(r.out)).toEqual({
      volumes: {
        pc: [
          { name: 'mbr', role: 'mbr', type: 'mbr', offset: 0, size: 440, filesystem: null },
          { name: 'BIOS Boot', role: null, type: 'DA,21686148-6449-6E6F-744E-656564454649', offset: 1048576, size: 1048576, filesystem: null },
          { name: 'EFI System', role: 'system-boot', type: 'EF,C12A7328-F81F-11D2-BA4B-00A0C93EC93B', offset: 2097152, size: 52428800, filesystem: 'vfat' },
        ],
      },
    });
    const cm3 = JSON.parse((await runOk(['gadget', 'layout', join(FIXTURES, 'cm3-uc18'), '--json'])).out) as { volumes: Record<string, { name: unknown }[]> };
    expect(cm3.volumes['cm3']![0]!.name).toBeNull();
  });

  it('prints snapd-style warnings on stderr and still lays out', async () => {
    const file = join(tempDir(), 'gadget.yaml');
    writeFileSync(file, ['volumes:', '  pc:', '    bootloader: grub', '    structure:', '      - name: spl', '        type: bare', '        offset: 8192', '        size: 16384', ''].join('\n'));
    const r = await runOk(['gadget', 'layout', file, '--json']);
    expect(JSON.parse(r.out)).toEqual({ volumes: { pc: [{ name: 'spl', role: null, type: 'bare', offset: 8192, size: 16384, filesystem: null }] } });
    expect(r.err).toContain(`edgeimage: warning: ${file}:5: structure "spl" (bytes 8192-24576) overlaps the primary GPT`);
  });

  it('has --help with examples', async () => {
    const r = await runOk(['gadget', 'layout', '--help']);
    expect(r.out).toContain('edgeimage gadget layout bundles/pc');
    expect(r.out).toContain('--json');
  });
});
