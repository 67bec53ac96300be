import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, realpathSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { EdgeimageError } from '@edgeimage/assertions';
import { findRolePartition, readGeometry, readPartitionTable, runTool, sniffFilesystem, toolEnv, type PartitionInfo, type PartitionTable } from '@edgeimage/composer';

/**
 * A tamper operation refused or failed. Nothing is written then: the copy is removed, the output
 * never appears.
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_TAMPER_OUTPUT` | the output is the image itself, or exists already (`context.output`) |
 * | `ERR_TAMPER_IMAGE` | the image does not exist or has no partition table |
 * | `ERR_TAMPER_PATH` | a file path that is not a plain absolute path (`..`, `.`, a character outside `[A-Za-z0-9._+@=,~-]`, too long) |
 * | `ERR_TAMPER_PARTITION` | no partition of that name (`context.partitions` lists those present) |
 * | `ERR_TAMPER_FILESYSTEM` | the partition's filesystem cannot take the operation, or is not consistent after it |
 * | `ERR_TAMPER_FILE` | the file is not in the partition, or is not a regular file |
 * | `ERR_TAMPER_OFFSET` | the byte asked for is outside the file, or lies in a hole (no block on the disk) |
 * | `ERR_USAGE` | an operation's fields are malformed (`xor`, `at`) |
 */
export class TamperError extends EdgeimageError {
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}

/** Which byte of a file: its first, the one at half its size (rounded down), its last, or a 0-based offset. */
export type ByteAt = 'first' | 'middle' | 'last' | number;

/** Flips bits of one byte of a file, where the file's data lies on the disk (ext4 or vfat). */
export interface FlipByte {
  op: 'flip-byte';
  /** The GPT partition name (or on MBR the filesystem label): `system-a`, `system-boot`. */
  partition: string;
  /** An absolute path inside the partition: `/bundles/base_1.snap`, `/EFI/BOOT/BOOTX64.EFI`. */
  file: string;
  /** Default `middle`. */
  at?: ByteAt;
  /** The bits flipped, 1-255 (default 0xff: every bit, so the byte always changes). */
  xor?: number;
}

/** Gives a file of an ext4 partition new content (its mode and owner kept). */
export interface ReplaceFile {
  op: 'replace-file';
  partition: string;
  file: string;
  content: Uint8Array;
}

export type TamperOp = FlipByte | ReplaceFile;

export interface ByteChange {
  op: 'flip-byte';
  partition: string;
  filesystem: 'ext4' | 'vfat';
  file: string;
  /** The byte's offset in the file. */
  fileOffset: number;
  /** The byte's offset in the disk image. */
  offset: number;
  old: number;
  new: number;
}

export interface FileReplacement {
  op: 'replace-file';
  partition: string;
  filesystem: 'ext4';
  file: string;
  oldSize: number;
  newSize: number;
  oldSha256: string;
  newSha256: string;
  /** `in-place`: same size, the new bytes written over the file's blocks; `rewritten`: removed and written anew (debugfs). */
  how: 'in-place' | 'rewritten';
}

export type TamperChange = ByteChange | FileReplacement;

export interface TamperResult {
  image: string;
  output: string;
  /** One per operation, in order. */
  changes: TamperChange[];
}

const MAX_PATH = 1024;
const MAX_COMPONENT = 255;
const COMPONENT = /^[A-Za-z0-9._+@=,~-]{1,255}$/;
/** Files read whole to learn their size or bytes (FAT files, a replaced file, new content) stay below this. */
export const TAMPER_MAX_CONTENT = 256 * 2 ** 20;
const MAX_READ = TAMPER_MAX_CONTENT;

const cp = (args: readonly string[]) => promisify(execFile)('cp', [...args], { env: toolEnv() });

/** An absolute path without `.`/`..` and only characters the tools' command lines take unquoted. */
export function checkTamperPath(file: string): string {
  const bad = (why: string) => new TamperError('ERR_TAMPER_PATH', `file ${JSON.stringify(file.length > 100 ? `${file.slice(0, 100)}…` : file)}: ${why}`, { file: file.slice(0, MAX_PATH) });
  if (typeof file !== 'string' || file.length === 0) throw bad('expected an absolute path inside the partition, such as /bundles/base_1.snap');
  if (file.length > MAX_PATH) throw bad(`longer than ${MAX_PATH} characters`);
  if (!file.startsWith('/')) throw bad('expected an absolute path inside the partition (starting with /)');
  const parts = file.slice(1).split('/');
  for (const p of parts) {
    if (p === '..' || p === '.') throw bad(`"${p}" is not allowed: name the file by its plain path`);
    if (p === '') throw bad('an empty path component (// or a trailing /)');
    if (p.length > MAX_COMPONENT) throw bad(`a component longer than ${MAX_COMPONENT} characters`);
    if (!COMPONENT.test(p)) {
      const c = [...p].find((ch) => !/[A-Za-z0-9._+@=,~-]/.test(ch))!;
      throw bad(`the character ${JSON.stringify(c)} is not allowed (only A-Z a-z 0-9 . _ + @ = , ~ -)`);
    }
  }
  return file;
}

