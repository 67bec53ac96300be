/**
 * The bootloaders of the three example gadgets (bundles/bootloader) run the A/B state machine:
 * real firmware (OVMF, AAVMF, U-Boot qemu_arm64), real GRUB/U-Boot from build-assets, the real
 * gadget.yaml files, Debian's kernel in both slots (no initrd: the kernel panics after reporting
 * its command line, and panic=5 reboots, which ends QEMU with -no-reboot). Each row of the state
 * machine is set up on the host, booted once, and checked from the console and from the boot
 * environment read back on the host, where every file must still be a valid 1024-byte GRUB
 * environment block (for edgeimage's decoder and for grub-editenv). The boots of the known-good
 * slot are counted (the kernel never becomes healthy here, so every boot is an unconfirmed one):
 * after 3 the bootloader leaves the slot; a slot whose kernel does not load is left at once, in the
 * same start; when both slots have failed the bootloader powers off.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootPartitionOffset, encodeGrubEnv, ENV_FILES, writeImageEnv, writeImageFile } from '@edgeimage/composer';
import { BASE, snapYaml, baseTree } from '@edgeimage/testkit/image-bundles';
import { makeImageWorld, type ImageWorld } from '@edgeimage/testkit/image-world';
import { sfdiskJson } from '@edgeimage/testkit/image-read';
import { ext4Label, partUuid } from '@edgeimage/testkit/disk-read';
import { BOARDS, bootOnce, buildAssets, checkBootFat, checkEnvFiles, copyImage, debianVmlinuz, edgeVars, gadgetBundleTree, missingFor, rawEnvBlock, readEnv, summary, UBOOT_ENV_IMAGE, type Board, type BootResult } from '@edgeimage/testkit/bootloader-boards';

const BOOT_MS = 180_000;
/** Stop a boot once the kernel has shown its command line: the bootloader's work is done. */
const CMDLINE = /Kernel command line:[^\n]*\n/;

/**
 * Gadgets whose slots are not partitions 2 and 3: pc (GPT) with a BIOS-boot partition first and
 * slot b before slot a; arm64-uboot (MBR, 4 partitions at most) with slot b before slot a. No
 * filesystem-label on pc's slots: the composer gives each its role.
 */
const REORDERED: Partial<Record<Board['gadget'], string>> = {
  pc: `volumes:
  pc:
    schema: gpt
    bootloader: grub
    structure:
      - name: bios-boot
        type: 21686148-6449-6E6F-744E-656564454649
        size: 1M
      - name: system-boot
        role: system-boot
        filesystem: vfat
        filesystem-label: system-boot
        type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B
        size: 64M
        content:
          - source: boot-assets/
            target: /
      - name: system-b
        role: system-b
        filesystem: ext4
        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4
        size: 96M
      - name: system-a
        role: system-a
        filesystem: ext4
        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4
        size: 96M
      - name: system-data
        role: system-data
        filesystem: ext4
        filesystem-label: system-data
        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4
        size: 16M
`,
  'arm64-uboot': `volumes:
  arm64-uboot:
    schema: mbr
    bootloader: u-boot
    structure:
      - name: system-boot
        role: system-boot
        filesystem: vfat
        filesystem-label: system-boot
        type: 0C
        size: 64M
        content:
          - source: boot-assets/
            target: /
      - name: system-b
        role: system-b
        filesystem: ext4
        filesystem-label: system-b
        type: 83
        size: 96M
      - name: system-a
        role: system-a
        filesystem: ext4
        filesystem-label: system-a
        type: 83
        size: 96M
      - name: system-data
        role: system-data
        filesystem: ext4
        filesystem-label: system-data
        type: 83
        size: 16M
`,
};

const timings: string[] = [];
afterAll(() => {
  if (timings.length) console.log(`bootloader boot times (QEMU start = firmware start; TCG):\n${timings.join('\n')}`);
});

/**
 * A board whose QEMU, firmware or Debian kernel is missing here is skipped through jest, the reason
 * in its title. arm64-efi runs pc's grub.cfg on another GRUB build and firmware: the rows that are
 * that script's logic alone (edge_kargs, edge_slot=b, lock1, an invalid env1, garbage values, the
 * reordered gadget) run on pc and arm64-uboot; arm64-efi keeps what its own GRUB and AAVMF do — a
 * fresh boot (command line, bootpart), a try saved, a rollback saved, a corrupt kernel.
 */
const kernels: Partial<Record<Board['arch'], Buffer | string>> = {};
const ROWS = BOARDS.map((board) => {
  let skip = missingFor(board);
  if (!skip) {
    const k = (kernels[board.arch] ??= debianVmlinuz(board.arch));
    if (typeof k === 'string') skip = k;
  }
  return { ...board, skip, skipNote: skip ? ` — skipped: ${skip}` : '' };
});

