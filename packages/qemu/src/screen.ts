import { constants, copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { readRegularFile } from '@edgeimage/assertions';
import { BootTestError } from './errors.js';
import type { QmpClient } from './qmp.js';

/** An 8-bit RGB colour. */
export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** What a screen must show: `share` (0–1) of its pixels within ±`tolerance` of `colour` on each channel. */
export interface ScreenExpect {
  colour: Rgb;
  /** Default {@link DEFAULT_SCREEN_SHARE}. */
  share?: number;
  /** Default {@link DEFAULT_SCREEN_TOLERANCE}. */
  tolerance?: number;
}

/** 40 %: a page whose top half is the colour passes under a browser's bar; a console or a black screen does not. */
export const DEFAULT_SCREEN_SHARE = 0.4;
/** ±8 per channel: a display's rounding and dithering, not another colour. */
export const DEFAULT_SCREEN_TOLERANCE = 8;
/** A screendump bigger than this is not QEMU's: 8192×8192 RGB is 192 MiB raw, and QEMU's deflate takes a screen far below a third of that. */
export const SCREEN_MAX_PNG_BYTES = 64 << 20;
/** Pixels decoded at most: 8192×8192. A larger header is refused before decoding. */
export const SCREEN_MAX_PIXELS = 8192 * 8192;

export const hexColour = (c: Rgb): string => `#${[c.r, c.g, c.b].map((v) => v.toString(16).padStart(2, '0')).join('').toUpperCase()}`;

/** `#1E90FF` (or `1E90FF`) as a colour; anything else is ERR_USAGE naming what was given. */
export function parseColour(s: string): Rgb {
  const m = /^#?([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})$/.exec(s.trim());
  if (!m) throw new BootTestError('ERR_USAGE', `colour ${JSON.stringify(s.slice(0, 40))}: expected #RRGGBB, e.g. #1E90FF`, { colour: s.slice(0, 40) });
  return { r: parseInt(m[1]!, 16), g: parseInt(m[2]!, 16), b: parseInt(m[3]!, 16) };
}

/** `#RRGGBB[@PERCENT]` (default 40 %), as `--expect-screen` takes it. */
export function parseScreenExpect(s: string): ScreenExpect {
  const m = /^(#?[0-9a-fA-F]{6})(?:@(\d{1,3}(?:\.\d{1,3})?)%?)?$/.exec(s.trim());
  if (!m) throw new BootTestError('ERR_USAGE', `expect-screen ${JSON.stringify(s.slice(0, 60))}: expected #RRGGBB[@PERCENT], e.g. '#1E90FF' (40 % of the pixels, the default) or '#1E90FF@60'`, { spec: s.slice(0, 60) });
  const share = m[2] === undefined ? DEFAULT_SCREEN_SHARE : Number(m[2]) / 100;
  if (!(share > 0 && share <= 1)) throw new BootTestError('ERR_USAGE', `expect-screen ${s}: the share is a percentage above 0 and at most 100, found ${m[2]}`, { spec: s });
  return { colour: parseColour(m[1]!), share };
}

/** The label of a screen expectation, as markers name it. */
export const screenLabel = (e: ScreenExpect): string => `screen ${hexColour(e.colour)} ≥ ${fmtPercent(e.share ?? DEFAULT_SCREEN_SHARE)} (±${e.tolerance ?? DEFAULT_SCREEN_TOLERANCE})`;

const fmtPercent = (share: number): string => `${(share * 100).toFixed(1).replace(/\.0$/, '')} %`;

/** A decoded screendump. */
export interface Screen {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel. */
  data: Uint8Array;
}

/**
 * A PNG's pixels. The header's size is checked before anything is decoded (a hostile or broken file
 * must not make the host allocate gigabytes); a file that is no PNG is ERR_SCREEN_PNG naming `what`.
 */
export function decodePng(bytes: Uint8Array, what: string): Screen {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 24 || buf.readUInt32BE(0) !== 0x89504e47 || buf.toString('latin1', 12, 16) !== 'IHDR') throw new BootTestError('ERR_SCREEN_PNG', `${what}: not a PNG file (${buf.length} bytes)`, { file: what });
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  if (width === 0 || height === 0 || width * height > SCREEN_MAX_PIXELS) throw new BootTestError('ERR_SCREEN_PNG', `${what}: a ${width}×${height} PNG; a screen has at most ${SCREEN_MAX_PIXELS} pixels`, { file: what, width, height });
  // what QEMU writes, and nothing else: 8 bits per channel, RGB or RGBA, not interlaced (pngjs
  // inflates an interlaced image without any bound on its output: a small file, gigabytes)
  const [depth, colourType, , , interlace] = [buf[24], buf[25], buf[26], buf[27], buf[28]];
  if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) throw new BootTestError('ERR_SCREEN_PNG', `${what}: a PNG of bit depth ${depth}, colour type ${colourType}${interlace ? ', interlaced' : ''}; a screendump is 8-bit RGB or RGBA, not interlaced`, { file: what, depth, colourType, interlace });
  let png: PNG;
  try {
    png = PNG.sync.read(buf);
  } catch (e) {
    throw new BootTestError('ERR_SCREEN_PNG', `${what}: a broken PNG: ${(e as Error).message}`, { file: what });
  }
  return { width: png.width, height: png.height, data: png.data };
}

