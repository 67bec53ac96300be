import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from './main.js';
import { hostTools } from '@edgeimage/host-tools';
import { run, useTempDirs, withEnv } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-main-test-');

describe('edgeimage --help', () => {
  it('the top level prints usage, every command and an Examples section, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain('edgeimage <command> [options]');
    for (const c of ['key', 'sign', 'account-key', 'verify', 'decode', 'doctor']) expect(r.out).toMatch(new RegExp(`^\\s+edgeimage ${c}\\b`, 'm'));
    expect(r.out).toContain('Examples:');
    expect(r.out).toContain('edgeimage key create brand');
  });

  it('-h is --help', async () => {
    expect((await run(['-h'])).out).toBe((await run(['--help'])).out);
  });

  it.each([
    ['key create', 'edgeimage key create <name>', '--bits'],
    ['key list', 'edgeimage key list', '--json'],
    ['key export', 'edgeimage key export <name>', '--keyring'],
    ['key delete', 'edgeimage key delete <name>', '--keyring'],
    ['sign', 'edgeimage sign <headers-file>', '--key'],
    ['account-key', 'edgeimage account-key <name>', '--authority-id'],
    ['verify', 'edgeimage verify <files..>', '--trusted'],
    ['decode', 'edgeimage decode <files..>', '--json'],
    ['doctor', 'edgeimage doctor', '--json'],
    ['channel resign', 'edgeimage channel resign <store> <channel>', '--rollout'],
  ])('`%s --help` prints its usage, its options and an Examples section, exit 0', async (cmd, usage, option) => {
    const r = await run([...cmd.split(' '), '--help']);
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(r.out.startsWith(`${usage}\n`)).toBe(true);
    expect(r.out).toContain(option);
    const examples = r.out.indexOf('Examples:');
    expect(examples).toBeGreaterThan(0);
    // At least one example line, naming the command, follows the heading.
    expect(r.out.slice(examples)).toMatch(new RegExp(`\\n\\s+edgeimage ${cmd}`));
  });

  it('help runs no command: --help on sign with a missing file succeeds and touches nothing', async () => {
    const r = await run(['sign', join(tempDir(), 'missing.yaml'), '--key', 'x', '--help']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('edgeimage sign <headers-file>');
  });
});

