import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildInitramfs, busyboxVersion } from './build.js';
import { DEFAULT_INIT, initScript, VERIFIED_SH } from './init.js';
import { AMD64_MODULES, extractKernel, kernelDeb, removeKernels, type KernelTree } from '@edgeimage/testkit/debian-kernel';
import { firstMissing, requires } from '@edgeimage/testkit/skips';

const BUSYBOX = '/bin/busybox';
const missingBusybox = spawnSync(BUSYBOX, ['--list']).status === 0 ? undefined : `${BUSYBOX} is not installed (Debian package busybox-static)`;
const deb = kernelDeb('amd64');
const dirs: string[] = [];
afterAll(() => { removeKernels(); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('init script', () => {
  test('is valid sh, never execs a shell, reboots on failure', () => {
    for (const s of [DEFAULT_INIT, initScript({ waitForPartname: "it's", then: 'poweroff -f' })]) {
      expect(spawnSync('sh', ['-n'], { input: s }).status).toBe(0);
      expect(s).toContain('reboot -f');
      expect(s).not.toMatch(/exec\s+(\/bin\/)?sh|^\s*sh\s*$/m);
    }
    expect(DEFAULT_INIT).toContain('modules loaded');
  });

  test('LoaderDevicePartUUID as systemd-stub sets it (4 attribute bytes, UTF-16LE, upper case, NUL) reads as the lower-case PARTUUID (busybox sh, od, awk)', () => {
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-loader-uuid-'));
    dirs.push(d);
    const uuid = (bytes: Buffer): string => {
      writeFileSync(join(d, 'var'), bytes);
      const r = spawnSync(BUSYBOX, ['sh', '-c', `${VERIFIED_SH}\nedge_loader_uuid "$1"`, 'sh', join(d, 'var')], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const attrs = Buffer.from([0x06, 0, 0, 0]);
    expect(uuid(Buffer.concat([attrs, Buffer.from('8215E4C7-AC2E-5FA8-88A2-EA72679A9F07\0', 'utf16le')]))).toBe('8215e4c7-ac2e-5fa8-88a2-ea72679a9f07');
    // no terminating NUL; a character outside ASCII shows as ?
    expect(uuid(Buffer.concat([attrs, Buffer.from('AB\u00e9', 'utf16le')]))).toBe('ab?');
    expect(uuid(attrs)).toBe('');
  });

  test('verified mode: decided by /etc/edgeimage/verified.env of the initramfs; slot.env is read only without it; bundles only from /dev/mapper (dm-verity, read-only) in it', () => {
    const init = DEFAULT_INIT;
    expect(init).toContain('[ -f /etc/edgeimage/verified.env ] && verified=1');
    // the slot's slot.env appears in the unverified branch only
    const verifiedBranch = init.slice(init.indexOf('if [ -n "$verified" ]; then\n  ( . /etc/edgeimage/verified.env )'), init.indexOf('env_file="$run/slot/boot/slot.env"'))
      .split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    expect(verifiedBranch).toContain('. /etc/edgeimage/verified.env');
    expect(verifiedBranch).not.toMatch(/slot\.env|-o loop/);
    expect(verifiedBranch).toContain('mount -t squashfs -o ro,nosuid,nodev "/dev/mapper/edge-$name" /newroot');
    expect(init).toContain('DM_DISABLE_UDEV=1 dmsetup create "edge-$_vo_name" --readonly --table "0 $((_vo_blocks * 8)) verity 1 $_vo_data $_vo_hash 4096 4096 $_vo_blocks 0 sha256 $3 $4"');
    expect(init).toMatch(/losetup -r "\$_vo_data" "\$run\/slot\/\$_vo_f"/);
    // read in full before anything is mounted; its failure names the bundle
    expect(init).toContain('cat "/dev/mapper/edge-$_vo_name" > /dev/null');
    expect(init).toContain('fail "bundle $_vo_f does not verify (dm-verity: ${_vo_why:-$(cat /tmp/dm.err)})"');
    expect(init.indexOf('edge_verity_open "$v_file"')).toBeLessThan(init.indexOf('"/dev/mapper/edge-$name" /newroot'));
    // efivarfs only where there is EFI; the SecureBoot line
    expect(init).toContain('case "$name" in efivarfs) [ -d /sys/firmware/efi ] || continue ;; esac');
    expect(init).toContain('edge_sb="secure boot enabled"');
    expect(init).toContain('echo "edgeimage-init: $edge_sb"');
    // kept for edge-update status
    expect(init).toContain('echo "$edge_sb" > /run/edgeimage/secure-boot');
    expect(init).toContain('LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f');
    // the stub's variable is volatile; a planted non-volatile one, or none on UEFI, fails the boot
    expect(init).toContain('[ "$*" = "6 0 0 0" ] || fail "LoaderDevicePartUUID has attributes');
    expect(init).toContain('fail "verified boot on UEFI, but no LoaderDevicePartUUID');
    // the payload's boot key for the updater, from the signed part
    expect(init).toContain('cp /etc/edgeimage/payload-key.pem "$run/"');
    // system-data: writable, unverified, so nothing on it may be setuid or a device
    expect(init).toContain('mount -t ext4 -o rw,nosuid,nodev "$data_dev" /newroot/writable');
  });

  test('the device agent: EDGE_AGENT required ("no device agent"), mounted read-only, nosuid, nodev at /run/edgeimage/agent (through dm-verity when verified); writable paths after system-data; the systemd generator link before /run moves', () => {
    const init = DEFAULT_INIT;
    expect(init).toContain('[ -n "$EDGE_AGENT" ] || fail "no device agent: slot $edge_slot names no agent bundle (EDGE_AGENT; the model needs a snap of type snapd)"');
    expect(init).toContain('mount -t squashfs -o ro,nosuid,nodev "/dev/mapper/edge-$name" "$run/agent"');
    expect(init).toContain('mount -t squashfs -o loop,ro,nosuid,nodev "$run/slot/$EDGE_AGENT" "$run/agent"');
    expect(init).toContain('case "$verity_opened" in *" $EDGE_AGENT "*) ;; *) fail "the device agent $EDGE_AGENT has no line in /etc/edgeimage/verity.list" ;; esac');
    // the agent's file name is checked like the verity list's names
    expect(init).toContain('case "$EDGE_AGENT" in *..*|*/*/*) fail');
    const data = init.indexOf('mount -t ext4 -o rw,nosuid,nodev "$data_dev" /newroot/writable');
    const writable = init.indexOf('edge_writable_paths /newroot /newroot/writable/system-data');
    const generator = init.indexOf('ln -sfn "$run/agent/lib/systemd/edgeimage-generator" /run/systemd/system-generators/edgeimage');
    const move = init.indexOf('mount --move "/$d" "/newroot/$d"');
    expect(data).toBeGreaterThan(0);
    expect(writable).toBeGreaterThan(data);
    expect(generator).toBeGreaterThan(0);
    expect(generator).toBeLessThan(move);
    expect(init.indexOf('"$run/agent"')).toBeLessThan(init.indexOf('for app in $EDGE_APPS'));
  });

  test('kernel modules: the kernel bundle (EDGE_KERNEL; through dm-verity when verified) at /run/edgeimage/kernel, its modules/ bound over the base\'s /usr/lib/modules when both are folders; skipped with a say line otherwise', () => {
    const init = DEFAULT_INIT;
    expect(init).toContain('mount -t squashfs -o ro,nosuid,nodev,noexec "/dev/mapper/edge-$name" "$run/kernel"');
    expect(init).toContain('mount -t squashfs -o loop,ro,nosuid,nodev,noexec "$run/slot/$EDGE_KERNEL" "$run/kernel"');
    expect(init).toContain('fail "the kernel bundle $EDGE_KERNEL has no line in /etc/edgeimage/verity.list"');
    expect(init).toContain('mount --bind "$run/kernel/modules" /newroot/usr/lib/modules');
    expect(init).toContain('say "the kernel bundle $EDGE_KERNEL has no modules/: kernel modules not bound into the base"');
    expect(init).toContain('say "the base bundle $EDGE_BASE has no /usr/lib/modules folder: kernel modules not bound into it"');
    expect(init.indexOf('/newroot/usr/lib/modules ||')).toBeLessThan(init.indexOf('mount --move "/$d" "/newroot/$d"'));
  });
});

requires(firstMissing(missingBusybox, deb.missing)).describe('buildInitramfs with the Debian amd64 kernel and busybox-static', () => {
  let k: KernelTree;
  beforeAll(() => { k = extractKernel(deb.deb!); }, 120_000);

  test('same bytes twice; busybox, applets, modules in order, /init', async () => {
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-'));
    dirs.push(d);
    const opts = { kernelTree: k.dir, version: k.version, arch: 'amd64', modules: AMD64_MODULES, busybox: BUSYBOX };
    const r = await buildInitramfs({ ...opts, output: join(d, '1.gz') });
    await buildInitramfs({ ...opts, output: join(d, '2.gz') });
    const a = readFileSync(join(d, '1.gz'));
    expect(a.equals(readFileSync(join(d, '2.gz')))).toBe(true);

    const list = spawnSync('cpio', ['-itv', '--quiet'], { input: gunzipSync(a), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* init$/m);
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* bin\/busybox$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* sbin\/insmod -> \/bin\/busybox$/m);
    const kos = list.stdout.split('\n').filter((l) => l.endsWith('.ko')).length;
    expect(kos).toBe(r.modules.length);
    expect(r.modules.map((m) => m.name)).toEqual(expect.arrayContaining(['ext4', 'virtio_blk', 'overlay', 'loop']));

    const x = join(d, 'x');
    spawnSync('mkdir', [x]);
    expect(spawnSync('cpio', ['-id', '--quiet', 'etc/modules.order', 'init'], { input: gunzipSync(a), cwd: x }).status).toBe(0);
    expect(readFileSync(join(x, 'etc/modules.order'), 'utf8')).toBe(r.modules.map((m) => `/lib/modules/${k.version}/${m.path}\n`).join(''));
    expect(readFileSync(join(x, 'init'), 'utf8')).toBe(DEFAULT_INIT);
  }, 120_000);

  test('extraTree: its files, modes and links are added, its folders merged with the initramfs\'s; a path the initramfs has already is refused, and nothing is written', async () => {
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-'));
    dirs.push(d);
    const extra = join(d, 'extra');
    mkdirSync(join(extra, 'sbin'), { recursive: true });
    mkdirSync(join(extra, 'lib/x86_64-linux-gnu'), { recursive: true });
    mkdirSync(join(extra, 'lib64'));
    writeFileSync(join(extra, 'sbin/dmsetup'), 'ELF?', { mode: 0o750 });
    writeFileSync(join(extra, 'lib/x86_64-linux-gnu/libdevmapper.so.1.02.1'), 'lib', { mode: 0o600 });
    symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(extra, 'lib64/ld-linux-x86-64.so.2'));
    const opts = { kernelTree: k.dir, version: k.version, arch: 'amd64', modules: ['loop'], busybox: BUSYBOX, extraTree: extra };
    await buildInitramfs({ ...opts, output: join(d, 'a.gz') });
    const list = spawnSync('cpio', ['-itv', '--quiet'], { input: gunzipSync(readFileSync(join(d, 'a.gz'))), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* sbin\/dmsetup$/m);
    expect(list.stdout).toMatch(/^-rw-r--r-- .* lib\/x86_64-linux-gnu\/libdevmapper.so.1.02.1$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* lib64\/ld-linux-x86-64.so.2 -> \/lib\/x86_64-linux-gnu\/ld-linux-x86-64.so.2$/m);
    expect(list.stdout).toMatch(/^lrwxrwxrwx .* sbin\/insmod -> \/bin\/busybox$/m);
    expect(list.stdout).toMatch(/ lib\/modules\/.*loop.ko$/m);
    // bin/sh is busybox's link already
    mkdirSync(join(extra, 'bin'));
    writeFileSync(join(extra, 'bin/sh'), 'not busybox');
    await expect(buildInitramfs({ ...opts, output: join(d, 'b.gz') })).rejects.toMatchObject({ code: 'ERR_FS_OPTIONS', message: 'duplicate cpio path: bin/sh' });
    expect(existsSync(join(d, 'b.gz'))).toBe(false);
  }, 120_000);

  test('a foreign-arch busybox needs a host busybox of the same version', async () => {
    expect(busyboxVersion(BUSYBOX)).toMatch(/^BusyBox v1\.\d+/);
    const d = mkdtempSync(join(tmpdir(), 'edgeimage-initramfs-'));
    dirs.push(d);
    // The same binary stands in for the arm64 one: same version, so the host list is used.
    const r = await buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'arm64', modules: ['loop'], busybox: BUSYBOX, output: join(d, 'a.gz') });
    expect(r.applets).toContain('bin/sh');
    await expect(buildInitramfs({ kernelTree: k.dir, version: k.version, arch: 'arm64', modules: ['loop'], busybox: '/bin/true', output: join(d, 'b.gz') }))
      .rejects.toMatchObject({ code: 'ERR_FS_SOURCE' });
  }, 120_000);
});
