import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, readFileSync, truncateSync, constants as fsc, mkdirSync, openSync, readSync, realpathSync, renameSync, rmSync, statfsSync, writeFileSync, ftruncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readRegularFile } from '@edgeimage/assertions';
import { UBOOT_FLASH_BANK_SIZE } from '../verified/uboot/index.js';
import { ComposeError } from '../errors.js';
import { buildExt4 } from '../fs/ext4.js';
import { buildVfat } from '../fs/vfat.js';
import { copyIntoImage, writeAt } from '../fs/copy.js';
import { runTool } from '../fs/tool.js';
import { writeGpt, writeMbr } from '../partition/index.js';
import { digestImage, MAPPED_DIGEST, type DigestMode } from './digest.js';
import { manifestOf, type ImageManifest } from './manifest.js';
import { SECTOR, type ImagePlan, type PlannedStructure, type PlanWorkspace, type VolumePlan } from './plan.js';

export type ComposeEvent = { kind: 'stage'; what: string } | { kind: 'structure'; name: string; bytes: number } | { kind: 'output'; path: string };

export interface WriteOptions {
  onEvent?: (e: ComposeEvent) => void;
  /**
   * The digests of every image and of every filesystem in it (default `mapped`, as bmaptool reads
   * an image: hashing every byte of a mostly empty image cost as much as building it; `full` when
   * `sha256sum` must agree): see {@link DigestMode}. Compressed outputs always get the sha256 of
   * every byte of their file. With `none` the manifest and the result carry none.
   */
  digests?: DigestMode;
  /** Only tests set it: runs before each write into the image, to inject a full disk. */
  beforeImageWrite?: (offset: number) => void;
  /** Temp files of builds in progress (removed on Ctrl-C by the CLI). */
  inProgress: Set<string>;
}

export interface ComposeResult {
  /** `digest` is present when `sha256` is not of every byte: it names what it is of ({@link MAPPED_DIGEST}). */
  images: { volume: string; path: string; size: number; sha256?: string; digest?: typeof MAPPED_DIGEST }[];
  manifestPath: string;
  manifest: ImageManifest;
}

/** Whether the filesystem holding `dir` has no block left for an unprivileged writer. */
function noBlockLeft(dir: string): boolean {
  try {
    return statfsSync(dir).bavail === 0;
  } catch {
    return false;
  }
}

/**
 * Writes a plan: each image is a sparse file under a temporary name, its filesystems built in
 * their place in it (never copied, so no hole is read back), then raw content, the partition
 * table, the other outputs and the manifest; everything is renamed into place together at the
 * end (the images last), so a failure or Ctrl-C leaves none of them.
 */
