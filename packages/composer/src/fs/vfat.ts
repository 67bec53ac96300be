import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { checkSize, createOutput, discardOutput, prepareOutput } from './output.js';
import { smallestFit } from './fit.js';
import { runTool } from './tool.js';
import { ceilDiv, describeFs, epochSeconds, MiB, scanTree, type TreeEntry } from './tree.js';

export interface VfatOptions {
  /** The tree to copy in. It is read, never changed. */
  sourceDir: string;
  /** The filesystem image to write; must not exist (unless `offset` is given). */
  output: string;
  /** Exact size of the filesystem in bytes (a multiple of 512; of 1024 with `offset`). */
  size: number;
  /**
   * Build in place at this byte offset of `output`, an existing file (the disk image) that reads
   * zero over `[offset, offset + size)`; nothing outside that range is written. Same bytes as a
   * separate file of `size` bytes copied there.
   */
  offset?: number;
  /** Volume label: at most 11 ASCII characters; stored upper-cased, as FAT does. */
  label?: string;
  /** The 32-bit volume id (serial number), fixed so the image is reproducible. */
  volumeId: number;
  /** FAT size; default: what mkfs.vfat picks for the size. */
  fatBits?: 16 | 32;
  /** The time of every directory entry (and of the volume label). */
  timestamp: Date;
  /** The partition's first sector on the disk, for the boot sector's hidden-sectors field (default 0). */
  hiddenSectors?: number;
  /** The structure's name, for messages (default: the label). */
  name?: string;
}

