/**
 * Real base builds: mmdebstrap against deb.debian.org, real .debs, tar2sqfs. In the slow (qemu)
 * jest project for their time — each build is 15–70 s on amd64 and about 70 s per mmdebstrap run
 * for arm64 through qemu-user binfmt — not because anything boots. A tiny base (the essential set,
 * apt and sysvinit-core: an init, no systemd) keeps them as short as a real build can be; the
 * builds are shared by the tests of a describe. The .debs come from the shared cache
 * (content-addressed, checked on read), so only the first run of a machine downloads them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBase, type BuildBaseResult } from './build.js';
import { debPool } from './cache.js';
import { BaseError } from './errors.js';
import { formatLockChanges, lockInputs, parseLock, serializeLock, type BaseLock } from './lock.js';
import { parseBaseYaml } from './spec.js';

const TINY = `name: tiny-base
version: '0.1'
suite: bookworm
architecture: amd64
packages: [sysvinit-core]
files:
  - { src: files/hello.conf, dest: /etc/tiny/hello.conf, mode: '0640' }
groups: [{ name: robot, gid: 1500 }]
users: [{ name: robot, uid: 1500, group: robot, system: true }]
hostname: tiny
writable-paths:
  - { path: /etc/tiny, mode: synced }
`;

const BUILD_TIMEOUT = 300_000;

function unsquash(snap: string, path: string): string {
  return execFileSync('unsquashfs', ['-cat', snap, path], { encoding: 'utf8', maxBuffer: 16 << 20 });
}

function listing(snap: string): string {
  return execFileSync('unsquashfs', ['-lls', '-d', '', snap], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

function project(yaml: string): { dir: string; yaml: string; work: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-base-test-'));
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files/hello.conf'), 'greeting=hello\n');
  writeFileSync(join(dir, 'BASE.yaml'), yaml);
  const work = mkdtempSync(join(tmpdir(), 'edgeimage-base-test-work-'));
  return { dir, yaml: join(dir, 'BASE.yaml'), work };
}

/**
 * No half-written output or cache entry and no work folder left behind. The builds of these tests
 * make their work folders in `work` (other processes may be building bases into the system's
 * temporary folder and the shared cache meanwhile: only this process's entries are looked at).
 */
function expectNothingHalfDone(dir: string, work: string): void {
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp') || n.startsWith('.'))).toEqual([]);
  const pool = debPool();
  if (existsSync(pool)) expect(readdirSync(pool).filter((n) => n.startsWith(`.tmp-${process.pid}-`))).toEqual([]);
  expect(readdirSync(work)).toEqual([]);
}

