import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseError } from './errors.js';
import { compareDebVersions, diffLocks, formatLockChanges, lockInputs, lockPath, parseLock, readLock, serializeLock, type BaseLock, type LockedPackage } from './lock.js';

const SHA = (c: string) => c.repeat(64);

function pkg(name: string, version: string, architecture = 'amd64', sha = 'a'): LockedPackage {
  return { name, version, architecture, sha256: SHA(sha), size: 1000, filename: `${name}_${version.replace(/:/g, '%3a')}_${architecture}.deb` };
}

const LOCK: BaseLock = {
  format: 1,
  suite: 'bookworm',
  architecture: 'amd64',
  'source-date-epoch': 1733000000,
  inputs: SHA('0'),
  packages: [pkg('systemd', '252.39-1~deb12u2'), pkg('adduser', '3.134', 'all'), pkg('bsdutils', '1:2.38.1-5+deb12u3')],
};

function lockError(mutate: (l: Record<string, unknown>) => void): BaseError {
  const l = JSON.parse(serializeLock(LOCK)) as Record<string, unknown>;
  mutate(l);
  try {
    parseLock(JSON.stringify(l), 'BASE.lock');
  } catch (e) {
    expect(e).toBeInstanceOf(BaseError);
    expect((e as BaseError).code).toBe('ERR_BASE_LOCK');
    return e as BaseError;
  }
  throw new Error('expected an error');
}

