/**
 * The screen of a boot test, on a real QEMU with a display, where it fails: Debian's kernel booted
 * directly (no root: it stops in a panic, which these boots do not watch) shows no page, so a
 * screen expectation fails naming what the screen showed and keeps the last screendump, and a
 * screenshot whose line never comes fails the boot with the screenshot taken at its end. What
 * passes is the kiosk's (kiosk.qemu.test.ts).
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDeb } from '@edgeimage/testkit/debian-kernel';
import { requires } from '@edgeimage/testkit/skips';
import { bootTest } from './boot-test.js';
import { hasQemu, missingQemu } from '@edgeimage/testkit/qemu-direct';
import { parseColour, readScreen } from './screen.js';

const deb: { deb?: string; missing?: string } = hasQemu ? kernelDeb('amd64') : { missing: missingQemu };
const dir = mkdtempSync(join(tmpdir(), 'screen-qemu-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Only the kernel image out of Debian's package (its modules are not needed to reach a panic). */
function vmlinuz(): string {
  execSync(`dpkg-deb --fsys-tarfile '${deb.deb}' | tar -x -C '${dir}' --wildcards './boot/vmlinuz-*'`);
  const name = readdirSync(join(dir, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
  return join(dir, 'boot', name);
}

const gated = requires(deb.missing);

gated.describe('boot-test: the screen when it is not what was expected', () => {
  const BLUE = parseColour('#1E90FF');

  test('a screen that never shows the colour: ERR_SCREEN_EXPECT with the share and colours seen, the last screendump kept; the screenshot still taken', async () => {
    const kernel = vmlinuz();
    const shot = join(dir, 'at-the-end.png');
    const log = join(dir, 'no-page.log');
    const r = await bootTest({ direct: { kernel, append: 'console=ttyS0 panic=-1' }, arch: 'amd64', expect: [/Linux version/], failOn: [], expectScreen: [{ colour: BLUE }], screenshot: { file: shot }, timeoutSeconds: 12, log });
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_SCREEN_EXPECT');
    expect(r.reason).toMatch(/the screen never showed screen #1E90FF ≥ 40 % \(±8\) in \d+ s of looking: the last screendump \(at [\d.]+ s\) had 0 % of \d+×\d+ pixels within ±8 of #1E90FF; it showed mostly #[0-9A-F]{6} [\d.]+ %/);
    const kept = join(dir, 'no-page.screen.png');
    expect(r.reason).toContain(`(kept as ${kept})`);
    expect(readScreen(kept).width).toBeGreaterThan(0);
    // the failed boot's screen, for whoever looks at why
    expect(r.screenshot?.file).toBe(shot);
    expect(existsSync(shot)).toBe(true);
    expect(r.command.args).toEqual(expect.arrayContaining(['-device', 'VGA,addr=0x11']));
  }, 60_000);

  test('QEMU exiting while the screen is looked at is ERR_QEMU_EXITED (the cause), not the QMP socket closing under it', async () => {
    const kernel = vmlinuz();
    // no root: a panic, then (panic=1) a reboot, which -no-reboot turns into QEMU's exit
    const r = await bootTest({ direct: { kernel, append: 'console=ttyS0 panic=1' }, arch: 'amd64', expect: [/Linux version/], failOn: [], noReboot: true, expectScreen: [{ colour: BLUE }], timeoutSeconds: 60 });
    expect([r.passed, r.code]).toEqual([false, 'ERR_QEMU_EXITED']);
    expect(r.reason).toMatch(/QEMU exited with status 0 while waiting for the screen: the guest rebooted or powered off/);
  }, 90_000);

  test('a screenshot at its line: taken when the line came, while the boot goes on', async () => {
    const kernel = vmlinuz();
    const shot = join(dir, 'at-the-line.png');
    const r = await bootTest({ direct: { kernel, append: 'console=ttyS0 panic=-1' }, arch: 'amd64', expect: [/Linux version/, /Kernel panic|VFS: Unable to mount root/], failOn: [], screenshot: { file: shot, after: /Linux version/ }, timeoutSeconds: 60 });
    expect([r.passed, r.reason]).toEqual([true, undefined]);
    // taken at the first marker's line (the screendump's own time: at or after it), before the last
    expect(r.screenshot!.file).toBe(shot);
    expect(r.screenshot!.seconds).toBeGreaterThanOrEqual(r.markers[0]!.seconds);
    expect(readScreen(shot).width).toBeGreaterThan(0);
  }, 90_000);

  test("a screenshot's line that never comes: ERR_SCREENSHOT_MARKER, the screenshot taken at the end instead", async () => {
    const kernel = vmlinuz();
    const shot = join(dir, 'after.png');
    const r = await bootTest({ direct: { kernel, append: 'console=ttyS0 panic=-1' }, arch: 'amd64', expect: [/Linux version/], failOn: [], screenshot: { file: shot, after: /kiosk-browser: showing/ }, settleSeconds: 2, timeoutSeconds: 30 });
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_SCREENSHOT_MARKER');
    expect(r.reason).toMatch(new RegExp(`no console line matched the screenshot's /kiosk-browser: showing/ before the boot ended; the screenshot ${shot.replace(/[.]/g, '\\.')} was taken at its end \\([\\d.]+ s\\) instead`));
    expect(readScreen(shot).width).toBeGreaterThan(0);
  }, 60_000);
});