async function failure(p: Promise<unknown>): Promise<BaseError> {
  const e = await p.then(
    () => new Error('expected the build to fail'),
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(BaseError);
  return e as BaseError;
}

function oldLock(inputs: string): BaseLock {
  return {
    format: 1,
    suite: 'bookworm',
    architecture: 'amd64',
    'source-date-epoch': 1_600_000_000,
    inputs,
    packages: [
      { name: 'sysvinit-core', version: '3.06-2', architecture: 'amd64', sha256: 'e'.repeat(64), size: 100, filename: 'sysvinit-core_3.06-2_amd64.deb' },
      { name: 'edgeimage-gone', version: '1.0-1', architecture: 'all', sha256: 'd'.repeat(64), size: 100, filename: 'edgeimage-gone_1.0-1_all.deb' },
    ],
  };
}

describe('an amd64 base from Debian packages', () => {
  let p: { dir: string; yaml: string; work: string };
  let first: BuildBaseResult;
  let second: BuildBaseResult;

  beforeAll(async () => {
    p = project(TINY);
    // A lock as if made long ago for this BASE.yaml (an older sysvinit-core, a package since
    // dropped): the first build refreshes it with --update — one lock stage serves both tests.
    writeFileSync(join(p.dir, 'BASE.lock'), serializeLock(oldLock(lockInputs(parseBaseYaml(p.yaml), 'amd64'))));
    first = await buildBase({ tmpDir: p.work, yamlPath: p.yaml, out: join(p.dir, 'a.snap'), update: true });
    second = await buildBase({ tmpDir: p.work, yamlPath: p.yaml, out: join(p.dir, 'b.snap') });
  }, 2 * BUILD_TIMEOUT);
  afterAll(() => {
    rmSync(p.dir, { recursive: true, force: true });
    rmSync(p.work, { recursive: true, force: true });
  });

  test('--update rewrites an old lock and says what changed; the next build installs from the lock, no lock stage', () => {
    expect(first.lockWritten).toBe(true);
    expect(first.lockCreated).toBe(false);
    expect(first.lockPath).toBe(join(p.dir, 'BASE.lock'));
    const lock = parseLock(readFileSync(first.lockPath, 'utf8'), first.lockPath);
    expect(lock.architecture).toBe('amd64');
    expect(lock['source-date-epoch']).toBeGreaterThan(1_600_000_000);
    expect(lock.packages.map((x) => x.name)).toEqual(expect.arrayContaining(['base-files', 'dpkg', 'apt', 'sysvinit-core']));
    const sysv = lock.packages.find((x) => x.name === 'sysvinit-core')!;
    const lines = formatLockChanges(first.changes);
    expect(lines).toContain('- edgeimage-gone 1.0-1 (removed)');
    expect(lines).toContain(`~ sysvinit-core:amd64 3.06-2 -> ${sysv.version} (upgraded)`);
    expect(lines).toContain(`+ dpkg:amd64 ${lock.packages.find((x) => x.name === 'dpkg')!.version} (added)`);
    expect(lines.filter((l) => l.startsWith('+ '))).toHaveLength(lock.packages.length - 1);
    expect(lines).toHaveLength(lock.packages.length + 1);
    expect(second.lockWritten).toBe(false);
    expect(second.changes).toEqual([]);
    expect(second.seconds.lock).toBeUndefined();
  });

  test('two builds from the same lock give the same bytes, padded to 4 KiB', () => {
    expect(readFileSync(second.path).equals(readFileSync(first.path))).toBe(true);
    expect(second.sha3_384).toBe(first.sha3_384);
    expect(first.size % 4096).toBe(0);
  });

  test('the tree: snap.yaml, writable paths, files, accounts, hostname, nothing per build', () => {
    const snap = first.path;
    expect(unsquash(snap, 'meta/snap.yaml')).toMatch(/^name: tiny-base\nversion: '0\.1'\nsummary: .*\ntype: base\narchitectures: \[amd64\]\nedgeimage-lock: sha256:[0-9a-f]{64}\n$/);
    expect(unsquash(snap, 'etc/edgeimage/writable-paths')).toBe(
      // Only the defaults the tree has: no tzdata (/etc/localtime), no systemd (/etc/systemd/network), no ssh.
      '/etc/hostname synced\n/etc/machine-id persistent\n/etc/tiny synced\n/var synced\n',
    );
    expect(unsquash(snap, 'etc/tiny/hello.conf')).toBe('greeting=hello\n');
    expect(unsquash(snap, 'etc/hostname')).toBe('tiny\n');
    expect(unsquash(snap, 'etc/machine-id')).toBe('');
    expect(unsquash(snap, 'etc/passwd')).toMatch(/^robot:x:1500:1500::\/nonexistent:\/usr\/sbin\/nologin$/m);
    expect(unsquash(snap, 'etc/group')).toMatch(/^robot:x:1500:$/m);
    expect(unsquash(snap, 'etc/apt/sources.list')).toBe('deb http://deb.debian.org/debian bookworm main\n');
    const ls = listing(snap);
    expect(ls).toMatch(/^-rw-r----- root\/root +15 .* \/etc\/tiny\/hello\.conf$/m);
    for (const dir of ['/writable', '/usr/lib/modules', '/run', '/proc', '/sys', '/dev', '/tmp']) expect(ls).toMatch(new RegExp(`^d\\S+ root/root .* ${dir.replace(/\//g, '\\/')}$`, 'm'));
    expect(ls).toMatch(/^drwxrwxrwt .* \/tmp$/m);
    expect(ls).not.toMatch(/ \/etc\/resolv\.conf( |$)/m);
    // (apt's empty lock file and partial/ folder stay, as after any apt run; no index file)
    expect(ls).not.toMatch(/ \/var\/lib\/apt\/lists\/[^/\s]*_/m);
    expect(ls).not.toMatch(/ \/var\/cache\/apt\/\S+\.bin$/m);
    expect(ls).not.toMatch(/ \/var\/cache\/ldconfig\/aux-cache$/m);
    expect(ls).not.toMatch(/^-.* \/var\/log\/\S+$/m);
    expect(ls).toMatch(/ \/usr\/sbin\/init$/m);
  });

  test('a locked version no longer in the archive and not in the cache: ERR_BASE_LOCK_UNAVAILABLE naming it, no bundle', async () => {
    const lock = parseLock(readFileSync(first.lockPath, 'utf8'), first.lockPath);
    const bumped: BaseLock = {
      ...lock,
      packages: lock.packages.map((x) => (x.name === 'sysvinit-core' ? { ...x, version: '3.06-4+edgeimage9', sha256: 'f'.repeat(64), filename: 'sysvinit-core_3.06-4+edgeimage9_amd64.deb' } : x)),
    };
    const lockFile = join(p.dir, 'bumped.lock');
    writeFileSync(lockFile, serializeLock(bumped));
    const out = join(p.dir, 'bumped.snap');
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: p.yaml, lockPath: lockFile, out }));
    expect(e.code).toBe('ERR_BASE_LOCK_UNAVAILABLE');
    expect(e.message).toMatch(new RegExp(`^${lockFile}: sysvinit-core 3\\.06-4\\+edgeimage9 \\(amd64\\) is locked but is neither in the cache \\(.*\\) nor in the archive \\(http://deb\\.debian\\.org/debian bookworm: .*\\); .*run base build --update`));
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(lockFile, 'utf8')).toBe(serializeLock(bumped));
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);

  test("the archive's .deb of a locked version has another sha256 than the lock's: ERR_BASE_LOCK_MISMATCH, no bundle", async () => {
    const lock = parseLock(readFileSync(first.lockPath, 'utf8'), first.lockPath);
    const sysv = lock.packages.find((x) => x.name === 'sysvinit-core')!;
    const lockFile = join(p.dir, 'mismatch.lock');
    writeFileSync(lockFile, serializeLock({ ...lock, packages: lock.packages.map((x) => (x === sysv ? { ...x, sha256: 'c'.repeat(64) } : x)) }));
    const out = join(p.dir, 'mismatch.snap');
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: p.yaml, lockPath: lockFile, out }));
    expect(e.code).toBe('ERR_BASE_LOCK_MISMATCH');
    expect(e.message).toBe(`${lockFile}: sysvinit-core ${sysv.version} from the archive has sha256 ${sysv.sha256}, the lock says ${'c'.repeat(64)}; run base build --update if the archive is right`);
    expect(existsSync(out)).toBe(false);
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);

  test('a lock entry whose sha256 is the cached .deb of another package: ERR_BASE_LOCK naming both', async () => {
    const lock = parseLock(readFileSync(first.lockPath, 'utf8'), first.lockPath);
    const sysv = lock.packages.find((x) => x.name === 'sysvinit-core')!;
    const dash = lock.packages.find((x) => x.name === 'dash')!;
    const lockFile = join(p.dir, 'swapped.lock');
    writeFileSync(lockFile, serializeLock({ ...lock, packages: lock.packages.map((x) => (x === sysv ? { ...x, sha256: dash.sha256 } : x)) }));
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: p.yaml, lockPath: lockFile, out: join(p.dir, 'swapped.snap') }));
    expect(e.code).toBe('ERR_BASE_LOCK');
    expect(e.message).toBe(`${lockFile}: sysvinit-core: the .deb with sha256 ${dash.sha256} is dash ${dash.version} (amd64), not sysvinit-core ${sysv.version} (amd64)`);
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);

  test('a service that is not in the tree: ERR_BASE_SERVICE naming it; no bundle, the lock unchanged, nothing half-written', async () => {
    writeFileSync(p.yaml.replace('BASE.yaml', 'svc.yaml'), `${TINY}services:\n  enable: [edgeimage-nope.service]\n`);
    writeFileSync(join(p.dir, 'svc.lock'), readFileSync(first.lockPath));
    const out = join(p.dir, 'svc.snap');
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: join(p.dir, 'svc.yaml'), out }));
    expect(e.code).toBe('ERR_BASE_SERVICE');
    expect(e.message).toBe(`${join(p.dir, 'svc.yaml')}: services: edgeimage-nope.service is not a unit of the base (none in /etc/systemd/system or /usr/lib/systemd/system; add its package or a file)`);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(join(p.dir, 'svc.lock'))).toEqual(readFileSync(first.lockPath));
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);
});