/** Characters a FAT volume label cannot hold (besides control characters and non-ASCII). */
const LABEL_FORBIDDEN = /["*+,./:;<=>?[\\\]|]/;
/** Characters a long file name cannot hold (besides control characters). */
const NAME_FORBIDDEN = /["*/:<>?\\|]/;
const MAX_FILE = 2 ** 32 - 1;

/**
 * Builds a FAT filesystem image from a directory with mkfs.vfat and mtools, without root and
 * without mounting, byte for byte the same on every build and for every build user:
 *
 * - `mkfs.vfat --invariant --mbr=n -S 512 [-F bits] [-h hidden]` on a new sparse file of exactly
 *   `size` bytes: `--invariant` fixes everything mkfs.fat would take from the clock or randomness
 *   (and overrides `-i`, so the volume id is set next); `--mbr=n` keeps a fake partition table
 *   out of the boot sector. mkfs.fat 4.2 does not read `SOURCE_DATE_EPOCH`.
 * - `mlabel -N volumeId ::LABEL` sets the serial number (in the boot sector and its FAT32 backup)
 *   and the label (boot sector and root directory entry).
 * - `mmd` creates the directories, then one `mcopy` per directory copies its files, all in byte
 *   order of their names. mtools 4.0.32 stamps every entry it writes with `SOURCE_DATE_EPOCH`
 *   (set to `timestamp`; `mcopy` without `-m` ignores the source's mtime), in `TZ=UTC`, with
 *   long names encoded under `LC_ALL=C.UTF-8`. FAT keeps no owners or modes: nothing of the build
 *   user can leak in.
 *
 * Refused: symlinks, devices, sockets, FIFOs (FAT cannot hold them), names FAT cannot hold, two
 * names in one directory that differ only in case, files of 4 GiB or more.
 *
 * @example
 * await buildVfat({ sourceDir: 'stage/boot', output: 'work/system-boot.img', size: 64 * 2 ** 20,
 *   label: 'system-boot', volumeId: 0x1e2d3c4b, fatBits: 32, timestamp: new Date('2024-01-01T00:00:00Z') });
 */
export async function buildVfat(opts: VfatOptions): Promise<void> {
  const what = describeFs('vfat', opts.name, opts.label, opts.output);
  checkSize(opts.size, 64 * 1024, what);
  const epoch = epochSeconds(opts.timestamp, what, 'vfat');
  const label = opts.label === undefined ? undefined : fatLabel(opts.label, what);
  if (!Number.isSafeInteger(opts.volumeId) || opts.volumeId < 0 || opts.volumeId > 0xffffffff) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: volume id ${opts.volumeId} is not a 32-bit unsigned number`, { volumeId: opts.volumeId });
  }
  if (opts.fatBits !== undefined && opts.fatBits !== 16 && opts.fatBits !== 32) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: FAT size ${String(opts.fatBits)} is not 16 or 32`, { fatBits: opts.fatBits });
  }
  const hidden = opts.hiddenSectors ?? 0;
  if (!Number.isSafeInteger(hidden) || hidden < 0 || hidden > 0xffffffff) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: hidden sectors ${hidden} is not a 32-bit unsigned number`, { hiddenSectors: hidden });
  }

  const tree = await scanTree(opts.sourceDir, what);
  checkFatTree(tree, what);

  if (opts.offset !== undefined && opts.size % 1024 !== 0) {
    // mkfs.fat takes the size of a filesystem inside a larger file as a count of 1 KiB blocks.
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: size ${opts.size} is not a multiple of 1024 bytes, which building in place at an offset needs`, { size: opts.size });
  }
  await prepareOutput(opts.output, opts.size, opts.offset, what);
  const placed = opts.offset === undefined ? [opts.output] : [`--offset=${opts.offset / 512}`, opts.output, String(opts.size / 1024)];
  try {
    // At an offset, mkfs.fat 4.2 picks the FAT size and the disk geometry (heads, sectors per
    // track, to which it rounds the size down) by the whole file, not the filesystem: ask it what
    // it picks for a file of the filesystem's size, and say so.
    const own = opts.offset !== undefined ? await standaloneChoices(opts.size, opts.fatBits) : undefined;
    const fatBits = opts.fatBits ?? own?.fatBits;
    const chs = own ? ['-g', `${own.heads}/${own.sectorsPerTrack}`] : [];
    const mk = await runTool('mkfs.vfat', [...mkfsArgs(fatBits, hidden), ...chs, ...placed], { check: false });
    if (mk.code !== 0) {
      const msg = mk.stderr.trim().split('\n').filter((l) => !/^mkfs\.fat \d/.test(l)).join('\n');
      if (/too small|too few|Too few blocks|Not enough clusters/i.test(msg)) {
        throw new ComposeError('ERR_FS_TOO_SMALL', `${what}: ${opts.size} bytes is too small for a FAT${opts.fatBits ?? ''} filesystem (mkfs.vfat: ${msg})`, { structure: opts.name ?? opts.label, size: opts.size });
      }
      throw new ComposeError('ERR_TOOL_FAILED', `${what}: mkfs.vfat failed: ${msg}`, { tool: 'mkfs.vfat', output: mk.stderr });
    }
    const geometry = await readGeometry(opts.output, opts.offset ?? 0);
    const need = vfatNeeds(tree, geometry.clusterSize, label !== undefined);
    // The file data alone is an exact lower bound: fail before copying anything.
    if (need.dataClusters > geometry.freeClusters) throw await tooSmall(what, opts, tree, label !== undefined, geometry);

    const env = { SOURCE_DATE_EPOCH: String(epoch) };
    // mtools reaches a filesystem inside a larger file as FILE@@OFFSET.
    const img = ['-i', opts.offset === undefined ? opts.output : `${opts.output}@@${opts.offset}`];
    const serial = opts.volumeId.toString(16).padStart(8, '0');
    await runTool('mlabel', [...img, '-N', serial, ...(label !== undefined ? [`::${label}`] : ['-s', '::'])], { env });

    const dirs = tree.filter((e) => e.kind === 'dir' && e.path !== '').map((e) => `::/${e.path}`);
    for (const chunk of chunks(dirs, 256)) await mtool('mmd', [...img, ...chunk], env, what, opts, tree, label, geometry);
    const byDir = new Map<string, string[]>();
    for (const e of tree) {
      if (e.kind !== 'file') continue;
      const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
      byDir.set(parent, [...(byDir.get(parent) ?? []), e.abs]);
    }
    for (const [dir, files] of byDir) {
      for (const chunk of chunks(files, 256)) await mtool('mcopy', [...img, '-Q', ...chunk, `::/${dir}${dir ? '/' : ''}`], env, what, opts, tree, label, geometry);
    }
  } catch (err) {
    await discardOutput(opts.output, opts.offset);
    throw err;
  }
}

