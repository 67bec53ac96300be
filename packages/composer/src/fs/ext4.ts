import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { checkSize, createOutput, discardOutput, prepareOutput } from './output.js';
import { smallestFit } from './fit.js';
import { runTool } from './tool.js';
import { ceilDiv, describeFs, epochSeconds, MiB, scanTree, type TreeEntry } from './tree.js';

export interface Ext4Options {
  /** The tree to copy in. It is read, never changed. */
  sourceDir: string;
  /** The filesystem image to write; must not exist (unless `offset` is given). */
  output: string;
  /** Exact size of the filesystem in bytes (a multiple of 512; blocks are 4096 bytes). */
  size: number;
  /**
   * Build in place at this byte offset of `output`, an existing file (the disk image) that reads
   * zero over `[offset, offset + size)`; nothing outside that range is written. Same bytes as a
   * separate file of `size` bytes copied there.
   */
  offset?: number;
  /** Volume label, at most 16 bytes (MBR disks find slots by it). */
  label?: string;
  /** Filesystem UUID (fixed, so the image is reproducible). */
  uuid: string;
  /** Seed of the directory hash (a UUID; fixed, so htree directories are reproducible). */
  hashSeed: string;
  /** The time of every inode and of the superblock. */
  timestamp: Date;
  /** Keep a journal: for the writable `system-data`; read-only slots need none (default false). */
  journal?: boolean;
  /** Blocks reserved for root, in percent (default 0). */
  reservedPercent?: number;
  /** The structure's name, for messages (default: the label). */
  name?: string;
}

const BLOCK = 4096;
const INODE_RATIO = 16384;
/** Inodes 1–10 are reserved, 11 is lost+found. */
const FIRST_INO = 11;

/**
 * The mke2fs configuration used instead of the host's `/etc/mke2fs.conf`, which distributions
 * change (1.47 upstream adds `orphan_file` and `metadata_csum_seed` by default; GRUB 2.06 cannot
 * read `metadata_csum_seed`). These are Debian 12's ext4 defaults, pinned.
 */
const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = ${BLOCK}
	inode_size = 256
	inode_ratio = ${INODE_RATIO}

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

/**
 * Builds an ext4 filesystem image from a directory with `mkfs.ext4 -d`, without root, byte for
 * byte the same on every build and for every build user:
 *
 * - `-U uuid`, `-E hash_seed=…`: no random UUIDs; `E2FSPROGS_FAKE_TIME`: superblock times and the
 *   inodes mke2fs creates itself (root, lost+found, journal, resize inode, every `crtime`).
 *   (e2fsprogs 1.47.0 does not read `SOURCE_DATE_EPOCH`.)
 * - `-E root_owner=0:0,no_copy_xattrs`: the root directory is root's whatever user builds, and no
 *   extended attribute of the build host (SELinux labels, `user.*`) leaks in.
 * - `-E nodiscard,assume_storage_prezeroed=1`: the output is a new sparse file, so mke2fs need not
 *   zero inode tables and journal; the bytes equal `lazy_itable_init=0,lazy_journal_init=0`'s
 *   (ITABLE_ZEROED set: the kernel's lazy init never runs) in ~1 % of the disk space.
 * - `-T default -b 4096 -I 256 -i 16384` and a pinned `MKE2FS_CONFIG`: the geometry and the
 *   feature set do not depend on the size class or the host's mke2fs.conf.
 * - Then one `debugfs -w` script sets, on every inode copied from the tree, uid 0, gid 0, the
 *   mode normalised (directories 0755, files 0755 if the owner may execute them else 0644,
 *   symlinks 0777) and atime/mtime/ctime/crtime to `timestamp`: mke2fs -d copies the build user's
 *   uid/gid, its umask's modes and each file's ctime, which no unprivileged tool can set.
 *
 * Directory entries are added in byte order of their names (mke2fs 1.47 sorts with alphasort;
 * the tools run under `LC_ALL=C.UTF-8`), so the host's directory order does not matter.
 *
 * @example
 * await buildExt4({ sourceDir: 'stage/slot', output: 'work/system-a.img', size: 512 * 2 ** 20,
 *   label: 'system-a', uuid: 'c7a3e1f0-…', hashSeed: '5d1f…', timestamp: new Date('2024-01-01T00:00:00Z') });
 */
