import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SnapYamlError } from '../errors.js';
import { isSnapName, parseSnapYaml } from './snap-yaml.js';

const FILE = 'meta/snap.yaml';

/** The SnapYamlError that parsing `text` throws. */
function failure(text: string): SnapYamlError {
  try {
    parseSnapYaml(text, FILE);
  } catch (e) {
    if (e instanceof SnapYamlError) return e;
    throw e;
  }
  throw new Error(`parsed without an error:\n${text}`);
}

const y = (...lines: string[]) => `${lines.join('\n')}\n`;

describe('parseSnapYaml: valid snap.yaml', () => {
  it('fills the defaults: type app, architectures [all], no apps', () => {
    expect(parseSnapYaml(y('name: hello', "version: '1.0'"), FILE)).toEqual({ name: 'hello', version: '1.0', type: 'app', architectures: ['all'], apps: {} });
  });

  it('keeps apps with their daemon, restart-condition and any other keys', () => {
    const s = parseSnapYaml(
      y(
        'name: hello-kiosk',
        "version: '1.0'",
        'type: app',
        'architectures: [amd64, arm64]',
        'summary: Prints that the kiosk is up',
        'description: |',
        '  Two lines',
        '  of text.',
        'apps:',
        '  hello-kiosk:',
        '    command: bin/hello-kiosk',
        '    daemon: simple',
        '    restart-condition: on-failure',
        '    plugs: [network]',
        '  Tool-2:',
        '    command: bin/tool',
      ),
      FILE,
    );
    expect(s.architectures).toEqual(['amd64', 'arm64']);
    expect(s.summary).toBe('Prints that the kiosk is up');
    expect(s.description).toBe('Two lines\nof text.\n');
    expect(s.apps).toEqual({
      'hello-kiosk': { command: 'bin/hello-kiosk', daemon: 'simple', 'restart-condition': 'on-failure', plugs: ['network'] },
      'Tool-2': { command: 'bin/tool' },
    });
  });

  it.each([
    ['1.10', '1.10'],
    ['6.4', '6.4'],
    ['2', '2'],
    ['1e3', '1e3'],
    ['0x1F', '0x1F'],
    ['"1.10"', '1.10'],
    ['2.0.18', '2.0.18'],
    ['5.15.0-91.101.1', '5.15.0-91.101.1'],
    ['1:2.3+git~4', '1:2.3+git~4'],
  ])('reads version %s as the text %s, as go-yaml does, not as a number', (written, expected) => {
    expect(parseSnapYaml(y('name: v', `version: ${written}`), FILE).version).toBe(expected);
  });

  it.each(['app', 'base', 'kernel', 'gadget', 'snapd', 'os'])('accepts type %s', (type) => {
    expect(parseSnapYaml(y('name: t', 'version: "1"', `type: ${type}`), FILE).type).toBe(type);
  });

  it.each(['amd64', 'arm64', 'armhf', 'i386', 'riscv64', 'ppc64el', 's390x', 'all'])('accepts architecture %s', (arch) => {
    expect(parseSnapYaml(y('name: t', 'version: "1"', 'architectures:', `  - ${arch}`), FILE).architectures).toEqual([arch]);
  });

  it.each(['daemon: simple', 'daemon: forking', 'daemon: oneshot', 'daemon: notify', 'daemon: dbus', 'restart-condition: on-watchdog', 'restart-condition: never'])(
    'accepts an app with %s',
    (line) => {
      const s = parseSnapYaml(y('name: t', 'version: "1"', 'apps:', '  svc:', '    command: bin/svc', `    ${line}`), FILE);
      const [key, value] = line.split(': ');
      expect(s.apps['svc']?.[key!]).toBe(value);
    },
  );

  it('treats empty optional fields (apps:, architectures:) as absent', () => {
    const s = parseSnapYaml(y('name: t', 'version: "1"', 'apps:', 'architectures:', 'type:'), FILE);
    expect(s).toMatchObject({ type: 'app', architectures: ['all'], apps: {} });
  });

  it('accepts names of 1 and 40 characters, digits first, and inner dashes', () => {
    for (const name of ['a', 'x'.repeat(40), '0ad', 'a-b-c9', '1-a-2']) {
      expect(parseSnapYaml(y(`name: ${name}`, 'version: "1"'), FILE).name).toBe(name);
    }
  });

  it('keeps base, and follows aliases and anchors (a number through an alias stays as written)', () => {
    const s = parseSnapYaml(y('name: t', 'summary: &v 1.10', 'base: core22', 'version: *v'), FILE);
    expect(s.base).toBe('core22');
    expect(s.summary).toBe('1.10');
    expect(s.version).toBe('1.10');
  });

  // Real snaps carry many more keys than edgeimage reads; they must still be valid bundles.
  it.each([
    [
      'hello-world (version written as a number)',
      y(
        'name: hello-world',
        'version: 6.4',
        'architectures: [ all ]',
        "summary: The 'hello-world' of snaps",
        'description: |',
        '    This is a simple snap example.',
        'apps:',
        ' env:',
        '   command: bin/env',
        ' evil:',
        '   command: bin/evil',
        ' sh:',
        '   command: bin/sh',
        ' hello-world:',
        '   command: bin/echo',
      ),
      { name: 'hello-world', version: '6.4', type: 'app', architectures: ['all'] },
    ],
    [
      'core22 (a base)',
      y('name: core22', "version: '20240111'", 'summary: Runtime environment based on Ubuntu 22.04', 'confinement: strict', 'grade: stable', 'type: base', 'architectures:', '- amd64', 'assumes: [snapd2.55.5]'),
      { name: 'core22', version: '20240111', type: 'base', architectures: ['amd64'] },
    ],
    [
      'pc (a gadget with a base)',
      y('name: pc', "version: '22-0.3'", 'summary: Gadget for generic x86-64 devices', 'type: gadget', 'base: core22', 'architectures:', '- amd64', 'confinement: strict', 'grade: stable'),
      { name: 'pc', version: '22-0.3', type: 'gadget', base: 'core22' },
    ],
    [
      'pc-kernel',
      y('name: pc-kernel', 'version: 5.15.0-91.101.1', 'summary: The Ubuntu generic Linux kernel', 'type: kernel', 'architectures: [amd64]', 'confinement: strict', 'grade: stable'),
      { name: 'pc-kernel', version: '5.15.0-91.101.1', type: 'kernel' },
    ],
    [
      'a service with plugs, hooks and layouts',
      y(
        'name: mosquitto',
        'version: 2.0.18',
        'base: core22',
        'confinement: strict',
        'grade: stable',
        'apps:',
        '  mosquitto:',
        '    command: launcher.sh',
        '    daemon: simple',
        '    restart-condition: always',
        '    plugs: [network, network-bind]',
        'hooks:',
        '  install:',
        '    plugs: [network]',
        'layout:',
        '  /etc/mosquitto:',
        '    bind: $SNAP_DATA/etc',
        'links:',
        '  source-code: [https://github.com/eclipse/mosquitto]',
      ),
      { name: 'mosquitto', version: '2.0.18', apps: { mosquitto: { command: 'launcher.sh', daemon: 'simple', 'restart-condition': 'always', plugs: ['network', 'network-bind'] } } },
    ],
  ])('accepts a real-world snap.yaml: %s', (_what, text, expected) => {
    expect(parseSnapYaml(text, FILE)).toMatchObject(expected);
  });

  it("accepts every reference bundle's snap.yaml in bundles/ (templates filled in for amd64)", () => {
    const root = fileURLToPath(new URL('../../../../bundles/', import.meta.url));
    // bundle folders are the ones with a meta/ (bundles/bootloader holds the gadgets' bootloader sources)
    const dirs = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(`${root}${d.name}/meta`));
    expect(dirs.length).toBeGreaterThanOrEqual(4);
    for (const d of dirs) {
      const text = readFileSync(`${root}${d.name}/meta/snap.yaml`, 'utf8').replaceAll('@ARCH@', 'amd64');
      const s = parseSnapYaml(text, `bundles/${d.name}/meta/snap.yaml`);
      expect(s.name.replace('-amd64', '')).toBe(d.name);
    }
  });
});

