import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { decodeStream, type Assertion, type PrivateKey } from '@edgeimage/assertions';
import { readGadget, type GadgetUpdateDefaults } from '@edgeimage/gadget';
import type { Resolution } from '@edgeimage/store';
import { inProgress } from '../compose/compose.js';
import { deviceTrustKeys, stageSystem } from '../compose/slot.js';
import type { BootSigners } from '../verified/payload.js';
import { runTool } from '../fs/tool.js';
import { extractBundle } from '../fs/bundle-files.js';
import { ComposeError } from '../errors.js';
import { inspectImage } from '../inspect/inspect.js';
import { resolveUpdateConfig, writeUpdateConf, type UpdateConfig } from './conf.js';
import { UpdateError } from './errors.js';
import { encodeUpdateManifest, listSlotFiles, MANIFEST_ENTRY, SIGNATURE_ENTRY, SLOT_PREFIX, type SlotFile, type UpdateManifest } from './manifest.js';
import { writeTar, type TarSource } from './tar.js';

/** The system an update replaces: who it is and the files of its slot. */
export interface BaseSystem {
  /** What it was read from (a model file, an image), for messages. */
  source: string;
  'brand-id': string;
  model: string;
  revision: number;
  files: SlotFile[];
}

/**
 * What `--from` names: the old model, resolved (its slot is staged to learn its files), or an
 * image built by edgeimage (its active slot is read), or a system already described.
 */
export type UpdateFrom = { resolution: Resolution; trusted: Assertion[]; source?: string } | { image: string } | BaseSystem;

export interface CreateUpdateOptions {
  /** The new system, resolved as for `build`. */
  resolution: Resolution;
  /** The trust anchors it was verified against. */
  trusted: Assertion[];
  /** Signs the manifest; must be an account-key of the model's brand. */
  key: PrivateKey;
  /** The key's name in the keyring, for messages. */
  keyName?: string;
  /** Without it, every file of the slot is in the update. */
  from?: UpdateFrom;
  /** The update file, written under a temporary name and renamed into place. */
  output: string;
  /** For verified devices: the brand's boot signers sign the new slot's boot payload, as composeImage does. */
  bootSigners?: BootSigners;
  /**
   * The device polls a store for updates: the new slot gets update.conf (these settings, then the
   * gadget's `edgeimage-updates:` defaults) exactly as `build --update-url` writes it, and its
   * pointer trust store follows this channel. Without it the new slot has no update.conf, and a
   * device that installs it stops polling.
   */
  updates?: UpdateConfig;
  /**
   * Without `updates`: the channel whose pointer keys go into trust-pointer/ (default
   * latest/stable, as build). `update release` gives the channel it releases to.
   */
  pointerChannel?: string;
  onEvent?: (e: { kind: 'stage'; what: string }) => void;
}

export interface UpdateFileInfo extends SlotFile {
  /** Whether its bytes are in the update (else the device takes them from its running slot). */
  included: boolean;
}

export interface UpdateResult {
  output: string;
  model: { 'brand-id': string; model: string; revision: number };
  files: UpdateFileInfo[];
  /** Bytes of the included files. */
  bytes: number;
  /** Bytes of every file of the slot: what an update without `--from` carries. */
  fullBytes: number;
}

/**
 * Writes a signed update bundle: a tar of the manifest (every file of the new slot with its
 * sha256 and size), the manifest's RSA/SHA-256 signature, and the bytes of the files the old
 * system does not have. The slot is staged exactly as composeImage stages slot a.
 *
 * ```ts
 * const r = await createUpdate({ resolution, trusted, key, from: { image: 'images/edge-pc.img' }, output: 'edge-pc-4.update' });
 * r.bytes; // only the bundles that changed
 * ```
 */
