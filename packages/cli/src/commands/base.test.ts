import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '@edgeimage/testkit/cli-run';

describe('edgeimage base build', () => {
  test('--help says what the lock is, where the cache is, and what --update does', async () => {
    const r = await runOk(['base', 'build', '--help']);
    const text = r.out.replace(/\s+/g, ' ');
    expect(text).toContain('The lock (BASE.lock, JSON) lists every package of the base with its exact version');
    expect(text).toContain('$EDGEIMAGE_CACHE/debs/pool/SHA256.deb (default ~/.cache/edgeimage)');
    expect(text).toContain('--update then locks the current versions and prints what changed');
    expect(r.out).toMatch(/--arch .*\[choices: "amd64", "arm64"\]/s);
  });

  test('a bad BASE.yaml: exit 1, the file, line, field, expected and found, and the code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeimage-base-cli-'));
    try {
      writeFileSync(join(dir, 'BASE.yaml'), "name: x\nversion: '1'\nsuite: bookworm\narchitecture: amd64\npackages: [systemd]\nhostname: Robot_1\n");
      const r = await run(['base', 'build', join(dir, 'BASE.yaml')]);
      expect(r.status).toBe(1);
      expect(r.err).toBe(`edgeimage: error: ${join(dir, 'BASE.yaml')}:6: hostname: expected a host name (lower-case letters, digits and dashes, at most 63), found "Robot_1" [ERR_BASE_YAML]\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an architecture it does not build is a usage error', async () => {
    const r = await run(['base', 'build', 'BASE.yaml', '--arch', 'armhf']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/Invalid values:\s+Argument: arch, Given: "armhf", Choices: "amd64", "arm64"/);
  });
});