describe('bad package lists', () => {
  let p: { dir: string; yaml: string; work: string };
  beforeAll(() => {
    p = project(TINY);
  });
  afterAll(() => {
    rmSync(p.dir, { recursive: true, force: true });
    rmSync(p.work, { recursive: true, force: true });
  });

  test('a package the archive does not have: ERR_BASE_PACKAGE_UNKNOWN naming it, no lock, no bundle', async () => {
    writeFileSync(p.yaml, TINY.replace('[sysvinit-core]', '[sysvinit-core, edgeimage-no-such-package]'));
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: p.yaml, out: join(p.dir, 'x.snap') }));
    expect(e.code).toBe('ERR_BASE_PACKAGE_UNKNOWN');
    expect(e.message).toBe(`${p.yaml}: packages: edgeimage-no-such-package is not a package of Debian bookworm (amd64, main) at http://deb.debian.org/debian`);
    expect(existsSync(join(p.dir, 'BASE.lock'))).toBe(false);
    expect(existsSync(join(p.dir, 'x.snap'))).toBe(false);
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);

  test('no init in the package list: ERR_BASE_NO_INIT, no lock, no bundle', async () => {
    writeFileSync(p.yaml, TINY.replace('[sysvinit-core]', '[]'));
    const e = await failure(buildBase({ tmpDir: p.work, yamlPath: p.yaml, out: join(p.dir, 'x.snap') }));
    expect(e.code).toBe('ERR_BASE_NO_INIT');
    expect(e.message).toBe(`${p.yaml}: the base has no /sbin/init: add an init to packages: (systemd-sysv for systemd) — the initramfs starts /sbin/init of the base`);
    expect(existsSync(join(p.dir, 'BASE.lock'))).toBe(false);
    expect(existsSync(join(p.dir, 'x.snap'))).toBe(false);
    expectNothingHalfDone(p.dir, p.work);
  }, BUILD_TIMEOUT);
});