export async function createUpdate(opts: CreateUpdateOptions): Promise<UpdateResult> {
  const emit = opts.onEvent ?? (() => {});
  const { resolution } = opts;
  const model = resolution.model;
  checkBrandKey(resolution, opts.trusted, opts.key, opts.keyName);
  if (opts.from && 'resolution' in opts.from) checkBase(describeModel(opts.from.resolution.model, opts.from.source ?? 'the old model'), resolution);
  // The settings are checked before any work; the gadget's defaults once the slot is staged.
  const pointerChannel = opts.updates ? resolveUpdateConfig(opts.updates).channel : opts.pointerChannel;

  const work = mkdtempSync(join(tmpdir(), 'edgeimage-update-'));
  inProgress.add(work);
  const output = opts.output;
  const tmp = join(dirname(output), `.${basename(output)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    let base: BaseSystem | undefined;
    if (opts.from) {
      emit({ kind: 'stage', what: 'reading the system the update replaces' });
      base = await baseSystem(opts.from, join(work, 'old'), opts.bootSigners);
      checkBase(base, resolution);
    }
    emit({ kind: 'stage', what: `staging the slot of ${model.brandId}/${model.model} revision ${model.revision}` });
    const slot = join(work, 'slot');
    await stageSystem({ resolution, trusted: opts.trusted, dir: slot, bootSigners: opts.bootSigners, ...(pointerChannel ? { updateChannel: pointerChannel } : {}) });
    if (opts.updates) writeUpdateConf(slot, resolveUpdateConfig(opts.updates, await gadgetUpdateDefaults(resolution, join(work, 'gadget'))));
    const files = await listSlotFiles(slot);
    const old = new Map((base?.files ?? []).map((f) => [f.path, f.sha256]));
    const infos: UpdateFileInfo[] = files.map((f) => ({ ...f, included: old.get(f.path) !== f.sha256 }));

    const manifest: UpdateManifest = { 'brand-id': model.brandId, model: model.model, revision: model.revision, 'sign-key-sha3-384': opts.key.publicKey.id, files };
    const bytes = encodeUpdateManifest(manifest);
    const signature = signManifest(bytes, opts.key);
    const entries: TarSource[] = [
      { name: MANIFEST_ENTRY, data: bytes },
      { name: SIGNATURE_ENTRY, data: signature },
      ...infos.filter((f) => f.included).map((f) => ({ name: `${SLOT_PREFIX}${f.path}`, file: join(slot, f.path) })),
    ];
    emit({ kind: 'stage', what: `writing ${output}` });
    mkdirSync(dirname(output), { recursive: true });
    inProgress.add(tmp);
    await writeTar(tmp, entries);
    renameSync(tmp, output);
    inProgress.delete(tmp);
    return {
      output,
      model: { 'brand-id': model.brandId, model: model.model, revision: model.revision },
      files: infos,
      bytes: infos.filter((f) => f.included).reduce((n, f) => n + f.size, 0),
      fullBytes: infos.reduce((n, f) => n + f.size, 0),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    inProgress.delete(work);
    rmSync(tmp, { force: true });
    inProgress.delete(tmp);
  }
}

/**
 * The gadget's `edgeimage-updates:` defaults: only its gadget.yaml is unpacked (the update has no
 * use for the rest), and it is checked as build checks it (a bad value at its line and key).
 */
async function gadgetUpdateDefaults(r: Resolution, dir: string): Promise<GadgetUpdateDefaults | undefined> {
  const gadget = r.bundles.find((b) => b.type === 'gadget');
  if (!gadget) throw new ComposeError('ERR_NO_GADGET', `${r.model.brandId}/${r.model.model} has no gadget snap: nothing gives its update defaults`);
  await extractBundle({ name: gadget.name, revision: gadget.revision, path: gadget.path, type: 'gadget' }, dir, { files: ['meta/gadget.yaml'] });
  const { gadget: info } = await readGadget(dir, { name: `${gadget.name}_${gadget.revision}.snap:meta/gadget.yaml` });
  return info.updates;
}

/**
 * RSA PKCS#1 v1.5 over SHA-256 of the manifest bytes: what `openssl dgst -sha256 -verify PUB.pem
 * -signature manifest.sig manifest` on the device checks.
 */
export function signManifest(manifest: Buffer, key: PrivateKey): Buffer {
  // PrivateKey keeps its node key to itself and signs only in snapd's OpenPGP format; its PEM is
  // the one way to a plain RSA signature. It stays in memory and is never written or printed.
  return sign('sha256', manifest, createPrivateKey(key.toPem()));
}

/**
 * The ids of the keys in the device trust store of this model: the only keys whose updates its
 * devices accept (an expired brand key, or one whose constraints do not admit the model, is not
 * among them).
 */
export function brandKeyIds(resolution: Resolution, trusted: Assertion[]): string[] {
  const model = resolution.assertions.find((a) => a.type === 'model');
  if (!model) return [];
  const ids = deviceTrustKeys(resolution, trusted, model).map((a) => a.header('public-key-sha3-384')!);
  return [...new Set(ids)].sort();
}

function checkBrandKey(resolution: Resolution, trusted: Assertion[], key: PrivateKey, keyName?: string): void {
  const brand = resolution.model.brandId;
  const ids = brandKeyIds(resolution, trusted);
  if (ids.includes(key.publicKey.id)) return;
  const named = keyName ? `key "${keyName}" (${key.publicKey.id})` : `key ${key.publicKey.id}`;
  throw new UpdateError(
    'ERR_UPDATE_KEY_NOT_BRAND',
    `${named} is not a key of brand ${brand}: devices of ${brand}/${resolution.model.model} trust updates signed by ${brand}'s account-keys only (${ids.length ? ids.join(', ') : 'none among the verified assertions'})`,
    { key: keyName, keyId: key.publicKey.id, brand, brandKeys: ids },
  );
}

