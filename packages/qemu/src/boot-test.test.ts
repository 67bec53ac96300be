/**
 * bootTest's refusals before QEMU starts (each feeds the bad input and checks the message), the
 * default firmware per image, disk sizes, and the JSON/JUnit reports.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTest, parseDiskSize, type BootTestOptions, type BootTestResult } from './boot-test.js';
import { BootTestError } from './errors.js';
import { jsonReport, junitReport } from './report.js';
import { makeTestImages, type TestImages } from '@edgeimage/testkit/boot-images';
import { requires } from '@edgeimage/testkit/skips';

const missingPython = spawnSync('python3', ['--version']).status === 0 ? undefined : 'python3 is not installed';

const SLOW = 180_000;
let images: TestImages;
let tmp: string;
let emptyFw: string;
beforeAll(async () => {
  images = await makeTestImages();
  tmp = mkdtempSync(join(tmpdir(), 'edgeimage-boot-refusals-'));
  emptyFw = mkdtempSync(join(tmpdir(), 'edgeimage-no-firmware-'));
}, SLOW);
afterAll(() => {
  images?.world.cleanup();
  rmSync(tmp, { recursive: true, force: true });
  rmSync(emptyFw, { recursive: true, force: true });
});

async function refused(opts: BootTestOptions): Promise<BootTestError> {
  try {
    await bootTest({ tmpDir: tmp, timeoutSeconds: 5, ...opts });
  } catch (e) {
    if (e instanceof BootTestError) {
      // Refused before anything was made: no temp folder, no log.
      expect(readdirSync(tmp)).toEqual([]);
      return e;
    }
    throw e;
  }
  throw new Error('not refused');
}

describe('refusals before QEMU starts', () => {
  test('--arch contradicting the model: an amd64 image asked as arm64, an arm64 image asked as amd64', async () => {
    const a = await refused({ image: images.amd64Gpt, arch: 'arm64' });
    expect(a.code).toBe('ERR_ARCH_MISMATCH');
    expect(a.message).toMatch(/is an amd64 image \(the model of slot a\), but arm64 was asked for/);
    const b = await refused({ image: images.arm64Mbr, arch: 'amd64' });
    expect(b.code).toBe('ERR_ARCH_MISMATCH');
    expect(b.message).toMatch(/is an arm64 image .* but amd64 was asked for/);
  }, SLOW);

  test('an image without a system-boot partition', async () => {
    const e = await refused({ image: images.noBoot, arch: 'amd64' });
    expect(e.code).toBe('ERR_NO_BOOT_PARTITION');
    expect(e.message).toMatch(/no-boot\.img: no system-boot partition/);
  }, SLOW);

  test('an image whose architecture cannot be told needs --arch', async () => {
    const e = await refused({ image: images.noModel });
    expect(e.code).toBe('ERR_ARCH_UNKNOWN');
    // (its empty system-boot has no FAT either: the inspection's own reason is in the message)
    expect(e.message).toMatch(/no-model\.img: cannot tell the architecture \((no slot holds a model|its model cannot be read: .*)\); give it \(--arch amd64\|arm64\)$/s);
    // with --arch it gets as far as the firmware
    expect((await refused({ image: images.noModel, arch: 'amd64', firmwareDir: emptyFw })).code).toBe('ERR_FIRMWARE_MISSING');
  }, SLOW);

  test('a missing firmware file names the file and its Debian package; the default firmware follows the architecture and the partition table', async () => {
    const amd = await refused({ image: images.amd64Gpt, firmwareDir: emptyFw });
    expect(amd.code).toBe('ERR_FIRMWARE_MISSING');
    expect(amd.message).toContain(`firmware file ${join(emptyFw, 'OVMF_CODE_4M.fd')} is missing`);
    expect(amd.message).toMatch(/install the Debian package ovmf/);
    // arm64: MBR → U-Boot, GPT → UEFI (AAVMF); --firmware overrides
    expect((await refused({ image: images.arm64Mbr, firmwareDir: emptyFw })).message).toMatch(/u-boot\.bin is missing .*u-boot-qemu/);
    expect((await refused({ image: images.arm64Gpt, firmwareDir: emptyFw })).message).toMatch(/AAVMF_CODE\.fd is missing .*qemu-efi-aarch64/);
    expect((await refused({ image: images.arm64Mbr, firmware: 'uefi', firmwareDir: emptyFw })).message).toMatch(/AAVMF_CODE\.fd is missing/);
    expect((await refused({ image: images.arm64Gpt, firmwareFiles: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: join(emptyFw, 'my-vars.fd') } })).message).toMatch(/my-vars\.fd is missing .*given/);
  }, SLOW);

  test('a missing image, kernel or initrd; a disk size smaller than the image; KVM for a foreign architecture', async () => {
    expect((await refused({ image: join(tmp, 'nope.img') })).code).toBe('ERR_IMAGE_OPEN');
    expect((await refused({ direct: { kernel: join(tmp, 'vmlinuz') } })).message).toMatch(/kernel .*vmlinuz does not exist/);
    expect((await refused({ image: images.amd64Gpt, diskErrors: join(tmp, 'rules.conf') })).message).toMatch(/^disk error rules .*rules\.conf does not exist$/);
    const shrink = await refused({ image: images.amd64Gpt, diskSize: '1M' });
    expect(shrink.code).toBe('ERR_DISK_SIZE');
    expect(shrink.message).toMatch(/smaller than the image .*never shrunk/);
    expect((await refused({ image: images.amd64Gpt, diskSize: 'big' })).message).toMatch(/expected a size such as 3G/);
    const foreign = process.arch === 'x64' ? 'arm64' : 'amd64';
    expect((await refused({ image: foreign === 'arm64' ? images.arm64Gpt : images.amd64Gpt, accel: 'kvm' })).code).toBe('ERR_ACCEL');
  }, SLOW);

  test('forwards and HTTP expectations: a host port in use (named), a host port twice, a URL off the forwards or off the host', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const used = (server.address() as AddressInfo).port;
    try {
      const e = await refused({ image: images.amd64Gpt, forwards: [{ host: used, guest: 8080 }] });
      expect(e.code).toBe('ERR_PORT_IN_USE');
      expect(e.message).toBe(`host port ${used} (forward ${used}:8080) cannot be bound on 127.0.0.1 (EADDRINUSE): something else listens on it; choose another HOST_PORT`);
      expect(e.context).toMatchObject({ port: used, error: 'EADDRINUSE' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect((await refused({ image: images.amd64Gpt, forwards: [{ host: 18080, guest: 80 }, { host: 18080, guest: 81 }] })).message).toBe('forward: host port 18080 is forwarded twice (each host port goes to one guest port)');
    const off = await refused({ image: images.amd64Gpt, forwards: [{ host: 18080, guest: 8080 }], expectHttp: [{ url: 'http://127.0.0.1:18081/health' }] });
    expect(off.code).toBe('ERR_USAGE');
    expect(off.message).toBe('expect-http http://127.0.0.1:18081/health: port 18081 is not a forwarded host port (forwards: 18080:8080); the check reaches the guest through a forward');
    expect((await refused({ image: images.amd64Gpt, expectHttp: [{ url: 'http://127.0.0.1:18081/' }] })).message).toMatch(/port 18081 is not a forwarded host port \(no forwards\)/);
    expect((await refused({ image: images.amd64Gpt, forwards: [{ host: 18080, guest: 8080 }], expectHttp: [{ url: 'http://10.0.2.15:18080/' }] })).message).toMatch(/only http:\/\/127\.0\.0\.1:PORT/);
    expect((await refused({ image: images.amd64Gpt, forwards: [{ host: 18080, guest: 8080 }], expectHttp: [{ url: 'http://127.0.0.1:18080/' }], expectPowerOff: true })).message).toMatch(/HTTP expectations need the guest up/);
  }, SLOW);

  test('the screen: a screenshot at the end of a boot that powers off, a screen expectation out of range, a screenshot without the display or into a link', async () => {
    const sdir = mkdtempSync(join(tmpdir(), 'edgeimage-shots-'));
    const shot = join(sdir, 'end.png');
    const off = await refused({ image: images.amd64Gpt, screenshot: { file: shot }, expectPowerOff: true });
    expect([off.code, off.message]).toEqual(['ERR_USAGE', 'a screenshot at the end of the boot needs the guest up: with untilExit or expectPowerOff only with a console line to take it at (screenshot.after)']);
    expect((await refused({ image: images.amd64Gpt, screenshot: { file: shot }, untilExit: true })).code).toBe('ERR_USAGE');
    const blue = { r: 0x1e, g: 0x90, b: 0xff };
    expect((await refused({ image: images.amd64Gpt, expectScreen: [{ colour: blue, share: 40 }] })).message).toBe('expectScreen: share is a fraction above 0 and at most 1 (0.4 is 40 %), found 40');
    expect((await refused({ image: images.amd64Gpt, expectScreen: [{ colour: blue, share: 0 }] })).message).toMatch(/share is a fraction above 0/);
    expect((await refused({ image: images.amd64Gpt, expectScreen: [{ colour: { r: 300, g: 0, b: 0 } }] })).message).toBe('expectScreen: a colour is three whole numbers 0-255 (r, g, b), found {"r":300,"g":0,"b":0}');
    expect((await refused({ image: images.amd64Gpt, expectScreen: [{ colour: blue, tolerance: -1 }] })).message).toBe('expectScreen: tolerance is a whole number 0-255, found -1');
    expect((await refused({ image: images.amd64Gpt, screenshot: { file: shot }, display: false })).message).toBe('a screenshot needs the display: not with display false');
    const link = join(sdir, 'link.png');
    symlinkSync(join(sdir, 'nowhere.png'), link);
    expect((await refused({ image: images.amd64Gpt, screenshot: { file: link } })).message).toBe(`screenshot ${link}: is a symbolic link (not followed, not replaced): give another path`);
    expect((await refused({ image: images.amd64Gpt, screenshot: { file: join(sdir, 'shot.jpg') } })).message).toMatch(/the file is a PNG: name it FILE\.png/);
    rmSync(sdir, { recursive: true, force: true });
  }, SLOW);
});

test('parseDiskSize: relative and absolute, powers of 1024, rounded up to sectors, never smaller', () => {
  const M = 2 ** 20;
  expect(parseDiskSize('+1G', 64 * M)).toBe(64 * M + 2 ** 30);
  expect(parseDiskSize('3G', 64 * M)).toBe(3 * 2 ** 30);
  expect(parseDiskSize('100MiB', 64 * M)).toBe(100 * M);
  expect(parseDiskSize('+1000', 1024)).toBe(1024 + 1024);
  expect(parseDiskSize('64M', 64 * M)).toBe(64 * M);
  expect(() => parseDiskSize('63M', 64 * M)).toThrow(/never shrunk/);
  expect(() => parseDiskSize('-1G', 64 * M)).toThrow(/expected a size/);
});

describe('reports', () => {
  const failed: BootTestResult = {
    passed: false, slot: undefined, markers: [{ pattern: 'U-Boot 20', seconds: 1.5, line: 'U-Boot 2023.01' }], expected: ['U-Boot 20', 'healthy on slot ([ab])', 'later'],
    log: '/tmp/x & y.log', reason: 'kernel panic: VFS: Unable to mount root fs <0,0>', code: 'ERR_KERNEL_PANIC', tail: '[   1.000] "quoted" & <tag>',
    arch: 'arm64', firmware: 'uboot', image: 'pi.img', command: { binary: 'qemu-system-aarch64', args: [] }, seconds: 4.25,
  };
  const passed: BootTestResult = { ...failed, passed: true, slot: 'a', markers: [{ pattern: 'a', seconds: 1, line: 'a' }, { pattern: 'b', seconds: 2, line: 'b' }], expected: ['a', 'b'], reason: undefined, code: undefined, tail: undefined };

  test('JSON: an HTTP marker carries its URL and status', () => {
    const r: BootTestResult = { ...passed, markers: [...passed.markers, { pattern: 'GET http://127.0.0.1:18080/health (2xx)', seconds: 3, line: 'HTTP 200 {"status": "ok"}', http: { url: 'http://127.0.0.1:18080/health', status: 200 } }] };
    expect(jsonReport(r)['markers']).toEqual([
      { pattern: 'a', seconds: 1, line: 'a' },
      { pattern: 'b', seconds: 2, line: 'b' },
      { pattern: 'GET http://127.0.0.1:18080/health (2xx)', seconds: 3, line: 'HTTP 200 {"status": "ok"}', url: 'http://127.0.0.1:18080/health', status: 200 },
    ]);
  });

  test('JSON: passed, slot, markers with pattern and seconds, log; reason when failed', () => {
    expect(JSON.parse(JSON.stringify(jsonReport(failed)))).toMatchObject({ passed: false, slot: null, markers: [{ pattern: 'U-Boot 20', seconds: 1.5 }], log: '/tmp/x & y.log', reason: failed.reason, code: 'ERR_KERNEL_PANIC' });
    const p = jsonReport(passed);
    expect(p).toMatchObject({ passed: true, slot: 'a' });
    expect(p).not.toHaveProperty('reason');
  });

  test('JUnit: one testsuite, one testcase per marker, the failure on the marker not reached, later ones skipped', () => {
    const xml = junitReport(failed);
    expect(xml.match(/<testsuite /g)).toHaveLength(1);
    expect(xml.match(/<testcase /g)).toHaveLength(3);
    expect(xml).toMatch(/<testsuite name="boot-test pi\.img" tests="3" failures="1" errors="0" skipped="1"/);
    expect(xml).toMatch(/<testcase classname="boot-test pi\.img" name="healthy on slot \(\[ab\]\)" time="2\.750">\s*<failure type="ERR_KERNEL_PANIC" message="kernel panic: VFS: Unable to mount root fs &lt;0,0&gt;">\[   1\.000\] &quot;quoted&quot; &amp; &lt;tag&gt;<\/failure>/);
    expect(xml).toMatch(/name="later" time="0\.000">\s*<skipped\/>/);
    expect(junitReport(passed)).toMatch(/tests="2" failures="0" errors="0" skipped="0"/);
  });

  requires(missingPython).test('JUnit: an XML parser (python3 minidom) reads it: three testcases, one failure', () => {
    const py = spawnSync('python3', ['-c', 'import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.read()); print(len(d.getElementsByTagName("testcase")), len(d.getElementsByTagName("failure")))'], { input: junitReport(failed), encoding: 'utf8' });
    expect(py.stdout.trim()).toBe('3 1');
  });
});