export async function buildExt4(opts: Ext4Options): Promise<void> {
  const what = describeFs('ext4', opts.name, opts.label, opts.output);
  const journal = opts.journal ?? false;
  const reserved = opts.reservedPercent ?? 0;
  checkSize(opts.size, journal ? 8 * MiB : 256 * 1024, what);
  const uuid = checkUuid(opts.uuid, 'uuid', what);
  const hashSeed = checkUuid(opts.hashSeed, 'hashSeed', what);
  const epoch = epochSeconds(opts.timestamp, what, 'ext4');
  if (opts.label !== undefined && Buffer.byteLength(opts.label) > 16) {
    throw new ComposeError('ERR_FS_LABEL', `${what}: label ${JSON.stringify(opts.label)} is ${Buffer.byteLength(opts.label)} bytes; ext4 labels hold at most 16`, { label: opts.label });
  }
  if (!(reserved >= 0 && reserved <= 50)) throw new ComposeError('ERR_FS_OPTIONS', `${what}: reservedPercent ${reserved} is not within 0 … 50`, { reservedPercent: reserved });

  const tree = await scanTree(opts.sourceDir, what);
  const need = ext4Needs(tree);
  if (need.blocks * BLOCK > opts.size) throw await tooSmall(what, opts, need, journal, reserved);

  await prepareOutput(opts.output, opts.size, opts.offset, what);
  // The size is given as a block count: mke2fs would otherwise take the rest of the image.
  const target = opts.offset === undefined ? [opts.output] : [opts.output, String(Math.floor(opts.size / BLOCK))];
  // debugfs opens the filesystem at its offset through the unix I/O manager's `?offset=`.
  const debugfsTarget = opts.offset === undefined ? opts.output : `${opts.output}?offset=${opts.offset}`;
  let tmp: string | undefined;
  try {
    tmp = await mkdtemp(join(tmpdir(), 'edgeimage-ext4-'));
    const conf = join(tmp, 'mke2fs.conf');
    await writeFile(conf, MKE2FS_CONF);
    const args = mkfsArgs({ uuid, hashSeed, journal, reserved, label: opts.label, offset: opts.offset });
    const env = { MKE2FS_CONFIG: conf, E2FSPROGS_FAKE_TIME: String(epoch) };
    const r = await runTool('mkfs.ext4', [...args, '-d', opts.sourceDir, ...target], { env, check: false });
    if (/too small for a journal/i.test(r.stderr)) {
      // mke2fs then silently makes a filesystem without one: refuse instead.
      throw new ComposeError('ERR_FS_TOO_SMALL', `${what}: ${opts.size} bytes is too small for a journal; a journalled ext4 needs at least 8 MiB`, { structure: opts.name ?? opts.label, size: opts.size, needed: 8 * MiB });
    }
    if (r.code !== 0) {
      if (/Could not allocate (block|inode)|Not enough space|No space left|too small/i.test(r.stderr)) throw await tooSmall(what, opts, need, journal, reserved, r.stderr);
      throw new ComposeError('ERR_TOOL_FAILED', `${what}: mkfs.ext4 failed: ${r.stderr.trim().split('\n').slice(-4).join('\n')}`, { tool: 'mkfs.ext4', output: r.stderr });
    }
    const script = join(tmp, 'normalise.debugfs');
    await writeFile(script, normaliseScript(tree, epoch));
    const d = await runTool('debugfs', ['-w', '-f', script, debugfsTarget], { check: false });
    // debugfs exits 0 even when a command fails; anything on stderr but its banner is a failure.
    const errors = d.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
    if (d.code !== 0 || errors.length) {
      throw new ComposeError('ERR_TOOL_FAILED', `${what}: debugfs could not normalise owners and times: ${errors.slice(0, 4).join('\n')}`, { tool: 'debugfs', output: d.stderr });
    }
    const st = await stat(opts.output);
    const expected = (opts.offset ?? 0) + opts.size;
    if (opts.offset === undefined ? st.size !== expected : st.size < expected) throw new ComposeError('ERR_TOOL_FAILED', `${what}: mkfs.ext4 left a file of ${st.size} bytes instead of ${expected}`, { size: st.size });
  } catch (err) {
    await discardOutput(opts.output, opts.offset);
    throw err;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

function mkfsArgs(o: { uuid: string; hashSeed: string; journal: boolean; reserved: number; label?: string; offset?: number }): string[] {
  const ext = [`hash_seed=${o.hashSeed}`, 'root_owner=0:0', 'no_copy_xattrs', 'nodiscard', 'assume_storage_prezeroed=1', ...(o.offset !== undefined ? [`offset=${o.offset}`] : [])];
  return [
    '-q', '-F',
    '-T', 'default',
    '-b', String(BLOCK), '-I', '256', '-i', String(INODE_RATIO),
    '-O', o.journal ? 'has_journal' : '^has_journal',
    '-m', String(o.reserved),
    '-U', o.uuid,
    '-E', ext.join(','),
    ...(o.label !== undefined ? ['-L', o.label] : []),
  ];
}

/** The debugfs script that gives every inode root's ownership, a normalised mode and `epoch`. */
function normaliseScript(tree: TreeEntry[], epoch: number): string {
  const lines: string[] = [];
  const t = `@${epoch}`;
  for (const e of [...tree, { path: 'lost+found', kind: 'lost+found' as const, perm: 0o700 }]) {
    const p = quote(`/${e.path}`);
    const mode = e.kind === 'dir' ? 0o40755 : e.kind === 'lost+found' ? 0o40700 : e.kind === 'symlink' ? 0o120777 : e.perm & 0o100 ? 0o100755 : 0o100644;
    lines.push(`sif ${p} uid 0`, `sif ${p} gid 0`, `sif ${p} mode 0${mode.toString(8)}`);
    for (const f of ['atime', 'mtime', 'ctime', 'crtime']) lines.push(`sif ${p} ${f} ${t}`, `sif ${p} ${f}_extra 0`);
  }
  return `${lines.join('\n')}\n`;
}

/** A debugfs argument: double quotes, an inner quote doubled (ss_parse's rule). */
const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;

function checkUuid(v: string, field: string, what: string): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) {
    throw new ComposeError('ERR_FS_OPTIONS', `${what}: ${field} ${JSON.stringify(v)} is not a UUID`, { [field]: v });
  }
  return v.toLowerCase();
}

