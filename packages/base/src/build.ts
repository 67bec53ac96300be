/**
 * `edgeimage base build`: a base bundle (a snap of `type: base`) from BASE.yaml, in two stages.
 *
 * 1. **Lock** (no lock yet, or `--update`): mmdebstrap `--variant=apt` against the Debian archive
 *    installs the essential set, apt and `packages:`; `--skip=essential/unlink` keeps every .deb it
 *    used, a customize hook copies them out, and each goes into the .deb cache
 *    (~/.cache/edgeimage/debs/pool/SHA256.deb) and into BASE.lock with its name, version,
 *    architecture, sha256 and size. A lock made for other inputs (suite, mirror, components,
 *    packages) is stale: an error unless `--update`.
 * 2. **Build** (always, also right after a lock stage): a local flat repository of exactly the
 *    locked .debs (from the cache, checked; a missing one fetched from the archive by its exact
 *    version and checked against the lock's sha256), then mmdebstrap from that repository only
 *    (`copy://`, `[trusted=yes]`: the sha256 of each .deb was checked against the lock instead of a
 *    signed Release; as root in a network namespace with no interface, `unshare -n`), with
 *    SOURCE_DATE_EPOCH from the lock. Customize hooks add BASE.yaml's groups, users, files and
 *    services, then remove what differs between two builds (resolv.conf, machine-id, ssh host keys,
 *    apt lists and caches, logs, ldconfig's aux-cache, *- backups) → a tar → tar2sqfs.
 *
 * Decisions:
 * - mmdebstrap `--mode=auto`: root mode as root (CI), `unshare` for a user with /etc/subuid
 *   ranges, else fakechroot. The same inputs give the same bytes in each mode.
 * - A foreign architecture's maintainer scripts (arm64 on an amd64 host) run through binfmt_misc
 *   and qemu-user-static (measured: a tiny arm64 base ~70 s per mmdebstrap run, amd64 ~12 s); a
 *   VM of the target architecture was not needed. Without binfmt the build stops before any work
 *   with ERR_BASE_BINFMT saying how to enable it (scripts/setup does it where the host allows).
 * - SOURCE_DATE_EPOCH = the newest `ar` member time of the locked .debs (dpkg-deb writes each
 *   package's own SOURCE_DATE_EPOCH there): a function of the package set, recorded in the lock,
 *   never the clock of a later build.
 * - tar2sqfs `-c xz -B 4096 -d uid=0,gid=0,mode=0755,mtime=EPOCH --no-skip -q`: xz as snaps use,
 *   ownership and times of the tar kept (mmdebstrap clamps them to SOURCE_DATE_EPOCH), implicit
 *   folders fixed, the image padded to whole 4096-byte blocks (the composer's dm-verity tree
 *   covers whole blocks), deterministic (tar order, no wall clock in the superblock).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, constants as fsc, fstatSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { cachedDeb, cacheRoot, putDeb, sha256File } from './cache.js';
import { BaseError } from './errors.js';
import { exec, tail } from './exec.js';
import { diffLocks, lockInputs, lockPath as defaultLockPath, readLock, serializeLock, type BaseLock, type LockChange, type LockedPackage } from './lock.js';
import { DEFAULT_WRITABLE_PATHS, parseBaseYaml, resolveBaseFile, type BaseArch, type BaseSpec, MAX_FILE } from './spec.js';

export interface BuildBaseOptions {
  yamlPath: string;
  /** Default: BASE.yaml's `architecture`. */
  arch?: BaseArch;
  /** The bundle to write; default `<name>_<version>_<arch>.snap` next to BASE.yaml. */
  out?: string;
  /** Make a new lock from the archive even when the lock is current, and replace a stale one. */
  update?: boolean;
  /** Default: {@link defaultLockPath}. */
  lockPath?: string;
  /** Root of the caches (default {@link cacheRoot}). */
  cacheDir?: string;
  /** Where the build's work folder (the repository, the tree's tar) is made; default os.tmpdir(). */
  tmpDir?: string;
  /** One call per stage started: 'lock', 'fetch', 'rootfs', 'squashfs'. */
  onStage?: (stage: BuildStage, detail: string) => void;
}

