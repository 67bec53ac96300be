import { BootKeys, type Assertion, signedWithTestKeys } from '@edgeimage/assertions';
import { BundleCache, Store, resolveModel, type Resolution } from '@edgeimage/store';
import { composeImage, planImage, type DigestMode, type ImagePlan, type OutputFormat } from '@edgeimage/composer';
import type { Argv } from 'yargs';
import { printJson, UsageError } from '../output.js';
import { repoRoot } from '../paths.js';
import { resolveProgress } from '../progress.js';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { bootSignersOf } from './boot-signers.js';
import { cleanOnInterrupt, parseTime, readAssertions, type Context } from './common.js';
import { resolveOptions, trustedFrom, type TrustArgs } from './resolve.js';
import { BUILD_UPDATE_HELP, updateConfigOf, updateOptions, type UpdateArgs } from './update-options.js';

/** `512M`, `2G`, `1048576`: bytes, or M (MiB) / G (GiB) as gadget.yaml sizes. */
export function parseSize(value: string, option: string): number {
  const m = /^(\d+)([MG]?)$/.exec(value.trim());
  if (!m) throw new UsageError(`${option}: expected a size such as 1G, 512M or a number of bytes, found ${JSON.stringify(value)}`);
  return Number(m[1]) * (m[2] === 'G' ? 1 << 30 : m[2] === 'M' ? 1 << 20 : 1);
}

function parseFormats(value: string): OutputFormat[] {
  const list = value.split(',').map((x) => x.trim()).filter(Boolean);
  for (const f of list) if (!['raw', 'bmap', 'qcow2'].includes(f)) throw new UsageError(`--format: expected raw, bmap and/or qcow2, found ${JSON.stringify(f)}`);
  return list as OutputFormat[];
}

export function buildCommand(ctx: Context) {
  return {
    command: 'build <model>',
    describe: 'resolve a signed model and compose its bootable A/B disk image (rootless, reproducible)',
    builder: (y: Argv) =>
      updateOptions(
        resolveOptions(y)
          .positional('model', { type: 'string', demandOption: true, describe: 'the model assertion (a stream with its chain and validation-sets is fine)' })
          .option('output', { alias: 'o', type: 'string', describe: 'output directory (default images/ in the repository)' })
          .option('image-size', { type: 'string', describe: 'disk size (e.g. 2G); default: what the gadget layout needs' })
          .option('format', { type: 'string', default: 'raw', describe: 'outputs: raw (always), bmap, qcow2, comma-separated' })
          .option('compress', { choices: ['zstd', 'xz'] as const, describe: 'also write a compressed copy (.zst or .xz)' })
          .option('snap', { type: 'string', describe: 'use a local bundle instead of the store (repeatable; grade dangerous models only)' })
          .option('digests', { choices: ['mapped', 'full', 'none'] as const, default: 'mapped' as const, describe: "the digests of the image and its partitions: mapped (sha256-nonzero-4k-blocks: only the 4 KiB blocks holding data, as bmaptool reads an image; the manifest says so), full (sha256 of every byte, as sha256sum computes; hashing the holes of a mostly empty image costs as much as building it) or none. Compressed outputs always get the sha256 of their file" })
          .option('empty-b', { type: 'boolean', default: false, describe: 'leave slot b empty instead of a copy of slot a' })
          .option('boot-keys', { type: 'string', describe: 'a verified image: the keyring whose boot keys ("edgeimage boot-keys create") sign the bootloader and each slot\'s boot payload (UEFI: GRUB and unified kernel images with db; U-Boot: FIT images with the FIT key). The certificates a factory enrols are written next to the image (IMAGE.boot-keys/); U-Boot boards also get IMAGE.uboot-env.img and IMAGE.uboot.dtb. An encrypted key\'s passphrase comes from $EDGEIMAGE_KEY_PASSPHRASE' }),
        BUILD_UPDATE_HELP,
      )
        .option('json', { type: 'boolean', describe: 'print the image manifest as JSON (with --dry-run: the plan)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan (every partition: offset, size, type, GUID, filesystem, label; what goes into each; the outputs) and write nothing' })
        .example('$0 build images/models/pc-amd64.assert --store images/store --no-default-trust --trusted signing-keys.example/root.account-key --trusted signing-keys.example/example-root.account --trusted signing-keys.example/store.account-key --trusted signing-keys.example/example-store.account', 'images/pc-amd64.img')
        .example('$0 build dev.model --store ./store --snap ./hello_1.1_all.snap --format raw,bmap --compress zstd', 'a dangerous model with a local bundle')
        .example('$0 build images/models/pc-amd64.assert --store images/store --boot-keys signing-keys', 'a verified image: Secure Boot checks GRUB and the slot\'s kernel, dm-verity every bundle')
        .example('$0 build dev.model --store ./store --dry-run [--json]', 'what would be built, as systemd-repart --dry-run; nothing is written')
        .epilog('The image is written under a temporary name and renamed at the end: a failed or interrupted build leaves nothing behind. Same inputs, same bytes. --dry-run resolves the model (downloading bundles missing from the cache into it, as `resolve` does) and plans the image in a temporary folder: no output, no validation-set sequence record.'),
    handler: (a: BuildArgs) => cleanOnInterrupt(() => build(ctx, a)),
  };
}