describe('edgeimage usage errors (exit 2)', () => {
  it('an unknown command exits 2 with a hint, on stderr only', async () => {
    const r = await run(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('frobnicate');
    expect(r.err).toContain('Run with --help for usage.');
  });

  it('a misspelt command suggests the right one', async () => {
    const r = await run(['verfy', 'x.assert']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('Did you mean verify?');
  });

  it('no command at all exits 2', async () => {
    const r = await run([]);
    expect(r.status).toBe(2);
    expect(r.err).toContain('name a command');
  });

  it('an unknown key sub-command exits 2', async () => {
    const r = await run(['key', 'rotate', 'brand']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('Run with --help for usage.');
  });

  it('an unknown option exits 2', async () => {
    const r = await run(['decode', 'x.assert', '--frobnicate']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('frobnicate');
  });

  it('a missing mandatory option exits 2 naming it', async () => {
    const r = await run(['account-key', 'brand', '--account-id', 'acme', '--key', 'root']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('authority-id');
  });

  it('main returns the status and never exits the process', async () => {
    const realExit = process.exit;
    const calls: unknown[] = [];
    process.exit = ((code?: number) => {
      calls.push(code);
      throw new Error('process.exit called');
    }) as typeof process.exit;
    try {
      for (const argv of [['nope'], ['--help'], ['decode'], ['key', 'list', '--keyring', join(tempDir(), 'k')]]) {
        const lines: string[] = [];
        const status = await main(argv, { out: (t) => lines.push(t), err: (t) => lines.push(t) });
        expect(typeof status).toBe('number');
      }
      expect(calls).toEqual([]);
    } finally {
      process.exit = realExit;
    }
  });
});

interface DoctorRow {
  tool: string;
  found: boolean;
  path?: string;
  version?: string;
  package: string;
  'needed-by': string;
}

describe('edgeimage doctor', () => {
  /**
   * A folder of fake tools that print a version, for a PATH made of it alone: the ones given, and
   * (unless `only`) every other tool of the host-tools table, so that only what a test names differs.
   */
  function fakeTools(tools: Record<string, string>, only = false): string {
    const bin = join(tempDir(), 'bin');
    mkdirSync(bin);
    // data files (firmware) are named by absolute path and checked where they are, not on PATH
    const onPath = hostTools().filter((t) => !t.tool.startsWith('/'));
    const all = only ? tools : { ...Object.fromEntries(onPath.map((t) => [t.tool, `${t.tool} 1.0`])), ...tools };
    for (const [tool, version] of Object.entries(all)) {
      const p = join(bin, tool);
      writeFileSync(p, `#!/bin/sh\necho '${version}'\n`);
      chmodSync(p, 0o755);
    }
    return bin;
  }

  it('lists node and openssl as found, with their versions, exit 0', async () => {
    const bin = fakeTools({ node: 'v99.1.2', openssl: 'OpenSSL 9.8.7 1 Jan 2099' });
    const r = await withEnv({ PATH: bin }, () => run(['doctor']));
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^ok\s+node\s+v99\.1\.2\s+needed by: every command$/m);
    expect(r.out).toMatch(/^ok\s+openssl\s+OpenSSL 9\.8\.7 1 Jan 2099\s+needed by: .+$/m);
  });

  it('--json gives tool, found, path, version, package and needed-by', async () => {
    const bin = fakeTools({ node: 'v99.1.2', openssl: 'OpenSSL 9.8.7 1 Jan 2099' });
    const r = await withEnv({ PATH: bin }, () => run(['doctor', '--json']));
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.out) as DoctorRow[];
    expect(rows.find((x) => x.tool === 'node')).toMatchObject({ found: true, path: join(bin, 'node'), version: 'v99.1.2', package: 'nodejs' });
    expect(rows.find((x) => x.tool === 'openssl')).toMatchObject({ found: true, path: join(bin, 'openssl'), version: 'OpenSSL 9.8.7 1 Jan 2099', package: 'openssl' });
  });

  it('reports a missing tool with the package to install, and exits 1', async () => {
    const bin = fakeTools({ node: 'v99.1.2' }, true);
    const r = await withEnv({ PATH: bin }, () => run(['doctor']));
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^MISSING openssl\s+apt-get install openssl\s+needed by: /m);
    expect(r.out).toMatch(/^ok\s+node\s+v99\.1\.2/m);
    const json = await withEnv({ PATH: bin }, () => run(['doctor', '--json']));
    expect(json.status).toBe(1);
    const rows = JSON.parse(json.out) as DoctorRow[];
    expect(rows.find((x) => x.tool === 'openssl')).toMatchObject({ found: false });
    expect(rows.find((x) => x.tool === 'openssl')!.version).toBeUndefined();
  });

  it('a data file (firmware) is looked up by its path: found when it exists, else missing with its package', async () => {
    const r = await run(['doctor', '--json']);
    const rows = JSON.parse(r.out) as DoctorRow[];
    const files = rows.filter((x) => x.tool.startsWith('/'));
    expect(files.map((x) => x.tool)).toEqual(expect.arrayContaining(['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/lib/u-boot/qemu_arm64/u-boot.bin']));
    for (const f of files) {
      expect(f.found).toBe(existsSync(f.tool));
      expect(f.version).toBeUndefined();
    }
    expect(rows.find((x) => x.tool === '/usr/share/OVMF/OVMF_CODE_4M.fd')).toMatchObject({ package: 'ovmf' });
  });

  it('on this machine, finds node with a v-version', async () => {
    const r = await run(['doctor', '--json']);
    const rows = JSON.parse(r.out) as DoctorRow[];
    expect(rows.map((x) => x.tool)).toEqual(expect.arrayContaining(['node', 'openssl']));
    const node = rows.find((x) => x.tool === 'node')!;
    expect(node.found).toBe(true);
    expect(node.version).toMatch(/^v\d+\.\d+\.\d+/);
  });
});
