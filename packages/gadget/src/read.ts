/**
 * Reading a gadget from wherever it is: an unpacked gadget (a folder with meta/gadget.yaml), a
 * folder with a gadget.yaml, a gadget.yaml on its own, or a gadget .snap (read with unsquashfs,
 * no mounting, no root). The CLI's `gadget` commands and the composer both read through here.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EdgeimageError } from '@edgeimage/assertions';
import { runTool, stderrTail } from '@edgeimage/host-tools';
import { parseGadgetYaml } from './parse.js';
import type { GadgetInfo } from './types.js';

/** gadget.yaml files are small; anything larger is not one. */
export const MAX_GADGET_YAML_BYTES = 1024 * 1024;

export interface ReadGadget {
  gadget: GadgetInfo;
  /** The unpacked gadget's folder (content paths resolve in it), when PATH was one; not for a lone gadget.yaml or a .snap. */
  dir?: string;
  /** PATH is a gadget .snap. */
  snap: boolean;
}

export interface ReadGadgetOptions {
  /** The name errors give the gadget.yaml (default: its path, `FILE.snap:meta/gadget.yaml` in a .snap). */
  name?: string;
}

const notFound = (path: string, why: string) => new EdgeimageError('ERR_GADGET_NOT_FOUND', `${path}: ${why}`, { path });

/**
 * @example
 * const { gadget, dir } = await readGadget('bundles/pc');        // meta/gadget.yaml, dir = bundles/pc
 * const { gadget } = await readGadget('pc_0.1_amd64.snap');      // unsquashfs -cat meta/gadget.yaml
 */
export async function readGadget(path: string, opts: ReadGadgetOptions = {}): Promise<ReadGadget> {
  const st = lstatOrThrow(path);
  if (st.isDirectory()) {
    for (const [rel, unpacked] of [['meta/gadget.yaml', true], ['gadget.yaml', false]] as const) {
      const file = join(path, rel);
      const text = readSmallFile(file);
      if (text !== undefined) return { gadget: parseGadgetYaml(text, opts.name ?? file), snap: false, ...(unpacked ? { dir: path } : {}) };
    }
    throw notFound(path, 'no meta/gadget.yaml or gadget.yaml in this folder');
  }
  if (isSquashfs(path)) return { gadget: parseGadgetYaml(await catSnapGadgetYaml(path), opts.name ?? `${path}:meta/gadget.yaml`), snap: true };
  const text = readSmallFile(path);
  if (text === undefined) throw notFound(path, 'no such file');
  return { gadget: parseGadgetYaml(text, opts.name ?? path), snap: false };
}

/**
 * Unpacks a gadget .snap into `dir` (which must not exist), as this user, to check its content
 * paths against the files.
 */
export async function unpackGadgetSnap(file: string, dir: string): Promise<void> {
  // An absolute path: a file named "-x.snap" must not read as an option.
  const r = await runTool('unsquashfs', ['-no-xattrs', '-quiet', '-no-progress', '-f', '-d', dir, resolve(file)], { maxStdout: 1024 * 1024 });
  if (r.exitCode !== 0) throw notFound(file, `cannot unpack: ${stderrTail(r.stderr, 2)}`);
}

function lstatOrThrow(path: string) {
  try {
    return lstatSync(path);
  } catch {
    throw notFound(path, 'no such file or folder');
  }
}

/** A regular file's text (a link is followed only for PATH itself), or undefined when there is none; over the bound is an error. */
function readSmallFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    if (st.size > MAX_GADGET_YAML_BYTES) throw notFound(file, `${st.size} bytes, larger than the ${MAX_GADGET_YAML_BYTES} bytes a gadget.yaml may be`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function isSquashfs(file: string): boolean {
  const b = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'hsqs';
  } finally {
    closeSync(fd);
  }
}

async function catSnapGadgetYaml(file: string): Promise<string> {
  const r = await runTool('unsquashfs', ['-cat', resolve(file), 'meta/gadget.yaml'], { maxStdout: MAX_GADGET_YAML_BYTES });
  if (r.exitCode === 0 && !r.overflow) return r.stdout.toString('utf8');
  const why = r.overflow
    ? `meta/gadget.yaml is larger than ${MAX_GADGET_YAML_BYTES} bytes`
    : /no matches for/i.test(r.stderr)
      ? 'it has no meta/gadget.yaml (not a gadget snap?)'
      : `unsquashfs failed: ${stderrTail(r.stderr, 2)}`;
  throw notFound(file, `cannot read meta/gadget.yaml: ${why}`);
}
