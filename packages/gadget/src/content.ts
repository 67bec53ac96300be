/**
 * Content paths against an unpacked gadget: a `source` or `image` must name something inside the
 * gadget, also after following symbolic links. gadget.yaml alone can only refuse `../` and
 * absolute paths (parse does); a link such as `boot-assets -> /etc` needs the files. The composer
 * calls this on the unpacked gadget bundle before it builds anything.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { GadgetError } from './errors.js';
import type { GadgetInfo } from './types.js';

/** Where a content path comes from, for messages (defaults: the gadget folder, no line). */
export interface ContentPathOrigin {
  /** gadget.yaml, as messages should name it. */
  file?: string;
  line?: number;
  col?: number;
  /** The structure's name, or `#N`. */
  structure?: string;
  /** How the path is introduced, e.g. `content #0: source`. Default `content path`. */
  what?: string;
}

/** Symbolic links followed along one path before giving up (as the kernel's ELOOP). */
const MAX_LINKS = 40;
const LOOP = 'too many levels of symbolic links';

/**
 * Resolves `path` (relative to the gadget root, as gadget.yaml writes it) and returns its real
 * path. Throws GadgetError `ERR_GADGET_CONTENT_ESCAPE` when the path, or a symbolic link along it
 * (absolute links always), leads outside `gadgetDir`, and `ERR_GADGET_CONTENT_MISSING` when it
 * does not exist. A directory is checked entry by entry: a link inside it must not escape either.
 * A trailing `/` requires a directory.
 *
 * @example
 * checkContentPath('/tmp/pc-gadget', 'boot-assets/'); // '/tmp/pc-gadget/boot-assets'
 * checkContentPath('/tmp/pc-gadget', 'link-to-etc/passwd'); // throws ERR_GADGET_CONTENT_ESCAPE
 */
export function checkContentPath(gadgetDir: string, path: string, origin: ContentPathOrigin = {}): string {
  const root = realpathSync(gadgetDir);
  const what = origin.what ?? 'content path';
  function fail(message: string, code: 'ERR_GADGET_CONTENT_ESCAPE' | 'ERR_GADGET_CONTENT_MISSING' | 'ERR_GADGET_CONTENT'): never {
    throw new GadgetError(`${what} ${JSON.stringify(path)} ${message}`, origin.file ?? gadgetDir, origin.line, origin.col, origin.structure, code);
  }
  if (isAbsolute(path)) fail("is an absolute path: content paths are relative to the gadget's root", 'ERR_GADGET_CONTENT_ESCAPE');

  const r = resolveInside(root, path);
  if ('escape' in r) fail(`leaves the gadget${r.escape}`, 'ERR_GADGET_CONTENT_ESCAPE');
  if ('missing' in r) fail(`is not in the gadget (${r.missing})`, 'ERR_GADGET_CONTENT_MISSING');
  const real = r.real;
  const isDir = statSync(real).isDirectory();
  if (path.endsWith('/') && !isDir) fail('ends with "/" but is not a directory', 'ERR_GADGET_CONTENT');
  if (isDir) {
    const bad = walkDirectory(root, real);
    if (bad) fail(`holds ${bad.entry}, which ${bad.why}`, bad.code);
  }
  return real;
}

/**
 * Checks every `source` and `image` of a gadget against its unpacked folder with
 * {@link checkContentPath}; `$kernel:` references are the kernel's, not checked here.
 *
 * @example
 * checkGadgetContent(readGadgetYaml('/tmp/pc/meta/gadget.yaml'), '/tmp/pc');
 */
export function checkGadgetContent(g: GadgetInfo, gadgetDir: string): void {
  for (const name of g.volumeOrder) {
    for (const s of g.volumes[name]!.structures) {
      s.content.forEach((c, i) => {
        const p = c.kind === 'file' ? c.source : c.image;
        if (c.kind === 'file' && p.startsWith('$kernel:')) return;
        const origin: ContentPathOrigin = { file: g.file, structure: s.name ? s.name : `#${s.yamlIndex}`, what: `content #${i}: ${c.kind === 'file' ? 'source' : 'image'}` };
        const line = c.line ?? s.line;
        if (line !== undefined) origin.line = line;
        const col = c.line !== undefined ? c.col : s.col;
        if (col !== undefined) origin.col = col;
        checkContentPath(gadgetDir, p, origin);
      });
    }
  }
}

type Resolved = { real: string } | { escape: string } | { missing: string };

/** Follows `rel` from `root` one component at a time, refusing to step outside `root`. */
function resolveInside(root: string, rel: string, budget = { links: MAX_LINKS }): Resolved {
  const inside = (p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
  const queue = rel.split('/').filter((x) => x !== '' && x !== '.');
  let cur = root;
  while (queue.length > 0) {
    const seg = queue.shift()!;
    if (seg === '..') {
      cur = dirname(cur);
      if (!inside(cur)) return { escape: '' };
      continue;
    }
    const next = join(cur, seg);
    let st;
    try {
      st = lstatSync(next);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: `no ${relative(root, next) || '.'}` };
      throw e;
    }
    if (st.isSymbolicLink()) {
      if (--budget.links < 0) return { missing: LOOP };
      const target = readlinkSync(next);
      const linkName = relative(root, next);
      if (isAbsolute(target)) return { escape: `: ${linkName} is a symbolic link to ${target}` };
      const parts = target.split('/').filter((x) => x !== '' && x !== '.');
      // Check where the link leads from the folder that holds it.
      const sub = resolveInside(root, [relative(root, cur), ...parts].filter(Boolean).join('/'), budget);
      if ('escape' in sub) return { escape: `: ${linkName} is a symbolic link to ${target}` };
      if ('missing' in sub) return sub.missing === LOOP ? sub : { missing: `${linkName} is a symbolic link to ${target}, which does not exist` };
      cur = sub.real;
      continue;
    }
    cur = next;
  }
  return { real: cur };
}

/** The first entry under a directory whose symbolic link escapes or dangles, if any. */
function walkDirectory(root: string, dir: string): { entry: string; why: string; code: 'ERR_GADGET_CONTENT_ESCAPE' | 'ERR_GADGET_CONTENT_MISSING' } | undefined {
  const stack = [dir];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) {
        const r = resolveInside(root, relative(root, p));
        if ('escape' in r) return { entry: relative(root, p), why: `is a symbolic link to ${readlinkSync(p)}, outside the gadget`, code: 'ERR_GADGET_CONTENT_ESCAPE' };
        if ('missing' in r) return { entry: relative(root, p), why: `is a symbolic link to ${readlinkSync(p)}, which does not exist`, code: 'ERR_GADGET_CONTENT_MISSING' };
        if (statSync(r.real).isDirectory()) stack.push(r.real);
      } else if (e.isDirectory()) {
        stack.push(p);
      }
    }
  }
  return undefined;
}