export async function writePlan(plan: ImagePlan, ws: PlanWorkspace, opts: WriteOptions): Promise<ComposeResult> {
  const emit = opts.onEvent ?? (() => {});
  const digests = opts.digests ?? 'mapped';
  const temps: string[] = [];
  const renames: { tmp: string; final: string }[] = [];
  const images: { tmp: string; final: string }[] = [];
  const results: (ComposeResult['images'][number] & { manifestPath: string; manifest: ImageManifest; ab: boolean })[] = [];
  const tempFor = (final: string) => {
    const tmp = join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    temps.push(tmp, `${tmp}.xz-part`);
    opts.inProgress.add(tmp);
    return tmp;
  };
  try {
    mkdirSync(plan.outputDir, { recursive: true });
    for (const v of plan.volumes) {
      const [raw, ...others] = v.outputs;
      const image = tempFor(raw!.path);
      const fd = openSync(image, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o644);
      try {
        ftruncateSync(fd, v.size);
      } finally {
        closeSync(fd);
      }
      const writeInto = async (offset: number, write: () => Promise<unknown>) => {
        try {
          opts.beforeImageWrite?.(offset);
          await write();
        } catch (e) {
          // The filesystem tools write into the image themselves: their failure on a full disk
          // reaches here as their message (strerror), never as an errno.
          // Some say only that a write failed (mkfs.vfat: "failed whilst writing FAT"): a tool that
          // failed while the output's filesystem has no block left ran out of space.
          const toolSaid = e instanceof ComposeError && (/No space left on device|Disk quota exceeded|File too large/i.test(`${e.message}\n${String(e.context.output ?? '')}`) || (e.code === 'ERR_TOOL_FAILED' && noBlockLeft(plan.outputDir)));
          const code = toolSaid ? 'ENOSPC' : (e as NodeJS.ErrnoException).code;
          if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
            throw new ComposeError('ERR_DISK_FULL', `no space left on the device of ${plan.outputDir} while writing the image (${v.size} bytes, sparse; ${code}); nothing was kept`, { dir: plan.outputDir, code });
          }
          throw e;
        }
      };

      // The filesystems, in parallel, each in its own range of the fresh (zero-reading) image.
      const trees = ws.trees.get(v)!;
      // Every build is waited for before a failure is thrown: cleaning up while another mkfs still
      // runs let mke2fs create the removed temporary image anew (a failed build left it behind).
      const built = await Promise.allSettled(
        v.structures.map(async (s, i) => {
          if (!s.fs) return;
          await writeInto(s.offset, () => buildFilesystem(s, trees[i]!, image, new Date(plan['file-timestamp'])));
          emit({ kind: 'structure', name: s.name ?? `#${i}`, bytes: s.size });
        }),
      );
      const failed = built.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const gadgetRoot = realpathSync(ws.gadgetDir);
      for (const s of v.structures) {
        for (const c of s.images) await writeInto(c.offset, () => writeAt(image, c.offset, readPlannedImage(gadgetRoot, c)));
      }
      await writeInto(0, async () => writeTable(image, v));
      for (const s of v.structures) {
        if (!s.offsetWrite) continue;
        const lba = Buffer.alloc(4);
        lba.writeUInt32LE(s.offsetWrite.lba);
        await writeInto(s.offsetWrite.at, () => writeAt(image, s.offsetWrite!.at, lba));
      }

      const sums = { structures: new Map<number, string>(), outputs: new Map<string, string>() };
      let imageSha: string | undefined;
      if (digests !== 'none') {
        const withFs = v.structures.flatMap((s, i) => (s.fs ? [i] : []));
        const d = await digestImage(image, v.size, withFs.map((i) => [v.structures[i]!.offset, v.structures[i]!.offset + v.structures[i]!.size]), digests);
        imageSha = d.image;
        sums.outputs.set(raw!.path, d.image);
        for (const [k, i] of withFs.entries()) sums.structures.set(i, d.parts[k]!);
      }
      let manifestPath = '';
      for (const o of others) {
        const tmp = tempFor(o.path);
        renames.push({ tmp, final: o.path });
        if (o.format === 'bmap') await runTool('bmaptool', ['create', '-o', tmp, image]);
        else if (o.format === 'qcow2') await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', image, tmp]);
        else if (o.format === 'zstd') await runTool('zstd', ['-q', '-12', '-T0', '-f', '-o', tmp, image]);
        else if (o.format === 'xz') {
          // xz writes IMAGE + suffix next to its input, streaming (no copy of the output in memory).
          await runTool('xz', ['-q', '-T0', '-6', '-k', '-f', '-S', '.xz-part', image]);
          renameSync(`${image}.xz-part`, tmp);
        } else if (o.format === 'uboot-dtb') {
          copyFileSync(ws.factory.get(o.path)!, tmp);
        } else if (o.format === 'uboot-env') {
          // A whole flash bank, as QEMU's pflash wants it: the environment and script, then sparse zeros.
          writeFileSync(tmp, readFileSync(ws.factory.get(o.path)!), { mode: 0o644 });
          truncateSync(tmp, UBOOT_FLASH_BANK_SIZE);
        } else if (o.format === 'manifest') {
          writeFileSync(tmp, `${JSON.stringify(manifestOf(plan, v, sums, digests === 'mapped'), null, 2)}\n`, { mode: 0o644 });
          manifestPath = o.path;
        }
        if ((o.format === 'zstd' || o.format === 'xz') && digests !== 'none') sums.outputs.set(o.path, await sha256File(tmp));
      }
      images.push({ tmp: image, final: raw!.path });
      results.push({ volume: v.volume, path: raw!.path, size: v.size, ...(imageSha ? { sha256: imageSha } : {}), ...(imageSha && digests === 'mapped' ? { digest: MAPPED_DIGEST } : {}), manifestPath, manifest: manifestOf(plan, v, sums, digests === 'mapped'), ab: v.ab });
    }

    for (const p of [...renames, ...images]) {
      renameSync(p.tmp, p.final);
      opts.inProgress.delete(p.tmp);
    }
    temps.length = 0;
    for (const r of results) emit({ kind: 'output', path: r.path });
    const ab = results.find((r) => r.ab)!;
    return { images: results.map(({ volume, path, size, sha256, digest }) => ({ volume, path, size, ...(sha256 ? { sha256 } : {}), ...(digest ? { digest } : {}) })), manifestPath: ab.manifestPath, manifest: ab.manifest };
  } finally {
    for (const p of temps) {
      rmSync(p, { force: true });
      opts.inProgress.delete(p);
    }
  }
}