/**
 * The warning for a grade signed or secured model that verifies only through the example root:
 * loud on purpose, since that root's private key is public and such an image accepts anyone's
 * updates. Undefined for any other model.
 */
export function testKeysWarning(resolution: Resolution, trusted: Assertion[]): string | undefined {
  const { grade, brandId, model } = resolution.model;
  if (grade !== 'signed' && grade !== 'secured') return undefined;
  const modelAssertion = resolution.assertions.find((x) => x.type === 'model');
  if (!modelAssertion || !signedWithTestKeys(modelAssertion, [...trusted, ...resolution.assertions])) return undefined;
  return [
    '!'.repeat(78),
    `WARNING: TEST KEYS. Model ${brandId}/${model} (grade ${grade}) verifies only through the example root`,
    'of signing-keys.example/, whose private keys are public in the edgeimage repository: anyone can',
    'sign updates this image accepts. For devices, build with your own root (README "Running your own root").',
    'The image manifest and `edgeimage inspect` say "test keys".',
    '!'.repeat(78),
  ].join('\n');
}

type BuildArgs = TrustArgs & UpdateArgs & { bootKeys?: string; model: string; store: string; cache?: string; allowUnpinned: boolean; at?: string; concurrency: number; output?: string; imageSize?: string; format: string; compress?: 'zstd' | 'xz'; snap?: string | string[]; emptyB: boolean; json?: boolean; dryRun: boolean; digests: DigestMode };

async function build(ctx: Context, a: BuildArgs): Promise<void> {
  const formats = parseFormats(a.format);
  const imageSize = a.imageSize ? parseSize(a.imageSize, '--image-size') : undefined;
  const updates = updateConfigOf(a);
  const progress = resolveProgress((line) => ctx.io.err(line));
  try {
    const trusted = trustedFrom(a);
    const resolution = await resolveModel(readAssertions(a.model), {
      store: await Store.open(a.store),
      trusted,
      at: parseTime(a.at, '--at'),
      cache: new BundleCache(a.cache),
      allowUnpinned: a.allowUnpinned,
      concurrency: a.concurrency,
      localBundles: [a.snap ?? []].flat().map((f) => resolve(f)),
      onEvent: progress.onEvent,
    });
    progress.stop();
    const warning = testKeysWarning(resolution, trusted);
    if (warning) ctx.io.err(warning);
    const bootSigners = a.bootKeys === undefined ? undefined : bootSignersOf(a.bootKeys, resolution.model.brandId);
    // Every device enrolled with these keys starts this image, test hooks and all: say so.
    if (bootSigners && resolution.model.grade === 'dangerous') ctx.io.err(`edgeimage: note: a grade dangerous image (test hooks on) signed with the boot keys of ${a.bootKeys}: every device enrolled with them boots it; sign dangerous images with a development key set that no device in the field trusts`);
    const outputDir = resolve(a.output ?? `${repoRoot() ?? process.cwd()}/images`);
    if (a.dryRun) {
      // Nothing is recorded either: no image, so no validation-set sequence is in use yet.
      const plan = await planImage({ resolution, trusted, outputDir, imageSize, formats, compress: a.compress, emptyB: a.emptyB, ...(updates ? { updates } : {}), onEvent: (e) => ctx.io.err(e.what) });
      if (a.json) return printJson(ctx.io, plan);
      for (const line of describePlan(plan)) ctx.io.out(line);
      return;
    }
    const r = await composeImage({
      resolution,
      trusted,
      outputDir,
      imageSize,
      formats,
      compress: a.compress,
      emptyB: a.emptyB,
      digests: a.digests,
      bootSigners,
      ...(updates ? { updates } : {}),
      onEvent: (e) => {
        if (e.kind === 'stage') ctx.io.err(e.what);
        else if (e.kind === 'structure') ctx.io.err(`built ${e.name}`);
      },
    });
    // Only now that the image is in place: a build refused by the composer records nothing.
    await resolution.recordSequences();
    const factoryKeys = a.bootKeys === undefined ? undefined : exportBootCertificates(a.bootKeys, r.images[0]!.path);
    if (a.json) return printJson(ctx.io, r.manifest);
    for (const img of r.images) ctx.io.out(`${img.path}  ${img.size} bytes${img.sha256 ? `  ${img.digest ?? 'sha256'} ${img.sha256}` : ''}`);
    for (const p of r.manifest.partitions) ctx.io.out(`  ${String(p.index ?? '-').padStart(2)} ${(p.name ?? '').padEnd(14)} ${(p.role ?? '').padEnd(12)} ${String(p.offset).padStart(11)} ${String(p.size).padStart(11)} ${p.filesystem}`);
    for (const o of r.manifest.outputs.filter((x) => x.format !== 'raw')) ctx.io.out(`  ${o.format}: ${o.path}`);
    if (factoryKeys) ctx.io.out(`  boot certificates (what a factory enrols): ${factoryKeys}`);
    ctx.io.out(`manifest: ${r.manifestPath}`);
  } finally {
    progress.stop();
  }
}