export type BuildStage = 'lock' | 'fetch' | 'rootfs' | 'squashfs';

export interface BuildBaseResult {
  path: string;
  size: number;
  sha3_384: string;
  arch: BaseArch;
  lock: BaseLock;
  lockPath: string;
  /** The lock file was written (a new lock, or --update with changes). */
  lockWritten: boolean;
  /** There was no lock before this build. */
  lockCreated: boolean;
  /** What --update (or the first lock) changed; empty when the lock was used as it was. */
  changes: LockChange[];
  /** Locked .debs that were not in the cache and came from the archive. */
  fetched: string[];
  seconds: Partial<Record<BuildStage, number>>;
}

const QEMU_BINFMT: Record<BaseArch, string> = { amd64: 'qemu-x86_64', arm64: 'qemu-aarch64' };

export function hostArch(): BaseArch | undefined {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

/**
 * Checks that programs of `arch` run here: natively, or through binfmt_misc with qemu-user-static
 * registered with the F flag (the interpreter opened at registration, so it works inside the
 * chroot, where /usr/libexec/qemu-binfmt is absent).
 */
export function checkBinfmt(arch: BaseArch, binfmt = '/proc/sys/fs/binfmt_misc', host: BaseArch | undefined = hostArch()): void {
  if (host === arch) return;
  const name = QEMU_BINFMT[arch];
  const how =
    `enable it as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; apt-get install qemu-user-static binfmt-support; update-binfmts --enable ${name} ` +
    `(./scripts/setup does this where the host allows; in a container, the host must allow mounting binfmt_misc)`;
  if (!existsSync(join(binfmt, 'status'))) {
    throw new BaseError('ERR_BASE_BINFMT', `cannot build an ${arch} base on this ${host ?? process.arch} host: binfmt_misc is not mounted (the ${arch} maintainer scripts run through qemu-user-static); ${how}`, { arch });
  }
  let entry = '';
  try {
    entry = readFileSync(join(binfmt, name), 'utf8');
  } catch {
    throw new BaseError('ERR_BASE_BINFMT', `cannot build an ${arch} base on this host: binfmt_misc has no ${name} entry; ${how}`, { arch });
  }
  if (!/^enabled$/m.test(entry)) throw new BaseError('ERR_BASE_BINFMT', `cannot build an ${arch} base on this host: the binfmt_misc entry ${name} is disabled; ${how}`, { arch });
  if (!/^flags:.*F/m.test(entry)) throw new BaseError('ERR_BASE_BINFMT', `cannot build an ${arch} base on this host: the binfmt_misc entry ${name} lacks the F flag (its interpreter is not found inside a chroot); install qemu-user-static (not qemu-user-binfmt) and run update-binfmts --enable ${name}`, { arch });
}

/** Single-quoted for sh; the values are already held to safe character sets, this is a second fence. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The newest `ar` member time of a .deb (dpkg-deb sets it to the package's SOURCE_DATE_EPOCH). */
export function debArTime(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(68);
    if (readSync(fd, b, 0, 68, 0) < 68 || b.toString('latin1', 0, 8) !== '!<arch>\n') return 0;
    const t = Number(b.toString('latin1', 8 + 16, 8 + 28).trim());
    return Number.isSafeInteger(t) && t > 0 ? t : 0;
  } finally {
    closeSync(fd);
  }
}

function field(control: string, name: string): string | undefined {
  const m = new RegExp(`^${name}: *(.*)$`, 'm').exec(control);
  return m?.[1]?.trim();
}

async function debControl(file: string): Promise<string> {
  const r = await exec('dpkg-deb', ['-f', file]);
  if (r.exitCode !== 0) throw new BaseError('ERR_BASE_BUILD', `${basename(file)}: dpkg-deb cannot read it: ${tail(r.stderr)}`, { file });
  return r.stdout;
}

function debFilename(name: string, version: string, arch: string): string {
  return `${name}_${version.replace(/:/g, '%3a')}_${arch}.deb`;
}

