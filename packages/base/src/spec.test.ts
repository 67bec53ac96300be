import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseError } from './errors.js';
import { parseBaseYaml, parseBaseYamlText, writablePaths } from './spec.js';

const GOOD = `name: robot-base
version: '1.0'
suite: bookworm
architecture: amd64
packages: [systemd, systemd-sysv, python3, systemd]
files:
  - { src: files/a.network, dest: /etc/systemd/network/20-a.network, mode: '0644' }
groups: [{ name: robot, gid: 1500 }]
users: [{ name: robot, uid: 1500, group: robot, system: true }]
services:
  enable: [systemd-networkd.service]
hostname: robot
writable-paths:
  - { path: /etc/robot, mode: synced }
  - { path: /var, mode: persistent }
`;

let dir: string;
let yaml: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-base-spec-'));
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files/a.network'), '[Match]\nName=en*\n');
  yaml = join(dir, 'BASE.yaml');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The error parseBaseYamlText throws for `text` (written as BASE.yaml in the test folder). */
function failure(text: string): BaseError {
  writeFileSync(yaml, text);
  try {
    parseBaseYaml(yaml);
  } catch (e) {
    expect(e).toBeInstanceOf(BaseError);
    return e as BaseError;
  }
  throw new Error('expected an error');
}

describe('BASE.yaml', () => {
  test('a good file: defaults filled in, packages sorted once each, files resolved in its folder', () => {
    writeFileSync(yaml, GOOD);
    const s = parseBaseYaml(yaml);
    expect(s).toMatchObject({ name: 'robot-base', version: '1.0', suite: 'bookworm', architecture: 'amd64', mirror: 'http://deb.debian.org/debian', components: ['main'], hostname: 'robot' });
    expect(s.packages).toEqual(['python3', 'systemd', 'systemd-sysv']);
    expect(s.files).toEqual([{ src: 'files/a.network', source: join(dir, 'files/a.network'), dest: '/etc/systemd/network/20-a.network', mode: '0644', line: 7 }]);
    expect(s.users).toEqual([{ name: 'robot', uid: 1500, group: 'robot', home: '/nonexistent', shell: '/usr/sbin/nologin', system: true }]);
    expect(s.services).toEqual({ enable: ['systemd-networkd.service'], disable: [], mask: [] });
  });

  test('writable paths: the C1 defaults always, the YAML adds and overrides, sorted by path', () => {
    writeFileSync(yaml, GOOD);
    expect(writablePaths(parseBaseYaml(yaml)).map((w) => `${w.path} ${w.mode}`)).toEqual([
      '/etc/hostname synced',
      '/etc/localtime synced',
      '/etc/machine-id persistent',
      '/etc/robot synced',
      '/etc/systemd/network synced',
      '/etc/timezone synced',
      '/var persistent',
    ]);
  });

  test('an unknown key names it, its line and the keys expected', () => {
    const e = failure(GOOD.replace('packages:', 'pakages:'));
    expect(e.code).toBe('ERR_BASE_YAML');
    expect(e.message).toBe(
      `${yaml}:5: pakages: expected one of the keys name, version, summary, suite, architecture, mirror, components, packages, files, users, groups, services, hostname, writable-paths, found the unknown key "pakages"`,
    );
  });

  test('an unknown key inside a list entry', () => {
    const e = failure(GOOD.replace('{ name: robot, uid: 1500, group: robot, system: true }', '{ name: robot, uid: 1500, grup: robot }'));
    expect(e.message).toBe(`${yaml}:9: users[0].grup: expected one of the keys name, uid, group, home, shell, system, found the unknown key "grup"`);
  });

  test('a bad architecture', () => {
    const e = failure(GOOD.replace('architecture: amd64', 'architecture: x86_64'));
    expect(e.message).toBe(`${yaml}:4: architecture: expected one of amd64, arm64, found "x86_64"`);
  });

  test('a missing field', () => {
    const e = failure(GOOD.replace('suite: bookworm\n', ''));
    expect(e.message).toBe(`${yaml}:1: suite: expected a string, found nothing (the field is missing)`);
  });

  test('an unquoted version is a number: refused with the hint to quote it', () => {
    const e = failure(GOOD.replace("version: '1.0'", 'version: 1.0'));
    expect(e.message).toBe(`${yaml}:2: version: expected a string, found 1`);
  });

  test('a package name with a shell character', () => {
    const e = failure(GOOD.replace('python3, systemd]', 'python3, "systemd;reboot"]'));
    expect(e.message).toBe(`${yaml}:5: packages[3]: expected a Debian package name (lower-case letters, digits and +.-), found "systemd;reboot"`);
  });

  test("a destination with '..'", () => {
    const e = failure(GOOD.replace('dest: /etc/systemd/network/20-a.network', 'dest: /etc/../../root/.ssh/authorized_keys'));
    expect(e.message).toBe(`${yaml}:7: files[0].dest: expected a path without '..' or '.' segments (where the file goes in the base), found "/etc/../../root/.ssh/authorized_keys"`);
  });

  test("a source with '..' out of BASE.yaml's folder", () => {
    const e = failure(GOOD.replace('src: files/a.network', 'src: ../secret'));
    expect(e.message).toBe(`${yaml}:7: files[0].src: expected a path without '..' (files come from BASE.yaml's folder), found "../secret"`);
  });

  test('an absolute source', () => {
    const e = failure(GOOD.replace('src: files/a.network', 'src: /etc/shadow'));
    expect(e.message).toBe(`${yaml}:7: files[0].src: expected a path relative to BASE.yaml's folder, found "/etc/shadow"`);
  });

  test("a source that is a link out of BASE.yaml's folder: ERR_BASE_FILE naming the target", () => {
    symlinkSync('/etc/passwd', join(dir, 'files/passwd'));
    const e = failure(GOOD.replace('src: files/a.network', 'src: files/passwd'));
    expect(e.code).toBe('ERR_BASE_FILE');
    expect(e.message).toBe(`${yaml}:7: files: files/passwd: expected a file inside ${dir}, found a link to /etc/passwd outside it`);
  });

  test('a folder as a source, and a missing source', () => {
    expect(failure(GOOD.replace('src: files/a.network', 'src: files')).message).toBe(`${yaml}:7: files: files: expected a regular file, found a folder`);
    expect(failure(GOOD.replace('src: files/a.network', 'src: files/nope')).message).toBe(`${yaml}:7: files: files/nope: expected a file in ${dir}, found nothing there`);
  });

  test('a setuid mode is refused', () => {
    const e = failure(GOOD.replace("mode: '0644'", "mode: '4755'"));
    expect(e.message).toBe(`${yaml}:7: files[0].mode: expected an octal mode as a quoted string, such as '0644' (no setuid/setgid/sticky bits), found "4755"`);
  });

  test('a writable path under /run, and one with ..', () => {
    expect(failure(GOOD.replace('path: /etc/robot', 'path: /run/robot')).message).toBe(
      `${yaml}:14: writable-paths[0].path: expected a path outside /writable /run /proc /sys /dev /tmp /meta (the device mounts those itself), found "/run/robot"`,
    );
    expect(failure(GOOD.replace('path: /etc/robot', 'path: /etc/../robot')).message).toBe(
      `${yaml}:14: writable-paths[0].path: expected a path without '..' or '.' segments (a path of the base that the device writes), found "/etc/../robot"`,
    );
  });

  test('a writable path that is or holds the kernel modules, and one the initramfs cannot read (review F3, F5)', () => {
    for (const path of ['/usr', '/usr/lib', '/usr/lib/modules', '/usr/lib/modules/6.1.0', '/lib/modules']) {
      expect(failure(GOOD.replace('path: /etc/robot', `path: ${path}`)).message).toBe(
        `${yaml}:14: writable-paths[0].path: expected a path that neither is nor holds /usr/lib/modules (the kernel bundle's modules are never writable), found "${path}"`,
      );
    }
    expect(failure(GOOD.replace('path: /etc/robot', 'path: /etc/ro+bot')).message).toBe(
      `${yaml}:14: writable-paths[0].path: expected a path of A-Z a-z 0-9 . _ / - only, at most 1024 characters (as the initramfs reads it), found "/etc/ro+bot"`,
    );
  });

  test('a bad writable-path mode', () => {
    expect(failure(GOOD.replace('mode: synced', 'mode: rw')).message).toBe(`${yaml}:14: writable-paths[0].mode: expected one of persistent, synced, found "rw"`);
  });

  test('a user in a group nobody declares', () => {
    expect(failure(GOOD.replace('group: robot,', 'group: dialout,')).message).toBe(`${yaml}:9: users[0].group: expected a group listed under groups: (robot), found "dialout"`);
  });

  test('a bad unit name', () => {
    expect(failure(GOOD.replace('[systemd-networkd.service]', '[networkd]')).message).toBe(`${yaml}:11: services.enable[0]: expected a systemd unit name such as systemd-networkd.service, found "networkd"`);
  });

  test('YAML syntax, a duplicate key, a list at the top', () => {
    expect(failure('name: [a\n').message).toMatch(new RegExp(`^${yaml.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: invalid YAML: `));
    expect(failure(`${GOOD}hostname: other\n`).message).toMatch(/:16: invalid YAML: Map keys must be unique/);
    expect(failure('- a\n').message).toBe(`${yaml}:1: (top level): expected a map of BASE.yaml fields, found a list`);
  });

  test('a mirror that would break the sources.list line', () => {
    expect(failure(GOOD.replace('architecture: amd64\n', 'architecture: amd64\nmirror: "http://x [trusted=yes]"\n')).message).toBe(
      `${yaml}:5: mirror: expected an http(s) URL of a Debian mirror such as http://deb.debian.org/debian, found "http://x [trusted=yes]"`,
    );
  });

  test('text without a file: the name given is used', () => {
    expect(() => parseBaseYamlText('name: x\n', 'inline.yaml')).toThrow(/^inline\.yaml:1: version: expected a string/);
  });
});
