/**
 * Helpers of the bootloader tests: the boot assets of the three example gadgets
 * (bundles/bootloader/build-assets), A/B images composed from the real gadget.yaml files with a
 * real Debian kernel, the boot environment read and written on the host, and one QEMU boot (TCG)
 * watched on the serial console, with the firmware of each board.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bootPartitionOffset, decodeGrubEnv, ENV_FILES, readImageEnvFiles, chooseEnv, type BootEnv, type EnvFiles } from '@edgeimage/composer';
import { UEFI_NO_BOOT_DELAY } from '@edgeimage/qemu';
import type { Entry } from './bundle-trees.js';
import { REPO } from './repo.js';

export const BUILD_ASSETS = join(REPO, 'bundles/bootloader/build-assets');
export const UBOOT_ENV_IMAGE = join(REPO, 'bundles/bootloader/uboot-env-image');

export type Gadget = 'pc' | 'arm64-efi' | 'arm64-uboot';

export interface Board {
  gadget: Gadget;
  arch: 'amd64' | 'arm64';
  /** The QEMU binary. */
  qemu: string;
  /** The prefix of the bootloader's console lines. */
  tag: 'edgeimage-grub' | 'edgeimage-uboot';
  /** Firmware files that must exist for the board to boot. */
  firmware: string[];
}

