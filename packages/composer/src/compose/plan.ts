import { createHash } from 'node:crypto';
import { existsSync, writeFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, copyFileSync, cpSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type Assertion, signedWithTestKeys } from '@edgeimage/assertions';
import { checkABRoles, checkContentPath, layoutContent, layoutVolume, readGadget, type LaidOutStructure } from '@edgeimage/gadget';
import { parseSnapYaml, readSnapYaml, type Resolution } from '@edgeimage/store';
import { initialEnv } from '../bootenv/env.js';
import { writeEnvTree } from '../bootenv/tree.js';
import { ComposeError } from '../errors.js';
import { checkUnpackedTree, extractBundle, type BundleRef } from '../fs/bundle-files.js';
import type { BundleVerityEntry } from '../verity/index.js';
import { ImageIdentity } from './identity.js';
import { stageSystem } from './slot.js';
import { resolveUpdateConfig, writeUpdateConf, type UpdateConfig } from '../update/conf.js';
import { applyGradeVariants } from './grade-variant.js';
import type { BootSigners, VerifiedBootKind } from '../verified/payload.js';
import { stageVerifiedSystemBoot, type FactoryFiles } from '../verified/system-boot.js';

export type OutputFormat = 'raw' | 'bmap' | 'qcow2';
/** Files a factory programs besides the disk (U-Boot boards of a verified image). */
export type FactoryFormat = 'uboot-env' | 'uboot-dtb';

/** What a plan is made from: the resolved model and the build's options. */
export interface PlanOptions {
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
  /**
   * A verified image: the brand's boot signers sign the bootloader (UEFI) and each slot's boot
   * payload, from the gadget's verified-boot/ inputs. Without them the image boots unverified.
   */
  bootSigners?: BootSigners;
  /**
   * The device polls a store for updates: each slot gets update.conf (these settings, then the
   * gadget's `edgeimage-updates:` defaults). Without it the image has no update.conf.
   */
  updates?: UpdateConfig;
  onEvent?: (e: { kind: 'stage'; what: string }) => void;
}

/** A file that goes into a filesystem: its path inside it and its size. */
export interface PlannedFile {
  path: string;
  size: number;
}

/** How a structure's filesystem is made, fixed by the model so that builds are reproducible. */
export type PlannedFilesystem =
  | { kind: 'ext4'; uuid: string; hashSeed: string; journal: boolean }
  | { kind: 'vfat'; volumeId: number; fatBits?: 16 | 32; hiddenSectors: number };

/** One structure of a volume: a partition, or a bare region of raw content. */
export interface PlannedStructure {
  /** Partition number in the table (none for bare structures and the MBR). */
  index?: number;
  name?: string;
  role?: string;
  offset: number;
  size: number;
  /** The gadget's type (`GUID`, `MBR-type` or `GUID,MBR-type`, `bare`, `mbr`). */
  type: string;
  /** The GPT partition GUID. */
  guid?: string;
  filesystem: string;
  label?: string;
  /** How the filesystem is made; absent when the structure has none. */
  fs?: PlannedFilesystem;
  /** What the filesystem holds: the slot's system, the gadget's content, or nothing. */
  source?: 'system' | 'gadget-content' | 'empty';
  /** Every file that goes into the filesystem (sorted by path), and their total size. */
  files?: PlannedFile[];
  bytes?: number;
  /** Raw images from the gadget, at absolute offsets in the disk. */
  images: { source: string; offset: number; size: number }[];
  /** `offset-write`: the structure's first LBA, written as 32 bits little-endian at this disk offset. */
  offsetWrite?: { at: number; lba: number };
  /** The partition's type in the table: a GUID on GPT, a byte on MBR. */
  gptType?: string;
  mbrType?: number;
}

export interface PlannedOutput {
  format: OutputFormat | FactoryFormat | 'zstd' | 'xz' | 'manifest';
  /** Where it is renamed to at the end. */
  path: string;
}

/** One disk image. */
export interface VolumePlan {
  volume: string;
  schema: string;
  size: number;
  /** The volume with the A/B roles (the one the manifest of the build describes). */
  ab: boolean;
  diskGuid?: string;
  /** The MBR disk id. */
  diskId?: number;
  structures: PlannedStructure[];
  /** The raw image first, then its other forms and the manifest. */
  outputs: PlannedOutput[];
}

/**
 * Everything a build will write, decided before anything is written: serialisable (JSON), so
 * `edgeimage build --dry-run --json` prints it and a writer ({@link writePlan}) needs nothing else
 * but the staged trees.
 */