/**
 * arm64 on this amd64 host: the reference robot's arm64 base as bundles/build makes it (edgeimage
 * base build --arch arm64 from the committed BASE.arm64.lock; the robot's boot tests use the same
 * cached bundle, so the suite builds it once), rather than a build of its own: an arm64 build runs
 * every maintainer script under qemu-user and takes minutes.
 */
describe('an arm64 base on an amd64 host (maintainer scripts through qemu-user binfmt)', () => {
  const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  let snap: string;
  beforeAll(() => {
    const out = execFileSync(join(ROOT, 'bundles/build'), [join(ROOT, 'images/bundles')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    snap = out.trim().split('\n').find((l) => /\/robot-base_arm64\.snap$/.test(l))!;
  }, 2 * BUILD_TIMEOUT);

  test('the robot base of BASE.arm64.lock: arm64 packages, arm64 binaries, the accounts its arm64 maintainer scripts made, whole 4 KiB blocks', () => {
    expect(snap).toBeDefined();
    const lock = parseLock(readFileSync(join(ROOT, 'bundles/robot-base/BASE.arm64.lock'), 'utf8'), 'BASE.arm64.lock');
    expect(lock.architecture).toBe('arm64');
    expect(lock.packages.every((x) => x.architecture === 'arm64' || x.architecture === 'all')).toBe(true);
    expect(unsquash(snap, 'meta/snap.yaml')).toMatch(/^architectures: \[arm64\]$/m);
    const dash = execFileSync('unsquashfs', ['-cat', snap, 'usr/bin/dash'], { maxBuffer: 16 << 20 });
    expect(dash.readUInt16LE(18)).toBe(0xb7); // e_machine EM_AARCH64
    // systemd's postinst (arm64 systemd-sysusers under qemu-user) made its users
    expect(unsquash(snap, 'etc/passwd')).toMatch(/^systemd-network:x:\d+:\d+:/m);
    expect(statSync(snap).size % 4096).toBe(0);
  });
});
