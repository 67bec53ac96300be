/**
 * Real direct boots (Debian kernel, busybox initramfs whose /init prints markers) under QEMU TCG:
 * markers in order with timestamps, the log, failure causes (panic, initramfs FAILED, GRUB error
 * line, timeout, QEMU exiting), the disk copy (artifact unchanged, grown, state kept in place).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTest, type BootTestOptions } from './boot-test.js';
import { QemuSession } from './session.js';
import { qemuCommand } from './machine.js';
import { CONSOLE, hasQemu, makeGuest, type Guest } from '@edgeimage/testkit/qemu-guest';

const T = 240_000;
// The guests (a Debian kernel and a busybox initramfs builder) are made before the tests are
// declared, so a missing prerequisite skips them through jest with the reason in the title.
const amd64: Guest | string = hasQemu('amd64') ? await makeGuest('amd64') : 'qemu-system-x86_64 is not installed';
const arm64: Guest | string = hasQemu('arm64') ? await makeGuest('arm64') : 'qemu-system-aarch64 is not installed';
const skipNote = (g: Guest | string) => (typeof g === 'string' ? ` — skipped: ${g}` : '');
// once every test is over: a guest's cleanup removes every extracted kernel, the other's too
afterAll(() => {
  for (const g of [amd64, arm64]) if (typeof g !== 'string') g.cleanup();
});
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

(typeof amd64 === 'string' ? describe.skip : describe)(`bootTest: direct boots of the Debian amd64 kernel${skipNote(amd64)}`, () => {
  const g = amd64;
  let dir: string;
  let tmp: string;
  let disk: string;
  const direct = async (script: string, append = ''): Promise<BootTestOptions['direct']> => {
    const guest = g as Guest;
    return { kernel: guest.kernel.vmlinuz, initrd: await guest.initrd(script), append: `${CONSOLE.amd64} quiet loglevel=1 nowatchdog nosoftlockup panic=-1 ${append}`.trim() };
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgeimage-qemu-test-'));
    // Our own temp folder: the tests check that the boot leaves nothing behind in it.
    tmp = mkdtempSync(join(tmpdir(), 'edgeimage-qemu-tmp-'));
    disk = join(dir, 'disk.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 8 * 2 ** 20);
    closeSync(fd);
  }, T);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  // (loglevel=1 and no lockup watchdog: a kernel message printed in the middle of the guest's
  // lines would split them; a loaded CI host makes TCG guests report soft lockups)
  test('markers are matched in order, with timestamps; the slot comes from the capture group; the log has every line', async () => {
    const log = join(dir, 'order.log');
    const r = await bootTest({
      image: disk,
      arch: 'amd64',
      tmpDir: tmp,
      log,
      direct: await direct('echo "guest: second"\necho "guest: first"\nsleep 1\necho "guest: second"\necho "edgeimage-health: healthy on slot b"\nsleep 600\n'),
      expect: [/guest: first/, /guest: second/, /edgeimage-health: healthy on slot ([ab])/],
      timeoutSeconds: 120,
    });
    console.log(`amd64 direct boot: markers at ${r.markers.map((m) => m.seconds.toFixed(2)).join(', ')} s`);
    expect(r.reason).toBeUndefined();
    expect(r.passed).toBe(true);
    expect(r.slot).toBe('b');
    expect(r.markers.map((m) => m.pattern)).toEqual(['guest: first', 'guest: second', 'edgeimage-health: healthy on slot ([ab])']);
    // "second" before "first" was not taken: the second marker is the line after "first".
    expect(r.markers[1]!.seconds).toBeGreaterThanOrEqual(r.markers[0]!.seconds);
    expect(r.markers[2]!.seconds).toBeGreaterThanOrEqual(r.markers[1]!.seconds);
    const text = readFileSync(log, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    expect(lines.every((l) => /^\[ *\d+\.\d{3}\] /.test(l))).toBe(true);
    // (the guest's first line can share the console line with the firmware's last words, e.g.
    // SeaBIOS's "Booting from ROM.." that ends without a newline: match the line's end only)
    const firstAt = lines.findIndex((l) => l.endsWith('guest: first'));
    expect(firstAt).toBeGreaterThan(0);
    expect(lines.findIndex((l) => l.endsWith('guest: second'))).toBeLessThan(firstAt);
    expect(lines[firstAt + 1]).toMatch(/\] guest: second$/);
    // QEMU killed after the last marker (the guest sleeps), temp folder emptied.
    expect(readdirSync(tmp)).toEqual([]);
  }, T);

  test('a kernel panic (garbage initrd) fails the boot as ERR_KERNEL_PANIC, naming it, with the log tail', async () => {
    const garbage = join(dir, 'garbage.cpio');
    writeFileSync(garbage, Buffer.alloc(4096, 0x5a));
    const guest = g as Guest;
    const r = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'panic.log'), direct: { kernel: guest.kernel.vmlinuz, initrd: garbage, append: `${CONSOLE.amd64} panic=0` }, expect: [/never printed/], timeoutSeconds: 120 });
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_KERNEL_PANIC');
    expect(r.reason).toMatch(/^kernel panic: .*(VFS|init)/);
    expect(r.reason).toMatch(/still waiting for \/never printed\//);
    expect(r.tail).toMatch(/Kernel panic - not syncing/);
    expect(readdirSync(tmp)).toEqual([]);
  }, T);

  test("the initramfs's FAILED line and a GRUB error line fail the boot, naming the reason", async () => {
    const initramfs = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'failed.log'), direct: await direct('echo "edgeimage-initramfs: FAILED: no partition system-b"\nsleep 600\n'), expect: [/healthy/], timeoutSeconds: 120 });
    expect(initramfs.code).toBe('ERR_INITRAMFS_FAILED');
    expect(initramfs.reason).toMatch(/^the initramfs failed: no partition system-b/);
    const grub = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'grub.log'), direct: await direct("echo\necho 'error: invalid magic number.'\necho 'error: you need to load the kernel first.'\nsleep 600\n"), expect: [/healthy/], timeoutSeconds: 120 });
    // (the tail in the compared object: a failure shows what the console printed)
    expect({ code: grub.code, reason: grub.reason, tail: grub.tail }).toEqual({ code: 'ERR_BOOTLOADER', reason: expect.stringMatching(/^GRUB error: invalid magic number\./), tail: expect.any(String) });
  }, T);

  test('a marker that never appears times out with the log tail, without hanging; QEMU is killed', async () => {
    const r = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'timeout.log'), direct: await direct('echo "guest: up"\nsleep 600\n'), expect: [/guest: up/, /never printed/], timeoutSeconds: 25 });
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_BOOT_TIMEOUT');
    expect(r.reason).toMatch(/timed out after .* waiting until \/never printed\/ appeared/);
    expect(r.markers.map((m) => m.pattern)).toEqual(['guest: up']);
    expect(r.tail).toMatch(/guest: up/);
    expect(r.tail!.split('\n').length).toBeLessThanOrEqual(30);
    // QEMU was ended by us (SIGTERM), not by the guest.
    expect(readFileSync(r.log, 'utf8')).toMatch(/qemu: .*terminating on signal 15/);
  }, T);

  test('QEMU exiting before the marker (the guest powers off) is ERR_QEMU_EXITED; untilExit waits for the power-off', async () => {
    const d = await direct('echo "guest: up"\npoweroff -f\n');
    const early = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'exit.log'), direct: d, expect: [/guest: up/, /never printed/], timeoutSeconds: 120 });
    expect(early.code).toBe('ERR_QEMU_EXITED');
    expect(early.reason).toMatch(/^QEMU exited with status 0 after .* before \/never printed\/ appeared/);
    const until = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'until.log'), direct: d, expect: [/guest: up/], untilExit: true, timeoutSeconds: 120 });
    expect(until.passed).toBe(true);
    expect(readFileSync(until.log, 'utf8')).toMatch(/qemu: exited \(status 0\)/);
    // A kernel QEMU cannot load: QEMU exits at once, its own error in the reason.
    const bad = join(dir, 'not-a-kernel');
    writeFileSync(bad, 'not a kernel\n');
    const refused = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, log: join(dir, 'bad.log'), direct: { kernel: bad }, expect: [/x/], timeoutSeconds: 60 });
    expect(refused.code).toBe('ERR_QEMU_EXITED');
    expect(refused.reason).toMatch(/^QEMU exited with status 1 after .* before \/x\/ appeared: .*invalid kernel header/);
  }, T);

  test('the image is booted from a copy (unchanged after the guest wrote to its disk); --in-place keeps the state across boots; diskSize grows the copy', async () => {
    const script = 'n=$(dd if=/dev/vda bs=1 count=8 2>/dev/null | tr -dc 0-9)\nn=$((${n:-0} + 1))\nprintf "%08d" $n | dd of=/dev/vda bs=1 conv=notrunc 2>/dev/null\nsync\necho "guest: boot $n size $(cat /sys/block/vda/size)"\npoweroff -f\n';
    const d = await direct(script);
    const before = sha256(disk);
    const counter = /guest: boot (\d+) size (\d+)/;
    const copy1 = await bootTest({ image: disk, arch: 'amd64', tmpDir: tmp, direct: d, expect: [counter], untilExit: true, timeoutSeconds: 120, diskSize: '+1M' });
    expect(copy1.passed).toBe(true);
    expect(copy1.markers[0]!.line).toMatch(/guest: boot 1 size 18432$/); // 8 MiB + 1 MiB in sectors
    expect(sha256(disk)).toBe(before);
    expect(statSync(disk).size).toBe(8 * 2 ** 20);
    rmSync(copy1.log);

    const img = join(dir, 'in-place.img');
    writeFileSync(img, Buffer.alloc(2 ** 20));
    const lines: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await bootTest({ image: img, arch: 'amd64', tmpDir: tmp, direct: d, expect: [counter], untilExit: true, timeoutSeconds: 120, inPlace: true, diskSize: i === 0 ? '4M' : undefined });
      expect(r.passed).toBe(true);
      lines.push(r.markers[0]!.line);
      rmSync(r.log);
    }
    // (SeaBIOS's "Booting from ROM.." has no newline: the guest's line follows it.)
    expect(lines[0]).toMatch(/guest: boot 1 size 8192$/);
    expect(lines[1]).toMatch(/guest: boot 2 size 8192$/);
    expect(readFileSync(img).subarray(0, 8).toString()).toBe('00000002');
    expect(readdirSync(tmp)).toEqual([]);
  }, T);

  test('QemuSession follows two boots of one QEMU process (a reboot continues in the same process)', async () => {
    const script = 'n=$(dd if=/dev/vda bs=1 count=8 2>/dev/null | tr -dc 0-9)\nn=$((${n:-0} + 1))\nprintf "%08d" $n | dd of=/dev/vda bs=1 conv=notrunc 2>/dev/null\nsync\necho "guest: boot $n"\nif [ $n -ge 2 ]; then poweroff -f; fi\nreboot -f\n';
    const guest = g as Guest;
    const img = join(dir, 'session.img');
    writeFileSync(img, Buffer.alloc(2 ** 20));
    const s = QemuSession.start(qemuCommand({ arch: 'amd64', accel: 'tcg', disk: img, direct: { kernel: guest.kernel.vmlinuz, initrd: await guest.initrd(script), append: `${CONSOLE.amd64} quiet` } }), { log: join(dir, 'session.log') });
    try {
      const one = await s.waitFor(/guest: boot (\d)/, 120_000);
      const two = await s.waitFor(/guest: boot (\d)/, 120_000);
      expect([one.match[1], two.match[1]]).toEqual(['1', '2']);
      expect(two.index).toBeGreaterThan(one.index);
      expect((await s.waitForExit(60_000)).code).toBe(0);
      await expect(s.waitFor(/anything/, 1000)).rejects.toMatchObject({ code: 'ERR_QEMU_EXITED' });
    } finally {
      await s.kill();
    }
    expect(existsSync(join(dir, 'session.log'))).toBe(true);
  }, T);
});

(typeof arm64 === 'string' ? describe.skip : describe)(`bootTest: a direct boot of the Debian arm64 kernel (virt, cortex-a57)${skipNote(arm64)}`, () => {
  const g = arm64 as Guest;

  test('reaches the marker on ttyAMA0 without a disk; a named group `slot` gives the slot', async () => {
    const r = await bootTest({ arch: 'arm64', direct: { kernel: g.kernel.vmlinuz, initrd: await g.initrd('echo "guest: arm64 up on a"\nsleep 600\n'), append: `${CONSOLE.arm64} quiet` }, expect: [/guest: arm64 up on (?<slot>[ab])/], timeoutSeconds: 120 });
    console.log(`arm64 direct boot: marker at ${r.markers[0]?.seconds.toFixed(2)} s`);
    expect(r.reason).toBeUndefined();
    expect(r.slot).toBe('a');
    expect(r.command.args).toEqual(expect.arrayContaining(['-M', 'virt', '-cpu', 'cortex-a57']));
    expect(r.command.args).not.toContain('-drive');
  }, T);
});
