import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, closeSync, constants as fsc, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, ftruncateSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type Assertion, signedWithTestKeys } from '@edgeimage/assertions';
import { checkABRoles, checkContentPath, layoutContent, layoutVolume, parseGadgetYaml, type LaidOutStructure, type LaidOutVolume } from '@edgeimage/gadget';
import { parseSnapYaml, readSnapYaml, type Resolution } from '@edgeimage/store';
import { initialEnv } from '../bootenv/env.js';
import { writeEnvTree } from '../bootenv/tree.js';
import { ComposeError } from '../errors.js';
import { buildExt4 } from '../fs/ext4.js';
import { buildVfat } from '../fs/vfat.js';
import { copyIntoImage, writeAt } from '../fs/copy.js';
import { checkUnpackedTree, extractBundle, type BundleRef } from '../fs/bundle-files.js';
import { writeGpt, writeMbr } from '../partition/index.js';
import { ImageIdentity } from './identity.js';
import { stageSystem } from './slot.js';
import { applyGradeVariants } from './grade-variant.js';
import { runTool } from '../fs/tool.js';

export type OutputFormat = 'raw' | 'bmap' | 'qcow2';

export interface ComposeOptions {
  resolution: Resolution;
  /** Trust anchors the resolution was verified against (their keys join the device trust store). */
  trusted: Assertion[];
  outputDir: string;
  /** Disk size in bytes; default: exactly what the layout needs. */
  imageSize?: number;
  formats?: OutputFormat[];
  compress?: 'zstd' | 'xz';
  /** Leave slot b empty instead of a copy of slot a. */
  emptyB?: boolean;
  onEvent?: (e: ComposeEvent) => void;
  /** Only tests set it: runs before each write into the image, to inject a full disk. */
  beforeImageWrite?: (offset: number) => void;
}

export type ComposeEvent = { kind: 'stage'; what: string } | { kind: 'structure'; name: string; bytes: number } | { kind: 'output'; path: string };

export interface PartitionManifest {
  name?: string;
  role?: string;
  index?: number;
  offset: number;
  size: number;
  type: string;
  guid?: string;
  filesystem: string;
  label?: string;
  /** sha256 of the structure's bytes as written (filesystem or raw content). */
  sha256?: string;
}

export interface ImageManifest {
  format: 1;
  model: { 'brand-id': string; model: string; revision: number; architecture: string; grade: string; timestamp: string; 'sign-key-sha3-384': string };
  volume: string;
  schema: string;
  size: number;
  'disk-guid'?: string;
  'disk-id'?: string;
  partitions: PartitionManifest[];
  bundles: { name: string; 'snap-id': string; type: string; revision: number; 'sha3-384': string; size: number }[];
  'boot-environment': Record<string, string>;
  'trust-store': string[];
  outputs: { format: string; path: string; sha256?: string }[];
  /** Present when the model verifies only through the example root, whose private key is public. */
  'test-keys'?: true;
}

export interface ComposeResult {
  images: { volume: string; path: string; size: number; sha256: string }[];
  manifestPath: string;
  manifest: ImageManifest;
}

const MiB = 1 << 20;
/** The largest meta/gadget.yaml or meta/snap.yaml read from a gadget. */
const MAX_META_FILE_BYTES = MiB;
const SECTOR = 512;

/** Temp files and folders of builds in progress, removed on exit (Ctrl-C included: see the CLI). */
export const inProgress = new Set<string>();
export function removeInProgress(): void {
  for (const p of inProgress) rmSync(p, { recursive: true, force: true });
  inProgress.clear();
}

/**
 * Composes the A/B disk image of a resolved model: unpacks the gadget, lays out its volume, stages
 * and builds every structure (in parallel), writes them and the partition table into a sparse file
 * under a temporary name, and renames it into place. Rootless: nothing is mounted.
 *
 * ```ts
 * const r = await composeImage({ resolution, trusted, outputDir: 'images' });
 * r.images[0].path; // images/pc-amd64.img
 * ```
 */