describe('parseSnapYaml: errors name file:line:col and the field (ERR_SNAP_YAML)', () => {
  it('a YAML syntax error gives the line and column', () => {
    const e = failure(y('name: hello', 'version: "1.0', 'type: app'));
    expect(e.code).toBe('ERR_SNAP_YAML');
    expect(e.message).toMatch(/^meta\/snap\.yaml:\d+:\d+: YAML syntax: /);
    expect(e.line).toBeGreaterThanOrEqual(2);
    expect(e.file).toBe(FILE);
  });

  it('bad indentation is a syntax error on its line', () => {
    const e = failure(y('name: hello', "version: '1'", 'apps:', '  web:', '    command: x', '   daemon: simple'));
    expect(e.message).toContain('YAML syntax');
    expect(e.line).toBe(6);
  });

  it('a duplicate key is an error at the second one', () => {
    const e = failure(y('name: a', "version: '1'", 'name: b'));
    expect(e.message).toBe('meta/snap.yaml:3:1: YAML syntax: a key appears twice in the same map');
  });

  it('two YAML documents are an error', () => {
    expect(failure(y('name: a', "version: '1'", '---', 'name: b')).message).toMatch(/^meta\/snap\.yaml:3:1: YAML syntax: snap\.yaml must hold a single YAML document$/);
  });

  it('an alias bomb ("billion laughs") is refused, not expanded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    const e = failure(y('name: hello', "version: '1'", ...bomb));
    expect(e.code).toBe('ERR_SNAP_YAML');
    expect(e.message).toMatch(/^meta\/snap\.yaml: YAML: .*alias/i);
  });

  it('an empty file', () => {
    expect(failure('# nothing but a comment\n').message).toBe('meta/snap.yaml: empty: a snap.yaml needs at least a name and a version');
  });

  it('a list instead of a map', () => {
    expect(failure(y('- name: a')).message).toBe('meta/snap.yaml:1:1: must be a map of fields (name: …, version: …)');
  });

  it('a missing name', () => {
    const e = failure(y("version: '1.0'", 'type: app'));
    expect(e.message).toBe('meta/snap.yaml:1:1: name: required field is missing');
    expect(e.field).toBe('name');
  });

  it('a missing version', () => {
    expect(failure(y('name: hello')).message).toBe('meta/snap.yaml:1:1: version: required field is missing');
  });

  it('an empty version', () => {
    expect(failure(y('name: hello', 'version:')).message).toMatch(/^meta\/snap\.yaml:2:\d+: version: is empty$/);
  });

  it.each([
    ['Hello', 'upper case'],
    ['hello_world', 'underscore'],
    ['hello--world', 'double dash'],
    ['-hello', 'leading dash'],
    ['hello-', 'trailing dash'],
    ['123', 'no letter'],
    ['"héllo"', 'non-ASCII'],
  ])('a bad name: %s (%s)', (name) => {
    const e = failure(y(`name: ${name}`, "version: '1'"));
    expect(e.message).toMatch(/^meta\/snap\.yaml:1:7: name: invalid snap name ".*": use lower-case letters, digits and single dashes, with at least one letter and no dash first or last$/);
    expect(e.line).toBe(1);
    expect(e.col).toBe(7);
    expect(e.field).toBe('name');
  });

  it('a name longer than 40 characters', () => {
    expect(failure(y(`name: ${'a'.repeat(41)}`, "version: '1'")).message).toBe(`meta/snap.yaml:1:7: name: invalid snap name "${'a'.repeat(41)}": 41 characters, at most 40`);
  });

  it('a 40-character name that would make a backtracking regular expression run for hours is refused at once', () => {
    // snapd's pattern in a JavaScript RegExp takes ~2^39 steps on this input; the test would time out.
    expect(failure(y(`name: ${'0'.repeat(39)}-`, "version: '1'")).field).toBe('name');
  });

  it('a name that is not a string', () => {
    expect(failure(y('name: [a, b]', "version: '1'")).message).toBe('meta/snap.yaml:1:7: name: must be a string, found a list');
  });

  it.each([
    ['1.0-', 'dash last'],
    ['.1', 'dot first'],
    ['"1 0"', 'space'],
    [`'${'1'.repeat(33)}'`, '33 characters'],
  ])('a bad version: %s (%s)', (version) => {
    const e = failure(y('name: hello', `version: ${version}`));
    expect(e.message).toMatch(/^meta\/snap\.yaml:2:10: version: invalid version /);
    expect(e.field).toBe('version');
  });

  it('a bad type lists the valid ones', () => {
    const e = failure(y('name: hello', "version: '1'", 'type: application'));
    expect(e.message).toBe('meta/snap.yaml:3:7: type: invalid snap type "application"; expected one of app, base, kernel, gadget, snapd, os');
    expect(e.field).toBe('type');
  });

  it('a bad architecture points at the list item and suggests the Debian name', () => {
    const e = failure(y('name: hello', "version: '1'", 'architectures:', '  - amd64', '  - aarch64'));
    expect(e.message).toBe(
      'meta/snap.yaml:5:5: architectures.1: unknown architecture "aarch64" (Debian calls aarch64 "arm64"); expected one of amd64, arm64, armhf, i386, riscv64, ppc64el, s390x, all',
    );
    expect(e.field).toBe('architectures.1');
  });

  it('architectures must be a list', () => {
    expect(failure(y('name: hello', "version: '1'", 'architectures: amd64')).message).toBe(
      'meta/snap.yaml:3:16: architectures: must be a list of architectures such as [amd64, arm64], found "amd64"',
    );
  });

  it('architectures must not be an empty list', () => {
    expect(failure(y('name: hello', "version: '1'", 'architectures: []')).message).toBe('meta/snap.yaml:3:16: architectures: must name at least one architecture (or [all])');
  });

  it('"all" cannot be combined with another architecture', () => {
    expect(failure(y('name: hello', "version: '1'", 'architectures: [amd64, all]')).message).toBe(
      'meta/snap.yaml:3:24: architectures.1: "all" cannot be combined with other architectures',
    );
  });

  it('an architecture listed twice', () => {
    expect(failure(y('name: hello', "version: '1'", 'architectures: [arm64, arm64]')).message).toBe('meta/snap.yaml:3:24: architectures.1: architecture "arm64" is listed twice');
  });

  it('an app without a command points at the app', () => {
    const e = failure(y('name: hello', "version: '1'", 'apps:', '  web:', '    daemon: simple'));
    expect(e.message).toBe('meta/snap.yaml:4:3: apps.web.command: required field is missing');
    expect(e.field).toBe('apps.web.command');
  });

  it('an app that is not a map', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps:', '  web: bin/web')).message).toBe('meta/snap.yaml:4:8: apps.web: must be a map with at least a command, found "bin/web"');
  });

  it('an app with an empty command', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps:', '  web:', "    command: ''")).message).toBe('meta/snap.yaml:5:14: apps.web.command: must not be empty');
  });

  it('a bad app name points at the name', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps:', '  web_ui:', '    command: x')).message).toBe(
      'meta/snap.yaml:4:3: apps.web_ui: invalid app name "web_ui": use letters, digits and single dashes, starting and ending with a letter or digit',
    );
  });

  it('a bad daemon type', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps:', '  web:', '    command: x', '    daemon: always')).message).toBe(
      'meta/snap.yaml:6:13: apps.web.daemon: invalid daemon "always"; expected one of simple, forking, oneshot, notify, dbus',
    );
  });

  it('a bad restart-condition', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps:', '  web:', '    command: x', '    restart-condition: sometimes')).field).toBe('apps.web.restart-condition');
  });

  it('apps must be a map', () => {
    expect(failure(y('name: hello', "version: '1'", 'apps: [web]')).message).toBe('meta/snap.yaml:3:7: apps: must be a map of app names to apps, found a list');
  });

  it('a bad base name', () => {
    expect(failure(y('name: hello', "version: '1'", 'base: Core22')).message).toMatch(/^meta\/snap\.yaml:3:7: base: invalid base name "Core22"/);
  });

  it('reports the first problem in the file when there are several', () => {
    const e = failure(y('name: hello', "version: '1.'", 'type: nope', 'architectures: [x]'));
    expect(e.field).toBe('version');
    expect(e.line).toBe(2);
  });
});

describe('isSnapName', () => {
  // snapd's own pattern; safe to run in JavaScript on short strings only.
  const SNAPD = /^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$/;

  it("agrees with snapd's regular expression on every string of up to 6 characters over a-0-A_", () => {
    const alphabet = ['a', '0', '-', 'A', '_'];
    let words = [''];
    let checked = 0;
    const disagreements: string[] = [];
    for (let len = 0; len <= 6; len++) {
      for (const w of words) {
        if (isSnapName(w) !== SNAPD.test(w)) disagreements.push(w);
        checked++;
      }
      words = words.flatMap((w) => alphabet.map((c) => w + c));
    }
    expect(disagreements).toEqual([]);
    expect(checked).toBe((5 ** 7 - 1) / 4);
  });
});
