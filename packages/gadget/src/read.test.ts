import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_GADGET_YAML_BYTES, readGadget, unpackGadgetSnap } from './read.js';

const PC = fileURLToPath(new URL('../../../bundles/pc', import.meta.url));
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-read-gadget-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const squash = (dir: string) => {
  const out = join(tempDir(), 'g.snap');
  execFileSync('mksquashfs', [dir, out, '-quiet', '-noappend', '-no-progress', '-no-xattrs']);
  return out;
};

describe('readGadget', () => {
  test('an unpacked gadget: meta/gadget.yaml, and its folder for the content paths', async () => {
    const r = await readGadget(PC);
    expect(r).toMatchObject({ dir: PC, snap: false });
    expect(r.gadget.file).toBe(join(PC, 'meta', 'gadget.yaml'));
    expect(r.gadget.volumeOrder.length).toBe(1);
  });

  test('a folder with a gadget.yaml, a gadget.yaml on its own, and a name given for errors', async () => {
    const d = tempDir();
    cpSync(join(PC, 'meta', 'gadget.yaml'), join(d, 'gadget.yaml'));
    const inFolder = await readGadget(d);
    expect(inFolder.dir).toBeUndefined();
    expect(inFolder.gadget.file).toBe(join(d, 'gadget.yaml'));
    expect((await readGadget(join(d, 'gadget.yaml'))).gadget.file).toBe(join(d, 'gadget.yaml'));
    expect((await readGadget(PC, { name: 'pc_1.snap:meta/gadget.yaml' })).gadget.file).toBe('pc_1.snap:meta/gadget.yaml');
  });

  test('a gadget .snap, read without mounting; unpacked on request', async () => {
    const snap = squash(PC);
    const r = await readGadget(snap);
    expect(r).toMatchObject({ snap: true });
    expect(r.dir).toBeUndefined();
    expect(r.gadget.file).toBe(`${snap}:meta/gadget.yaml`);
    expect(r.gadget.volumeOrder).toEqual((await readGadget(PC)).gadget.volumeOrder);
    const into = join(tempDir(), 'root');
    await unpackGadgetSnap(snap, into);
    expect((await readGadget(into)).dir).toBe(into);
  });

  test('a folder without gadget.yaml, a .snap without meta/gadget.yaml, a missing path: ERR_GADGET_NOT_FOUND naming it', async () => {
    const d = tempDir();
    await expect(readGadget(d)).rejects.toMatchObject({ code: 'ERR_GADGET_NOT_FOUND', message: `${d}: no meta/gadget.yaml or gadget.yaml in this folder` });
    mkdirSync(join(d, 'meta'));
    writeFileSync(join(d, 'meta', 'snap.yaml'), 'name: x\n');
    const snap = squash(d);
    await expect(readGadget(snap)).rejects.toMatchObject({ code: 'ERR_GADGET_NOT_FOUND', message: `${snap}: cannot read meta/gadget.yaml: it has no meta/gadget.yaml (not a gadget snap?)` });
    await expect(readGadget(join(d, 'nope'))).rejects.toMatchObject({ code: 'ERR_GADGET_NOT_FOUND' });
  });

  test('a gadget.yaml over 1 MiB is refused before it is parsed, in a folder and in a .snap', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'meta'));
    writeFileSync(join(d, 'meta', 'gadget.yaml'), `# ${'x'.repeat(MAX_GADGET_YAML_BYTES)}\nvolumes: {}\n`);
    await expect(readGadget(d)).rejects.toMatchObject({ code: 'ERR_GADGET_NOT_FOUND', message: expect.stringContaining(`larger than the ${MAX_GADGET_YAML_BYTES} bytes a gadget.yaml may be`) });
    await expect(readGadget(squash(d))).rejects.toMatchObject({ code: 'ERR_GADGET_NOT_FOUND', message: expect.stringContaining(`meta/gadget.yaml is larger than ${MAX_GADGET_YAML_BYTES} bytes`) });
  });

  test('without unsquashfs a .snap is ERR_HOST_TOOL naming squashfs-tools', async () => {
    const snap = squash(PC);
    const saved = process.env.PATH;
    process.env.PATH = tempDir();
    try {
      await expect(readGadget(snap)).rejects.toMatchObject({ code: 'ERR_HOST_TOOL', context: { tool: 'unsquashfs', package: 'squashfs-tools' } });
    } finally {
      process.env.PATH = saved;
    }
  });
});
