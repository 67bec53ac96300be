/**
 * The writable paths of the initramfs (writable-paths.sh, part of /init), run for real by the
 * host's busybox sh on a base tree and a data folder in a temporary directory. Only the bind is
 * stood in for (it prints what /init would mount): everything else — the checks of the base's
 * list, the copies, the removal of what was planted on system-data — is the code the device runs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WRITABLE_PATHS_SH } from './init.js';
import { requires } from '@edgeimage/testkit/skips';

const BUSYBOX = '/bin/busybox';
const missingBusybox = spawnSync(BUSYBOX, ['--list']).status === 0 ? undefined : `${BUSYBOX} is not installed (Debian package busybox-static)`;

let dir: string;
let root: string;
let data: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-writable-paths-'));
  root = join(dir, 'root');
  data = join(dir, 'writable/system-data');
  mkdirSync(join(root, 'etc/edgeimage'), { recursive: true });
  mkdirSync(join(root, 'var/lib'), { recursive: true });
  mkdirSync(join(dir, 'writable'));
  writeFileSync(join(root, 'var/lib/state'), 'from the base\n');
  symlinkSync('../lib/state', join(root, 'var/lib/link'));
  writeFileSync(join(root, 'etc/hostname'), 'edge\n');
  writeFileSync(join(root, 'etc/machine-id'), '');
  chmodSync(join(root, 'etc/machine-id'), 0o444);
  mkdirSync(join(dir, 'elsewhere'));
  writeFileSync(join(dir, 'elsewhere/secret'), 'not for the device\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const list = (text: string) => writeFileSync(join(root, 'etc/edgeimage/writable-paths'), text);

/** Runs edge_writable_paths ROOT DATA as /init does; say/fail as /init's, the bind printed. */
function run(): { status: number | null; out: string; binds: string[] } {
  const script = `say() { echo "edgeimage-initramfs: $*"; }
fail() { echo "edgeimage-initramfs: FAILED: $*"; exit 1; }
edge_bind() { echo "BIND $1 $2"; }
${WRITABLE_PATHS_SH}
edge_writable_paths "$1" "$2"
echo "END"`;
  // bounded: a boot that would hang (a FIFO read or written) fails the test instead of hanging jest
  const r = spawnSync(BUSYBOX, ['sh', '-c', script, 'sh', root, data], { encoding: 'utf8', timeout: 20_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const out = `${r.stdout}${r.stderr}`;
  return { status: r.status, out, binds: out.split('\n').filter((l) => l.startsWith('BIND ')).map((l) => l.slice(5).replace(new RegExp(dir, 'g'), '')) };
}

requires(missingBusybox).describe('initramfs writable paths (busybox sh)', () => {
  test('no list in the base: nothing made, nothing bound', () => {
    const r = run();
    expect(r.status).toBe(0);
    expect(r.out).toContain('edgeimage-initramfs: the base has no /etc/edgeimage/writable-paths: no writable paths');
    expect(r.binds).toEqual([]);
    expect(existsSync(data)).toBe(false);
  });

  test('synced: a copy of the base item (links inside kept as links); persistent: an empty item of its type, owner and mode; each bound over the base; a second boot keeps the data', () => {
    list('/var synced\n/etc/machine-id persistent\n/etc/hostname synced\n');
    const r = run();
    expect(r.out).toContain('END');
    expect(r.binds).toEqual(['/writable/system-data/var /root/var', '/writable/system-data/etc/machine-id /root/etc/machine-id', '/writable/system-data/etc/hostname /root/etc/hostname']);
    expect(r.out).toContain('edgeimage-initramfs: writable path /var: data copy made (synced)');
    expect(r.out).toContain('edgeimage-initramfs: 3 writable path(s) bound from system-data');
    expect(readFileSync(join(data, 'var/lib/state'), 'utf8')).toBe('from the base\n');
    expect(readlinkSync(join(data, 'var/lib/link'))).toBe('../lib/state');
    expect(readFileSync(join(data, 'etc/hostname'), 'utf8')).toBe('edge\n');
    // the machine id is made once, here: systemd's own write fails on a read-only /etc
    const id = readFileSync(join(data, 'etc/machine-id'), 'utf8');
    expect(id).toMatch(/^[0-9a-f]{32}\n$/);
    expect(r.out).toContain('edgeimage-initramfs: writable path /etc/machine-id: machine id made');
    expect(statSync(join(data, 'etc/machine-id')).mode & 0o7777).toBe(0o444);
    expect(existsSync(join(data, 'var.edgeimage-new'))).toBe(false);
    // the device changed its data: the next boot binds it as it is
    writeFileSync(join(data, 'etc/hostname'), 'renamed\n');
    const again = run();
    expect(again.binds).toHaveLength(3);
    expect(again.out).not.toContain('data copy made');
    expect(readFileSync(join(data, 'etc/hostname'), 'utf8')).toBe('renamed\n');
    expect(readFileSync(join(data, 'etc/machine-id'), 'utf8')).toBe(id);
    expect(again.out).not.toContain('machine id made');
  });

  test.each([
    ['a link to a file outside system-data', () => symlinkSync(join(dir, 'elsewhere/secret'), join(data, 'etc/machine-id.edgeimage-new'))],
    ['a FIFO (the write would hang the boot)', () => spawnSync('mkfifo', [join(data, 'etc/machine-id.edgeimage-new')])],
    ['a folder', () => mkdirSync(join(data, 'etc/machine-id.edgeimage-new/x'), { recursive: true })],
  ])('the machine id is written through nothing planted at its temporary name: %s (review F1)', (_what, plant) => {
    list('/etc/machine-id persistent\n');
    mkdirSync(join(data, 'etc'), { recursive: true });
    writeFileSync(join(data, 'etc/machine-id'), '');
    chmodSync(join(dir, 'elsewhere/secret'), 0o600);
    plant();
    const r = run();
    expect(r.status).toBe(0);
    expect(r.out).toContain('END');
    expect(readFileSync(join(data, 'etc/machine-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    expect(lstatSync(join(data, 'etc/machine-id')).isFile()).toBe(true);
    // the mode is the verified base's, not the data copy's
    expect(statSync(join(data, 'etc/machine-id')).mode & 0o7777).toBe(0o444);
    expect(readFileSync(join(dir, 'elsewhere/secret'), 'utf8')).toBe('not for the device\n');
    expect(statSync(join(dir, 'elsewhere/secret')).mode & 0o7777).toBe(0o600);
  });

  test('a file planted where a folder of a data copy belongs (system-data/etc) is removed and the copy made; the boot goes on (review F2)', () => {
    list('/etc/hostname synced\n');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'etc'), 'x');
    const r = run();
    expect(r.status).toBe(0);
    expect(r.out).toContain(`writable path /etc/hostname: ${data}/etc on system-data is not a folder: removed, made again`);
    expect(r.binds).toEqual(['/writable/system-data/etc/hostname /root/etc/hostname']);
    expect(readFileSync(join(data, 'etc/hostname'), 'utf8')).toBe('edge\n');
  });

  test('an empty /etc/machine-id on system-data (left by an older initramfs) gets a machine id; a set one is kept', () => {
    list('/etc/machine-id persistent\n');
    mkdirSync(join(data, 'etc'), { recursive: true });
    writeFileSync(join(data, 'etc/machine-id'), '');
    expect(run().out).toContain('machine id made');
    expect(readFileSync(join(data, 'etc/machine-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    writeFileSync(join(data, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    expect(run().out).not.toContain('machine id made');
    expect(readFileSync(join(data, 'etc/machine-id'), 'utf8')).toBe('0123456789abcdef0123456789abcdef\n');
  });

  test.each([
    ['..', '/var/../etc synced', 'the path has an empty, . or .. component'],
    ['.. at the end', '/etc/.. synced', 'the path has an empty, . or .. component'],
    ['a . component', '/./etc synced', 'the path has an empty, . or .. component'],
    ['//', '//etc synced', 'the path has an empty, . or .. component'],
    ['the root', '/ synced', 'the root itself cannot be a writable path'],
    ['a relative path', 'etc/hostname synced', 'the path is not absolute'],
    ['/writable', '/writable synced', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['a path under /writable', '/writable/system-data persistent', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['/run', '/run/edgeimage synced', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['/proc', '/proc synced', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['/sys', '/sys/kernel synced', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['/dev', '/dev/sda persistent', 'the path is under /writable, /run, /proc, /sys or /dev'],
    ['a bad mode', '/var rw', 'mode "rw"; expected persistent or synced'],
    ['the modules folder (review F3)', '/usr/lib/modules synced', "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)"],
    ['a folder under the modules', '/usr/lib/modules/6.1.0-28-amd64 synced', "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)"],
    ['a folder above the modules', '/usr/lib persistent', "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)"],
    ['/usr', '/usr synced', "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)"],
    ['/lib/modules', '/lib/modules synced', "the path is or holds /usr/lib/modules (the kernel bundle's modules are never writable)"],
    ['no mode', '/var', 'expected PATH MODE (MODE persistent or synced)'],
    ['three fields', '/var synced extra', 'more than two fields; expected PATH MODE'],
    ['a tab', '/var\tsynced', 'a tab; expected PATH MODE separated by one space'],
    ['a shell character', '/var/$(reboot) synced', 'the path has a character other than A-Z a-z 0-9 . _ / -'],
    ['a space in the path', '/var x synced', 'more than two fields'],
  ])('refuses %s: the boot fails naming the line, before anything is made or bound', (_what, line, why) => {
    list(`/etc/hostname synced\n${line}\n`);
    const r = run();
    expect(r.status).toBe(1);
    expect(r.out).toContain(`edgeimage-initramfs: FAILED: /etc/edgeimage/writable-paths line 2: "${line}": ${why}`);
    expect(r.binds).toEqual([]);
    expect(existsSync(data)).toBe(false);
  });

  test('refuses a list of more than 256 lines, and one of more than 64 KiB', () => {
    list(Array.from({ length: 257 }, (_, i) => `/var/x${i} synced\n`).join(''));
    let r = run();
    expect(r.status).toBe(1);
    expect(r.out).toContain('FAILED: /etc/edgeimage/writable-paths of the base has more than 256 lines');
    list(`/var/${'a'.repeat(70_000)} synced\n`);
    r = run();
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/FAILED: \/etc\/edgeimage\/writable-paths of the base is 70013 bytes, more than 65536/);
    expect(r.binds).toEqual([]);
  });

  test('refuses a list that is not a regular file (a link, a folder)', () => {
    symlinkSync('/etc/passwd', join(root, 'etc/edgeimage/writable-paths'));
    const r = run();
    expect(r.status).toBe(1);
    expect(r.out).toContain('FAILED: /etc/edgeimage/writable-paths of the base is not a regular file');
  });

  test('a data copy planted as a symbolic link (to a folder elsewhere) is removed and made again: the bind never follows it', () => {
    list('/var synced\n');
    mkdirSync(data, { recursive: true });
    symlinkSync(join(dir, 'elsewhere'), join(data, 'var'));
    const r = run();
    expect(r.status).toBe(0);
    expect(r.out).toContain(`edgeimage-initramfs: writable path /var: the data copy ${data}/var is a symbolic link (to ${dir}/elsewhere): removed, made again`);
    expect(lstatSync(join(data, 'var')).isDirectory()).toBe(true);
    expect(readFileSync(join(data, 'var/lib/state'), 'utf8')).toBe('from the base\n');
    expect(r.binds).toEqual(['/writable/system-data/var /root/var']);
    // what the link pointed at is untouched
    expect(readFileSync(join(dir, 'elsewhere/secret'), 'utf8')).toBe('not for the device\n');
  });

  test('a folder above the data copy planted as a symbolic link is removed too (the copy would land elsewhere)', () => {
    list('/etc/hostname synced\n');
    mkdirSync(data, { recursive: true });
    symlinkSync(join(dir, 'elsewhere'), join(data, 'etc'));
    const r = run();
    expect(r.out).toContain(`the data copy ${data}/etc is a symbolic link (to ${dir}/elsewhere): removed, made again`);
    expect(lstatSync(join(data, 'etc')).isDirectory()).toBe(true);
    expect(readFileSync(join(data, 'etc/hostname'), 'utf8')).toBe('edge\n');
    expect(existsSync(join(dir, 'elsewhere/hostname'))).toBe(false);
    expect(r.binds).toEqual(['/writable/system-data/etc/hostname /root/etc/hostname']);
  });

  test('a file data copy planted as a symbolic link to a file elsewhere is removed and made again', () => {
    list('/etc/hostname synced\n');
    mkdirSync(join(data, 'etc'), { recursive: true });
    symlinkSync(join(dir, 'elsewhere/secret'), join(data, 'etc/hostname'));
    const r = run();
    expect(r.out).toContain('is a symbolic link');
    expect(lstatSync(join(data, 'etc/hostname')).isFile()).toBe(true);
    expect(readFileSync(join(data, 'etc/hostname'), 'utf8')).toBe('edge\n');
  });

  test('the data folder itself planted as a symbolic link is removed and made again', () => {
    list('/var synced\n');
    symlinkSync(join(dir, 'elsewhere'), data);
    const r = run();
    expect(r.out).toContain(`the data folder ${data} is a symbolic link: removed, made again`);
    expect(lstatSync(data).isDirectory()).toBe(true);
    expect(existsSync(join(dir, 'elsewhere/var'))).toBe(false);
  });

  test('a data copy of another type than the base item (a file where the base has a folder) is removed and made again', () => {
    list('/var synced\n');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'var'), 'planted');
    const r = run();
    expect(r.out).toContain('writable path /var: the data copy is a file, the base\'s item a dir: removed, made again');
    expect(lstatSync(join(data, 'var')).isDirectory()).toBe(true);
    expect(r.binds).toEqual(['/writable/system-data/var /root/var']);
  });

  test('a base item that is a symbolic link, missing, or under a linked folder is left as it is, with a say line', () => {
    symlinkSync('/usr/share/zoneinfo/UTC', join(root, 'etc/localtime'));
    mkdirSync(join(root, 'usr/real'), { recursive: true });
    writeFileSync(join(root, 'usr/real/conf'), 'x');
    symlinkSync('usr/real', join(root, 'linked'));
    list('/etc/localtime synced\n/etc/ssh synced\n/linked/conf synced\n/var synced\n');
    const r = run();
    expect(r.status).toBe(0);
    expect(r.out).toContain('writable path /etc/localtime is a symbolic link in the base: not made writable (a bind would follow it)');
    expect(r.out).toContain('writable path /etc/ssh is not in the base: not made writable (nothing to bind over)');
    expect(r.out).toContain('writable path /linked/conf: a folder above it in the base is a symbolic link: not made writable');
    expect(r.binds).toEqual(['/writable/system-data/var /root/var']);
    expect(existsSync(join(data, 'etc/localtime'))).toBe(false);
  });
});