export const BOARDS: Board[] = [
  { gadget: 'pc', arch: 'amd64', qemu: 'qemu-system-x86_64', tag: 'edgeimage-grub', firmware: ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'] },
  { gadget: 'arm64-efi', arch: 'arm64', qemu: 'qemu-system-aarch64', tag: 'edgeimage-grub', firmware: ['/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/AAVMF/AAVMF_VARS.fd'] },
  { gadget: 'arm64-uboot', arch: 'arm64', qemu: 'qemu-system-aarch64', tag: 'edgeimage-uboot', firmware: ['/usr/lib/u-boot/qemu_arm64/u-boot.bin'] },
];

/** Why a board cannot be tested here (a missing QEMU or firmware), or undefined. */
export function missingFor(board: Board): string | undefined {
  if (spawnSync(board.qemu, ['--version']).status !== 0) return `${board.qemu} is not installed`;
  const fw = board.firmware.find((f) => !existsSync(f));
  return fw ? `no firmware file ${fw}` : undefined;
}

/** Runs build-assets for `gadget` into a fresh folder; returns the folder. */
export function buildAssets(gadget: Gadget, dest = mkdtempSync(join(tmpdir(), `edgeimage-boot-assets-${gadget}-`))): string {
  execFileSync(BUILD_ASSETS, [gadget, dest], { stdio: ['ignore', 'pipe', 'pipe'] });
  return dest;
}

/** Every file under `dir`, as path (relative, `/`-separated) → bytes, in sorted order. */
export function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The tree of an example gadget bundle: its real meta/ files plus the boot assets build-assets writes. */
export function gadgetBundleTree(gadget: Gadget, assetsDir: string): Record<string, Entry> {
  const tree: Record<string, Entry> = {
    'meta/snap.yaml': readFileSync(join(REPO, 'bundles', gadget, 'meta/snap.yaml')),
    'meta/gadget.yaml': readFileSync(join(REPO, 'bundles', gadget, 'meta/gadget.yaml')),
  };
  for (const [rel, bytes] of readTree(assetsDir)) tree[`boot-assets/${rel}`] = bytes;
  return tree;
}

/** Debian's vmlinuz of `arch` (scripts/fetch-debs caches the package), or why not. */
export function debianVmlinuz(arch: 'amd64' | 'arm64'): Buffer | string {
  const r = spawnSync(join(REPO, 'scripts/fetch-debs'), [arch, `linux-image-${arch}`], { encoding: 'utf8' });
  const deb = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !deb || !existsSync(deb)) return `cannot fetch linux-image-${arch}: ${r.stderr.trim()}`;
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-vmlinuz-'));
  try {
    execFileSync('bash', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/vmlinuz-*"', '-', deb, dir]);
    const name = readdirSync(join(dir, 'boot')).find((n) => n.startsWith('vmlinuz-'));
    if (!name) return `no boot/vmlinuz-* in ${deb}`;
    return readFileSync(join(dir, 'boot', name));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A sparse copy of an image (composed images are mostly holes). */
export function copyImage(from: string, to: string): string {
  execFileSync('cp', ['--sparse=always', from, to]);
  return to;
}

// ---------------------------------------------------------------------------------------------
// The boot environment on the host.

export interface EnvState {
  files: EnvFiles;
  /** What the protocol's reader picks. */
  vars: BootEnv;
  from: 'env1' | 'env2';
}

export async function readEnv(image: string): Promise<EnvState> {
  const files = await readImageEnvFiles(image, bootPartitionOffset(image));
  const chosen = chooseEnv(files);
  return { files, vars: chosen.vars, from: chosen.from };
}

/** The state machine's view of variables: a variable that is absent is empty (U-Boot omits empty ones). */
export function edgeVars(vars: BootEnv): BootEnv {
  const out: BootEnv = {};
  for (const k of ['edge_slot', 'edge_try_slot', 'edge_status', 'edge_failed_slot']) out[k] = vars[k] ?? '';
  return out;
}

/**
 * Checks that each of the four files is a valid GRUB environment block, for us (decodeGrubEnv:
 * exactly 1024 bytes, the header, no NUL) and for GRUB itself (grub-editenv list), and returns
 * the decoded files.
 */
export function checkEnvFiles(files: EnvFiles, tmp: string): Record<keyof typeof ENV_FILES, BootEnv> {
  const out = {} as Record<keyof typeof ENV_FILES, BootEnv>;
  for (const key of Object.keys(ENV_FILES) as (keyof typeof ENV_FILES)[]) {
    const bytes = files[key];
    if (!bytes) throw new Error(`${ENV_FILES[key]} is missing`);
    if (bytes.length !== 1024) throw new Error(`${ENV_FILES[key]} is ${bytes.length} bytes, not 1024`);
    out[key] = decodeGrubEnv(bytes);
    const file = join(tmp, `${key}.grubenv`);
    writeFileSync(file, bytes);
    const r = spawnSync('grub-editenv', [file, 'list'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`grub-editenv ${ENV_FILES[key]} list: ${r.stderr}`);
    const listed: BootEnv = {};
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const eq = line.indexOf('=');
      listed[line.slice(0, eq)] = line.slice(eq + 1);
    }
    // the same variables and values, whatever order the writer (GRUB, U-Boot, Linux) put them in
    if (JSON.stringify(sortKeys(listed)) !== JSON.stringify(sortKeys(out[key]))) {
      throw new Error(`${ENV_FILES[key]}: grub-editenv reads ${JSON.stringify(listed)}, decodeGrubEnv ${JSON.stringify(out[key])}`);
    }
  }
  return out;
}

/**
 * Checks the FAT filesystem of system-boot with `fsck.fat -n` (the bootloaders' writes must leave it
 * clean); throws with fsck's report otherwise.
 */
export function checkBootFat(image: string, tmp: string): void {
  const offset = bootPartitionOffset(image);
  const copy = join(tmp, 'system-boot.fat');
  // The filesystem alone (fsck.fat takes no offset), its size from the boot sector.
  const fd = openSync(image, 'r');
  const bs = Buffer.alloc(512);
  try {
    readSync(fd, bs, 0, 512, offset);
  } finally {
    closeSync(fd);
  }
  const sectors = bs.readUInt16LE(19) || bs.readUInt32LE(32);
  const bytes = sectors * bs.readUInt16LE(11);
  execFileSync('bash', ['-c', 'dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none', '-', image, copy, String(offset), String(bytes)]);
  const r = spawnSync('fsck.fat', ['-n', copy], { encoding: 'utf8' });
  rmSync(copy, { force: true });
  if (r.status !== 0) throw new Error(`fsck.fat -n system-boot of ${image}: exit ${r.status}\n${r.stdout}${r.stderr}`);
}

/**
 * A GRUB environment block of any `key=value` lines, values unchecked (encodeGrubEnv refuses values
 * outside the state machine's domains; the garbage tests need them).
 */
export function rawEnvBlock(lines: string[]): Buffer {
  const text = Buffer.from(`# GRUB Environment Block\n${lines.map((l) => `${l}\n`).join('')}`);
  const out = Buffer.alloc(1024, '#');
  text.copy(out);
  return out;
}

const sortKeys = (v: BootEnv): BootEnv => Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

// ---------------------------------------------------------------------------------------------
// One QEMU boot.

export interface BootResult {
  /** The console, carriage returns and terminal escapes removed. */
  output: string;
  /** QEMU exited by itself (a reboot or power-off with -no-reboot). */
  exited: boolean;
  /** Stopped because `stopAt` matched (QEMU then killed). */
  stopped: boolean;
  timedOut: boolean;
  seconds: number;
  /** Seconds from QEMU's start (the firmware's start) to the bootloader's decision line. */
  toDecision?: number;
  /** Seconds from QEMU's start to the kernel's command line on the console. */
  toCmdline?: number;
}

export interface BootOptions {
  /** Stop (kill QEMU) once a console line matches; default: run until QEMU exits. */
  stopAt?: RegExp;
  timeoutMs?: number;
  /** The U-Boot environment flash image (bundles/bootloader/uboot-env-image), for bootdelay=0. */
  ubootEnvFlash?: string;
  /** A folder for the writable firmware variable store copies. */
  tmp: string;
}

export function qemuArgs(board: Board, disk: string, opts: BootOptions): string[] {
  const common = ['-m', '512', '-nodefaults', '-nographic', '-serial', 'stdio', '-nic', 'none', '-no-reboot'];
  const drive = ['-drive', `file=${disk},format=raw,if=virtio`];
  if (board.gadget === 'pc') {
    const vars = join(opts.tmp, `OVMF_VARS_4M-${process.hrtime.bigint()}.fd`);
    copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
    return ['-M', 'q35', '-accel', 'tcg', ...common,
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd', '-drive', `if=pflash,format=raw,file=${vars}`, ...UEFI_NO_BOOT_DELAY, ...drive];
  }
  const arm = ['-M', 'virt', '-cpu', 'cortex-a57', '-accel', 'tcg', ...common];
  if (board.gadget === 'arm64-efi') {
    const vars = join(opts.tmp, `AAVMF_VARS-${process.hrtime.bigint()}.fd`);
    copyFileSync('/usr/share/AAVMF/AAVMF_VARS.fd', vars);
    return [...arm, '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd', '-drive', `if=pflash,format=raw,file=${vars}`, ...UEFI_NO_BOOT_DELAY, ...drive];
  }
  const env = opts.ubootEnvFlash ? ['-drive', `if=pflash,index=1,format=raw,readonly=on,file=${opts.ubootEnvFlash}`] : [];
  return [...arm, '-bios', '/usr/lib/u-boot/qemu_arm64/u-boot.bin', ...env, ...drive];
}

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]|\r/g;

/** Boots `disk` once; QEMU is always killed at the end (stopAt, timeout, or test failure). */
export async function bootOnce(board: Board, disk: string, opts: BootOptions): Promise<BootResult> {
  const start = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - start) / 1e9;
  const child = spawn(board.qemu, qemuArgs(board, disk, opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  let raw = '';
  let output = '';
  let toDecision: number | undefined;
  let toCmdline: number | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<BootResult>((resolve, reject) => {
      const finish = (r: Partial<BootResult>) => resolve({ output, exited: false, stopped: false, timedOut: false, seconds: since(), toDecision, toCmdline, ...r });
      const onData = (b: Buffer) => {
        raw += b.toString('utf8');
        output = raw.replace(ESCAPES, '');
        // Only complete lines count.
        const done = output.slice(0, output.lastIndexOf('\n') + 1);
        if (toDecision === undefined && new RegExp(`${board.tag}: (booting slot|FAILED)`).test(done)) toDecision = since();
        if (toCmdline === undefined && /Kernel command line:/.test(done)) toCmdline = since();
        if (!stopped && opts.stopAt?.test(done)) {
          stopped = true;
          finish({ stopped: true });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      timer = setTimeout(() => finish({ timedOut: true }), opts.timeoutMs ?? 120_000);
      child.on('error', reject);
      child.on('exit', () => setImmediate(() => finish({ exited: true })));
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((res) => {
        const t = setTimeout(() => { child.kill('SIGKILL'); res(); }, 5000);
        child.on('exit', () => { clearTimeout(t); res(); });
      });
    }
  }
}

/** The bootloader's and the kernel's lines of a console, for the test log. */
export function summary(output: string): string {
  return output.split('\n').filter((l) => /edgeimage|Kernel command line|Kernel panic|Rebooting|FAILED/.test(l)).map((l) => `   ${l.trim().slice(0, 160)}`).join('\n');
}