function listDebs(dir: string, depth = 0): string[] {
  if (depth > 3) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listDebs(p, depth + 1));
    else if (e.isFile() && e.name.endsWith('.deb')) out.push(p);
  }
  return out.sort();
}

function mmdebstrapError(stderr: string, spec: BaseSpec, arch: BaseArch, stage: string): BaseError {
  const unknown = /E: Unable to locate package ([a-z0-9][a-z0-9+.-]*)/.exec(stderr) ?? /Package '?([a-z0-9][a-z0-9+.-]*)'? has no installation candidate/.exec(stderr);
  if (unknown) {
    return new BaseError('ERR_BASE_PACKAGE_UNKNOWN', `${spec.file}: packages: ${unknown[1]} is not a package of Debian ${spec.suite} (${arch}, ${spec.components.join(' ')}) at ${spec.mirror}`, { file: spec.file, package: unknown[1], arch });
  }
  const noInit = /edgeimage-base: no \/sbin\/init/.exec(stderr);
  if (noInit) {
    return new BaseError('ERR_BASE_NO_INIT', `${spec.file}: the base has no /sbin/init: add an init to packages: (systemd-sysv for systemd) — the initramfs starts /sbin/init of the base`, { file: spec.file, arch });
  }
  const unit = /edgeimage-base: no unit (\S+)/.exec(stderr);
  if (unit) {
    return new BaseError('ERR_BASE_SERVICE', `${spec.file}: services: ${unit[1]} is not a unit of the base (none in /etc/systemd/system or /usr/lib/systemd/system; add its package or a file)`, { file: spec.file, unit: unit[1] });
  }
  const hook = /edgeimage-base: (.*)/.exec(stderr);
  if (hook) return new BaseError('ERR_BASE_BUILD', `${spec.file}: ${hook[1]}`, { file: spec.file });
  return new BaseError('ERR_BASE_BUILD', `mmdebstrap (${stage}, ${arch}) failed: ${tail(stderr)}`, { file: spec.file, arch, stage });
}

function mmdebstrapBase(spec: BaseSpec, arch: BaseArch): string[] {
  return ['--mode=auto', '--variant=apt', `--arch=${arch}`, `--components=${spec.components.join(',')}`, '--aptopt=Acquire::Languages "none"', ...(spec.packages.length ? [`--include=${spec.packages.join(',')}`] : [])];
}

/** Stage 1: resolve the package set against the archive; the .debs go into the cache. */
async function lockStage(spec: BaseSpec, arch: BaseArch, work: string, cache: string): Promise<BaseLock> {
  const debs = join(work, 'lock-debs');
  mkdirSync(debs, { mode: 0o777 });
  chmodSync(debs, 0o777); // the unshare mode's root writes here as a subordinate uid
  const r = await exec('mmdebstrap', [
    ...mmdebstrapBase(spec, arch),
    '--skip=essential/unlink',
    `--customize-hook=${['root=$1', 'fail() { echo "edgeimage-base: $*" >&2; exit 1; }', ...INIT_CHECK].join('\n')}`,
    `--customize-hook=copy-out /var/cache/apt/archives/ ${debs}`,
    '--format=null',
    spec.suite,
    '/dev/null',
    spec.mirror,
  ]);
  if (r.exitCode !== 0) throw mmdebstrapError(r.stderr, spec, arch, 'lock');
  const packages: LockedPackage[] = [];
  let epoch = 0;
  for (const file of listDebs(debs)) {
    const control = await debControl(file);
    const name = field(control, 'Package');
    const version = field(control, 'Version');
    const architecture = field(control, 'Architecture');
    if (!name || !version || !architecture) throw new BaseError('ERR_BASE_BUILD', `${basename(file)}: no Package/Version/Architecture in its control file`, { file });
    const { sha256 } = await putDeb(file, cache);
    epoch = Math.max(epoch, debArTime(file));
    packages.push({ name, version, architecture, sha256, size: statSync(file).size, filename: debFilename(name, version, architecture) });
  }
  if (packages.length === 0) throw new BaseError('ERR_BASE_BUILD', `mmdebstrap (lock, ${arch}) kept no .deb files`, { arch });
  if (epoch === 0) throw new BaseError('ERR_BASE_BUILD', `no .deb of the lock has an ar member time: no SOURCE_DATE_EPOCH to record`, { arch });
  const lock: BaseLock = { format: 1, suite: spec.suite, architecture: arch, 'source-date-epoch': epoch, inputs: lockInputs(spec, arch), packages };
  return JSON.parse(serializeLock(lock)) as BaseLock;
}