interface Ext4Needs {
  /** Data blocks the content needs (files, directories beyond the root's first block, long symlinks, extent index blocks). */
  blocks: number;
  /** Inodes beyond the reserved ones and lost+found. */
  inodes: number;
}

/** What the tree needs, estimated from above the way libext2fs allocates. */
export function ext4Needs(tree: TreeEntry[]): Ext4Needs {
  let blocks = 0;
  let inodes = 0;
  const seen = new Set<string>();
  const dirBytes = new Map<string, number>();
  for (const e of tree) {
    if (e.path !== '') {
      const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
      dirBytes.set(parent, (dirBytes.get(parent) ?? 24) + 8 + ceilDiv(Buffer.byteLength(e.name), 4) * 4);
    }
    if (e.kind === 'dir') dirBytes.set(e.path, dirBytes.get(e.path) ?? 24);
    if (seen.has(e.inode) || e.path === '') continue;
    seen.add(e.inode);
    inodes++;
    if (e.kind === 'file') {
      const b = ceilDiv(e.size, BLOCK);
      const extents = ceilDiv(b, 32768);
      blocks += b + (extents > 4 ? ceilDiv(extents, 340) : 0);
    } else if (e.kind === 'symlink' && e.size >= 60) blocks += 1;
  }
  for (const [path, bytes] of dirBytes) {
    // 12 bytes of each block hold the checksum tail; a directory over one block gets an htree
    // whose leaves split half full, plus its root block.
    const b = ceilDiv(bytes, BLOCK - 12);
    const total = b > 1 ? 2 * b + 1 : 1;
    blocks += path === '' ? total - 1 : total;
  }
  return { blocks, inodes };
}