function checkOp(op: TamperOp): void {
  if (typeof op.partition !== 'string' || !/^[A-Za-z0-9._-]{1,72}$/.test(op.partition)) {
    throw new TamperError('ERR_TAMPER_PARTITION', `partition ${JSON.stringify(String(op.partition).slice(0, 80))}: expected a partition name such as system-a (letters, digits, . _ -)`, { partition: String(op.partition).slice(0, 80) });
  }
  checkTamperPath(op.file);
  if (op.op === 'flip-byte') {
    if (op.xor !== undefined && !(Number.isInteger(op.xor) && op.xor >= 1 && op.xor <= 255)) throw new TamperError('ERR_USAGE', `xor: expected the bits to flip, 1-255, found ${op.xor}`, { xor: op.xor });
    const at = op.at;
    if (at !== undefined && at !== 'first' && at !== 'middle' && at !== 'last' && !(Number.isSafeInteger(at) && at >= 0)) throw new TamperError('ERR_USAGE', `at: expected first, middle, last or an offset ≥ 0, found ${String(at)}`, { at });
  } else if (op.op === 'replace-file') {
    if (!(op.content instanceof Uint8Array) || op.content.length > MAX_READ) throw new TamperError('ERR_USAGE', `content of ${op.file}: expected bytes, at most ${MAX_READ}`, { file: op.file });
  } else {
    throw new TamperError('ERR_USAGE', `unknown tamper operation ${JSON.stringify((op as { op: unknown }).op)}: expected flip-byte or replace-file`);
  }
}

/**
 * Writes a tampered copy of `image` to `output`: a sparse copy (the image itself is only read),
 * each operation applied to it in order, renamed into place once all succeeded. Returns what
 * changed, byte by byte, for the report.
 *
 * ```ts
 * const r = await tamperImage('pc.img', 'pc.base-a.img', [{ op: 'flip-byte', partition: 'system-a', file: '/bundles/base_1.snap' }]);
 * // r.changes[0]: { offset: 123456789, old: 0x5d, new: 0xa2, fileOffset: 4194304, … }
 * ```
 */
export async function tamperImage(image: string, output: string, ops: readonly TamperOp[]): Promise<TamperResult> {
  for (const op of ops) checkOp(op);
  if (!existsSync(image)) throw new TamperError('ERR_TAMPER_IMAGE', `image ${image} does not exist`, { image });
  if (existsSync(output)) {
    const same = realpathSync(output) === realpathSync(image);
    throw new TamperError('ERR_TAMPER_OUTPUT', same ? `the output ${output} is the image itself: tampering works on a copy only` : `the output ${output} exists already: give a new path`, { output, image });
  }
  let table: PartitionTable;
  try {
    table = readPartitionTable(image);
  } catch (e) {
    throw new TamperError('ERR_TAMPER_IMAGE', `${image}: ${(e as Error).message}`, { image });
  }
  const parts = ops.map((op) => partitionOf(image, table, op.partition));
  const tmp = join(dirname(resolve(output)), `.${basename(output)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await cp(['--sparse=always', image, tmp]);
    const changes: TamperChange[] = [];
    for (const [i, op] of ops.entries()) {
      const p = parts[i]!;
      changes.push(op.op === 'flip-byte' ? await flipByte(tmp, p, op) : await replaceFile(tmp, p, op));
    }
    renameSync(tmp, output);
    return { image, output, changes };
  } finally {
    rmSync(tmp, { force: true });
  }
}

interface Part {
  info: PartitionInfo;
  name: string;
  filesystem: 'ext4' | 'vfat';
}

function partitionOf(image: string, table: PartitionTable, name: string): Part {
  const info = findRolePartition(image, table, name);
  if (!info) {
    const names = table.partitions.map((p) => (table.kind === 'gpt' ? p.name : sniffFilesystem(image, p.start).label) ?? `#${p.index}`);
    throw new TamperError('ERR_TAMPER_PARTITION', `${image} has no partition ${name} (${table.kind === 'gpt' ? 'GPT names' : 'filesystem labels'}: ${names.join(', ') || 'none'})`, { image, partition: name, partitions: names });
  }
  const fs = sniffFilesystem(image, info.start).type;
  if (fs !== 'ext4' && fs !== 'vfat') throw new TamperError('ERR_TAMPER_FILESYSTEM', `partition ${name} of ${image} holds ${fs === 'unknown' ? 'no filesystem edgeimage knows' : fs}: files can be changed in ext4 and vfat partitions`, { image, partition: name, filesystem: fs });
  return { info, name, filesystem: fs };
}