describe('BASE.lock', () => {
  test('serialized with sorted keys, packages by name, a trailing newline; parses back', () => {
    const text = serializeLock(LOCK);
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['architecture', 'format', 'inputs', 'packages', 'source-date-epoch', 'suite']);
    const back = parseLock(text, 'BASE.lock');
    expect(back.packages.map((p) => p.name)).toEqual(['adduser', 'bsdutils', 'systemd']);
    expect(serializeLock(back)).toBe(text);
  });

  test('the lock of another architecture is BASE.ARCH.lock', () => {
    expect(lockPath('bundles/robot-base/BASE.yaml', 'amd64', 'amd64')).toBe('bundles/robot-base/BASE.lock');
    expect(lockPath('bundles/robot-base/BASE.yaml', 'amd64', 'arm64')).toBe('bundles/robot-base/BASE.arm64.lock');
    expect(lockPath('x/kiosk.yml', 'arm64', 'amd64')).toBe('x/kiosk.amd64.lock');
  });

  test('the inputs digest: package order and duplicates do not matter; packages, architecture, suite, mirror do', () => {
    const spec = { suite: 'bookworm', mirror: 'http://deb.debian.org/debian', components: ['main'], packages: ['systemd', 'python3'] };
    const d = lockInputs(spec, 'amd64');
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(lockInputs({ ...spec, packages: ['python3', 'systemd', 'python3'] }, 'amd64')).toBe(d);
    expect(lockInputs({ ...spec, packages: ['python3'] }, 'amd64')).not.toBe(d);
    expect(lockInputs(spec, 'arm64')).not.toBe(d);
    expect(lockInputs({ ...spec, suite: 'trixie' }, 'amd64')).not.toBe(d);
    expect(lockInputs({ ...spec, mirror: 'http://ftp.de.debian.org/debian' }, 'amd64')).not.toBe(d);
  });

  test('not JSON', () => {
    expect(() => parseLock('{"format": 1,', 'BASE.lock')).toThrow(/^BASE\.lock: expected JSON, found a syntax error: /);
  });

  test('another format', () => {
    expect(lockError((l) => (l['format'] = 2)).message).toBe('BASE.lock: format: expected one of 1, found 2');
  });

  test('a bad sha256 names the field and the package', () => {
    expect(lockError((l) => ((l['packages'] as LockedPackage[])[1]!.sha256 = 'xyz')).message).toBe('BASE.lock: packages[1].sha256 (bsdutils): expected 64 lower-case hex digits, found "xyz"');
  });

  test('a file name with a folder in it (the repository is built from these names)', () => {
    expect(lockError((l) => ((l['packages'] as LockedPackage[])[0]!.filename = '../../etc/passwd.deb')).message).toBe(
      'BASE.lock: packages[0].filename (adduser): expected a .deb file name (name_version_arch.deb, no folders), found "../../etc/passwd.deb"',
    );
  });

  test('a version with a shell character', () => {
    expect(lockError((l) => ((l['packages'] as LockedPackage[])[2]!.version = '1;reboot')).message).toBe('BASE.lock: packages[2].version (systemd): expected a Debian version, found "1;reboot"');
  });

  test('an unknown key, a missing key', () => {
    expect(lockError((l) => (l['extra'] = 1)).message).toBe('BASE.lock: (top level): expected only the lock\'s keys, found the unknown key "extra"');
    expect(lockError((l) => delete l['source-date-epoch']).message).toBe('BASE.lock: source-date-epoch: expected a number, found nothing (the field is missing)');
  });

  test('a package twice, a package of another architecture', () => {
    expect(lockError((l) => (l['packages'] as LockedPackage[]).push(pkg('systemd', '252.1'))).message).toBe('BASE.lock: packages: expected each package once, found systemd:amd64 twice');
    expect(lockError((l) => (l['packages'] as LockedPackage[]).push(pkg('zlib1g', '1.2', 'arm64'))).message).toBe('BASE.lock: packages (zlib1g): expected architecture amd64 or all, found arm64');
  });

  test('no packages', () => {
    expect(lockError((l) => (l['packages'] = [])).message).toBe('BASE.lock: packages: expected at least 1, found []');
  });

  test('readLock: absent is undefined; a folder is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeimage-lock-'));
    try {
      expect(readLock(join(dir, 'BASE.lock'))).toBeUndefined();
      expect(() => readLock(dir)).toThrow(`${dir}: expected a lock file, found a folder`);
      writeFileSync(join(dir, 'BASE.lock'), serializeLock(LOCK));
      expect(readLock(join(dir, 'BASE.lock'))?.packages).toHaveLength(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lock changes', () => {
  test("Debian's version order", () => {
    expect(compareDebVersions('1.0', '1.0')).toBe(0);
    expect(compareDebVersions('1.0~rc1', '1.0')).toBeLessThan(0);
    expect(compareDebVersions('1:1.0', '2.0')).toBeGreaterThan(0);
    expect(compareDebVersions('252.39-1~deb12u2', '252.39-1')).toBeLessThan(0);
    expect(compareDebVersions('2.38.1-5+deb12u3', '2.38.1-5+deb12u10')).toBeLessThan(0);
    expect(compareDebVersions('1.2.13.dfsg-1', '1.2.13-1')).toBeGreaterThan(0);
    expect(compareDebVersions('1.0a', '1.0+')).toBeLessThan(0);
  });

  test('added, removed, upgraded, downgraded and rebuilt lines, sorted by package', () => {
    const after: BaseLock = {
      ...LOCK,
      packages: [pkg('systemd', '252.40-1~deb12u1'), pkg('adduser', '3.134', 'all', 'b'), pkg('python3', '3.11.2-1+b1'), pkg('bsdutils', '1:2.38.1-5')],
    };
    const changes = diffLocks(LOCK, after);
    expect(formatLockChanges(changes)).toEqual([
      '~ adduser sha256 aaaaaaaaaaaa… -> bbbbbbbbbbbb… (same version, other bytes)',
      '~ bsdutils:amd64 1:2.38.1-5+deb12u3 -> 1:2.38.1-5 (downgraded)',
      '+ python3:amd64 3.11.2-1+b1 (added)',
      '~ systemd:amd64 252.39-1~deb12u2 -> 252.40-1~deb12u1 (upgraded)',
    ]);
    expect(formatLockChanges(diffLocks(after, LOCK))).toContain('- python3:amd64 3.11.2-1+b1 (removed)');
    expect(diffLocks(LOCK, LOCK)).toEqual([]);
  });

  test('a first lock: every package added', () => {
    expect(formatLockChanges(diffLocks(undefined, LOCK))).toEqual(['+ adduser 3.134 (added)', '+ bsdutils:amd64 1:2.38.1-5+deb12u3 (added)', '+ systemd:amd64 252.39-1~deb12u2 (added)']);
  });
});