/** Builds a structure's filesystem from its staged tree, in place in the image. */
async function buildFilesystem(s: PlannedStructure, tree: string, image: string, timestamp: Date): Promise<void> {
  const name = s.name ?? s.role ?? `structure at ${s.offset}`;
  const fs = s.fs!;
  // The unix I/O manager of e2fsprogs and mtools read `?` and `@@` in a file name as an offset:
  // an output folder with either builds in a file of its own, copied in.
  const inPlace = !/[?@]/.test(image) && (fs.kind === 'ext4' || s.size % 1024 === 0);
  const out = inPlace ? image : `${image}.${s.offset}.fs`;
  const at = inPlace ? { offset: s.offset } : {};
  try {
    if (fs.kind === 'ext4') {
      await buildExt4({ sourceDir: tree, output: out, ...at, size: s.size, label: s.label, name, uuid: fs.uuid, hashSeed: fs.hashSeed, timestamp, journal: fs.journal });
    } else {
      await buildVfat({ sourceDir: tree, output: out, ...at, size: s.size, label: s.label, name, volumeId: fs.volumeId, fatBits: fs.fatBits, timestamp, hiddenSectors: fs.hiddenSectors });
    }
    if (!inPlace) await copyIntoImage(image, s.offset, out, undefined, { targetIsZero: true });
  } finally {
    if (!inPlace) rmSync(out, { force: true });
  }
}

/**
 * A gadget's raw image, read once, exactly the size it was planned at: the plan placed it (and
 * checked it against its neighbours) by the size it had then, so a file that has grown, shrunk or
 * stopped being a regular file since (a symlink swapped in) is refused rather than written over
 * what follows it.
 */
function readPlannedImage(gadgetRoot: string, c: PlannedStructure['images'][number]): Buffer {
  const file = join(gadgetRoot, c.source);
  const changed = (found: string) =>
    new ComposeError('ERR_GADGET_CHANGED', `${file}: the gadget's raw image changed while the image was built: planned as a regular file of ${c.size} bytes, found ${found}; nothing was written`, { file, planned: c.size });
  const bytes = readRegularFile(file, c.size, (p) =>
    changed(p.kind === 'link' ? 'a symbolic link' : p.kind === 'not-regular' ? 'something that is not a regular file' : p.kind === 'too-large' ? `${p.size} bytes` : `nothing readable (${p.kind === 'unopenable' ? p.code : 'ENOENT'})`),
  );
  if (bytes.length !== c.size) throw changed(`${bytes.length} bytes`);
  return bytes;
}

/** The partition table, from the plan's GUIDs and types. */
function writeTable(image: string, v: VolumePlan): void {
  const parts = v.structures.filter((s) => s.index !== undefined).sort((a, b) => a.index! - b.index!);
  if (v.schema === 'mbr') {
    writeMbr(image, { diskId: v.diskId!, partitions: parts.map((s) => ({ start: s.offset, size: s.size, type: s.mbrType!, bootable: s.role === 'system-boot' })) });
    return;
  }
  writeGpt(image, {
    diskSize: v.size,
    diskGuid: v.diskGuid!,
    partitions: parts.map((s) => ({ firstLba: s.offset / SECTOR, lastLba: (s.offset + s.size) / SECTOR - 1, typeGuid: s.gptType!, partGuid: s.guid!, name: s.name ?? '' })),
  });
}

const CHUNK = 4 << 20;

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
