/**
 * bundles/bootloader without booting: build-assets is deterministic (the same bytes twice) and
 * writes what each gadget needs, grub.cfg wastes no time (no menu, timeout 0, no wait before the
 * kernel), boot.cmd's hand-written GRUB header is the header of a GRUB environment block, and
 * uboot-env-image makes a valid U-Boot environment with bootdelay=0.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { GRUB_ENV_HEADER } from '@edgeimage/composer';
import { buildAssets, readTree, UBOOT_ENV_IMAGE, type Gadget } from '@edgeimage/testkit/bootloader-boards';
import { REPO } from '@edgeimage/testkit/repo';
import { firstMissing, requires } from '@edgeimage/testkit/skips';

const made: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-bootloader-test-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const has = (cmd: string, arg = '--version') => spawnSync(cmd, [arg]).status === 0;
const EXPECTED: Record<Gadget, string[]> = {
  pc: ['EFI/BOOT/BOOTX64.EFI', 'EFI/BOOT/grub.cfg', 'EFI/BOOT/grub.cfg.dangerous', 'EFI/BOOT/grub.cfg.verified', 'EFI/BOOT/grub.cfg.verified.dangerous'],
  'arm64-efi': ['EFI/BOOT/BOOTAA64.EFI', 'EFI/BOOT/grub.cfg', 'EFI/BOOT/grub.cfg.dangerous', 'EFI/BOOT/grub.cfg.verified', 'EFI/BOOT/grub.cfg.verified.dangerous'],
  'arm64-uboot': ['boot.cmd.verified', 'boot.cmd.verified.dangerous', 'boot.scr', 'boot.scr.dangerous'],
};
/** Why a gadget's assets cannot be built here, or undefined. */
function missing(gadget: Gadget): string | undefined {
  if (gadget === 'arm64-uboot') return has('mkimage', '-V') ? undefined : 'mkimage (u-boot-tools) is not installed';
  if (!has('grub-mkimage')) return 'grub-mkimage is not installed';
  if (gadget === 'pc') return statSync('/usr/lib/grub/x86_64-efi', { throwIfNoEntry: false }) ? undefined : 'no /usr/lib/grub/x86_64-efi (grub-efi-amd64-bin)';
  const r = spawnSync(join(REPO, 'scripts/fetch-debs'), ['arm64', 'grub-efi-arm64-bin'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `cannot fetch grub-efi-arm64-bin:arm64: ${r.stderr.trim()}`;
}

describe.each(Object.keys(EXPECTED) as Gadget[])('build-assets %s', (gadget) => {
  requires(missing(gadget)).test('writes the bootloader files, byte-identical across two runs', () => {
    const one = readTree(buildAssets(gadget, temp()));
    const two = readTree(buildAssets(gadget, temp()));
    expect([...one.keys()]).toEqual(EXPECTED[gadget]);
    expect([...two.keys()]).toEqual(EXPECTED[gadget]);
    for (const [path, bytes] of one) expect(two.get(path)!.equals(bytes)).toBe(true);
  }, 60_000);
});

test('build-assets refuses an unknown gadget, with the usage', () => {
  const r = spawnSync(join(REPO, 'bundles/bootloader/build-assets'), ['rpi', temp()], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('usage:');
});

describe('grub.cfg', () => {
  const cfg = readFileSync(join(REPO, 'bundles/bootloader/grub.cfg.in'), 'utf8');
  const code = cfg.split('\n').map((l) => l.replace(/^@[A-Z]+@/, '').replace(/#.*/, '').trim()).filter(Boolean);

  test('no menu and no delay: timeout=0, hidden, no menuentry, no sleep or read before the kernel boots', () => {
    expect(code).toContain('set timeout=0');
    expect(code).toContain('set timeout_style=hidden');
    expect(code.some((l) => /^(menuentry|submenu)\b/.test(l))).toBe(false);
    const firstBoot = code.findIndex((l) => l === 'boot');
    expect(firstBoot).toBeGreaterThan(0);
    expect(code.slice(0, firstBoot).some((l) => /^(sleep|read|pause)\b/.test(l))).toBe(false);
    // After a failure: a bounded wait, then a reboot, never a prompt.
    expect(code.slice(-2)).toEqual(['sleep 3', 'reboot']);
  });

  requires(missing('pc')).test('build-assets fills in the console of each board and leaves no placeholder', () => {
    const pc = readFileSync(join(buildAssets('pc', temp()), 'EFI/BOOT/grub.cfg'), 'utf8');
    expect(pc).toContain('console=ttyS0 edgeimage.slot=$1 edgeimage.bootpart=$ei_bootpart panic=5');
    expect(pc).not.toContain('@');
  });

  requires(missing('pc')).test('two variants: grub.cfg (grades signed, secured) never reads edge_kargs; grub.cfg.dangerous appends it after edgeimage.slot', () => {
    const dir = buildAssets('pc', temp());
    const signed = readFileSync(join(dir, 'EFI/BOOT/grub.cfg'), 'utf8');
    const dangerous = readFileSync(join(dir, 'EFI/BOOT/grub.cfg.dangerous'), 'utf8');
    expect(signed).not.toContain('kargs');
    expect(signed).not.toMatch(/^##/m);
    expect(dangerous).not.toContain('@');
    expect(dangerous).toMatch(/^ {2}elif linux \S+ console=ttyS0 edgeimage\.slot=\$1 edgeimage\.bootpart=\$ei_bootpart panic=5 loglevel=6 \$edge_kargs; then$/m);
    // read from both copies, and saved
    expect(dangerous.match(/edge_boot_count edge_kargs/g)).toHaveLength(3);
    // the rest is the same script
    const strip = (t: string) => t.split('\n').filter((l) => !/^set edge_kargs=$|^# Extra kernel arguments/.test(l)).join('\n').replace(/ \$?edge_kargs/g, '');
    expect(strip(dangerous)).toBe(strip(signed));
  });
});

test("boot.cmd's template header (little-endian words) is the GRUB environment block header", () => {
  const cmd = readFileSync(join(REPO, 'bundles/bootloader/boot.cmd'), 'utf8');
  const words = [...cmd.matchAll(/^(?:setexpr ei_a \$\{ei_tmpl\} \+ (0x[0-9a-f]+); )?mw\.l \$\{ei_(?:tmpl|a)\} (0x[0-9a-f]{8})$/gm)];
  const bytes = Buffer.alloc(25, '#');
  for (const [, off, word] of words) bytes.writeUInt32LE(Number(word), off ? Number(off) : 0);
  const last = /^setexpr ei_a \$\{ei_tmpl\} \+ (0x[0-9a-f]+); mw\.b \$\{ei_a\} (0x[0-9a-f]{2})$/m.exec(cmd);
  expect(last).not.toBeNull();
  bytes[Number(last![1])] = Number(last![2]);
  expect(words).toHaveLength(6);
  expect(bytes.toString('latin1')).toBe(GRUB_ENV_HEADER);
});

requires(missing('arm64-uboot')).test('boot.scr and boot.scr.dangerous are U-Boot script images of boot.cmd: the signed one never reads edge_kargs', () => {
  const dir = buildAssets('arm64-uboot', temp());
  const cmd = readFileSync(join(REPO, 'bundles/bootloader/boot.cmd'), 'utf8').split('\n').filter((l) => !l.startsWith('##'));
  const plain = cmd.filter((l) => !l.startsWith('@V')).map((l) => l.replace(/^@P@/, ''));
  const want = {
    'boot.scr': plain.filter((l) => !l.startsWith('@D@')).join('\n').replace(/@KARGS_VAR@|@KARGS@/g, ''),
    'boot.scr.dangerous': plain.map((l) => l.replace(/^@D@/, '')).join('\n').replace(/@KARGS_VAR@/g, ' edge_kargs').replace(/@KARGS@/g, ' ${edge_kargs}'),
  };
  for (const [name, text] of Object.entries(want)) {
    const scr = join(dir, name);
    const listed = execFileSync('mkimage', ['-l', scr], { encoding: 'utf8' });
    expect(listed).toMatch(/Image Type:\s+AArch64 Linux Script \(uncompressed\)/);
    // legacy header (64 bytes) + image length table (8 bytes), then the script itself
    expect(readFileSync(scr).subarray(72).toString('utf8').replace(/\0+$/, '')).toBe(text);
  }
  expect(want['boot.scr']).not.toContain('kargs');
  expect(want['boot.scr.dangerous']).toMatch(/^ *setenv bootargs "console=ttyAMA0 edgeimage\.slot=\$\{ei_slot\} edgeimage\.bootpart=\$\{ei_bootpart\} panic=5 loglevel=6 \$\{edge_kargs\}"$/m);
});

const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const missingUbootTools = firstMissing(
  statSync(UBOOT, { throwIfNoEntry: false }) ? undefined : `no ${UBOOT} (u-boot-qemu)`,
  has('mkenvimage', '-V') ? undefined : 'mkenvimage (u-boot-tools) is not installed',
);

requires(missingUbootTools).test('uboot-env-image: 64 MiB, a valid CRC, the default environment with bootdelay=0, deterministic', () => {
  const d = temp();
  execFileSync(UBOOT_ENV_IMAGE, [join(d, 'one.img')]);
  execFileSync(UBOOT_ENV_IMAGE, [join(d, 'two.img')]);
  const one = readFileSync(join(d, 'one.img'));
  expect(one.length).toBe(64 << 20);
  expect(one.equals(readFileSync(join(d, 'two.img')))).toBe(true);
  const env = one.subarray(0, 0x40000);
  expect(env.readUInt32LE(0)).toBe(crc32(env.subarray(4)));
  const vars = env.subarray(4, env.indexOf(Buffer.from([0, 0]), 4)).toString('latin1').split('\0');
  expect(vars).toContain('bootdelay=0');
  expect(vars).toContain('bootcmd=run distro_bootcmd');
  expect(vars.filter((v) => v.startsWith('bootdelay='))).toHaveLength(1);
});

/**
 * The verified variants (README.md "Variants"): the same state machine as the plain ones, with
 * only the loading of the slot's payload (and, for GRUB, where system-boot is and load_env
 * --skip-sig) differing; they never load a kernel or a script from the disk.
 */
describe('the verified variants', () => {
  /** The text of a script without its comments, blank lines and leading spaces. */
  const code = (t: string) => t.split('\n').map((l) => l.replace(/^\s*#.*/, '').trim()).filter(Boolean);

  requires(missing('pc')).test('grub.cfg.verified: system-boot from $cmdpath, load_env --skip-sig, chainloader /boot/uki.efi from the slot partition with no arguments; never linux, initrd or edge_kargs', () => {
    const dir = buildAssets('pc', temp());
    const plain = readFileSync(join(dir, 'EFI/BOOT/grub.cfg'), 'utf8');
    const verified = readFileSync(join(dir, 'EFI/BOOT/grub.cfg.verified'), 'utf8');
    const v = code(verified);
    expect(verified).not.toMatch(/@|kargs/);
    expect(v).not.toEqual(expect.arrayContaining([expect.stringMatching(/^(elif |if )?(linux|initrd|source|configfile|insmod)\b/)]));
    expect(v.filter((l) => /chainloader/.test(l))).toEqual(['if chainloader /boot/uki.efi; then set ei_loaded=1; fi']);
    expect(v).toContain(`regexp --set=1:root '^\\(([^)]+)\\)' "$cmdpath"`);
    expect(v).toContain('set root="$ei_disk,$ei_pmap$ei_part"');
    const loads = v.filter((l) => /load_env/.test(l));
    expect(loads).toHaveLength(3);
    for (const l of loads) expect(l).toMatch(/load_env --skip-sig --file /);
    // the one state machine: outside ei_boot, the plain and verified scripts differ only there
    const outside = (t: string) => code(t.replace(/^function ei_boot \{[\s\S]*?^\}$/m, '')).map((l) => l.replace(' --skip-sig', '')).filter((l) => !l.startsWith('regexp --set=1:root '));
    expect(outside(verified)).toEqual(outside(plain));
    expect(outside(plain)).toEqual(expect.arrayContaining(['halt', 'reboot']));
  });

  requires(missing('pc')).test('grub.cfg.verified.dangerous: passes the whole command line to the UKI only when edge_kargs is set', () => {
    const dir = buildAssets('pc', temp());
    const v = code(readFileSync(join(dir, 'EFI/BOOT/grub.cfg.verified.dangerous'), 'utf8'));
    expect(v.filter((l) => /chainloader/.test(l))).toEqual([
      'if chainloader /boot/uki.efi; then set ei_loaded=1; fi',
      'elif chainloader /boot/uki.efi console=ttyS0 edgeimage.slot=$1 edgeimage.bootpart=$ei_bootpart panic=5 loglevel=6 $edge_kargs; then',
    ]);
    const i = v.indexOf('if chainloader /boot/uki.efi; then set ei_loaded=1; fi');
    expect(v[i - 1]).toBe('if [ -z "$edge_kargs" ]; then');
  });

  requires(missing('arm64-uboot')).test('boot.cmd.verified: loads boot/boot.itb of the slot, checks the FDT magic, bootm ADDR#conf-1; never booti or source; imports only named variables', () => {
    const dir = buildAssets('arm64-uboot', temp());
    const verified = readFileSync(join(dir, 'boot.cmd.verified'), 'utf8');
    const dangerous = readFileSync(join(dir, 'boot.cmd.verified.dangerous'), 'utf8');
    const v = code(verified);
    expect(verified).not.toMatch(/@|kargs/);
    expect(v.filter((l) => /\b(booti|bootz|source|bootefi|boot\.scr)\b/.test(l))).toEqual([]);
    expect(v).toContain('elif load ${ei_slotdev} ${ei_fit} boot/boot.itb; then');
    expect(v).toContain('setenv ei_fit 0x48000000');
    const bootm = v.indexOf('bootm ${ei_fit}#conf-1');
    expect(v.slice(bootm - 2, bootm)).toEqual(['setexpr.l ei_magic *${ei_fit}', 'if test "${ei_magic}" = edfe0dd0; then']);
    expect(v.filter((l) => /^bootm/.test(l))).toHaveLength(1);
    const imports = v.flatMap((l) => [...l.matchAll(/env import[^;]*/g)].map((m) => m[0]));
    expect(imports).toHaveLength(2);
    for (const i of imports) expect(i).toMatch(/^env import -t \$\{ei_buf\} 0x400 [a-z_]+( [a-z_]+)*$/);
    expect(v).toContain('poweroff');
    // bootargs from the script, the hook only in the dangerous one
    expect(v).toContain('setenv bootargs "console=ttyAMA0 edgeimage.slot=${ei_slot} edgeimage.bootpart=${ei_bootpart} panic=5 loglevel=6"');
    expect(code(dangerous)).toContain('setenv bootargs "console=ttyAMA0 edgeimage.slot=${ei_slot} edgeimage.bootpart=${ei_bootpart} panic=5 loglevel=6 ${edge_kargs}"');
  });

  requires(firstMissing(missing('pc'), has('grub-script-check', '--help') ? undefined : 'grub-script-check is not installed')).test('every GRUB variant parses (grub-script-check)', () => {
    const dir = buildAssets('pc', temp());
    for (const f of EXPECTED.pc.filter((p) => p.includes('grub.cfg'))) {
      const r = spawnSync('grub-script-check', [join(dir, f)], { encoding: 'utf8' });
      expect(`${f}: ${r.status} ${r.stdout}${r.stderr}`).toBe(`${f}: 0 `);
    }
  });
});