describe.each(ROWS)('$gadget: the bootloader runs the A/B state machine$skipNote', (row) => {
  const board: Board = row;
  const it = row.skip ? test.skip : test;
  /** A row of pc's grub.cfg logic alone: not repeated on arm64-efi (the same script). */
  const scriptRow = (name: string, fn: () => Promise<void>, timeout: number) =>
    board.gadget === 'arm64-efi' ? test.skip(`${name} — skipped on arm64-efi: the same grub.cfg as pc, run there`, fn, timeout) : it(name, fn, timeout);
  let world: ImageWorld;
  let image: string;
  /** The same image for a grade dangerous model: its boot script reads edge_kargs. */
  let dangerousImage: string;
  /** A gadget whose slots are not partitions 2 and 3 (other partitions first, b before a). */
  let reorderedImage: string | undefined;
  let tmp: string;
  let ubootEnvFlash: string | undefined;
  /** The image a story of boots goes on (like one device): created by the first test. */
  let device: string;
  /** build-assets' output for this gadget (the verified variants among it). */
  let assets: string;

  beforeAll(async () => {
    if (row.skip) return;
    const vmlinuz = kernels[board.arch] as Buffer;
    world = await makeImageWorld();
    tmp = world.tempDir('boot-');
    assets = buildAssets(board.gadget, world.tempDir('assets-'));
    await world.publish(board.gadget, gadgetBundleTree(board.gadget, assets));
    const kernel = `debian-kernel-${board.arch}`;
    await world.publish(kernel, { 'meta/snap.yaml': snapYaml(kernel, 'kernel', board.arch), 'kernel.img': vmlinuz });
    const base = board.arch === 'amd64' ? BASE : `${BASE}-${board.arch}`;
    if (base !== BASE) await world.publish(base, baseTree(base, board.arch));
    const model = await world.model({ model: `boot-${board.gadget}`, gadget: board.gadget, kernel, base, apps: [], architecture: board.arch });
    const built = await world.compose(await world.resolve(model));
    image = built.images[0]!.path;
    if (board.gadget !== 'arm64-efi') {
      // only the edge_kargs row boots it, a script row (not on arm64-efi)
      const twin = await world.model({ model: `boot-${board.gadget}-dangerous`, gadget: board.gadget, kernel, base, apps: [], architecture: board.arch, grade: 'dangerous' });
      dangerousImage = (await world.compose(await world.resolve(twin))).images[0]!.path;
    }
    const reordered = REORDERED[board.gadget];
    if (reordered) {
      const name = `${board.gadget}-reordered`;
      const tree = { ...gadgetBundleTree(board.gadget, assets), 'meta/snap.yaml': snapYaml(name, 'gadget', board.arch), 'meta/gadget.yaml': reordered };
      await world.publish(name, tree);
      const m = await world.model({ model: `boot-${name}`, gadget: name, kernel, base, apps: [], architecture: board.arch });
      reorderedImage = (await world.compose(await world.resolve(m))).images[0]!.path;
    }
    if (board.gadget === 'arm64-uboot') {
      ubootEnvFlash = join(tmp, 'uboot-env.img');
      execFileSync(UBOOT_ENV_IMAGE, [ubootEnvFlash]);
    }
  }, 600_000);
  afterAll(() => world?.cleanup());

  const fresh = (name: string) => copyImage(image, join(tmp, `${name}.img`));
  const boot = async (disk: string, what: string, stopAt: RegExp | null = CMDLINE): Promise<BootResult> => {
    const r = await bootOnce(board, disk, { tmp, stopAt: stopAt ?? undefined, timeoutMs: BOOT_MS, ubootEnvFlash });
    const t = (s?: number) => (s === undefined ? '-' : `${s.toFixed(1)} s`);
    timings.push(`  ${board.gadget.padEnd(11)} ${what.padEnd(40)} decision ${t(r.toDecision).padStart(7)}, kernel command line ${t(r.toCmdline).padStart(7)}, total ${r.seconds.toFixed(1)} s${r.timedOut ? ' (TIMED OUT)' : ''}`);
    console.log(`${board.gadget}: ${what}\n${summary(r.output)}`);
    if (r.timedOut) throw new Error(`${board.gadget}: ${what}: no result within ${BOOT_MS / 1000} s; console:\n${r.output.slice(-3000)}`);
    return r;
  };
  /** The state machine's variables, the boot count among them; missing ones empty (U-Boot leaves empty ones out). */
  const counted = (vars: Record<string, string>) => ({ ...edgeVars(vars), edge_boot_count: vars['edge_boot_count'] ?? '' });
  const decision = (r: BootResult) => r.output.split('\n').find((l) => l.includes(`${board.tag}: booting slot`))?.trim();
  const cmdline = (r: BootResult) => /Kernel command line:([^\n]*)/.exec(r.output)?.[1]?.trim() ?? '';
  /** Reads the environment back: all four files valid, both locks editing=0 unless said otherwise. */
  const envAfter = async () => {
    const state = await readEnv(device);
    const files = checkEnvFiles(state.files, tmp);
    checkBootFat(device, tmp);
    return { ...state, decoded: files, edge: edgeVars(state.vars) };
  };
  it('a fresh image (edge_slot=a, status empty) boots slot a and counts the boot (edge_boot_count=1, both copies); the kernel panics without an initrd and panic=5 reboots', async () => {
    device = fresh('device');
    const before = await readEnv(device);
    const r = await boot(device, 'status empty, run to the reboot', null);
    expect(decision(r)).toBe(`${board.tag}: booting slot a (status empty)`);
    expect(r.output).toContain(`${board.tag}: boot 1 of 3 of slot a without a healthy one\n`);
    const args = cmdline(r).split(/\s+/);
    expect(args).toEqual(expect.arrayContaining([`console=${board.arch === 'amd64' ? 'ttyS0' : 'ttyAMA0'}`, 'edgeimage.slot=a', 'panic=5']));
    expect(r.output).toMatch(/Kernel panic/);
    expect(r.exited).toBe(true); // the reboot of panic=5, with -no-reboot
    // edgeimage.bootpart= is system-boot's PARTUUID, spelled as Linux spells it
    expect(args.filter((a) => a.startsWith('edgeimage.bootpart='))).toEqual([`edgeimage.bootpart=${partUuid(device, 1)}`]);
    const after = await envAfter();
    expect(counted(after.vars)).toEqual({ ...counted(before.vars), edge_boot_count: '1' });
    expect(after.decoded.env2).toEqual(after.decoded.env1);
    expect(after.decoded.lock1).toEqual({ editing: '0' });
  }, BOOT_MS * 2);

  scriptRow('grade dangerous: edge_kargs from the environment is appended to the kernel command line, after edgeimage.slot, and kept through a save', async () => {
    const disk = copyImage(dangerousImage, join(tmp, 'kargs.img'));
    await writeImageEnv(disk, bootPartitionOffset(disk), { edge_kargs: 'edge.crash=after-env', edge_try_slot: 'b', edge_status: 'try' });
    const r = await boot(disk, 'edge_kargs with a try (a save)');
    const args = cmdline(r).split(/\s+/);
    expect(args).toEqual(expect.arrayContaining(['edgeimage.slot=b', 'edge.crash=after-env']));
    expect(args.indexOf('edgeimage.slot=b')).toBeLessThan(args.indexOf('edge.crash=after-env'));
    const state = await readEnv(disk);
    expect(state.vars['edge_kargs']).toBe('edge.crash=after-env');
    expect(state.vars['edge_status']).toBe('trying');
  }, BOOT_MS * 2);

  it('status try (set on the host, as an update does): saves status trying in both copies, boots the try slot b', async () => {
    await writeImageEnv(device, bootPartitionOffset(device), { edge_try_slot: 'b', edge_status: 'try' });
    const r = await boot(device, 'status try -> trying, slot b');
    expect(decision(r)).toMatch(new RegExp(`^${board.tag}: booting slot b \\(status try`));
    expect(cmdline(r)).toContain('edgeimage.slot=b');
    const after = await envAfter();
    expect(after.edge).toEqual({ edge_slot: 'a', edge_try_slot: 'b', edge_status: 'trying', edge_failed_slot: '' });
    // a try is not counted: the count of slot a's first boot stays
    expect(after.vars.edge_boot_count).toBe('1');
    expect(after.from).toBe('env1');
    expect(edgeVars(after.decoded.env2)).toEqual(after.edge);
    expect(after.decoded.lock1).toEqual({ editing: '0' });
    expect(after.decoded.lock2).toEqual({ editing: '0' });
  }, BOOT_MS * 2);

  it('status trying (the try never reported success): rolls back to edge_slot a, edge_failed_slot=b, status and try slot cleared', async () => {
    // No host change: the bootloader reads what it wrote on the previous boot.
    const r = await boot(device, 'status trying -> rollback to a');
    expect(decision(r)).toMatch(new RegExp(`^${board.tag}: booting slot a \\(status trying: rollback, slot b failed\\)`));
    expect(cmdline(r)).toContain('edgeimage.slot=a');
    const after = await envAfter();
    expect(after.edge).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: 'b' });
    // the rollback boot is the first unconfirmed boot of slot a
    expect(after.vars.edge_boot_count).toBe('1');
    expect(edgeVars(after.decoded.env1)).toEqual(after.edge);
    expect(edgeVars(after.decoded.env2)).toEqual(after.edge);
    expect(after.decoded.lock1).toEqual({ editing: '0' });
    expect(after.decoded.lock2).toEqual({ editing: '0' });
  }, BOOT_MS * 2);

  scriptRow('status empty boots edge_slot whatever it is: edge_slot=b boots b', async () => {
    device = fresh('slot-b');
    await writeImageEnv(device, bootPartitionOffset(device), { edge_slot: 'b' });
    const before = await readEnv(device);
    const r = await boot(device, 'status empty, edge_slot=b');
    expect(decision(r)).toBe(`${board.tag}: booting slot b (status empty)`);
    expect(cmdline(r)).toContain('edgeimage.slot=b');
    const after = await envAfter();
    expect(counted(after.vars)).toEqual({ ...counted(before.vars), edge_boot_count: '1' });
  }, BOOT_MS * 2);

  scriptRow('lock1 says editing=1 (a write of env1 was cut off): env2 is used, and the save repairs env1 and lock1', async () => {
    device = fresh('lock1');
    const off = bootPartitionOffset(device);
    // env1 holds an older state; env2 the state being written: try slot a from known-good b.
    await writeImageFile(device, off, ENV_FILES.lock1, encodeGrubEnv({ editing: '1' }));
    await writeImageFile(device, off, ENV_FILES.env1, encodeGrubEnv({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' }));
    await writeImageFile(device, off, ENV_FILES.env2, encodeGrubEnv({ edge_slot: 'b', edge_try_slot: 'a', edge_status: 'try', edge_failed_slot: '' }));
    const r = await boot(device, 'lock1 editing=1 -> env2 (try a)');
    expect(decision(r)).toMatch(new RegExp(`^${board.tag}: booting slot a \\(status try: trying slot a, known-good slot b\\)`));
    expect(cmdline(r)).toContain('edgeimage.slot=a');
    const after = await envAfter();
    expect(after.from).toBe('env1');
    expect(after.decoded.lock1).toEqual({ editing: '0' });
    expect(after.decoded.lock2).toEqual({ editing: '0' });
    const want = { edge_slot: 'b', edge_try_slot: 'a', edge_status: 'trying', edge_failed_slot: '' };
    expect(edgeVars(after.decoded.env1)).toEqual(want);
    expect(edgeVars(after.decoded.env2)).toEqual(want);
  }, BOOT_MS * 2);

  scriptRow('env1 is not a valid block (1024 zero bytes, an interrupted write): env2 is used', async () => {
    device = fresh('env1-zero');
    const off = bootPartitionOffset(device);
    await writeImageFile(device, off, ENV_FILES.env1, Buffer.alloc(1024));
    await writeImageFile(device, off, ENV_FILES.env2, encodeGrubEnv({ edge_slot: 'b', edge_try_slot: '', edge_status: '', edge_failed_slot: '' }));
    const r = await boot(device, 'env1 invalid -> env2 (slot b)');
    expect(decision(r)).toBe(`${board.tag}: booting slot b (status empty)`);
    expect(cmdline(r)).toContain('edgeimage.slot=b');
  }, BOOT_MS * 2);

  scriptRow('garbage slot values are taken as a: edge_slot=x boots a; status try with edge_try_slot=zz tries a', async () => {
    device = fresh('garbage');
    const off = bootPartitionOffset(device);
    const garbage = rawEnvBlock(['edge_failed_slot=', 'edge_slot=x', 'edge_status=try', 'edge_try_slot=zz']);
    await writeImageFile(device, off, ENV_FILES.env1, garbage);
    await writeImageFile(device, off, ENV_FILES.env2, garbage);
    const r = await boot(device, 'garbage slots -> a');
    expect(decision(r)).toMatch(new RegExp(`^${board.tag}: booting slot a \\(status try: trying slot a, known-good slot a\\)`));
    expect(cmdline(r)).toContain('edgeimage.slot=a');
    const after = await envAfter();
    expect(after.edge).toEqual({ edge_slot: 'a', edge_try_slot: 'a', edge_status: 'trying', edge_failed_slot: '' });
  }, BOOT_MS * 2);

  scriptRow('the slots found by their label, not their number: a gadget with another partition first and slot b before slot a boots a and b from the right partitions', async () => {
    const disk = copyImage(reorderedImage!, join(tmp, 'reordered.img'));
    const parts = sfdiskJson(disk).partitions;
    // slot b's partition (by the label system-b, wherever it is) gets a kernel that cannot start:
    // booting b must fail on it, booting a must reach the kernel of the partition labelled system-a
    const b = parts.find((p) => ext4Label(disk, p.start * 512) === 'system-b')!;
    const a = parts.find((p) => ext4Label(disk, p.start * 512) === 'system-a')!;
    expect(parts.indexOf(a)).toBeGreaterThan(parts.indexOf(b));
    expect(parts.indexOf(b)).toBeGreaterThanOrEqual(1);
    const junk = join(tmp, 'junk-kernel-reordered');
    writeFileSync(junk, Buffer.alloc(2 << 20, 0x5a));
    execFileSync('debugfs', ['-w', '-R', 'rm /boot/kernel.img', `${disk}?offset=${b.start * 512}`], { stdio: 'pipe' });
    execFileSync('debugfs', ['-w', '-R', `write ${junk} /boot/kernel.img`, `${disk}?offset=${b.start * 512}`], { stdio: 'pipe' });

    const ra = await boot(disk, 'reordered gadget, slot a');
    expect(decision(ra)).toBe(`${board.tag}: booting slot a (status empty)`);
    expect(cmdline(ra).split(/\s+/)).toEqual(expect.arrayContaining(['edgeimage.slot=a']));

    await writeImageEnv(disk, bootPartitionOffset(disk), { edge_slot: 'b' });
    const rb = await boot(disk, 'reordered gadget, slot b (junk kernel), then a');
    expect(decision(rb)).toBe(`${board.tag}: booting slot b (status empty)`);
    expect(rb.output).toMatch(new RegExp(`${board.tag}: FAILED: (cannot load the kernel|the kernel) of slot b`));
    // left at once for slot a, whose kernel (found by its label) starts
    expect(rb.output).toContain(`${board.tag}: booting slot a (slot b failed to load: leaving it for slot a)`);
    expect(cmdline(rb).split(/\s+/)).toEqual(expect.arrayContaining(['edgeimage.slot=a']));
  }, BOOT_MS * 3);

  /** Replaces (or, without `bytes`, removes) boot/kernel.img in the slot labelled system-SLOT. */
  const breakKernel = (disk: string, slot: 'a' | 'b', bytes?: Buffer) => {
    const part = sfdiskJson(disk).partitions.find((p) => ext4Label(disk, p.start * 512) === `system-${slot}`)!;
    const at = `${disk}?offset=${part.start * 512}`;
    execFileSync('debugfs', ['-w', '-R', 'rm /boot/kernel.img', at], { stdio: 'pipe' });
    if (bytes) {
      const junk = join(tmp, `junk-kernel-${slot}`);
      writeFileSync(junk, bytes);
      execFileSync('debugfs', ['-w', '-R', `write ${junk} /boot/kernel.img`, at], { stdio: 'pipe' });
    }
  };

  it('a corrupt kernel in the try slot: FAILED on the console, and the same start rolls back to slot a (never a prompt, no reboot first)', async () => {
    device = fresh('corrupt');
    breakKernel(device, 'b', Buffer.alloc(2 << 20, 0x5a));
    await writeImageEnv(device, bootPartitionOffset(device), { edge_try_slot: 'b', edge_status: 'try' });

    const r = await boot(device, 'try b, corrupt kernel -> FAILED, rollback to a');
    expect(decision(r)).toMatch(new RegExp(`^${board.tag}: booting slot b \\(status try`));
    expect(r.output).toMatch(new RegExp(`${board.tag}: FAILED: (cannot load the kernel|the kernel) of slot b`));
    expect(r.output).toContain(`${board.tag}: booting slot a (rollback, slot b failed to load)`);
    expect(cmdline(r)).toContain('edgeimage.slot=a');
    expect(counted((await envAfter()).vars)).toEqual({ edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: 'b', edge_boot_count: '1' });
  }, BOOT_MS * 3);

  scriptRow('boot counting: 3 boots of slot a without a healthy one, then the 4th start leaves it for slot b (edge_failed_slot=a); when b has failed 3 boots too: FAILED: no bootable slot, and the machine powers off', async () => {
    device = fresh('count');
    // U-Boot starts in 0.1 s: every boot from a fresh image. OVMF takes 3 s: boot 1 is the first
    // test's, and boot 2 left count 2 as the host writes it here.
    const counts = board.gadget === 'pc' ? [3] : [1, 2, 3];
    if (board.gadget === 'pc') await writeImageEnv(device, bootPartitionOffset(device), { edge_boot_count: '2' });
    for (const n of counts) {
      const r = await boot(device, `counted boot ${n} of slot a`);
      expect(decision(r)).toBe(`${board.tag}: booting slot a (status empty)`);
      expect(r.output).toContain(`${board.tag}: boot ${n} of 3 of slot a without a healthy one\n`);
      expect((await envAfter()).vars.edge_boot_count).toBe(String(n));
    }
    const r4 = await boot(device, 'count 3 -> slot b');
    expect(decision(r4)).toBe(`${board.tag}: booting slot b (slot a failed 3 boots: leaving it for slot b)`);
    expect(cmdline(r4)).toContain('edgeimage.slot=b');
    const after = await envAfter();
    expect(counted(after.vars)).toEqual({ edge_slot: 'b', edge_failed_slot: 'a', edge_boot_count: '1', edge_status: '', edge_try_slot: '' });
    expect(after.decoded.env2).toEqual(after.decoded.env1);

    // b's boots 2 and 3 as they were recorded (the same steps as a's above)
    await writeImageEnv(device, bootPartitionOffset(device), { edge_boot_count: '3' });
    const before = await readEnv(device);
    const r5 = await boot(device, 'b failed 3 boots, a before -> power off', null);
    expect(r5.output).toContain(`${board.tag}: slot b failed 3 boots, slot a failed before\n${board.tag}: FAILED: no bootable slot: powering off\n`);
    expect(r5.output).not.toMatch(/booting slot|Kernel command line/);
    expect(r5.exited).toBe(true);
    // nothing to write: the state already says it, so every later start powers off at once
    const end = await envAfter();
    for (const k of Object.keys(ENV_FILES) as (keyof typeof ENV_FILES)[]) expect(Buffer.compare(end.files[k]!, before.files[k]!)).toBe(0);
  }, BOOT_MS * 6);

  it('a known-good slot whose kernel is missing is left at once, in the same start (edge_failed_slot=a); with both kernels missing: FAILED: no bootable slot, power off, and the next start powers off without loading anything', async () => {
    device = fresh('missing');
    breakKernel(device, 'a');
    const r1 = await boot(device, 'kernel of a missing -> b, same start');
    expect(decision(r1)).toBe(`${board.tag}: booting slot a (status empty)`);
    expect(r1.output).toContain(`${board.tag}: FAILED: cannot load the kernel of slot a`);
    expect(r1.output).toContain(`${board.tag}: booting slot b (slot a failed to load: leaving it for slot b)`);
    expect(cmdline(r1)).toContain('edgeimage.slot=b');
    expect(counted((await envAfter()).vars)).toEqual({ edge_slot: 'b', edge_failed_slot: 'a', edge_boot_count: '1', edge_status: '', edge_try_slot: '' });

    breakKernel(device, 'b');
    await writeImageEnv(device, bootPartitionOffset(device), { edge_slot: 'a', edge_failed_slot: '', edge_boot_count: '' });
    const r2 = await boot(device, 'both kernels missing -> power off', null);
    expect(r2.output).toContain(`${board.tag}: FAILED: cannot load the kernel of slot a`);
    expect(r2.output).toContain(`${board.tag}: FAILED: cannot load the kernel of slot b`);
    expect(r2.output).toContain(`${board.tag}: slot b failed to load, slot a failed before\n${board.tag}: FAILED: no bootable slot: powering off\n`);
    expect(r2.exited).toBe(true);
    expect(r2.output).not.toMatch(/Kernel command line|rebooting|resetting/);
    expect(counted((await envAfter()).vars)).toEqual({ edge_slot: 'b', edge_failed_slot: 'a', edge_boot_count: '3', edge_status: '', edge_try_slot: '' });

    const r3 = await boot(device, 'no bootable slot recorded -> power off at once', null);
    expect(r3.output).toContain(`${board.tag}: slot b failed 3 boots, slot a failed before\n${board.tag}: FAILED: no bootable slot: powering off\n`);
    expect(r3.output).not.toMatch(/booting slot|cannot load/);
    expect(r3.exited).toBe(true);
  }, BOOT_MS * 4);

  /**
   * The verified variants' own logic, without signatures (the signed payloads are built
   * elsewhere): pc's grub.cfg.verified built into a GRUB's memdisk with no verifier (Secure Boot
   * off: GRUB then chainloads an unsigned UKI), each slot's boot/uki.efi a UKI of systemd's stub and
   * Debian's kernel whose .cmdline names its slot; arm64-uboot's boot.cmd.verified run as boot.scr,
   * each slot's boot/boot.itb an unsigned FIT (kernel + QEMU's device tree; U-Boot's own tree holds
   * no key, so bootm checks only the hashes).
   */
  const verifiedRow = (gadget: Board['gadget'], name: string, fn: () => Promise<void>, timeout: number) =>
    board.gadget === gadget ? it(name, fn, timeout) : test.skip(`${name} — ${gadget} only`, fn, timeout);

  /** Writes BYTES as PATH into the slot labelled system-SLOT. */
  const slotFile = (disk: string, slot: 'a' | 'b', path: string, bytes: Buffer) => {
    const part = sfdiskJson(disk).partitions.find((p) => ext4Label(disk, p.start * 512) === `system-${slot}`)!;
    const at = `${disk}?offset=${part.start * 512}`;
    const src = join(tmp, `slot-file-${slot}`);
    writeFileSync(src, bytes);
    execFileSync('debugfs', ['-w', '-R', `rm ${path}`, at], { stdio: 'pipe' });
    execFileSync('debugfs', ['-w', '-R', `write ${src} ${path}`, at], { stdio: 'pipe' });
  };

  /** A GRUB for x86_64-efi with CONFIG built into its memdisk, as the verified GRUB has it, and no verifier. */
  const memdiskGrub = (config: string): Buffer => {
    const dir = join(tmp, `memdisk-${process.hrtime.bigint()}`);
    mkdirSync(join(dir, 'boot/grub'), { recursive: true });
    writeFileSync(join(dir, 'boot/grub/grub.cfg'), readFileSync(config));
    execFileSync('tar', ['--format=ustar', '-C', dir, '-cf', join(dir, 'memdisk.tar'), 'boot']);
    const out = join(dir, 'grub.efi');
    execFileSync('grub-mkimage', ['-O', 'x86_64-efi', '-d', '/usr/lib/grub/x86_64-efi', '-p', '(memdisk)/boot/grub', '-m', join(dir, 'memdisk.tar'), '-o', out,
      'part_gpt', 'part_msdos', 'fat', 'ext2', 'normal', 'chain', 'loadenv', 'test', 'true', 'echo', 'regexp', 'sleep', 'reboot', 'halt', 'probe', 'memdisk', 'tar']);
    return readFileSync(out);
  };

  /** A UKI of systemd's amd64 stub: .osrel, .cmdline, .linux, each section placed after the stub's image. */
  const uki = (cmdline: string): Buffer => {
    const stub = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
    const dir = join(tmp, `uki-${process.hrtime.bigint()}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'osrel'), 'ID=edgeimage\n');
    writeFileSync(join(dir, 'cmdline'), cmdline);
    writeFileSync(join(dir, 'linux'), kernels.amd64 as Buffer);
    const hdr = execFileSync('objdump', ['-p', stub], { encoding: 'utf8' });
    const field = (f: string) => parseInt(new RegExp(`^${f}\\s+([0-9a-f]+)`, 'm').exec(hdr)![1]!, 16);
    const align = (n: number) => Math.ceil(n / 4096) * 4096;
    let vma = align(field('ImageBase') + field('SizeOfImage'));
    const args: string[] = [];
    for (const sec of ['osrel', 'cmdline', 'linux']) {
      args.push('--add-section', `.${sec}=${join(dir, sec)}`, '--change-section-vma', `.${sec}=0x${vma.toString(16)}`);
      vma = align(vma + readFileSync(join(dir, sec)).length);
    }
    execFileSync('objcopy', [...args, stub, join(dir, 'uki.efi')]);
    return readFileSync(join(dir, 'uki.efi'));
  };

  verifiedRow('pc', 'grub.cfg.verified (in a memdisk GRUB, Secure Boot off): finds system-boot from $cmdpath, counts the boot, chainloads the slot\'s boot/uki.efi with no arguments (its own .cmdline); a UKI that does not load fails the slot at once; the dangerous one passes the whole command line when edge_kargs is set', async () => {
    for (const [variant, name] of [['grub.cfg.verified', 'verified'], ['grub.cfg.verified.dangerous', 'verified-dangerous']] as const) {
      const disk = fresh(name);
      await writeImageFile(disk, bootPartitionOffset(disk), 'EFI/BOOT/BOOTX64.EFI', memdiskGrub(join(assets, 'EFI/BOOT', variant)));
      for (const slot of ['a', 'b'] as const) slotFile(disk, slot, '/boot/uki.efi', uki(`console=ttyS0 panic=5 loglevel=6 edgeimage.uki=${slot}`));
      if (variant === 'grub.cfg.verified') {
        const r1 = await boot(disk, 'verified grub.cfg, slot a UKI');
        expect(decision(r1)).toBe(`${board.tag}: booting slot a (status empty)`);
        expect(cmdline(r1)).toBe('console=ttyS0 panic=5 loglevel=6 edgeimage.uki=a');
        expect(counted((await readEnv(disk)).vars).edge_boot_count).toBe('1');

        slotFile(disk, 'a', '/boot/uki.efi', Buffer.alloc(1 << 20, 0x5a));
        const r2 = await boot(disk, 'verified grub.cfg, slot a UKI junk -> b');
        expect(r2.output).toContain(`${board.tag}: FAILED: boot/uki.efi of slot a does not load or verify\n`);
        expect(r2.output).toContain(`${board.tag}: booting slot b (slot a failed to load: leaving it for slot b)\n`);
        expect(cmdline(r2)).toBe('console=ttyS0 panic=5 loglevel=6 edgeimage.uki=b');
        expect(counted((await readEnv(disk)).vars)).toEqual({ edge_slot: 'b', edge_try_slot: '', edge_status: '', edge_failed_slot: 'a', edge_boot_count: '1' });
      } else {
        await writeImageEnv(disk, bootPartitionOffset(disk), { edge_kargs: 'edge.crash=x' });
        const r3 = await boot(disk, 'verified.dangerous grub.cfg with edge_kargs');
        expect(cmdline(r3)).toBe(`console=ttyS0 edgeimage.slot=a edgeimage.bootpart=${partUuid(disk, 1)} panic=5 loglevel=6 edge.crash=x`);
      }
    }
  }, BOOT_MS * 4);

  verifiedRow('arm64-uboot', 'boot.cmd.verified (run as boot.scr, an unsigned FIT): boots the slot\'s boot/boot.itb with bootm and the script\'s bootargs; a FIT that bootm refuses (a bad hash) fails the slot at once; a file that is not a FIT is never given to bootm', async () => {
    const disk = fresh('verified-uboot');
    const dir = join(tmp, 'fit');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'Image'), kernels.arm64 as Buffer);
    execFileSync('qemu-system-aarch64', ['-M', `virt,dumpdtb=${join(dir, 'virt.dtb')}`, '-cpu', 'cortex-a57', '-m', '512', '-nodefaults', '-nographic', '-bios', '/usr/lib/u-boot/qemu_arm64/u-boot.bin'], { stdio: 'pipe' });
    writeFileSync(join(dir, 'fit.its'), `/dts-v1/;
/ {
  description = "test FIT, unsigned";
  #address-cells = <1>;
  images {
    kernel-1 { data = /incbin/("Image"); type = "kernel"; arch = "arm64"; os = "linux"; compression = "none"; load = <0x40400000>; entry = <0x40400000>; hash-1 { algo = "sha256"; }; };
    fdt-1 { data = /incbin/("virt.dtb"); type = "flat_dt"; arch = "arm64"; compression = "none"; hash-1 { algo = "sha256"; }; };
  };
  configurations { default = "conf-1"; conf-1 { kernel = "kernel-1"; fdt = "fdt-1"; }; };
};
`);
    execFileSync('mkimage', ['-f', join(dir, 'fit.its'), join(dir, 'boot.itb')], { stdio: 'pipe', env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' } });
    const fit = readFileSync(join(dir, 'boot.itb'));
    execFileSync('mkimage', ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-d', join(assets, 'boot.cmd.verified'), join(dir, 'boot.scr')], { stdio: 'pipe' });
    await writeImageFile(disk, bootPartitionOffset(disk), 'boot.scr', readFileSync(join(dir, 'boot.scr')));
    for (const slot of ['a', 'b'] as const) slotFile(disk, slot, '/boot/boot.itb', fit);

    const r1 = await boot(disk, 'verified boot.cmd, FIT of slot a');
    expect(decision(r1)).toBe(`${board.tag}: booting slot a (status empty)`);
    expect(cmdline(r1).split(/\s+/)).toEqual(expect.arrayContaining(['edgeimage.slot=a', `edgeimage.bootpart=${partUuid(disk, 1)}`]));

    // one byte of the kernel's data changed: its sha256 no longer matches, bootm refuses it
    const bad = Buffer.from(fit);
    const mid = Math.floor(bad.length / 2);
    bad[mid] = bad[mid]! ^ 0xff;
    slotFile(disk, 'a', '/boot/boot.itb', bad);
    const r2 = await boot(disk, 'verified boot.cmd, FIT of a with a bad hash -> b');
    expect(r2.output).toContain(`${board.tag}: FAILED: the boot payload of slot a does not verify or did not start\n`);
    expect(r2.output).toContain(`${board.tag}: booting slot b (slot a failed to load: leaving it for slot b)\n`);
    expect(cmdline(r2)).toContain('edgeimage.slot=b');

    // b's payload is not a FIT (a raw Image, which booti would start): never handed to bootm
    slotFile(disk, 'b', '/boot/boot.itb', kernels.arm64 as Buffer);
    const r3 = await boot(disk, 'verified boot.cmd, b not a FIT, a failed before -> power off', null);
    expect(r3.output).toContain(`${board.tag}: FAILED: boot/boot.itb of slot b is not a FIT image\n`);
    expect(r3.output).toContain(`${board.tag}: FAILED: no bootable slot: powering off\n`);
    expect(r3.output).not.toMatch(/Kernel command line|## Booting kernel/);
    expect(r3.exited).toBe(true);
  }, BOOT_MS * 4);
});