function byteOffset(at: ByteAt | undefined, size: number, what: string): number {
  if (size === 0) throw new TamperError('ERR_TAMPER_OFFSET', `${what} is empty: it has no byte to change`, { size });
  const off = at === 'first' ? 0 : at === 'last' ? size - 1 : at === undefined || at === 'middle' ? Math.floor(size / 2) : at;
  if (off >= size) throw new TamperError('ERR_TAMPER_OFFSET', `${what} is ${size} bytes: byte ${off} is past its end`, { size, at: off });
  return off;
}

function readByte(file: string, offset: number): number {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, offset) !== 1) throw new TamperError('ERR_TAMPER_FILESYSTEM', `${file}: byte ${offset} is past the end of the image`, { offset });
    return b[0]!;
  } finally {
    closeSync(fd);
  }
}

function writeBytes(file: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

async function flipByte(disk: string, p: Part, op: FlipByte): Promise<ByteChange> {
  const where = `${op.file} in ${p.name}`;
  let fileOffset: number;
  let offset: number;
  if (p.filesystem === 'ext4') {
    const st = await ext4Stat(disk, p, op.file);
    fileOffset = byteOffset(op.at, st.size, where);
    const bs = ext4BlockSize(disk, p);
    const block = (await ext4Bmap(disk, p, op.file, [Math.floor(fileOffset / bs)]))[0]!;
    if (block === 0) throw new TamperError('ERR_TAMPER_OFFSET', `byte ${fileOffset} of ${where} lies in a hole (it reads zero and has no block on the disk): pick another byte`, { file: op.file, at: fileOffset });
    offset = p.info.start + block * bs + (fileOffset % bs);
  } else {
    const content = await fatRead(disk, p, op.file);
    fileOffset = byteOffset(op.at, content.length, where);
    // the composer's reader of the boot sector; checked below against the byte mtools reads
    const fat = await readGeometry(disk, p.info.start);
    if (fat.clusterSize === 0) throw new TamperError('ERR_TAMPER_FILESYSTEM', `partition ${p.name}: not a FAT boot sector`, { partition: p.name });
    const clusters = await fatClusters(disk, p, op.file);
    const cluster = clusters[Math.floor(fileOffset / fat.clusterSize)];
    if (cluster === undefined) throw new TamperError('ERR_TAMPER_FILESYSTEM', `${where}: mshowfat lists ${clusters.length} clusters for ${content.length} bytes`, { file: op.file });
    offset = p.info.start + fat.dataStart + (cluster - 2) * fat.clusterSize + (fileOffset % fat.clusterSize);
    // The layout computed here must agree with what mtools reads: else the byte would be another file's.
    if (readByte(disk, offset) !== content[fileOffset]) throw new TamperError('ERR_TAMPER_FILESYSTEM', `${where}: byte ${fileOffset} is not where the FAT says (offset ${offset} of the image)`, { file: op.file, offset });
  }
  const old = readByte(disk, offset);
  const now = old ^ (op.xor ?? 0xff);
  writeBytes(disk, offset, Uint8Array.of(now));
  return { op: 'flip-byte', partition: p.name, filesystem: p.filesystem, file: op.file, fileOffset, offset, old, new: now };
}

async function replaceFile(disk: string, p: Part, op: ReplaceFile): Promise<FileReplacement> {
  if (p.filesystem !== 'ext4') throw new TamperError('ERR_TAMPER_FILESYSTEM', `replacing ${op.file}: partition ${p.name} is ${p.filesystem}; files are replaced in ext4 partitions (flip a byte of a vfat file instead)`, { partition: p.name, filesystem: p.filesystem });
  const st = await ext4Stat(disk, p, op.file);
  const old = await ext4Read(disk, p, op.file, st.size);
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const bs = ext4BlockSize(disk, p);
  const count = Math.ceil(st.size / bs);
  let how: FileReplacement['how'] = 'rewritten';
  if (op.content.length === st.size && count <= 65_536) {
    const blocks = await ext4Bmap(disk, p, op.file, Array.from({ length: count }, (_, i) => i));
    if (blocks.every((b) => b > 0)) {
      blocks.forEach((b, i) => writeBytes(disk, p.info.start + b * bs, op.content.subarray(i * bs, Math.min((i + 1) * bs, st.size))));
      how = 'in-place';
    }
  }
  if (how === 'rewritten') {
    const work = mkdtempSync(join(tmpdir(), 'edgeimage-tamper-'));
    try {
      const local = join(work, 'content');
      writeFileSync(local, op.content);
      const script = [`rm "${op.file}"`, `write "${local}" "${op.file}"`, `sif "${op.file}" mode 0${(st.mode | 0o100000).toString(8)}`, `sif "${op.file}" uid ${st.uid}`, `sif "${op.file}" gid ${st.gid}`, ''].join('\n');
      writeFileSync(join(work, 'cmds'), script);
      const r = await runTool('debugfs', ['-w', '-f', join(work, 'cmds'), fsSpec(disk, p)], { check: false });
      const errors = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
      if (r.code !== 0 || errors.length) throw new TamperError('ERR_TAMPER_FILESYSTEM', `debugfs could not replace ${op.file} in ${p.name}: ${errors.slice(-3).join('; ') || `exit ${r.code}`}`, { file: op.file, partition: p.name });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const check = await runTool('e2fsck', ['-fn', fsSpec(disk, p)], { check: false });
  if (check.code !== 0) throw new TamperError('ERR_TAMPER_FILESYSTEM', `after replacing ${op.file}, e2fsck finds ${p.name} inconsistent (exit ${check.code}): ${check.stdout.toString('utf8').trim().split('\n').slice(-3).join('; ')}`, { file: op.file, partition: p.name });
  return { op: 'replace-file', partition: p.name, filesystem: 'ext4', file: op.file, oldSize: st.size, newSize: op.content.length, oldSha256: sha(old), newSha256: sha(op.content), how };
}

/** debugfs and e2fsck open a filesystem inside the image through the unix I/O manager's offset option. */
const fsSpec = (disk: string, p: Part) => `${disk}?offset=${p.info.start}`;

async function debugfs(disk: string, p: Part, command: string, file: string): Promise<string> {
  const r = await runTool('debugfs', ['-R', command, fsSpec(disk, p)], { check: false });
  if (/File not found by ext2_lookup|not found by ext2_lookup/.test(r.stderr)) throw new TamperError('ERR_TAMPER_FILE', `${file} is not in partition ${p.name} (ext4)`, { file, partition: p.name });
  if (r.code !== 0) throw new TamperError('ERR_TAMPER_FILESYSTEM', `debugfs ${command} on ${p.name}: ${r.stderr.trim().split('\n').slice(-2).join('; ')}`, { file, partition: p.name });
  return r.stdout.toString('utf8');
}

async function ext4Stat(disk: string, p: Part, file: string): Promise<{ size: number; mode: number; uid: number; gid: number }> {
  const out = (await debugfs(disk, p, `stat "${file}"`, file)).slice(0, 4096);
  const type = /Type: (\S+)/.exec(out)?.[1];
  if (type !== 'regular') throw new TamperError('ERR_TAMPER_FILE', `${file} in ${p.name} is ${type ? `a ${type}` : 'unreadable'}, not a regular file`, { file, partition: p.name, type });
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  const st = { size: num(/\bSize: (\d{1,15})\b/), mode: parseInt(/\bMode: +(0?[0-7]{1,6})\b/.exec(out)?.[1] ?? 'x', 8), uid: num(/\bUser: +(\d{1,10})\b/), gid: num(/\bGroup: +(\d{1,10})\b/) };
  if (Object.values(st).some((v) => !Number.isSafeInteger(v))) throw new TamperError('ERR_TAMPER_FILESYSTEM', `debugfs stat ${file} in ${p.name}: cannot read its size, mode and owner`, { file });
  return st;
}

/** The physical block of each logical block of `file` (0: a hole), one debugfs run for all. */
async function ext4Bmap(disk: string, p: Part, file: string, logical: readonly number[]): Promise<number[]> {
  const work = mkdtempSync(join(tmpdir(), 'edgeimage-tamper-'));
  try {
    writeFileSync(join(work, 'cmds'), logical.map((n) => `bmap "${file}" ${n}\n`).join(''));
    const r = await runTool('debugfs', ['-f', join(work, 'cmds'), fsSpec(disk, p)], { check: false });
    if (/not found by ext2_lookup/.test(r.stderr)) throw new TamperError('ERR_TAMPER_FILE', `${file} is not in partition ${p.name} (ext4)`, { file, partition: p.name });
    // debugfs echoes each command ("debugfs: bmap …"), then prints the block number
    const blocks = r.stdout.toString('utf8').split('\n').filter((l) => /^\d{1,20}$/.test(l.trim())).map(Number);
    if (r.code !== 0 || blocks.length !== logical.length) throw new TamperError('ERR_TAMPER_FILESYSTEM', `debugfs bmap ${file} in ${p.name}: expected ${logical.length} block numbers, found ${blocks.length} (${r.stderr.trim().split('\n').slice(-2).join('; ')})`, { file, partition: p.name });
    return blocks;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function ext4Read(disk: string, p: Part, file: string, size: number): Promise<Buffer> {
  if (size > MAX_READ) throw new TamperError('ERR_TAMPER_FILE', `${file} in ${p.name} is ${size} bytes: replacing reads at most ${MAX_READ}`, { file, size });
  const r = await runTool('debugfs', ['-R', `cat "${file}"`, fsSpec(disk, p)], { check: false });
  if (r.code !== 0 || r.stdout.length !== size) throw new TamperError('ERR_TAMPER_FILESYSTEM', `debugfs cat ${file} in ${p.name}: read ${r.stdout.length} of ${size} bytes`, { file });
  return r.stdout;
}

/** The filesystem's block size, from its superblock (1024 << s_log_block_size). */
function ext4BlockSize(disk: string, p: Part): number {
  const fd = openSync(disk, 'r');
  try {
    const sb = Buffer.alloc(64);
    readSync(fd, sb, 0, 64, p.info.start + 1024);
    const log = sb.readUInt32LE(24);
    if (sb.readUInt16LE(56) !== 0xef53 || log > 6) throw new TamperError('ERR_TAMPER_FILESYSTEM', `partition ${p.name}: no ext4 superblock`, { partition: p.name });
    return 1024 << log;
  } finally {
    closeSync(fd);
  }
}

const mtoolsImage = (disk: string, p: Part) => {
  if (disk.includes('@@')) throw new TamperError('ERR_TAMPER_OUTPUT', `${disk}: mtools cannot address a path containing "@@"`, { output: disk });
  return `${disk}@@${p.info.start}`;
};

async function fatRead(disk: string, p: Part, file: string): Promise<Buffer> {
  const r = await runTool('mcopy', ['-n', '-i', mtoolsImage(disk, p), `::${file}`, '-'], { check: false });
  if (r.code !== 0) {
    if (/not found/i.test(r.stderr)) throw new TamperError('ERR_TAMPER_FILE', `${file} is not in partition ${p.name} (vfat)`, { file, partition: p.name });
    throw new TamperError('ERR_TAMPER_FILE', `${file} in ${p.name} (vfat) cannot be read: ${r.stderr.trim().split('\n').slice(-2).join('; ')}`, { file, partition: p.name });
  }
  return r.stdout;
}

/** The clusters of a FAT file in order, from mtools' `mshowfat` (`::/F <4-13> <20-21>`). */
async function fatClusters(disk: string, p: Part, file: string): Promise<number[]> {
  const r = await runTool('mshowfat', ['-i', mtoolsImage(disk, p), `::${file}`], { check: false });
  if (r.code !== 0) throw new TamperError('ERR_TAMPER_FILE', `${file} in ${p.name} (vfat): mshowfat: ${r.stderr.trim()}`, { file });
  const clusters: number[] = [];
  for (const m of r.stdout.toString('utf8').slice(0, 1 << 20).matchAll(/<(\d{1,10})(?:-(\d{1,10}))?>/g)) {
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || clusters.length + (b - a + 1) > MAX_READ) throw new TamperError('ERR_TAMPER_FILESYSTEM', `${file} in ${p.name}: mshowfat lists a cluster range ${m[0]} edgeimage does not take`, { file });
    for (let c = a; c <= b; c++) clusters.push(c);
  }
  return clusters;
}

