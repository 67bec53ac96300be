/**
 * QEMU runs with the host tools' fixed environment: a secret of the build's environment (the
 * signing key's passphrase) never reaches it. env(1) stands in for QEMU.
 */
import { QemuSession } from './session.js';

const SECRET = 'correct horse battery staple';

test('EDGEIMAGE_KEY_PASSPHRASE never reaches the QEMU process', async () => {
  const saved = process.env.EDGEIMAGE_KEY_PASSPHRASE;
  process.env.EDGEIMAGE_KEY_PASSPHRASE = SECRET;
  try {
    const s = QemuSession.start({ binary: 'env', args: [] });
    await s.exited;
    const names = s.lines.map((l) => l.text.slice(0, l.text.indexOf('=')));
    expect(names).toContain('PATH');
    expect(names).toContain('TMPDIR');
    expect(names).not.toContain('EDGEIMAGE_KEY_PASSPHRASE');
    expect(s.lines.map((l) => l.text).join('\n')).not.toContain(SECRET);
  } finally {
    if (saved === undefined) delete process.env.EDGEIMAGE_KEY_PASSPHRASE;
    else process.env.EDGEIMAGE_KEY_PASSPHRASE = saved;
  }
});