/** ERR_FS_TOO_SMALL with the smallest size (in MiB) whose empty filesystem holds `need`. */
async function tooSmall(what: string, opts: Ext4Options, need: Ext4Needs, journal: boolean, reserved: number, stderr?: string): Promise<ComposeError> {
  let needed: number | undefined;
  try {
    needed = await smallestExt4(what, need, opts, journal, reserved);
  } catch (e) {
    // No size at all is the stronger refusal; a probe that failed only loses the hint.
    if (e instanceof ComposeError && e.code === 'ERR_FS_NO_FIT') throw e;
    needed = undefined;
  }
  const content = `${need.blocks} blocks of 4 KiB and ${need.inodes} inodes`;
  const hint = needed !== undefined ? `; it needs about ${needed} bytes (${Math.ceil(needed / MiB)} MiB)` : '';
  const tool = stderr ? ` (mkfs.ext4: ${stderr.trim().split('\n').pop()})` : '';
  return new ComposeError('ERR_FS_TOO_SMALL', `${what}: the content (${content}) does not fit in ${opts.size} bytes${hint}${tool}`, {
    structure: opts.name ?? opts.label,
    size: opts.size,
    needed,
    blocks: need.blocks,
    inodes: need.inodes,
  });
}

/** Free blocks and inodes of an empty filesystem of `size` bytes, built with the same options. */
async function emptyCapacity(size: number, opts: Ext4Options, journal: boolean, reserved: number, dir: string): Promise<{ blocks: number; inodes: number } | undefined> {
  const file = join(dir, `probe-${size}.img`);
  const conf = join(dir, 'mke2fs.conf');
  await writeFile(conf, MKE2FS_CONF);
  await createOutput(file, size, 'probe');
  try {
    const args = mkfsArgs({ uuid: opts.uuid, hashSeed: opts.hashSeed, journal, reserved, label: undefined });
    const r = await runTool('mkfs.ext4', [...args, file], { env: { MKE2FS_CONFIG: conf }, check: false });
    if (r.code !== 0 || /too small for a journal/i.test(r.stderr)) return undefined;
    const info = (await runTool('dumpe2fs', ['-h', file])).stdout.toString('utf8');
    const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    return { blocks: num('Free blocks'), inodes: num('Free inodes') };
  } finally {
    await rm(file, { force: true });
  }
}

/** The smallest size whose empty filesystem, built with the same options, holds `need`. */
async function smallestExt4(what: string, need: Ext4Needs, opts: Ext4Options, journal: boolean, reserved: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeimage-ext4-probe-'));
  try {
    const lo = Math.max(1, Math.floor(opts.size / MiB));
    return await smallestFit({
      what,
      filesystem: 'ext4',
      structure: opts.name ?? opts.label,
      payload: need.blocks * BLOCK,
      tooSmall: opts.size,
      guess: Math.max(lo * 2, ceilDiv(need.blocks * BLOCK + (need.inodes + FIRST_INO) * INODE_RATIO, MiB)),
      // 16 TiB: the largest ext4 of 4 KiB blocks without the 64bit block numbers of huge disks.
      limit: 1 << 24,
      fits: async (mib) => {
        const c = await emptyCapacity(mib * MiB, opts, journal, reserved, dir);
        return c !== undefined && c.blocks >= need.blocks && c.inodes >= need.inodes;
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