function describeModel(m: Resolution['model'], source: string): Omit<BaseSystem, 'files'> {
  return { source, 'brand-id': m.brandId, model: m.model, revision: m.revision };
}

function checkBase(base: Omit<BaseSystem, 'files'>, resolution: Resolution): void {
  const m = resolution.model;
  const ctx = { from: base.source, fromBrand: base['brand-id'], fromModel: base.model, fromRevision: base.revision, brand: m.brandId, model: m.model, revision: m.revision };
  if (base['brand-id'] !== m.brandId || base.model !== m.model) {
    throw new UpdateError('ERR_UPDATE_FROM_MISMATCH', `--from ${base.source} is a system of ${base['brand-id']}/${base.model}, the update is for ${m.brandId}/${m.model}: an update must carry the same brand-id and model as the system it replaces`, ctx);
  }
  if (base.revision >= m.revision) {
    throw new UpdateError('ERR_UPDATE_NOT_NEWER', `--from ${base.source} is revision ${base.revision} of ${m.brandId}/${m.model}, the update is revision ${m.revision}: an update must have a higher revision than the system it replaces (the device would refuse it anyway)`, ctx);
  }
}

async function baseSystem(from: UpdateFrom, work: string, bootSigners?: BootSigners): Promise<BaseSystem> {
  if ('files' in from) return from;
  if ('resolution' in from) {
    const dir = join(work, 'slot');
    // Staged as the device has it: with its signed payload when the device is verified.
    await stageSystem({ resolution: from.resolution, trusted: from.trusted, dir, bootSigners });
    // The old image's pointer trust store followed its build's channel, which its model does not
    // record (and an image built before pointer trust stores has none): the update carries the new
    // one whole. update.conf is not staged here at all, so the update carries it whenever it has one.
    const files = (await listSlotFiles(dir)).filter((f) => !f.path.startsWith('trust-pointer/'));
    return { ...describeModel(from.resolution.model, from.source ?? 'the old model'), files };
  }
  return readImageSystem(from.image, work);
}

/**
 * The active slot (the boot environment's `edge_slot`) of an image built by edgeimage: its model
 * and the digest of every file, read with debugfs (no mounting).
 */
export async function readImageSystem(image: string, work?: string): Promise<BaseSystem> {
  const info = await inspectImage(image);
  const active = info.bootEnvironment?.vars.edge_slot;
  if (active !== 'a' && active !== 'b') {
    throw new UpdateError('ERR_UPDATE_FROM_IMAGE', `${image}: no boot environment with edge_slot a or b on system-boot${info.bootEnvironment?.reason ? ` (${info.bootEnvironment.reason})` : ''}: cannot tell which slot runs`, { image });
  }
  const slot = info.slots.find((s) => s.slot === active);
  const part = info.table.partitions.find((p) => p.index === slot?.partition);
  if (!slot || slot.empty || !part) throw new UpdateError('ERR_UPDATE_FROM_IMAGE', `${image}: the active slot system-${active} (edge_slot) is missing or empty`, { image, slot: active });
  const own = work === undefined;
  const dir = work ?? mkdtempSync(join(tmpdir(), 'edgeimage-update-image-'));
  try {
    const dest = join(dir, 'image-slot');
    mkdirSync(dest, { recursive: true });
    await runTool('debugfs', ['-R', `rdump / "${dest}"`, `${image}?offset=${part.start}`]);
    const [model] = decodeStream(readFileSync(join(dest, 'model.assert')), { file: `${image}:system-${active}/model.assert` });
    // mke2fs makes lost+found in every ext4; it is no file of the system.
    const files = await listSlotFiles(dest, { skip: ['lost+found'] });
    return { source: image, 'brand-id': model!.header('brand-id') ?? '', model: model!.header('model') ?? '', revision: model!.revision, files };
  } finally {
    if (own) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Tells what `--from` is: a disk image (an MBR or protective-MBR boot signature) or an assertion
 * (a stream starting with `type:`).
 */
export function sniffUpdateFrom(file: string): 'image' | 'assertion' {
  const head = Buffer.alloc(1024);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, 5).toString('latin1') === 'type:') return 'assertion';
  if (n >= 512 && head[510] === 0x55 && head[511] === 0xaa && statSync(file).size % 512 === 0) return 'image';
  throw new UpdateError('ERR_UPDATE_FROM_UNKNOWN', `--from ${file}: neither a disk image (no MBR/GPT boot signature) nor a model assertion (does not start with "type:")`, { file });
}