/**
 * What mkfs.vfat picks by itself for a file of `size` bytes: the FAT size and the geometry
 * (undefined when it makes no filesystem of that size: the real run then fails the same way).
 */
async function standaloneChoices(size: number, fatBits: 16 | 32 | undefined): Promise<{ fatBits: 12 | 16 | 32; heads: number; sectorsPerTrack: number } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeimage-vfat-size-'));
  try {
    const file = join(dir, 'probe.img');
    await createOutput(file, size, 'probe');
    const r = await runTool('mkfs.vfat', [...mkfsArgs(fatBits, 0), file], { check: false });
    if (r.code !== 0) return undefined;
    const fh = await open(file, 'r');
    const b = Buffer.alloc(32);
    try {
      await fh.read(b, 0, 32, 0);
    } finally {
      await fh.close();
    }
    return { fatBits: (await readGeometry(file)).fatBits, sectorsPerTrack: b.readUInt16LE(24), heads: b.readUInt16LE(26) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mkfsArgs(fatBits: 12 | 16 | 32 | undefined, hidden: number): string[] {
  return ['--invariant', '--mbr=n', '-S', '512', ...(fatBits ? ['-F', String(fatBits)] : []), '-h', String(hidden)];
}

/** Runs an mtools command; "Disk full" or a full root directory become ERR_FS_TOO_SMALL. */
async function mtool(tool: string, args: string[], env: Record<string, string>, what: string, opts: VfatOptions, tree: TreeEntry[], label: string | undefined, geometry: FatGeometry): Promise<void> {
  const r = await runTool(tool, args, { env, check: false });
  const out = `${r.stderr}\n${r.stdout.toString('utf8')}`;
  if (/Disk full|No directory slots|No free clusters/i.test(out)) throw await tooSmall(what, opts, tree, label !== undefined, geometry);
  if (r.code !== 0 || /\S/.test(r.stderr)) {
    throw new ComposeError('ERR_TOOL_FAILED', `${what}: ${tool} failed: ${out.trim().split('\n').slice(-4).join('\n')}`, { tool, output: out });
  }
}

const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: ceilDiv(xs.length, n) }, (_, i) => xs.slice(i * n, i * n + n));

/**
 * The label as FAT stores it: upper-cased; refused when it is empty, longer than 11 characters,
 * not printable ASCII, starts with a space or holds a character FAT forbids in labels.
 */
export function fatLabel(label: string, what = 'vfat filesystem'): string {
  const up = label.toUpperCase();
  const bad = (why: string) => new ComposeError('ERR_FS_LABEL', `${what}: label ${JSON.stringify(label)} ${why}`, { label });
  if (up.length === 0) throw bad('is empty (leave it out for no label)');
  if (!/^[\x20-\x7e]+$/.test(up)) throw bad('must be printable ASCII');
  if (up.length > 11) throw bad(`is ${up.length} characters; FAT labels hold at most 11`);
  if (up.startsWith(' ')) throw bad('starts with a space');
  const m = LABEL_FORBIDDEN.exec(up);
  if (m) throw bad(`contains ${JSON.stringify(m[0])}, which FAT labels cannot hold`);
  return up;
}

