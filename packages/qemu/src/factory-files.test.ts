import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { factoryFilesOf } from './factory-files.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'edgeimage-factory-test-'));
  dirs.push(d);
  return d;
};

describe('factoryFilesOf', () => {
  it('finds what build --boot-keys writes next to NAME.img', () => {
    const d = temp();
    writeFileSync(join(d, 'b.img'), '');
    mkdirSync(join(d, 'b.boot-keys'));
    writeFileSync(join(d, 'b.uboot-env.img'), 'env');
    writeFileSync(join(d, 'b.uboot.dtb'), 'dtb');
    expect(factoryFilesOf(join(d, 'b.img'))).toEqual({ bootKeys: join(d, 'b.boot-keys'), ubootEnv: join(d, 'b.uboot-env.img'), ubootDtb: join(d, 'b.uboot.dtb') });
  });

  it('finds nothing for an image without them, nor another image\'s, nor links or folders in their place', () => {
    const d = temp();
    writeFileSync(join(d, 'a.img'), '');
    writeFileSync(join(d, 'b.uboot-env.img'), 'env');
    expect(factoryFilesOf(join(d, 'a.img'))).toEqual({});
    symlinkSync(join(d, 'b.uboot-env.img'), join(d, 'a.uboot-env.img'));
    mkdirSync(join(d, 'a.uboot.dtb'));
    writeFileSync(join(d, 'a.boot-keys'), 'not a folder');
    expect(factoryFilesOf(join(d, 'a.img'))).toEqual({});
  });
});
