import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, useTempDirs } from '@edgeimage/testkit/cli-run';

const temp = useTempDirs();

describe('edgeimage initramfs --add', () => {
  test.each([
    ['a path that does not exist', (d: string) => join(d, 'missing')],
    ['a file', (d: string) => { writeFileSync(join(d, 'file'), 'x'); return join(d, 'file'); }],
  ])('%s: usage error (exit 2) naming it, nothing written', async (_what, make) => {
    const d = temp();
    const add = make(d);
    // a kernel folder that exists: --add is checked before anything is read from it
    const out = join(d, 'initrd.img');
    const r = await run(['initramfs', '--kernel', d, '--arch', 'amd64', '--busybox', '/bin/busybox', '--add', add, '-o', out]);
    expect(r.status).toBe(2);
    expect(r.err).toContain(`--add: ${add} is not a folder`);
    expect(existsSync(out)).toBe(false);
  });
});