function checkFatTree(tree: TreeEntry[], what: string): void {
  const seen = new Map<string, string>();
  for (const e of tree) {
    if (e.path === '') continue;
    if (e.kind === 'symlink') throw new ComposeError('ERR_FS_UNSUPPORTED_FILE', `${what}: ${e.path} is a symlink; FAT cannot hold symlinks (copy the file instead)`, { path: e.path });
    const bad = (why: string) => new ComposeError('ERR_FS_UNSUPPORTED_NAME', `${what}: ${JSON.stringify(e.path)}: ${why}`, { path: e.path });
    if (/[\x00-\x1f\x7f]/.test(e.name)) throw bad('FAT names cannot hold control characters');
    const m = NAME_FORBIDDEN.exec(e.name);
    if (m) throw bad(`FAT names cannot hold ${JSON.stringify(m[0])}`);
    if (/[. ]$/.test(e.name)) throw bad('FAT names cannot end with a dot or a space');
    if (e.name.length > 255) throw bad('longer than 255 characters');
    const key = e.path.toUpperCase();
    const other = seen.get(key);
    if (other !== undefined) {
      throw new ComposeError('ERR_FS_NAME_CLASH', `${what}: ${JSON.stringify(other)} and ${JSON.stringify(e.path)} are the same name on FAT, which ignores case`, { paths: [other, e.path] });
    }
    seen.set(key, e.path);
    if (e.kind === 'file' && e.size > MAX_FILE) {
      throw new ComposeError('ERR_FS_FILE_TOO_LARGE', `${what}: ${e.path} is ${e.size} bytes; FAT files hold at most 4 GiB − 1`, { path: e.path, size: e.size });
    }
  }
}

export interface FatGeometry {
  fatBits: 12 | 16 | 32;
  clusterSize: number;
  clusters: number;
  /** Clusters free in the empty filesystem (FAT32's root directory takes one). */
  freeClusters: number;
  /** Entries of the fixed root directory of FAT12/16 (0 on FAT32). */
  rootEntries: number;
  /** Byte offset of the first data cluster (cluster 2) from the start of the filesystem. */
  dataStart: number;
}

/** Reads the geometry of a FAT filesystem from its boot sector. */
export async function readGeometry(file: string, offset = 0): Promise<FatGeometry> {
  const fh = await open(file, 'r');
  const b = Buffer.alloc(512);
  try {
    await fh.read(b, 0, 512, offset);
  } finally {
    await fh.close();
  }
  const bps = b.readUInt16LE(11);
  const spc = b.readUInt8(13);
  const reserved = b.readUInt16LE(14);
  const nfats = b.readUInt8(16);
  const rootEntries = b.readUInt16LE(17);
  const total = b.readUInt16LE(19) || b.readUInt32LE(32);
  const fatSize = b.readUInt16LE(22) || b.readUInt32LE(36);
  const rootSectors = ceilDiv(rootEntries * 32, bps);
  const clusters = Math.floor((total - reserved - nfats * fatSize - rootSectors) / spc);
  const fatBits = b.readUInt16LE(22) === 0 ? 32 : clusters < 4085 ? 12 : 16;
  return { fatBits, clusterSize: bps * spc, clusters, freeClusters: clusters - (fatBits === 32 ? 1 : 0), rootEntries, dataStart: (reserved + nfats * fatSize + rootSectors) * bps };
}

/** Whether mtools stores `name` as a plain 8.3 entry (upper- or lower-case parts), without long-name entries. */
function isShortName(name: string): boolean {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name);
  if (!m) return false;
  const ok = (s: string) => /^[A-Z0-9!#$%&'()@^_`{}~-]+$/.test(s) || /^[a-z0-9!#$%&'()@^_`{}~-]+$/.test(s);
  return ok(m[1]!) && (m[2] === undefined || ok(m[2]));
}

const entriesFor = (name: string): number => 1 + (isShortName(name) ? 0 : ceilDiv(name.length, 13));