/** The certificates a factory enrols, next to the image (`IMAGE.boot-keys/`), replacing an older export. */
function exportBootCertificates(keyring: string, image: string): string {
  const dest = join(dirname(image), `${basename(image).replace(/\.img$/, '')}.boot-keys`);
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  new BootKeys(resolve(keyring)).export(tmp);
  if (existsSync(dest)) rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return dest;
}

/**
 * The plan in human form, as systemd-repart --dry-run: per image a table of its structures, then
 * what goes into each filesystem and at which offset each raw image goes, then the outputs.
 */
export function describePlan(plan: ImagePlan): string[] {
  const m = plan.model;
  const out = [`plan for ${m['brand-id']}/${m.model} revision ${m.revision} (${m.architecture}, grade ${m.grade}); --dry-run: nothing written`];
  const cols = (c: string[]) => `  ${c[0]!.padStart(2)} ${c[1]!.padEnd(14)} ${c[2]!.padEnd(12)} ${c[3]!.padStart(11)} ${c[4]!.padStart(11)}  ${c[5]!.padEnd(36)} ${c[6]!.padEnd(36)} ${c[7]!.padEnd(7)} ${c[8]!}`;
  for (const v of plan.volumes) {
    const id = v.diskGuid ? `disk GUID ${v.diskGuid}` : v.diskId !== undefined ? `disk id ${v.diskId.toString(16).padStart(8, '0')}` : '';
    out.push('', `volume ${v.volume}: ${v.schema}, ${v.size} bytes (${(v.size / 2 ** 20).toFixed(0)} MiB)${id ? `, ${id}` : ''}${v.ab ? ', A/B' : ''}`);
    out.push(cols(['#', 'NAME', 'ROLE', 'OFFSET', 'SIZE', 'TYPE', 'GUID', 'FS', 'LABEL']));
    for (const s of v.structures) {
      out.push(cols([String(s.index ?? '-'), s.name ?? '-', s.role ?? '-', String(s.offset), String(s.size), s.type, s.guid ?? '-', s.filesystem, s.label ?? '-']));
    }
    for (const s of v.structures) {
      const name = s.name ?? s.role ?? `structure at ${s.offset}`;
      if (s.files) {
        out.push(`  ${name}: ${s.source === 'system' ? 'the system (slot tree)' : s.source === 'empty' ? 'empty' : "the gadget's content"}, ${s.files.length} files, ${s.bytes} bytes`);
        for (const f of s.files) out.push(`    ${f.path}  ${f.size}`);
      }
      for (const c of s.images) out.push(`  ${name}: gadget image ${c.source} (${c.size} bytes) at ${c.offset}`);
      if (s.offsetWrite) out.push(`  ${name}: its first LBA (${s.offsetWrite.lba}) written at ${s.offsetWrite.at}`);
    }
    out.push('  outputs:');
    for (const o of v.outputs) out.push(`    ${o.format.padEnd(8)} ${o.path}`);
  }
  return out;
}