export async function composeImage(opts: ComposeOptions): Promise<ComposeResult> {
  const emit = opts.onEvent ?? (() => {});
  const { resolution } = opts;
  const model = resolution.model;
  const modelAssertion = resolution.assertions.find((a) => a.type === 'model')!;
  const id = new ImageIdentity(model.brandId, model.model, model.revision, model.timestamp);
  checkOutputDir(opts.outputDir);

  const work = mkdtempSync(join(tmpdir(), 'edgeimage-compose-'));
  inProgress.add(work);
  const tmpImages: string[] = [];
  const pendingOutputs = new Set<string>();
  try {
    const bundle = (type: string) => resolution.bundles.find((b) => b.type === type);
    const gadget = bundle('gadget');
    const kernel = bundle('kernel');
    if (!gadget) throw new ComposeError('ERR_NO_GADGET', `${model.brandId}/${model.model} has no gadget snap: nothing says how to lay out the disk`);
    if (!kernel) throw new ComposeError('ERR_NO_KERNEL', `${model.brandId}/${model.model} has no kernel snap`);

    // 1. The gadget: its gadget.yaml, its A/B roles, its layout.
    emit({ kind: 'stage', what: `unpacking gadget ${gadget.name}` });
    const gadgetDir = join(work, 'gadget');
    const gadgetRef = { name: gadget.name, revision: gadget.revision, path: gadget.path, type: 'gadget' };
    // Symbolic links may stay in the unpacked gadget: content paths are resolved through them and
    // refused when they leave it; stageContent refuses any left in what it copies.
    await extractBundle(gadgetRef, gadgetDir, { allowSymlinks: true });
    // gadget.yaml and snap.yaml are read from here: a link in meta/ would read (and an error
    // message quote) a file of the build host.
    if (existsSync(join(gadgetDir, 'meta'))) checkUnpackedTree(gadgetRef, join(gadgetDir, 'meta'), gadgetDir);
    // …and parsed in memory: as the CLI's gadget commands and the store's snap.yaml reader, 1 MiB.
    for (const f of ['gadget.yaml', 'snap.yaml']) if (existsSync(join(gadgetDir, 'meta', f))) checkUnpackedTree(gadgetRef, join(gadgetDir, 'meta', f), gadgetDir, MAX_META_FILE_BYTES);
    const gadgetYamlPath = join(gadgetDir, 'meta', 'gadget.yaml');
    if (!existsSync(gadgetYamlPath)) throw new ComposeError('ERR_GADGET_NO_YAML', `gadget ${gadget.name} revision ${gadget.revision} has no meta/gadget.yaml`, { gadget: gadget.name });
    const gadgetFile = `${gadget.name}_${gadget.revision}.snap:meta/gadget.yaml`;
    const info = parseGadgetYaml(readFileSync(gadgetYamlPath, 'utf8'), gadgetFile);
    const abVolume = checkABRoles(info);
    await checkArchitectures(resolution, gadgetDir, model.architecture ?? '');

    // 2. The slot tree (one complete system) and the boot environment, staged once.
    const slotDir = join(work, 'slot');
    const { trustStore } = await stageSystem({ resolution, trusted: opts.trusted, modelAssertion, dir: slotDir, identity: id });
    const env = initialEnv();
    const pending: { tmp: string; final: string }[] = [];
    const finalImages: { tmp: string; final: string }[] = [];
    const results: (ComposeResult['images'][number] & { manifestPath: string; manifest: ImageManifest; isAB: boolean })[] = [];

    for (const volumeName of info.volumeOrder) {
      const volume = info.volumes[volumeName]!;
      // eMMC volumes describe on-board boot partitions, not a disk: no image (as ubuntu-image).
      if (volume.schema === 'emmc') continue;
      const isAB = volume === abVolume;
      const layout = layoutVolume(volume, gadgetFile);
      const needed = layout.minSize;
      const size = (isAB ? opts.imageSize : undefined) ?? align(needed, MiB);
      if (size % SECTOR !== 0) {
        throw new ComposeError('ERR_IMAGE_SIZE', `--image-size ${size} bytes is not a multiple of ${SECTOR} (the sector size)`, { size });
      }
      if (size < needed) {
        throw new ComposeError('ERR_IMAGE_TOO_SMALL', `--image-size ${size} bytes is too small for the layout of volume ${layout.name}: it needs at least ${needed} bytes (${Math.ceil(needed / MiB)} MiB)`, { size, needed });
      }

      // 3. Stage every structure's tree and build it.
      const builds = layout.structures.map(async (s) => {
        const out = join(work, 'fs', layout.name, `${s.yamlIndex}.img`);
        mkdirSync(dirname(out), { recursive: true });
        const stage = join(work, 'stage', layout.name, String(s.yamlIndex));
        mkdirSync(stage, { recursive: true });
        if (s.role === 'system-boot') {
          stageContent(s, gadgetRef, gadgetDir, stage, gadgetFile);
          applyGradeVariants(stage, model.grade);
          writeEnvTree(stage, env);
        } else if (s.role === 'system-a' || (s.role === 'system-b' && !opts.emptyB)) {
          cpSync(slotDir, stage, { recursive: true });
        } else if (s.filesystem !== 'none') {
          stageContent(s, gadgetRef, gadgetDir, stage, gadgetFile);
        }
        if (s.filesystem === 'ext4') {
          await buildExt4({ sourceDir: stage, output: out, size: s.size, label: fsLabel(s), name: structureKey(s), uuid: id.guid('fs', layout.name, structureKey(s)), hashSeed: id.guid('hash-seed', layout.name, structureKey(s)), timestamp: id.timestamp, journal: s.role === 'system-data' });
        } else if (s.filesystem === 'vfat' || s.filesystem === 'vfat-16' || s.filesystem === 'vfat-32') {
          await buildVfat({ sourceDir: stage, output: out, size: s.size, label: s.filesystemLabel, name: structureKey(s), volumeId: id.u32('vfat', layout.name, structureKey(s)), fatBits: s.filesystem === 'vfat-16' ? 16 : s.filesystem === 'vfat-32' ? 32 : undefined, timestamp: id.timestamp, hiddenSectors: s.startOffset / SECTOR });
        } else {
          return { s, file: undefined };
        }
        emit({ kind: 'structure', name: s.name ?? `#${s.yamlIndex}`, bytes: s.size });
        return { s, file: out };
      });
      const built = await Promise.all(builds);

      // 4. The disk: a sparse file under a temporary name, renamed into place at the end.
      mkdirSync(opts.outputDir, { recursive: true });
      const imageName = info.volumeOrder.filter((n) => info.volumes[n]!.schema !== 'emmc').length > 1 ? `${model.model}.${layout.name}.img` : `${model.model}.img`;
      const finalPath = join(opts.outputDir, imageName);
      const image = join(opts.outputDir, `.${imageName}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      tmpImages.push(image);
      inProgress.add(image);
      const fd = openSync(image, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o644);
      try {
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
      const partitions: PartitionManifest[] = [];
      const writeInto = async (offset: number, write: () => Promise<unknown>) => {
        try {
          opts.beforeImageWrite?.(offset);
          await write();
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
            throw new ComposeError('ERR_DISK_FULL', `no space left on the device of ${opts.outputDir} while writing the image (${size} bytes, sparse; ${code}); nothing was kept`, { dir: opts.outputDir, code });
          }
          throw e;
        }
      };
      const digests = new Map<LaidOutStructure, string>();
      for (const { s, file } of built) {
        if (file) {
          const h = createHash('sha256');
          // The image is a fresh sparse file and structures never overlap: the target reads zero.
          await writeInto(s.startOffset, () => copyIntoImage(image, s.startOffset, file, h, { targetIsZero: true }));
          digests.set(s, h.digest('hex'));
        }
        // Raw images (bootloader blobs) at their offsets, checked to fit and not to overlap.
        const images = s.content.flatMap((c) => (c.kind === 'image' ? [stageImagePath(gadgetDir, c.image, s, gadgetFile)] : []));
        if (images.length) {
          const placed = layoutContent(s, images.map((f) => statSync(f).size), gadgetFile);
          for (const [i, p] of placed.entries()) await writeInto(p.startOffset, () => writeAt(image, p.startOffset, readFileSync(images[i]!)));
        }
      }
      let table!: ReturnType<typeof writeTable>;
      await writeInto(0, async () => {
        table = writeTable(image, layout, size, id);
      });
      for (const s of layout.structures) {
        if (!s.offsetWrite) continue;
        const base = s.offsetWrite.relativeTo ? layout.structures.find((x) => x.name === s.offsetWrite!.relativeTo)!.startOffset : 0;
        const lba = Buffer.alloc(4);
        lba.writeUInt32LE(Math.floor(s.startOffset / SECTOR));
        await writeInto(base + s.offsetWrite.offset, () => writeAt(image, base + s.offsetWrite!.offset, lba));
      }
      for (const { s, file } of built) {
        partitions.push({
          name: s.name,
          role: s.role,
          index: s.partitionIndex,
          offset: s.startOffset,
          size: s.size,
          type: s.type,
          guid: table.guids.get(s),
          filesystem: s.filesystem,
          label: fsLabel(s),
          sha256: file ? digests.get(s) : undefined,
        });
      }
      // 5. Other output forms, from the finished temporary image; everything is renamed into place
      // together at the end (the images last), so a failure or Ctrl-C leaves none of them.
      const outputs: ImageManifest['outputs'] = [];
      const imageSha = await sha256File(image);
      outputs.push({ format: 'raw', path: basename(finalPath), sha256: imageSha });
      const derive = async (final: string, make: (tmp: string) => Promise<unknown>) => {
        const tmp = join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
        inProgress.add(tmp);
        pendingOutputs.add(tmp);
        pending.push({ tmp, final });
        await make(tmp);
        return final;
      };
      for (const f of opts.formats ?? ['raw']) {
        if (f === 'bmap') outputs.push({ format: 'bmap', path: basename(await derive(`${finalPath}.bmap`, (tmp) => runTool('bmaptool', ['create', '-o', tmp, image]))) });
        if (f === 'qcow2') outputs.push({ format: 'qcow2', path: basename(await derive(finalPath.replace(/\.img$/, '.qcow2'), (tmp) => runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', image, tmp]))) });
      }
      if (opts.compress) {
        const ext = opts.compress === 'zstd' ? '.zst' : '.xz';
        const out = await derive(`${finalPath}${ext}`, async (tmp) => {
          if (opts.compress === 'zstd') await runTool('zstd', ['-q', '-12', '-T0', '-f', '-o', tmp, image]);
          // xz writes IMAGE + suffix next to its input, streaming (no copy of the output in memory).
          else {
            await runTool('xz', ['-q', '-T0', '-6', '-k', '-f', '-S', '.xz-part', image]);
            renameSync(`${image}.xz-part`, tmp);
          }
        });
        outputs.push({ format: opts.compress, path: basename(out), sha256: await sha256File(pending.at(-1)!.tmp) });
      }

      const manifest: ImageManifest = {
        format: 1,
        model: {
          'brand-id': model.brandId,
          model: model.model,
          revision: model.revision,
          architecture: model.architecture ?? '',
          grade: model.grade,
          timestamp: modelAssertion.header('timestamp') ?? '',
          'sign-key-sha3-384': modelAssertion.signKeyId,
        },
        volume: layout.name,
        schema: layout.schema,
        size,
        ...(table.diskGuid ? { 'disk-guid': table.diskGuid } : {}),
        ...(table.diskId !== undefined ? { 'disk-id': table.diskId.toString(16).padStart(8, '0') } : {}),
        partitions,
        bundles: resolution.bundles.map((b) => ({ name: b.name, 'snap-id': b['snap-id'], type: b.type, revision: b.revision, 'sha3-384': b['sha3-384'], size: b.size })),
        'boot-environment': isAB ? env : {},
        'trust-store': isAB ? trustStore : [],
        outputs,
        ...(signedWithTestKeys(modelAssertion, [...opts.trusted, ...resolution.assertions]) ? { 'test-keys': true as const } : {}),
      };
      const manifestPath = await derive(`${finalPath}.manifest.json`, async (tmp) => writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 }));
      finalImages.push({ tmp: image, final: finalPath });
      results.push({ volume: layout.name, path: finalPath, size, sha256: imageSha, manifestPath, manifest, isAB });
    }

    for (const p of [...pending, ...finalImages]) {
      renameSync(p.tmp, p.final);
      inProgress.delete(p.tmp);
    }
    tmpImages.length = 0;
    pending.length = 0;
    for (const r of results) emit({ kind: 'output', path: r.path });
    const ab = results.find((r) => r.isAB)!;
    return { images: results.map(({ volume, path, size, sha256 }) => ({ volume, path, size, sha256 })), manifestPath: ab.manifestPath, manifest: ab.manifest };
  } finally {
    rmSync(work, { recursive: true, force: true });
    inProgress.delete(work);
    for (const p of [...pendingOutputs, ...tmpImages.flatMap((t) => [t, `${t}.xz-part`])]) {
      rmSync(p, { force: true });
      inProgress.delete(p);
    }
  }
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;
const structureKey = (s: LaidOutStructure) => s.name ?? `#${s.yamlIndex}`;

function checkOutputDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.edgeimage-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (e) {
    throw new ComposeError('ERR_OUTPUT_DIR', `cannot write to the output directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { dir });
  }
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The model's architecture must be one the gadget and the kernel are built for. */
async function checkArchitectures(r: Resolution, gadgetDir: string, arch: string): Promise<void> {
  for (const b of r.bundles.filter((x) => x.type === 'gadget' || x.type === 'kernel')) {
    const y = b.type === 'gadget' ? parseSnapYaml(readFileSync(join(gadgetDir, 'meta', 'snap.yaml'), 'utf8'), `${b.name}:meta/snap.yaml`) : await readSnapYaml(b.path);
    if (!y.architectures.includes(arch) && !y.architectures.includes('all')) {
      throw new ComposeError('ERR_ARCH_MISMATCH', `the model is for ${arch}, but ${b.type} ${b.name} revision ${b.revision} is built for ${y.architectures.join(', ')}`, { bundle: b.name, expected: arch, actual: y.architectures });
    }
  }
}

/** Copies a structure's `source → target` content from the unpacked gadget into its staging tree. */
/**
 * A structure's filesystem label; the slots' default to their role (system-a, system-b): the
 * bootloaders find a slot by that label, and edge-update writes it when it formats a slot.
 */
function fsLabel(s: LaidOutStructure): string | undefined {
  return s.filesystemLabel ?? (s.role === 'system-a' || s.role === 'system-b' ? s.role : undefined);
}

function stageContent(s: LaidOutStructure, gadget: BundleRef, gadgetDir: string, stage: string, gadgetFile: string): void {
  for (const [i, c] of s.content.entries()) {
    if (c.kind !== 'file') continue;
    const src = checkContentPath(gadgetDir, c.source, { file: gadgetFile, structure: structureKey(s), line: c.line, col: c.col, what: `content #${i}: source` });
    // Regular files and folders only: a link (even one inside the gadget) would be copied as a link.
    checkUnpackedTree(gadget, src, realpathSync(gadgetDir));
    const target = join(stage, c.target.replace(/^\/+/, ''));
    if (statSync(src).isDirectory()) {
      mkdirSync(target, { recursive: true });
      cpSync(src, target, { recursive: true });
    } else {
      const dest = c.target.endsWith('/') ? join(target, basename(src)) : target;
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(src, dest);
    }
  }
}

function stageImagePath(gadgetDir: string, image: string, s: LaidOutStructure, gadgetFile: string): string {
  return checkContentPath(gadgetDir, image, { file: gadgetFile, structure: structureKey(s) });
}

/** The partition table; GUIDs (and the MBR disk id) come from the model and the structures. */
function writeTable(image: string, layout: LaidOutVolume, size: number, id: ImageIdentity): { diskGuid?: string; diskId?: number; guids: Map<LaidOutStructure, string> } {
  const parts = layout.structures.filter((s) => s.partitionIndex !== undefined).sort((a, b) => a.partitionIndex! - b.partitionIndex!);
  const guids = new Map<LaidOutStructure, string>();
  if (layout.schema === 'mbr') {
    const diskId = layout.id ? parseInt(layout.id, 16) : id.u32('mbr-disk-id', layout.name);
    writeMbr(image, {
      diskId,
      partitions: parts.map((s) => ({ start: s.startOffset, size: s.size, type: parseInt(s.mbrType ?? '83', 16), bootable: s.role === 'system-boot' })),
    });
    return { diskId, guids };
  }
  const diskGuid = layout.id ?? id.guid('disk', layout.name);
  writeGpt(image, {
    diskSize: size,
    diskGuid,
    partitions: parts.map((s) => {
      const guid = s.id ?? id.guid('partition', layout.name, structureKey(s));
      guids.set(s, guid);
      return { firstLba: s.startOffset / SECTOR, lastLba: (s.startOffset + s.size) / SECTOR - 1, typeGuid: s.gptType!, partGuid: guid, name: s.name ?? '' };
    }),
  });
  return { diskGuid, guids };
}