/** Clusters the tree needs: file data alone (exact), and with the directories (estimated). */
export function vfatNeeds(tree: TreeEntry[], clusterSize: number, hasLabel: boolean): { dataClusters: number; clusters: number; rootEntries: number } {
  let dataClusters = 0;
  const entries = new Map<string, number>([['', hasLabel ? 1 : 0]]);
  for (const e of tree) {
    if (e.path === '') continue;
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
    entries.set(parent, (entries.get(parent) ?? 2) + entriesFor(e.name));
    if (e.kind === 'dir' && !entries.has(e.path)) entries.set(e.path, 2);
    if (e.kind === 'file') dataClusters += ceilDiv(e.size, clusterSize);
  }
  let dirClusters = 0;
  for (const [path, n] of entries) if (path !== '') dirClusters += Math.max(1, ceilDiv(n * 32, clusterSize));
  const rootEntries = entries.get('') ?? 0;
  return { dataClusters, clusters: dataClusters + dirClusters, rootEntries };
}

function fits(tree: TreeEntry[], g: FatGeometry, hasLabel: boolean): boolean {
  const n = vfatNeeds(tree, g.clusterSize, hasLabel);
  if (g.fatBits === 32) return n.clusters + Math.max(0, ceilDiv(n.rootEntries * 32, g.clusterSize) - 1) <= g.freeClusters;
  return n.clusters <= g.freeClusters && n.rootEntries <= g.rootEntries;
}

/** ERR_FS_TOO_SMALL with the smallest size (in MiB) whose empty filesystem holds the tree. */
async function tooSmall(what: string, opts: VfatOptions, tree: TreeEntry[], hasLabel: boolean, g: FatGeometry): Promise<ComposeError> {
  const n = vfatNeeds(tree, g.clusterSize, hasLabel);
  const rootFull = g.fatBits !== 32 && n.rootEntries > g.rootEntries;
  let needed: number | undefined;
  try {
    // FAT12/16 root directories have a fixed number of entries (512 whatever the size, as mkfs.vfat makes them).
    const rootWhy = rootFull && opts.fatBits === 16 ? `its root directory needs ${n.rootEntries} entries, and FAT16's holds ${g.rootEntries} at any size` : undefined;
    needed = await smallestVfat(what, opts, tree, hasLabel, rootWhy ?? '');
  } catch (e) {
    // No size at all is the stronger refusal; a probe that failed only loses the hint.
    if (e instanceof ComposeError && e.code === 'ERR_FS_NO_FIT') throw e;
    needed = undefined;
  }
  const why = rootFull
    ? `its root directory needs ${n.rootEntries} entries but FAT${g.fatBits}'s holds ${g.rootEntries}`
    : `the content needs about ${n.clusters} clusters of ${g.clusterSize} bytes (${n.clusters * g.clusterSize} bytes) but only ${g.freeClusters} are free`;
  const hint = needed !== undefined ? `; it needs about ${needed} bytes (${Math.ceil(needed / MiB)} MiB)` : '';
  return new ComposeError('ERR_FS_TOO_SMALL', `${what}: does not fit in ${opts.size} bytes: ${why}${hint}`, {
    structure: opts.name ?? opts.label,
    size: opts.size,
    needed,
    clusters: n.clusters,
    clusterSize: g.clusterSize,
  });
}

/** The smallest size whose empty filesystem, made as the real one is, holds the tree. */
async function smallestVfat(what: string, opts: VfatOptions, tree: TreeEntry[], hasLabel: boolean, why: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeimage-vfat-probe-'));
  try {
    let i = 0;
    return await smallestFit({
      what,
      filesystem: 'vfat',
      structure: opts.name ?? opts.label,
      payload: tree.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0),
      tooSmall: opts.size,
      // 4 TiB: beyond it mkfs.vfat makes no FAT of 512-byte sectors.
      limit: 1 << 22,
      why,
      fits: async (mib) => {
        const file = join(dir, `probe-${i++}.img`);
        await createOutput(file, mib * MiB, 'probe');
        try {
          const r = await runTool('mkfs.vfat', [...mkfsArgs(opts.fatBits, 0), file], { check: false });
          return r.code === 0 && fits(tree, await readGeometry(file), hasLabel);
        } finally {
          await rm(file, { force: true });
        }
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