/** Reads and decodes a PNG file (a regular file, bounded). */
export function readScreen(file: string): Screen {
  const bytes = readRegularFile(file, SCREEN_MAX_PNG_BYTES, (p) => new BootTestError('ERR_SCREEN_PNG', `${file}: ${p.kind === 'missing' ? 'does not exist' : p.kind === 'too-large' ? `is ${p.size} bytes, more than ${SCREEN_MAX_PNG_BYTES}` : p.kind === 'not-regular' ? 'is not a regular file' : p.kind === 'link' ? 'is a symbolic link' : `cannot be opened (${p.code})`}`, { file }));
  return decodePng(bytes, file);
}

/** The share (0–1) of the screen's pixels within ±`tolerance` of `colour` on each of R, G and B. */
export function colourShare(screen: Screen, colour: Rgb, tolerance = DEFAULT_SCREEN_TOLERANCE): number {
  const { data } = screen;
  const n = screen.width * screen.height;
  let hits = 0;
  for (let i = 0; i < n * 4; i += 4) {
    if (Math.abs(data[i]! - colour.r) <= tolerance && Math.abs(data[i + 1]! - colour.g) <= tolerance && Math.abs(data[i + 2]! - colour.b) <= tolerance) hits++;
  }
  return n ? hits / n : 0;
}

/**
 * The colours the screen shows most, each with its share: pixels binned by the top 4 bits of each
 * channel (4096 bins, whatever the screen), each bin named by the first exact colour seen in it.
 * What a failed expectation reports: "mostly #000000 (99.2 %)" says black screen at a glance.
 */
export function dominantColours(screen: Screen, count = 3): { colour: string; share: number }[] {
  const bins = new Uint32Array(4096);
  const first = new Int32Array(4096).fill(-1);
  const { data } = screen;
  const n = screen.width * screen.height;
  for (let i = 0; i < n * 4; i += 4) {
    const bin = ((data[i]! >> 4) << 8) | ((data[i + 1]! >> 4) << 4) | (data[i + 2]! >> 4);
    if (bins[bin] === 0) first[bin] = i;
    bins[bin] = bins[bin]! + 1;
  }
  return [...bins.keys()]
    .filter((b) => bins[b]! > 0)
    .sort((a, b) => bins[b]! - bins[a]! || a - b)
    .slice(0, count)
    .map((b) => {
      const i = first[b]!;
      return { colour: hexColour({ r: data[i]!, g: data[i + 1]!, b: data[i + 2]! }), share: bins[b]! / n };
    });
}

/** "#000000 99.2 %, #AAAAAA 0.8 %" */
export const describeColours = (list: readonly { colour: string; share: number }[]): string => list.map((c) => `${c.colour} ${fmtPercent(c.share)}`).join(', ');

/** One look at the screen against one expectation. */
export interface ScreenCheck {
  share: number;
  passed: boolean;
  width: number;
  height: number;
  /** "62.5 % of 1280×800 pixels within ±8 of #1E90FF" */
  line: string;
}

export function checkScreen(screen: Screen, e: ScreenExpect): ScreenCheck {
  const tolerance = e.tolerance ?? DEFAULT_SCREEN_TOLERANCE;
  const share = colourShare(screen, e.colour, tolerance);
  const want = e.share ?? DEFAULT_SCREEN_SHARE;
  return { share, passed: share >= want, width: screen.width, height: screen.height, line: `${fmtPercent(share)} of ${screen.width}×${screen.height} pixels within ±${tolerance} of ${hexColour(e.colour)}` };
}

/**
 * The guest's display as a PNG at `file`, through QMP `screendump`: QEMU writes a file beside it,
 * renamed into place once whole, so `file` is never a half-written image. QEMU opens the path as it
 * is (a link in the folder would be followed): `file` belongs in a folder of our own; a file for
 * the user is {@link saveScreendump}'s.
 */
export async function screendump(qmp: QmpClient, file: string, onSend?: () => void): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await qmp.execute('screendump', { filename: tmp, format: 'png' }, undefined, onSend).catch((e: unknown) => {
      // QEMU before 7.1, or built without libpng, knows no PNG screendump
      if (e instanceof BootTestError && /format/i.test(e.message) && /unexpected|invalid/i.test(e.message)) throw new BootTestError('ERR_QMP', `this QEMU cannot write PNG screendumps (${e.message}): it needs QEMU 7.1 or later built with libpng`, e.context);
      throw e;
    });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

let saved = 0;

/**
 * A screendump into `privateDir` (ours, 0700), then its bytes into a new file beside `dest`
 * (created exclusively: never through a link someone left there) renamed over `dest`. Resolves
 * with `clock()` as it was when the screendump was sent (a queued command waits its turn).
 */
export async function saveScreendump(qmp: QmpClient, privateDir: string, dest: string, clock: () => number = () => performance.now() / 1000): Promise<number> {
  const scratch = join(privateDir, `shot-${++saved}.png`);
  let sent = 0;
  try {
    await screendump(qmp, scratch, () => (sent = clock()));
    placeCopy(scratch, dest);
    return sent;
  } finally {
    rmSync(scratch, { force: true });
  }
}

/** `src`'s bytes at `dest`: a new file beside it (exclusive: no link followed), renamed over it. */
export function placeCopy(src: string, dest: string): void {
  const tmp = `${dest}.tmp-${process.pid}-${++saved}`;
  try {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
  } catch (e) {
    // a file already at that name is someone else's: left alone; a copy cut short (a full disk) is ours
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(tmp, { force: true });
    throw e;
  }
  try {
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
