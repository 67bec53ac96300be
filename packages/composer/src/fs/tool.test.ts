/**
 * Host tools of the composer run with the fixed environment of toolEnv: a secret in the build's
 * environment (the signing key's passphrase) never reaches a child process. Checked with env(1).
 */
import { runTool, toolEnv } from './tool.js';

const SECRET = 'correct horse battery staple';
const saved = { ...process.env };

afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

test('EDGEIMAGE_KEY_PASSPHRASE and other variables of the build never reach a composer tool', async () => {
  process.env.EDGEIMAGE_KEY_PASSPHRASE = SECRET;
  process.env.GITHUB_TOKEN = 'also-secret';
  const r = await runTool('env', []);
  const lines = r.stdout.toString('utf8').split('\n').filter(Boolean);
  const names = lines.map((l) => l.slice(0, l.indexOf('='))).sort();
  expect(names).not.toContain('EDGEIMAGE_KEY_PASSPHRASE');
  expect(names).not.toContain('GITHUB_TOKEN');
  expect(r.stdout.toString('utf8')).not.toContain(SECRET);
  expect(names).toEqual(Object.keys(toolEnv()).sort());
});
