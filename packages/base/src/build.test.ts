/**
 * buildBase's refusals that come before any tool runs (fast); the builds themselves are in
 * build.qemu.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBase, checkBinfmt, debArTime, hostArch } from './build.js';
import { BaseError } from './errors.js';
import { lockInputs, serializeLock, type BaseLock } from './lock.js';
import { parseBaseYaml } from './spec.js';

const YAML = `name: tiny-base
version: '0.1'
suite: bookworm
architecture: amd64
packages: [sysvinit-core]
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-base-fast-'));
  writeFileSync(join(dir, 'BASE.yaml'), YAML);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function lockFor(inputs: string, architecture: 'amd64' | 'arm64' = 'amd64'): BaseLock {
  return {
    format: 1,
    suite: 'bookworm',
    architecture,
    'source-date-epoch': 1733000000,
    inputs,
    packages: [{ name: 'sysvinit-core', version: '3.06-4', architecture, sha256: 'a'.repeat(64), size: 10, filename: `sysvinit-core_3.06-4_${architecture}.deb` }],
  };
}

async function failure(p: Promise<unknown>): Promise<BaseError> {
  const e = await p.then(
    () => new Error('expected a failure'),
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(BaseError);
  return e as BaseError;
}

describe('buildBase refuses before building', () => {
  test('a lock made for another package list is stale: ERR_BASE_LOCK_STALE saying --update; nothing written', async () => {
    const yaml = join(dir, 'BASE.yaml');
    const old = lockInputs({ ...parseBaseYaml(yaml), packages: ['sysvinit-core', 'python3'] }, 'amd64');
    writeFileSync(join(dir, 'BASE.lock'), serializeLock(lockFor(old)));
    const e = await failure(buildBase({ yamlPath: yaml, out: join(dir, 'x.snap') }));
    expect(e.code).toBe('ERR_BASE_LOCK_STALE');
    expect(e.message).toBe(`${join(dir, 'BASE.lock')} was made for other packages, suite, mirror or components than ${yaml} names now; run base build --update to lock them again (it prints what changes)`);
    expect(readFileSync(join(dir, 'BASE.lock'), 'utf8')).toBe(serializeLock(lockFor(old)));
  });

  test('a lock of another architecture given with --lock', async () => {
    const yaml = join(dir, 'BASE.yaml');
    writeFileSync(join(dir, 'arm.lock'), serializeLock(lockFor(lockInputs(parseBaseYaml(yaml), 'arm64'), 'arm64')));
    const e = await failure(buildBase({ yamlPath: yaml, lockPath: join(dir, 'arm.lock'), out: join(dir, 'x.snap') }));
    expect(e.code).toBe('ERR_BASE_LOCK');
    expect(e.message).toBe(`${join(dir, 'arm.lock')}: architecture: expected amd64 (the build's), found arm64; an arm64 lock is ${join(dir, 'BASE.arm64.lock')}`);
  });

  test('a malformed lock', async () => {
    writeFileSync(join(dir, 'BASE.lock'), '{"format": 1}');
    const e = await failure(buildBase({ yamlPath: join(dir, 'BASE.yaml') }));
    expect(e.message).toBe(`${join(dir, 'BASE.lock')}: suite: expected a string, found nothing (the field is missing)`);
  });

  test('a bad BASE.yaml', async () => {
    writeFileSync(join(dir, 'BASE.yaml'), YAML.replace('amd64', 'armhf'));
    const e = await failure(buildBase({ yamlPath: join(dir, 'BASE.yaml') }));
    expect(e.message).toBe(`${join(dir, 'BASE.yaml')}:4: architecture: expected one of amd64, arm64, found "armhf"`);
  });

  test("the host's own architecture needs no binfmt", () => {
    expect(() => checkBinfmt(hostArch()!)).not.toThrow();
  });

  test('a foreign architecture without binfmt: ERR_BASE_BINFMT saying what to run', () => {
    const binfmt = join(dir, 'binfmt_misc');
    const err = () => {
      try {
        checkBinfmt('arm64', binfmt, 'amd64');
      } catch (e) {
        expect(e).toBeInstanceOf(BaseError);
        expect((e as BaseError).code).toBe('ERR_BASE_BINFMT');
        return (e as Error).message;
      }
      return 'no error';
    };
    const how = 'enable it as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64 (./scripts/setup does this where the host allows; in a container, the host must allow mounting binfmt_misc)';
    expect(err()).toBe(`cannot build an arm64 base on this amd64 host: binfmt_misc is not mounted (the arm64 maintainer scripts run through qemu-user-static); ${how}`);
    mkdirSync(binfmt);
    writeFileSync(join(binfmt, 'status'), 'enabled\n');
    expect(err()).toBe(`cannot build an arm64 base on this host: binfmt_misc has no qemu-aarch64 entry; ${how}`);
    writeFileSync(join(binfmt, 'qemu-aarch64'), 'disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n');
    expect(err()).toBe(`cannot build an arm64 base on this host: the binfmt_misc entry qemu-aarch64 is disabled; ${how}`);
    writeFileSync(join(binfmt, 'qemu-aarch64'), 'enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: \n');
    expect(err()).toBe('cannot build an arm64 base on this host: the binfmt_misc entry qemu-aarch64 lacks the F flag (its interpreter is not found inside a chroot); install qemu-user-static (not qemu-user-binfmt) and run update-binfmts --enable qemu-aarch64');
    writeFileSync(join(binfmt, 'qemu-aarch64'), 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n');
    expect(err()).toBe('no error');
  });

  test("SOURCE_DATE_EPOCH source: a .deb's ar member time; not a .deb: 0", () => {
    const deb = join(dir, 'x.deb');
    const header = (name: string, mtime: number, size: number) => `${name.padEnd(16)}${String(mtime).padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(size).padEnd(10)}\`\n`;
    writeFileSync(deb, `!<arch>\n${header('debian-binary', 1700000123, 4)}2.0\n`);
    expect(debArTime(deb)).toBe(1700000123);
    writeFileSync(deb, 'not an archive at all, just text that is long enough to read a header from......');
    expect(debArTime(deb)).toBe(0);
  });
});