export interface ImagePlan {
  format: 1;
  model: { 'brand-id': string; model: string; revision: number; architecture: string; grade: string; timestamp: string; 'sign-key-sha3-384': string };
  gadget: { name: string; revision: number };
  bundles: { name: string; 'snap-id': string; type: string; revision: number; 'sha3-384': string; size: number; verity: BundleVerityEntry }[];
  'boot-environment': Record<string, string>;
  'trust-store': string[];
  'test-keys'?: true;
  /** A verified image: the chain (UEFI: signed GRUB and unified kernel images; fit: U-Boot FIT images) and the slot's payload files. */
  'verified-boot'?: { kind: VerifiedBootKind; payload: string[]; signer: { role: 'db' | 'FIT'; name: string; 'certificate-sha256': string } };
  /** The time of every file in the filesystems (the model's timestamp, ISO 8601). */
  'file-timestamp': string;
  outputDir: string;
  volumes: VolumePlan[];
}

/** The staged trees a plan refers to (not part of the plan: temporary paths of this process). */
export interface PlanWorkspace {
  dir: string;
  gadgetDir: string;
  /** The staged tree of each structure with a filesystem ('' for the others), in the order of `VolumePlan.structures`. */
  trees: Map<VolumePlan, string[]>;
  /** Staged files of the factory outputs, by the output's final path. */
  factory: Map<string, string>;
}

const MiB = 1 << 20;
/** The largest meta/gadget.yaml or meta/snap.yaml read from a gadget. */
const MAX_META_FILE_BYTES = MiB;
export const SECTOR = 512;

/**
 * The plan of a build, without writing anything but temporary files (the unpacked gadget and the
 * staged trees, removed before it returns): what `edgeimage build --dry-run` shows.
 *
 * ```ts
 * const plan = await planImage({ resolution, trusted, outputDir: 'images' });
 * plan.volumes[0].structures.map((s) => [s.name, s.offset, s.size]);
 * ```
 */
