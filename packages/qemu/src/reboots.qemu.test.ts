/**
 * bootTest `reboots` on a real machine: a direct boot of Debian's amd64 kernel whose initramfs
 * fails its first boot and reboots, then reaches the marker and powers off — the restart is seen
 * from SeaBIOS's banner in one QEMU process. (The consoles of OVMF, AAVMF and U-Boot are played
 * in boot-test-reboots.test.ts.)
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTest } from './boot-test.js';
import { CONSOLE, hasQemu, makeGuest, type Guest } from '@edgeimage/testkit/qemu-guest';

const T = 240_000;
const amd64: Guest | string = hasQemu('amd64') ? await makeGuest('amd64') : 'qemu-system-x86_64 is not installed';
afterAll(() => {
  if (typeof amd64 !== 'string') amd64.cleanup();
});

(typeof amd64 === 'string' ? describe.skip : describe)(`bootTest reboots: a direct amd64 boot that fails once, reboots and comes up${typeof amd64 === 'string' ? ` — skipped: ${amd64}` : ''}`, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeimage-reboots-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the first boot's FAILED line is reported, the reboot seen, the marker of the second boot passes, the power-off is the end", async () => {
    const g = amd64 as Guest;
    const disk = join(dir, 'disk.img');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, 2 ** 20);
    closeSync(fd);
    // The boot count lives on the disk, which the reboot keeps.
    const script = 'n=$(dd if=/dev/vda bs=1 count=8 2>/dev/null | tr -dc 0-9)\nn=$((${n:-0} + 1))\nprintf "%08d" $n | dd of=/dev/vda bs=1 conv=notrunc 2>/dev/null\nsync\n' +
      'if [ $n -eq 1 ]; then echo "edgeimage-initramfs: FAILED: boot $n fails on purpose"; reboot -f; fi\necho "edgeimage-health: healthy on slot b"\npoweroff -f\n';
    const r = await bootTest({
      image: disk,
      arch: 'amd64',
      direct: { kernel: g.kernel.vmlinuz, initrd: await g.initrd(script), append: `${CONSOLE.amd64} quiet loglevel=1 nowatchdog nosoftlockup` },
      reboots: 1,
      expectPowerOff: true,
      expect: [/edgeimage-health: healthy on slot ([ab])/],
      timeoutSeconds: 180,
      log: join(dir, 'reboot.log'),
    });
    expect(r.reason).toBeUndefined();
    expect(r.passed).toBe(true);
    expect(r.slot).toBe('b');
    expect(r.poweredOff).toBe(true);
    expect(r.boots).toMatchObject([
      { index: 0, banner: expect.stringMatching(/^SeaBIOS \(version /), failed: 'the initramfs failed: boot 1 fails on purpose', code: 'ERR_INITRAMFS_FAILED' },
      { index: 1, banner: expect.stringMatching(/^SeaBIOS \(version /) },
    ]);
    expect(r.boots![1]!.seconds).toBeGreaterThan(r.boots![0]!.seconds);
    expect(r.markers[0]!.seconds).toBeGreaterThan(r.boots![1]!.seconds);
    expect(readFileSync(r.log, 'utf8')).toMatch(/qemu: exited \(status 0\)/);
  }, T);
});
