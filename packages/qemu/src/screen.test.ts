import { describe, expect, test } from '@jest/globals';
import { lstatSync, rmSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { placeCopy, checkScreen, colourShare, decodePng, dominantColours, parseColour, parseScreenExpect, readScreen, screenLabel, SCREEN_MAX_PIXELS, SCREEN_MAX_PNG_BYTES, type Rgb } from './screen.js';

/** A PNG of `w`×`h` whose first `top` rows are `a` and the rest `b`. */
function png(w: number, h: number, top: number, a: Rgb, b: Rgb): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = y < top ? a : b;
      const i = (y * w + x) * 4;
      p.data[i] = c.r;
      p.data[i + 1] = c.g;
      p.data[i + 2] = c.b;
      p.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(p);
}

const BLUE = parseColour('#1E90FF');
const WHITE = { r: 255, g: 255, b: 255 };
const BLACK = { r: 0, g: 0, b: 0 };

describe('colours', () => {
  test('#RRGGBB and RRGGBB', () => {
    expect(parseColour('#1E90FF')).toEqual({ r: 0x1e, g: 0x90, b: 0xff });
    expect(parseColour('ff8c00')).toEqual({ r: 0xff, g: 0x8c, b: 0x00 });
  });
  test.each(['', '#1E90F', '#1E90FFF', 'blue', '#GG90FF', 'rgb(30,144,255)'])('%j is refused, naming what was given', (s) => {
    expect(() => parseColour(s)).toThrow(/expected #RRGGBB/);
  });
  test('an expectation: 40 % by default, or the share given', () => {
    expect(parseScreenExpect('#1E90FF')).toEqual({ colour: BLUE, share: 0.4 });
    expect(parseScreenExpect('#1E90FF@60')).toEqual({ colour: BLUE, share: 0.6 });
    expect(parseScreenExpect('#1E90FF@12.5%').share).toBeCloseTo(0.125);
    expect(screenLabel(parseScreenExpect('#1e90ff'))).toBe('screen #1E90FF ≥ 40 % (±8)');
  });
  test.each([['#1E90FF@0', /above 0 and at most 100/], ['#1E90FF@101', /above 0 and at most 100/], ['#1E90FF@', /expected #RRGGBB\[@PERCENT\]/], ['#1E90FF 40', /expected #RRGGBB\[@PERCENT\]/]])('%s is refused', (s, why) => {
    expect(() => parseScreenExpect(s)).toThrow(why);
  });
});

describe('what a screen shows', () => {
  test('the share of the pixels near a colour: the top half of the page', () => {
    const s = decodePng(png(40, 20, 10, BLUE, WHITE), 'half.png');
    expect(colourShare(s, BLUE)).toBe(0.5);
    const c = checkScreen(s, { colour: BLUE });
    expect(c).toMatchObject({ passed: true, share: 0.5, width: 40, height: 20 });
    expect(c.line).toBe('50 % of 40×20 pixels within ±8 of #1E90FF');
  });
  test('±8 on each channel counts, ±9 on any one does not', () => {
    const near = { r: 0x1e + 8, g: 0x90 - 8, b: 0xff - 8 };
    expect(colourShare(decodePng(png(4, 4, 4, near, WHITE), 'near.png'), BLUE)).toBe(1);
    for (const off of [{ ...near, r: 0x1e + 9 }, { ...near, g: 0x90 - 9 }, { ...near, b: 0xff - 9 }]) {
      expect(colourShare(decodePng(png(4, 4, 4, off, WHITE), 'off.png'), BLUE)).toBe(0);
    }
  });
  test('a black screen, a console and a bar too big fail 40 %', () => {
    expect(checkScreen(decodePng(png(10, 10, 10, BLACK, BLACK), 'black.png'), { colour: BLUE }).passed).toBe(false);
    expect(checkScreen(decodePng(png(10, 10, 3, BLUE, WHITE), 'small.png'), { colour: BLUE }).passed).toBe(false);
    expect(checkScreen(decodePng(png(10, 10, 4, BLUE, WHITE), 'enough.png'), { colour: BLUE }).passed).toBe(true);
  });
  test('the colours shown most, with their shares', () => {
    const s = decodePng(png(10, 10, 7, BLACK, { r: 0xaa, g: 0xaa, b: 0xaa }), 'console.png');
    expect(dominantColours(s)).toEqual([{ colour: '#000000', share: 0.7 }, { colour: '#AAAAAA', share: 0.3 }]);
  });
});

describe('hostile or broken PNG files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'screen-test-'));
  test('not a PNG', () => {
    expect(() => decodePng(Buffer.from('GIF89a...............................'), 'x.gif')).toThrow(/x\.gif: not a PNG file/);
  });
  test('a header claiming more pixels than a screen has is refused before decoding', () => {
    const b = png(2, 2, 1, BLUE, WHITE);
    b.writeUInt32BE(65535, 16);
    b.writeUInt32BE(65535, 20);
    expect(() => decodePng(b, 'huge.png')).toThrow(new RegExp(`huge\\.png: a 65535×65535 PNG; a screen has at most ${SCREEN_MAX_PIXELS} pixels`));
  });
  test('an interlaced PNG (pngjs would inflate it without bound: a decompression bomb) and a 16-bit one are refused from the header', () => {
    const b = png(2, 2, 1, BLUE, WHITE);
    const inter = Buffer.from(b);
    inter[28] = 1;
    expect(() => decodePng(inter, 'bomb.png')).toThrow(/bomb\.png: a PNG of bit depth 8, colour type 6, interlaced; a screendump is 8-bit RGB or RGBA, not interlaced/);
    const deep = Buffer.from(b);
    deep[24] = 16;
    expect(() => decodePng(deep, 'deep.png')).toThrow(/deep\.png: a PNG of bit depth 16/);
    const grey = Buffer.from(b);
    grey[25] = 0;
    expect(() => decodePng(grey, 'grey.png')).toThrow(/colour type 0/);
  });
  test('a PNG file past the size bound is not read', () => {
    const big = join(dir, 'big.png');
    writeFileSync(big, Buffer.alloc(SCREEN_MAX_PNG_BYTES + 1));
    expect(() => readScreen(big)).toThrow(new RegExp(`big\\.png: is ${SCREEN_MAX_PNG_BYTES + 1} bytes, more than ${SCREEN_MAX_PNG_BYTES}`));
  });
  test('a cut-short PNG', () => {
    const b = png(8, 8, 4, BLUE, WHITE);
    expect(() => decodePng(b.subarray(0, b.length - 20), 'cut.png')).toThrow(/cut\.png: a broken PNG/);
  });
  test('a screenshot file that is a link is not followed', () => {
    const real = join(dir, 'real.png');
    writeFileSync(real, png(2, 2, 1, BLUE, WHITE));
    symlinkSync(real, join(dir, 'link.png'));
    expect(readScreen(real).width).toBe(2);
    expect(() => readScreen(join(dir, 'link.png'))).toThrow(/link\.png: is a symbolic link/);
    expect(() => readScreen(join(dir, 'missing.png'))).toThrow(/missing\.png: does not exist/);
  });
  test("a link planted at the copy's temporary name is never written through (created exclusively)", () => {
    const victim = join(dir, 'victim2.txt');
    writeFileSync(victim, 'keep me');
    const dest = join(dir, 'planted.png');
    // the names placeCopy takes next in this process
    for (let n = 1; n <= 50; n++) symlinkSync(victim, `${dest}.tmp-${process.pid}-${n}`);
    const src = join(dir, 'src2.png');
    writeFileSync(src, png(2, 2, 1, BLUE, WHITE));
    expect(() => placeCopy(src, dest)).toThrow(/EEXIST/);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    for (let n = 1; n <= 50; n++) rmSync(`${dest}.tmp-${process.pid}-${n}`, { force: true });
  });
  test('a screenshot placed where a link was replaces the link, and writes nothing through it', () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'keep me');
    const dest = join(dir, 'shot.png');
    symlinkSync(victim, dest);
    const src = join(dir, 'src.png');
    writeFileSync(src, png(2, 2, 1, BLUE, WHITE));
    placeCopy(src, dest);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(lstatSync(dest).isFile()).toBe(true);
    expect(readScreen(dest).width).toBe(2);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