export async function planImage(opts: PlanOptions): Promise<ImagePlan> {
  const work = mkdtempSync(join(tmpdir(), 'edgeimage-plan-'));
  try {
    return (await makePlan(opts, work)).plan;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The plan and the trees it refers to, staged under `work` (which the caller removes). */
export async function makePlan(opts: PlanOptions, work: string): Promise<{ plan: ImagePlan; workspace: PlanWorkspace }> {
  const emit = opts.onEvent ?? (() => {});
  const { resolution } = opts;
  const model = resolution.model;
  const modelAssertion = resolution.assertions.find((a) => a.type === 'model')!;
  const id = new ImageIdentity(model.brandId, model.model, model.revision, model.timestamp);
  const bundle = (type: string) => resolution.bundles.find((b) => b.type === type);
  const gadget = bundle('gadget');
  const kernel = bundle('kernel');
  if (!gadget) throw new ComposeError('ERR_NO_GADGET', `${model.brandId}/${model.model} has no gadget snap: nothing says how to lay out the disk`);
  if (!kernel) throw new ComposeError('ERR_NO_KERNEL', `${model.brandId}/${model.model} has no kernel snap`);

  // The build's own update settings are checked before any work; the gadget's defaults once it is read.
  const updateChannel = opts.updates ? resolveUpdateConfig(opts.updates).channel : undefined;
  // The slot tree (one complete system), staged while the gadget is read: it does not depend on it
  // (update.conf, which takes the gadget's defaults, is written once both are done).
  const slotDir = join(work, 'slot');
  const staging = stageSystem({ resolution, trusted: opts.trusted, modelAssertion, dir: slotDir, identity: id, bootSigners: opts.bootSigners, ...(updateChannel ? { updateChannel } : {}) });
  // Handled here, awaited below: a refusal while the gadget is being read is not "unhandled".
  staging.catch(() => undefined);
  let g: Awaited<ReturnType<typeof readGadgetOf>>;
  try {
    g = await readGadgetOf(gadget, work, resolution, emit);
  } catch (e) {
    // The gadget's refusal comes first, and only once nothing writes under `work` any more.
    await staging.catch(() => undefined);
    throw e;
  }
  const { gadgetDir, gadgetRef, gadgetFile, info, abVolume } = g;
  const { trustStore, verity, payload } = await staging;
  if (opts.updates) writeUpdateConf(slotDir, resolveUpdateConfig(opts.updates, info.updates));
  let factory: FactoryFiles = {};
  const env = initialEnv();

  const disks = info.volumeOrder.filter((n) => info.volumes[n]!.schema !== 'emmc');
  const volumes: VolumePlan[] = [];
  const trees = new Map<VolumePlan, string[]>();
  for (const volumeName of disks) {
    const volume = info.volumes[volumeName]!;
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
    const diskGuid = layout.schema === 'mbr' ? undefined : (layout.id ?? id.guid('disk', layout.name));
    const diskId = layout.schema === 'mbr' ? (layout.id ? parseInt(layout.id, 16) : id.u32('mbr-disk-id', layout.name)) : undefined;

    const structures: PlannedStructure[] = [];
    const volumeTrees: string[] = [];
    for (const s of layout.structures) {
      const key = structureKey(s);
      // 3. Each structure's tree: the system for the slots, the gadget's content otherwise.
      let tree: string | undefined;
      let source: PlannedStructure['source'];
      if (s.role === 'system-a' || (s.role === 'system-b' && !opts.emptyB)) {
        tree = slotDir;
        source = 'system';
      } else if (s.filesystem !== 'none') {
        tree = join(work, 'stage', layout.name, String(s.yamlIndex));
        mkdirSync(tree, { recursive: true });
        stageContent(s, gadgetRef, gadgetDir, tree, gadgetFile);
        if (s.role === 'system-boot') {
          applyGradeVariants(tree, model.grade);
          writeEnvTree(tree, env);
          if (opts.bootSigners && isAB) {
            emit({ kind: 'stage', what: 'signing the bootloader with the brand\'s boot keys' });
            factory = await stageVerifiedSystemBoot({ tree, gadgetDir, gadget: `${gadget.name}_${gadget.revision}.snap`, arch: model.architecture ?? '', grade: model.grade, signers: opts.bootSigners });
          }
        }
        source = readdirSync(tree).length ? 'gadget-content' : 'empty';
      }
      let fs: PlannedFilesystem | undefined;
      if (s.filesystem === 'ext4') {
        fs = { kind: 'ext4', uuid: id.guid('fs', layout.name, key), hashSeed: id.guid('hash-seed', layout.name, key), journal: s.role === 'system-data' };
      } else if (s.filesystem === 'vfat' || s.filesystem === 'vfat-16' || s.filesystem === 'vfat-32') {
        fs = { kind: 'vfat', volumeId: id.u32('vfat', layout.name, key), fatBits: s.filesystem === 'vfat-16' ? 16 : s.filesystem === 'vfat-32' ? 32 : undefined, hiddenSectors: s.startOffset / SECTOR };
      }
      const files = tree ? listTree(tree) : undefined;
      // Raw images (bootloader blobs) at their offsets, checked to fit and not to overlap.
      const imageFiles = s.content.flatMap((c) => (c.kind === 'image' ? [checkContentPath(gadgetDir, c.image, { file: gadgetFile, structure: key })] : []));
      const sizes = imageFiles.map((f) => statSync(f).size);
      const placed = imageFiles.length ? layoutContent(s, sizes, gadgetFile) : [];
      let offsetWrite: PlannedStructure['offsetWrite'];
      if (s.offsetWrite) {
        const base = s.offsetWrite.relativeTo ? layout.structures.find((x) => x.name === s.offsetWrite!.relativeTo)!.startOffset : 0;
        offsetWrite = { at: base + s.offsetWrite.offset, lba: Math.floor(s.startOffset / SECTOR) };
      }
      const guid = layout.schema !== 'mbr' && s.partitionIndex !== undefined ? (s.id ?? id.guid('partition', layout.name, key)) : undefined;
      structures.push({
        ...(s.partitionIndex !== undefined ? { index: s.partitionIndex } : {}),
        ...(s.name !== undefined ? { name: s.name } : {}),
        ...(s.role !== undefined ? { role: s.role } : {}),
        offset: s.startOffset,
        size: s.size,
        type: s.type,
        ...(guid ? { guid } : {}),
        filesystem: s.filesystem,
        ...(fsLabel(s) !== undefined ? { label: fsLabel(s) } : {}),
        ...(fs ? { fs, source, files, bytes: files!.reduce((n, f) => n + f.size, 0) } : {}),
        images: placed.map((p, i) => ({ source: relativeToGadget(gadgetDir, imageFiles[i]!), offset: p.startOffset, size: sizes[i]! })),
        ...(offsetWrite ? { offsetWrite } : {}),
        ...(s.partitionIndex !== undefined && layout.schema !== 'mbr' ? { gptType: s.gptType! } : {}),
        ...(s.partitionIndex !== undefined && layout.schema === 'mbr' ? { mbrType: parseInt(s.mbrType ?? '83', 16) } : {}),
      });
      volumeTrees.push(fs ? tree! : '');
    }

    const imageName = disks.length > 1 ? `${model.model}.${layout.name}.img` : `${model.model}.img`;
    const finalPath = join(opts.outputDir, imageName);
    const outputs: PlannedOutput[] = [{ format: 'raw', path: finalPath }];
    for (const f of opts.formats ?? ['raw']) {
      if (f === 'bmap') outputs.push({ format: 'bmap', path: `${finalPath}.bmap` });
      if (f === 'qcow2') outputs.push({ format: 'qcow2', path: finalPath.replace(/\.img$/, '.qcow2') });
    }
    if (opts.compress) outputs.push({ format: opts.compress, path: `${finalPath}${opts.compress === 'zstd' ? '.zst' : '.xz'}` });
    if (isAB && factory.ubootEnv) outputs.push({ format: 'uboot-env', path: finalPath.replace(/\.img$/, '.uboot-env.img') });
    if (isAB && factory.ubootDtb) outputs.push({ format: 'uboot-dtb', path: finalPath.replace(/\.img$/, '.uboot.dtb') });
    outputs.push({ format: 'manifest', path: `${finalPath}.manifest.json` });
    const plan: VolumePlan = { volume: layout.name, schema: layout.schema, size, ab: isAB, ...(diskGuid ? { diskGuid } : {}), ...(diskId !== undefined ? { diskId } : {}), structures, outputs };
    volumes.push(plan);
    trees.set(plan, volumeTrees);
  }

  const plan: ImagePlan = {
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
    gadget: { name: gadget.name, revision: gadget.revision },
    bundles: resolution.bundles.map((b, i) => ({ name: b.name, 'snap-id': b['snap-id'], type: b.type, revision: b.revision, 'sha3-384': b['sha3-384'], size: b.size, verity: verity[i]! })),
    'boot-environment': env,
    'trust-store': trustStore,
    ...(signedWithTestKeys(modelAssertion, [...opts.trusted, ...resolution.assertions]) ? { 'test-keys': true as const } : {}),
    ...(payload ? { 'verified-boot': { kind: payload.kind, payload: payload.files, signer: signerInfo(payload.kind === 'uefi' ? opts.bootSigners!.db! : opts.bootSigners!.fit!) } } : {}),
    'file-timestamp': id.timestamp.toISOString(),
    outputDir: opts.outputDir,
    volumes,
  };
  const factoryFiles = new Map<string, string>();
  for (const v of volumes) {
    for (const o of v.outputs) {
      const bytes = o.format === 'uboot-env' ? factory.ubootEnv : o.format === 'uboot-dtb' ? factory.ubootDtb : undefined;
      if (!bytes) continue;
      const staged = join(work, `factory-${o.format}`);
      // The flash bank is mostly zeros: only its written head is staged; the output is made sparse.
      let end = bytes.length;
      if (o.format === 'uboot-env') while (end > 0 && bytes[end - 1] === 0) end--;
      writeFileSync(staged, bytes.subarray(0, end));
      factoryFiles.set(o.path, staged);
    }
  }
  return { plan, workspace: { dir: work, gadgetDir, trees, factory: factoryFiles } };
}

/** The gadget, unpacked under `work`: its gadget.yaml read, its A/B roles and architectures checked. */
async function readGadgetOf(gadget: Resolution['bundles'][number], work: string, resolution: Resolution, emit: (e: { kind: 'stage'; what: string }) => void) {
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
  const { gadget: info } = await readGadget(gadgetDir, { name: gadgetFile });
  const abVolume = checkABRoles(info);
  await checkArchitectures(resolution, gadgetDir, resolution.model.architecture ?? '');
  return { gadgetDir, gadgetRef, gadgetFile, info, abVolume };
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;
const signerInfo = (s: NonNullable<BootSigners['db']>) => ({ role: s.role, name: s.name, 'certificate-sha256': createHash('sha256').update(s.certDer).digest('hex') });
const structureKey = (s: LaidOutStructure) => s.name ?? `#${s.yamlIndex}`;

/** A gadget file's path inside the gadget, for the plan (the unpacked gadget is temporary). */
function relativeToGadget(gadgetDir: string, file: string): string {
  const root = realpathSync(gadgetDir);
  const real = realpathSync(file);
  return real.startsWith(`${root}/`) ? real.slice(root.length + 1) : basename(file);
}

/** Every regular file and symbolic link under `dir`, with its size, sorted by path (bounded by the staged tree). */
function listTree(dir: string): PlannedFile[] {
  const out: PlannedFile[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p));
      if (st.isDirectory()) walk(p);
      else out.push({ path: p, size: st.size });
    }
  };
  walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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

/**
 * A structure's filesystem label; the slots' default to their role (system-a, system-b): the
 * bootloaders find a slot by that label, and edge-update writes it when it formats a slot.
 */
function fsLabel(s: LaidOutStructure): string | undefined {
  return s.filesystemLabel ?? (s.role === 'system-a' || s.role === 'system-b' ? s.role : undefined);
}

/** Copies a structure's `source → target` content from the unpacked gadget into its staging tree. */
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
