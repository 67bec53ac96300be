/**
 * Host tools run with a minimal environment: a secret in the build's environment (the signing
 * key's passphrase) never reaches a child process. Checked with a real tool, env(1).
 */
import { hostToolEnv, runTool } from './run.js';

const SECRET = 'correct horse battery staple';
const saved = { ...process.env };

afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

function childEnv(stdout: Buffer): Map<string, string> {
  return new Map(
    stdout
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );
}

describe('runTool environment', () => {
  test('EDGEIMAGE_KEY_PASSPHRASE and other variables of the build never reach the tool', async () => {
    process.env.EDGEIMAGE_KEY_PASSPHRASE = SECRET;
    process.env.AWS_SECRET_ACCESS_KEY = 'also-secret';
    process.env.SOURCE_DATE_EPOCH = '12345';
    const r = await runTool('env', []);
    expect(r.exitCode).toBe(0);
    const env = childEnv(r.stdout);
    expect(env.has('EDGEIMAGE_KEY_PASSPHRASE')).toBe(false);
    expect(env.has('AWS_SECRET_ACCESS_KEY')).toBe(false);
    expect(env.has('SOURCE_DATE_EPOCH')).toBe(false);
    expect(r.stdout.toString('utf8')).not.toContain(SECRET);
    // Exactly the fixed environment, PATH included so tools are found.
    expect([...env.keys()].sort()).toEqual(Object.keys(hostToolEnv()).sort());
    expect(env.get('PATH')).toContain('/usr/sbin');
    expect(env.get('LANG')).toBe('C');
  });

  test("a relative PATH entry (`.`, `bin`, empty) is dropped: a tool is never found in the build's working folder", () => {
    process.env.PATH = `.:bin::/usr/bin:./tools:/bin`;
    expect(hostToolEnv().PATH!.split(':')).toEqual(['/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin']);
  });

  test('a variable a caller sets on purpose is passed; one it removes is not', async () => {
    process.env.EDGEIMAGE_KEY_PASSPHRASE = SECRET;
    const env = childEnv((await runTool('env', [], { env: { EXTRA: 'x', LANG: undefined } })).stdout);
    expect(env.get('EXTRA')).toBe('x');
    expect(env.has('LANG')).toBe(false);
    expect(env.has('EDGEIMAGE_KEY_PASSPHRASE')).toBe(false);
  });
});