/** A private apt configuration for `arch` against BASE.yaml's mirror: no root, nothing of the host's apt state. */
async function archiveApt(spec: BaseSpec, arch: BaseArch, work: string): Promise<string[]> {
  const dir = join(work, 'apt');
  for (const d of ['etc/sources.list.d', 'etc/apt.conf.d', 'etc/preferences.d', 'state/lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'status'), '');
  writeFileSync(join(dir, 'etc/sources.list'), `deb [arch=${arch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${spec.mirror} ${spec.suite} ${spec.components.join(' ')}\n`);
  const opts = [
    `-oDir::Etc=${dir}/etc`,
    `-oDir::Etc::SourceList=${dir}/etc/sources.list`,
    `-oDir::Etc::SourceParts=${dir}/etc/sources.list.d`,
    `-oDir::Etc::Parts=${dir}/etc/apt.conf.d`,
    `-oDir::Etc::PreferencesParts=${dir}/etc/preferences.d`,
    `-oDir::State=${dir}/state`,
    `-oDir::State::status=${dir}/status`,
    `-oDir::Cache=${dir}/cache`,
    `-oAPT::Architecture=${arch}`,
    `-oAPT::Architectures=${arch}`,
    '-oDebug::NoLocking=1',
    '-oAPT::Sandbox::User=root',
    '-oAcquire::Languages=none',
  ];
  const r = await exec('apt-get', [...opts, '-qq', 'update']);
  if (r.exitCode !== 0) throw new BaseError('ERR_BASE_BUILD', `apt-get update (${arch}, ${spec.mirror}) failed: ${tail(r.stderr)}`, { arch });
  return opts;
}

/** Stage 2a: the locked .debs in a flat repository, from the cache or the archive. */
async function prepareRepo(spec: BaseSpec, lock: BaseLock, lockFile: string, work: string, cache: string, onFetch: () => void): Promise<{ repo: string; fetched: string[] }> {
  const repo = join(work, 'repo');
  mkdirSync(repo, { mode: 0o755 });
  const fetched: string[] = [];
  let apt: string[] | undefined;
  const paragraphs: string[] = [];
  for (const p of [...lock.packages].sort((a, b) => (a.filename < b.filename ? -1 : 1))) {
    let file = await cachedDeb(p.sha256, cache);
    if (!file) {
      if (!apt) {
        onFetch();
        apt = await archiveApt(spec, lock.architecture, work);
      }
      const dl = join(work, 'download', p.sha256);
      mkdirSync(dl, { recursive: true });
      const spec1 = `${p.name}:${p.architecture === 'all' ? lock.architecture : p.architecture}=${p.version}`;
      const r = await exec('apt-get', [...apt, '-qq', 'download', spec1], { cwd: dl });
      const got = r.exitCode === 0 ? listDebs(dl) : [];
      if (got.length !== 1) {
        throw new BaseError(
          'ERR_BASE_LOCK_UNAVAILABLE',
          `${lockFile}: ${p.name} ${p.version} (${p.architecture}) is locked but is neither in the cache (${join(cache, 'debs/pool')}) nor in the archive (${spec.mirror} ${spec.suite}: ${tail(r.stderr, 1) || 'no such version'}); Debian keeps only current versions: run base build --update to lock the archive's versions`,
          { file: lockFile, package: p.name, version: p.version },
        );
      }
      const sha = await sha256File(got[0]!);
      if (sha !== p.sha256) {
        throw new BaseError('ERR_BASE_LOCK_MISMATCH', `${lockFile}: ${p.name} ${p.version} from the archive has sha256 ${sha}, the lock says ${p.sha256}; run base build --update if the archive is right`, { file: lockFile, package: p.name, version: p.version });
      }
      file = (await putDeb(got[0]!, cache)).path;
      fetched.push(`${p.name} ${p.version}`);
    }
    const dest = join(repo, p.filename);
    try {
      linkSync(file, dest);
    } catch {
      copyFileSync(file, dest);
    }
    // The cache file was checked; the link is the same inode, checked once more to close the gap.
    if ((await sha256File(dest)) !== p.sha256) throw new BaseError('ERR_BASE_BUILD', `${p.filename}: changed in the cache while the build read it`, { package: p.name });
    const control = (await debControl(dest)).replace(/\n+$/, '');
    if (field(control, 'Package') !== p.name || field(control, 'Version') !== p.version || field(control, 'Architecture') !== p.architecture) {
      throw new BaseError('ERR_BASE_LOCK', `${lockFile}: ${p.name}: the .deb with sha256 ${p.sha256} is ${field(control, 'Package')} ${field(control, 'Version')} (${field(control, 'Architecture')}), not ${p.name} ${p.version} (${p.architecture})`, { file: lockFile, package: p.name });
    }
    paragraphs.push(`${control}\nFilename: ./${p.filename}\nSize: ${p.size}\nSHA256: ${p.sha256}\n`);
  }
  writeFileSync(join(repo, 'Packages'), `${paragraphs.join('\n')}`);
  return { repo, fetched };
}

/**
 * /sbin/init must be in the tree, followed through the tree's own links (an absolute link resolves
 * under $root, not on the host). Run in both stages: the lock stage reports a base without an init
 * before a build is spent on it.
 */
const INIT_CHECK = [
  'i="$root/sbin/init"; n=0',
  'while [ -L "$i" ] && [ $n -lt 16 ]; do t=$(readlink "$i"); case $t in /*) i="$root$t" ;; *) i="$(dirname "$i")/$t" ;; esac; n=$((n + 1)); done',
  '[ -f "$i" ] || fail "no /sbin/init"',
];

/** The customize hook: BASE.yaml's accounts, files and services, then what would differ per build. */
function customizeScript(spec: BaseSpec, stage: string): string {
  const L: string[] = [
    '#!/bin/sh',
    '# Written by edgeimage base build; run by mmdebstrap as a customize hook with the tree as $1.',
    'set -eu',
    'root=$1',
    `stage=${q(stage)}`,
    'fail() { echo "edgeimage-base: $*" >&2; exit 1; }',
  ];
  for (const g of spec.groups) {
    L.push(`chroot "$root" getent group ${q(g.name)} >/dev/null || chroot "$root" groupadd${g.system ? ' --system' : ''}${g.gid === undefined ? '' : ` --gid ${g.gid}`} ${q(g.name)}`);
  }
  for (const u of spec.users) {
    const group = u.group === undefined || u.group === u.name ? (spec.groups.some((g) => g.name === u.name) ? ` --gid ${q(u.name)}` : ' --user-group') : ` --gid ${q(u.group)}`;
    L.push(`chroot "$root" getent passwd ${q(u.name)} >/dev/null || chroot "$root" useradd${u.system ? ' --system' : ''}${u.uid === undefined ? '' : ` --uid ${u.uid}`}${group} --home-dir ${q(u.home)} --no-create-home --shell ${q(u.shell)} ${q(u.name)}`);
  }
  if (spec.files.length) {
    // Installed from inside the chroot: a link in the tree (/etc/resolv.conf → /run/…) resolves in the tree, never on the build host.
    L.push('rm -rf "$root/tmp/edgeimage-files"', 'mkdir -m 0700 "$root/tmp/edgeimage-files"');
    spec.files.forEach((f, i) => {
      L.push(`cp "$stage/files/${i}" "$root/tmp/edgeimage-files/${i}"`, `chroot "$root" install -D -o root -g root -m ${f.mode} /tmp/edgeimage-files/${i} ${q(f.dest)}`);
    });
    L.push('rm -rf "$root/tmp/edgeimage-files"');
  }
  const svc = spec.services;
  if (svc.enable.length || svc.disable.length || svc.mask.length) {
    L.push(
      'unit_exists() {',
      '  case $1 in *@?*.*) t="${1%%@*}@.${1##*.}" ;; *) t=$1 ;; esac',
      '  for d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do',
      '    if [ -e "$root$d/$t" ] || [ -L "$root$d/$t" ]; then return 0; fi',
      '  done',
      '  return 1',
      '}',
    );
    for (const u of [...svc.enable, ...svc.disable]) L.push(`unit_exists ${q(u)} || fail "no unit ${u}"`);
    L.push('[ -x "$root/usr/bin/systemctl" ] || [ -x "$root/bin/systemctl" ] || fail "services: needs systemd in the base (no systemctl in the tree)"');
    if (svc.enable.length) L.push(`chroot "$root" systemctl enable ${svc.enable.map(q).join(' ')}`);
    if (svc.disable.length) L.push(`chroot "$root" systemctl disable ${svc.disable.map(q).join(' ')}`);
    if (svc.mask.length) L.push(`chroot "$root" systemctl mask ${svc.mask.map(q).join(' ')}`);
  }
  L.push(
    `rm -f "$root/etc/hostname" && printf '%s\\n' ${q(spec.hostname)} > "$root/etc/hostname"`,
    // systemd makes the id on the first boot (on the writable copy: /etc/machine-id is a writable path).
    'rm -f "$root/etc/machine-id" && : > "$root/etc/machine-id"',
    '[ -L "$root/var/lib/dbus/machine-id" ] || rm -f "$root/var/lib/dbus/machine-id"',
    // The build host's resolver; systemd-resolved or DHCP makes the device's.
    'rm -f "$root/etc/resolv.conf"',
    `printf '%s\\n' ${q(`deb ${spec.mirror} ${spec.suite} ${spec.components.join(' ')}`)} > "$root/etc/apt/sources.list"`,
    'rm -f "$root"/etc/ssh/ssh_host_*',
    'rm -f "$root"/var/cache/apt/*.bin "$root/var/cache/ldconfig/aux-cache" "$root/var/lib/systemd/random-seed"',
    'rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb',
    'rm -f "$root"/etc/passwd- "$root"/etc/group- "$root"/etc/shadow- "$root"/etc/gshadow- "$root"/etc/subuid- "$root"/etc/subgid-',
    'rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old',
    'if [ -d "$root/var/log" ]; then find "$root/var/log" -type f -exec rm -f {} +; fi',
    // Mount points of the device (C1): the data partition, the kernel bundle's modules, kernel filesystems.
    'mkdir -p "$root/writable" "$root/usr/lib/modules" "$root/run" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/etc/edgeimage" "$root/meta"',
    'chmod 1777 "$root/tmp"',
    // The defaults the tree has (no tzdata: no /etc/localtime), then BASE.yaml's own, sorted by path.
    '{ while read -r p m; do if [ -e "$root$p" ] || [ -L "$root$p" ]; then echo "$p $m"; fi; done < "$stage/writable-defaults"; cat "$stage/writable-yaml"; } | LC_ALL=C sort > "$root/etc/edgeimage/writable-paths"',
    'chmod 0644 "$root/etc/edgeimage/writable-paths"',
    'cp "$stage/snap.yaml" "$root/meta/snap.yaml" && chmod 0644 "$root/meta/snap.yaml"',
    // systemd-tmpfiles gives /var/log/journal POSIX ACLs (system.posix_acl_* xattrs) that squashfs
    // cannot store (tar2sqfs refuses them); the device's systemd-tmpfiles sets them again on the
    // writable /var. -xdev: not into the /proc, /sys, /dev mounted for the hooks.
    'command -v setfacl >/dev/null || fail "setfacl is needed to drop the POSIX ACLs squashfs cannot store (apt-get install acl)"',
    'find "$root" -xdev \\( -type f -o -type d \\) -exec setfacl -b {} +',
    ...INIT_CHECK,
    '',
  );
  return L.join('\n');
}

function snapYaml(spec: BaseSpec, arch: BaseArch, lockText: string): string {
  const lockSha = createHash('sha256').update(lockText).digest('hex');
  // Values are held to safe characters by BASE.yaml's schema; the summary is quoted for YAML.
  return [`name: ${spec.name}`, `version: '${spec.version}'`, `summary: ${JSON.stringify(spec.summary)}`, 'type: base', `architectures: [${arch}]`, `edgeimage-lock: sha256:${lockSha}`, ''].join('\n');
}

/**
 * The writable-paths inputs of the hook: the defaults (C1, and /etc/ssh) that BASE.yaml does not
 * list itself — kept only where the tree has them — and BASE.yaml's entries, always kept.
 */
function writablePathsInputs(spec: BaseSpec): { defaults: string; yaml: string } {
  const own = new Set(spec.writablePaths.map((w) => w.path));
  const defaults = [...DEFAULT_WRITABLE_PATHS, { path: '/etc/ssh', mode: 'synced' as const }].filter((w) => !own.has(w.path));
  return { defaults: defaults.map((w) => `${w.path} ${w.mode}\n`).join(''), yaml: spec.writablePaths.map((w) => `${w.path} ${w.mode}\n`).join('') };
}

/** Reads a `files:` source through one open descriptor, refusing links at the last step and anything but a regular file. */
function readSource(spec: BaseSpec, i: number): Buffer {
  const f = spec.files[i]!;
  const real = resolveBaseFile(spec.file, f.src, f.line);
  const fd = openSync(real, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE) throw new BaseError('ERR_BASE_FILE', `${spec.file}:${f.line}: files: ${f.src}: expected a regular file of at most ${MAX_FILE} bytes`, { file: spec.file, src: f.src });
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

const inProgress = new Set<string>();

/** Removes every output still under its temporary name (for a SIGINT/SIGTERM handler). */
export function removeBaseInProgress(): void {
  for (const p of inProgress) rmSync(p, { recursive: true, force: true });
  inProgress.clear();
}

function sha3File(file: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha3-384');
    createReadStream(file)
      .on('data', (c) => h.update(c as Buffer))
      .on('error', rej)
      .on('end', () => res(h.digest('hex')));
  });
}

/** The default bundle path: `<name>_<version>_<arch>.snap` next to BASE.yaml. */
export function defaultBundlePath(spec: BaseSpec, arch: BaseArch): string {
  return join(dirname(resolve(spec.file)), `${spec.name}_${spec.version}_${arch}.snap`);
}

export async function buildBase(opts: BuildBaseOptions): Promise<BuildBaseResult> {
  const spec = parseBaseYaml(opts.yamlPath);
  const arch = opts.arch ?? spec.architecture;
  const cache = opts.cacheDir ?? cacheRoot();
  const lockFile = opts.lockPath ?? defaultLockPath(opts.yamlPath, spec.architecture, arch);
  const out = resolve(opts.out ?? defaultBundlePath(spec, arch));
  const existing = readLock(lockFile);
  const inputs = lockInputs(spec, arch);
  if (existing && existing.architecture !== arch) {
    throw new BaseError('ERR_BASE_LOCK', `${lockFile}: architecture: expected ${arch} (the build's), found ${existing.architecture}; an ${existing.architecture} lock is ${defaultLockPath(opts.yamlPath, spec.architecture, existing.architecture)}`, { file: lockFile });
  }
  if (existing && existing.inputs !== inputs && !opts.update) {
    throw new BaseError('ERR_BASE_LOCK_STALE', `${lockFile} was made for other packages, suite, mirror or components than ${spec.file} names now; run base build --update to lock them again (it prints what changes)`, { file: lockFile, yaml: spec.file });
  }
  checkBinfmt(arch);

  const seconds: Partial<Record<BuildStage, number>> = {};
  const timed = async <T>(stage: BuildStage, detail: string, fn: () => Promise<T>): Promise<T> => {
    opts.onStage?.(stage, detail);
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      seconds[stage] = (seconds[stage] ?? 0) + (Date.now() - t0) / 1000;
    }
  };

  const work = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'edgeimage-base-'));
  chmodSync(work, 0o755); // read by mmdebstrap's hooks as the unshare mode's root
  inProgress.add(work);
  const tmpOut = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    let lock = existing;
    let changes: LockChange[] = [];
    let lockWritten = false;
    if (!lock || opts.update) {
      const fresh = await timed('lock', `${existing ? 'updating' : 'making'} ${lockFile} from ${spec.mirror} ${spec.suite} (${arch})`, () => lockStage(spec, arch, work, cache));
      changes = diffLocks(existing, fresh);
      lockWritten = !existing || serializeLock(existing) !== serializeLock(fresh);
      lock = fresh;
    }
    const lockText = serializeLock(lock);
    const { repo, fetched } = await prepareRepo(spec, lock, lockFile, work, cache, () => opts.onStage?.('fetch', `fetching locked .debs missing from the cache from ${spec.mirror}`));

    const stage = join(work, 'stage');
    mkdirSync(join(stage, 'files'), { recursive: true, mode: 0o755 });
    spec.files.forEach((_, i) => writeFileSync(join(stage, 'files', String(i)), readSource(spec, i), { mode: 0o644 }));
    const wp = writablePathsInputs(spec);
    writeFileSync(join(stage, 'writable-defaults'), wp.defaults, { mode: 0o644 });
    writeFileSync(join(stage, 'writable-yaml'), wp.yaml, { mode: 0o644 });
    writeFileSync(join(stage, 'snap.yaml'), snapYaml(spec, arch, lockText), { mode: 0o644 });
    writeFileSync(join(stage, 'customize.sh'), customizeScript(spec, stage), { mode: 0o755 });

    const epoch = String(lock['source-date-epoch']);
    const tar = join(work, 'rootfs.tar');
    await timed('rootfs', `${lock.packages.length} locked packages → rootfs (mmdebstrap, offline${hostArch() === arch ? '' : `, ${arch} through qemu-user binfmt`})`, async () => {
      const args = [
        ...mmdebstrapBase(spec, arch),
        `--customize-hook=sh ${q(join(stage, 'customize.sh'))} "$1"`,
        '--format=tar',
        spec.suite,
        tar,
        `deb [trusted=yes] copy://${repo} ./`,
      ];
      // As root, no network at all: the build can only see the locked .debs.
      const root = process.getuid?.() === 0;
      const r = root ? await exec('unshare', ['-n', 'mmdebstrap', ...args], { env: { SOURCE_DATE_EPOCH: epoch } }) : await exec('mmdebstrap', args, { env: { SOURCE_DATE_EPOCH: epoch } });
      if (r.exitCode !== 0) throw mmdebstrapError(r.stderr, spec, arch, 'build');
    });

    await timed('squashfs', `→ ${out}`, async () => {
      mkdirSync(dirname(out), { recursive: true });
      inProgress.add(tmpOut);
      const jobs = String(Math.max(1, Math.min(4, availableParallelism())));
      // The image is the same bytes for any number of jobs (checked): only the time changes.
      const r = await exec('tar2sqfs', ['-q', '--no-skip', '-f', '-c', 'xz', '-j', jobs, '-B', '4096', '-d', `uid=0,gid=0,mode=0755,mtime=${epoch}`, tmpOut], { stdinFile: tar });
      if (r.exitCode !== 0) throw new BaseError('ERR_BASE_BUILD', `tar2sqfs failed: ${tail(r.stderr)}`, { out });
    });
    const size = statSync(tmpOut).size;
    const sha3_384 = await sha3File(tmpOut);
    renameSync(tmpOut, out);
    inProgress.delete(tmpOut);
    if (lockWritten) {
      const tmpLock = `${lockFile}.${randomBytes(6).toString('hex')}.tmp`;
      inProgress.add(tmpLock);
      writeFileSync(tmpLock, lockText);
      renameSync(tmpLock, lockFile);
      inProgress.delete(tmpLock);
    }
    return { path: out, size, sha3_384, arch, lock, lockPath: lockFile, lockWritten, lockCreated: !existing, changes, fetched, seconds };
  } finally {
    rmSync(tmpOut, { force: true });
    inProgress.delete(tmpOut);
    rmSync(work, { recursive: true, force: true });
    inProgress.delete(work);
  }
}
