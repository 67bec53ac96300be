/**
 * `edgeimage boot-test` booting composed images with the real firmware (TCG): OVMF for the amd64
 * GPT image, U-Boot (the default for an arm64 MBR image), AAVMF for the arm64 GPT image. The
 * images' boot assets are noise, so the markers are the firmware's own lines; the boot never
 * reaches a kernel (the full image boots are the board tests').
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN } from '@edgeimage/testkit/repo';
import { makeTestImages, type TestImages } from '@edgeimage/testkit/boot-images';
import { run } from '@edgeimage/testkit/cli-run';
import { requires } from '@edgeimage/testkit/skips';

const T = 240_000;
const hasQemu = (b: string) => spawnSync(b, ['--version']).status === 0;
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
let images: TestImages;
let dir: string;
beforeAll(async () => {
  images = await makeTestImages();
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-boot-test-cli-'));
}, T);
afterAll(() => {
  images?.world.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface Report { passed: boolean; slot: string | null; markers: { pattern: string; seconds: number; line: string }[]; log: string; reason?: string; code?: string }

requires(hasQemu('qemu-system-x86_64') ? undefined : 'qemu-system-x86_64 is not installed').describe('amd64 (OVMF)', () => {
  test('passes on the firmware marker; --json and --junit parse; the build artifact is unchanged', async () => {
    const before = sha256(images.amd64Gpt);
    const log = join(dir, 'ovmf.log');
    const junit = join(dir, 'ovmf.xml');
    const r = await run(['boot-test', images.amd64Gpt, '--expect', 'BdsDxe: (loading|failed to load) Boot', '--timeout', '120', '--log', log, '--junit', junit, '--json']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.out) as Report;
    expect(j).toMatchObject({ passed: true, slot: null, log, markers: [{ pattern: 'BdsDxe: (loading|failed to load) Boot' }] });
    expect(j.markers[0]!.seconds).toBeGreaterThan(0);
    expect(j).not.toHaveProperty('reason');
    expect(readFileSync(log, 'utf8')).toContain(j.markers[0]!.line);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="boot-test [^"]*edge-pc\.img" tests="1" failures="0"/);
    const py = spawnSync('python3', ['-c', 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(len(d.getElementsByTagName("testsuite")), len(d.getElementsByTagName("testcase")))', junit], { encoding: 'utf8' });
    if (!py.error) expect(py.stdout.trim()).toBe('1 1');
    expect(sha256(images.amd64Gpt)).toBe(before);
  }, T);

  test('Ctrl-C: QEMU stops, the copy and the vars store are removed, exit 130', async () => {
    const tmp = mkdtempSync(join(dir, 'tmpdir-'));
    const log = join(dir, 'sigint.log');
    const child = spawn(process.execPath, [CLI_BIN, 'boot-test', images.amd64Gpt, '--log', log, '--timeout', '200'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TMPDIR: tmp }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Once the copy exists and QEMU runs (a first console line), interrupt the group as a terminal does.
    const started = Date.now();
    while (Date.now() - started < 120_000 && !(existsSync(log) && statSync(log).size > 0)) await new Promise((r) => setTimeout(r, 200));
    expect(readdirSync(tmp)).toHaveLength(1); // edgeimage-boot-*: the copy and the vars
    process.kill(-child.pid!, 'SIGINT');
    expect(await closed).toBe(130);
    expect(err).toMatch(/boot-test interrupted; QEMU stopped, temporary files removed .*\[ERR_ABORTED\]/);
    expect(readdirSync(tmp)).toEqual([]);
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    expect(ps.split('\n').filter((l) => l.includes(tmp))).toEqual([]);
  }, T);
});

requires(hasQemu('qemu-system-aarch64') ? undefined : 'qemu-system-aarch64 is not installed').describe('arm64 (U-Boot for MBR, AAVMF for GPT)', () => {
  test('an MBR image boots U-Boot by default; --disk-size grows the copy (U-Boot sees the capacity); a marker that never comes: exit 1, the reason and the tail', async () => {
    const size = statSync(images.arm64Mbr).size;
    const r = await run(['boot-test', images.arm64Mbr, '--expect', '^U-Boot 20\\d\\d', '--expect', 'Capacity: .* \\((\\d+) x 512\\)', '--expect', 'never printed', '--disk-size', '+64M', '--timeout', '25', '--log', join(dir, 'uboot.log')]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/\/\^U-Boot 20\\d\\d\/  U-Boot 20\d\d/);
    const sectors = Number(/Capacity: .* \((\d+) x 512\)/.exec(r.out)?.[1]);
    expect(sectors).toBe(size / 512 + 131072);
    expect(r.err).toMatch(/--- last lines of .*uboot\.log ---\n(\[ *\d+\.\d{3}\] .*\n)+---/);
    expect(r.err).toMatch(/boot-test .* failed \(arm64 uboot\): timed out after 2\d\.\d s waiting until \/never printed\/ appeared \[ERR_BOOT_TIMEOUT\]/);
    expect(statSync(images.arm64Mbr).size).toBe(size);
  }, T);

  test('a GPT image boots AAVMF by default; --json of a failed boot has the reason', async () => {
    const r = await run(['boot-test', images.arm64Gpt, '--expect', 'UEFI firmware', '--expect', 'never printed', '--timeout', '30', '--json', '--log', join(dir, 'aavmf.log')]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.out) as Report;
    expect(j.passed).toBe(false);
    expect(j.markers.map((m) => m.pattern)).toEqual(['UEFI firmware']);
    expect(j.code).toBe('ERR_BOOT_TIMEOUT');
    expect(j.reason).toMatch(/waiting until \/never printed\/ appeared/);
  }, T);
});
