import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { helloTree, writeTree } from '@edgeimage/testkit/bundle-trees';
import { run, runOk, useTempDirs } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-pack-test-');

/** sha3-384 by openssl, in snapd's form (base64url, no padding). */
async function opensslDigest(file: string): Promise<string> {
  const r = await execa('openssl', ['dgst', '-sha3-384', '-binary', file], { encoding: 'buffer' });
  return Buffer.from(r.stdout).toString('base64url');
}

function helloDir(): string {
  return writeTree(join(tempDir(), 'hello-kiosk'), helloTree());
}

describe('edgeimage pack', () => {
  it('prints the path, size and sha3-384 of the bundle it wrote', async () => {
    const out = tempDir();
    const r = await runOk(['pack', helloDir(), '-o', out]);
    expect(r.err).toBe('');
    const path = join(out, 'hello-kiosk_1.0_all.snap');
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`path:      ${path}`);
    expect(lines[1]).toBe('size:      16384 bytes');
    expect(lines[2]).toBe(`sha3-384:  ${await opensslDigest(path)}`);
  });

  it('--json gives path, snap.yaml fields, size and sha3-384 (as openssl computes it)', async () => {
    const file = join(tempDir(), 'kiosk.snap');
    const r = await runOk(['pack', helloDir(), '--output', file, '--json']);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['path', 'name', 'version', 'type', 'architectures', 'summary', 'apps', 'size', 'sha3-384']);
    expect(j).toMatchObject({ path: file, name: 'hello-kiosk', version: '1.0', type: 'app', architectures: ['all'], size: 16384 });
    expect(j['sha3-384']).toBe(await opensslDigest(file));
    expect(j['sha3-384']).toMatch(/^[A-Za-z0-9_-]{64}$/);
  });

  it('gives the same sha3-384 for the same tree packed twice', async () => {
    const src = helloDir();
    const a = JSON.parse((await runOk(['pack', src, '-o', tempDir(), '--json'])).out) as Record<string, unknown>;
    const b = JSON.parse((await runOk(['pack', src, '-o', tempDir(), '--json'])).out) as Record<string, unknown>;
    expect(b['sha3-384']).toBe(a['sha3-384']);
  });

  it('a missing meta/snap.yaml fails with its path and ERR_SNAP_YAML, exit 1', async () => {
    const src = writeTree(join(tempDir(), 'empty-tree'), { 'bin/x': 'x' });
    const r = await run(['pack', src, '-o', tempDir()]);
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`edgeimage: error: ${src}/meta/snap.yaml: missing: a bundle directory needs meta/snap.yaml (at least name and version) [ERR_SNAP_YAML]\n`);
  });

  it('a YAML syntax error names the line and column', async () => {
    const src = writeTree(join(tempDir(), 'bad'), { 'meta/snap.yaml': 'name: hello\nversion: [1.0\n' });
    const r = await run(['pack', src, '-o', tempDir()]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(new RegExp(`^edgeimage: error: ${src}/meta/snap\\.yaml:\\d+:\\d+: YAML syntax: .* \\[ERR_SNAP_YAML\\]\\n$`));
  });

  it('an app without a command names the field and its line', async () => {
    const src = writeTree(join(tempDir(), 'bad'), { 'meta/snap.yaml': "name: hello\nversion: '1'\napps:\n  web:\n    daemon: simple\n" });
    const r = await run(['pack', src, '-o', tempDir()]);
    expect(r.err).toBe(`edgeimage: error: ${src}/meta/snap.yaml:4:3: apps.web.command: required field is missing [ERR_SNAP_YAML]\n`);
  });

  it('without a directory it is a usage error, exit 2', async () => {
    const r = await run(['pack']);
    expect(r.status).toBe(2);
    expect(r.err).toContain('Run with --help for usage.');
  });
});

describe('edgeimage bundle info', () => {
  it('prints the snap.yaml fields, apps with their daemons, size and sha3-384', async () => {
    const out = tempDir();
    await runOk(['pack', helloDir(), '-o', out]);
    const file = join(out, 'hello-kiosk_1.0_all.snap');
    const r = await runOk(['bundle', 'info', file]);
    expect(r.err).toBe('');
    expect(r.out).toBe(
      [
        'name:           hello-kiosk',
        'version:        1.0',
        'type:           app',
        'architectures:  all',
        'summary:        Prints that the kiosk is up',
        'apps:           hello        bin/hello',
        '                hello-kiosk  bin/hello-kiosk  (daemon: simple)',
        `path:           ${file}`,
        'size:           16384 bytes',
        `sha3-384:       ${await opensslDigest(file)}`,
        '',
      ].join('\n'),
    );
  });

  it('--json is the object pack --json printed', async () => {
    const packed = JSON.parse((await runOk(['pack', helloDir(), '-o', tempDir(), '--json'])).out) as Record<string, unknown>;
    const info = JSON.parse((await runOk(['bundle', 'info', packed['path'] as string, '--json'])).out) as Record<string, unknown>;
    expect(info).toEqual(packed);
    expect(info['apps']).toEqual({
      'hello-kiosk': { command: 'bin/hello-kiosk', daemon: 'simple', 'restart-condition': 'always' },
      hello: { command: 'bin/hello' },
    });
  });

  it('a file that is not a bundle fails with ERR_BUNDLE_INVALID naming it, exit 1', async () => {
    const f = join(tempDir(), 'not-a.snap');
    writeFileSync(f, 'just text\n'.repeat(20));
    const r = await run(['bundle', 'info', f]);
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`edgeimage: error: ${f}: not a valid bundle: not a squashfs image (no squashfs superblock) [ERR_BUNDLE_INVALID]\n`);
  });

  it('a missing file fails with its path, exit 1', async () => {
    const f = join(tempDir(), 'missing.snap');
    const r = await run(['bundle', 'info', f]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(f);
    expect(r.err).toContain('[ENOENT]');
  });

  it('without a sub-command it is a usage error, exit 2', async () => {
    const r = await run(['bundle']);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('Run with --help for usage.');
  });
});

describe('help', () => {
  it.each([
    ['pack', 'edgeimage pack <dir>', '--output'],
    ['bundle info', 'edgeimage bundle info <file>', '--json'],
    ['bundle', 'edgeimage bundle <command>', 'info'],
  ])('`%s --help` prints its usage, options and examples', async (cmd, usage, option) => {
    const r = await runOk([...cmd.split(' '), '--help']);
    expect(r.out.startsWith(`${usage}\n`)).toBe(true);
    expect(r.out).toContain(option);
    const examples = r.out.indexOf('Examples:');
    expect(examples).toBeGreaterThan(0);
    expect(r.out.slice(examples)).toMatch(new RegExp(`\\n\\s+edgeimage ${cmd}`));
  });
});
