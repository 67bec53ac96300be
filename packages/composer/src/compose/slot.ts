import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Assertion, CHANNEL_POINTER_TYPE, encodeStream, PublicKey, SigningKey, signedWithTestKeys } from '@edgeimage/assertions';
import type { Resolution, ResolvedBundle } from '@edgeimage/store';
import { ComposeError } from '../errors.js';
import { extractBundle, listBundle } from '../fs/bundle-files.js';
import { placeBundleVerity, type BundleVerityEntry } from '../verity/index.js';
import { stageSlotPayload, type BootSigners, type VerifiedBootKind } from '../verified/payload.js';
import { UPDATE_DEFAULTS } from '../update/conf.js';
import { ImageIdentity } from './identity.js';

const slotBundleFile = (b: { name: string; revision: number }) => `bundles/${b.name}_${b.revision}.snap`;

export interface StageSystemOptions {
  resolution: Resolution;
  /** Trust anchors the resolution was verified against (kept with the slot's assertions). */
  trusted: Assertion[];
  /** The model assertion; default: the one among the resolution's assertions. */
  modelAssertion?: Assertion;
  /** Where the slot tree is written; must not exist yet or be empty. */
  dir: string;
  /** Default: derived from the model (the same as composeImage's). */
  identity?: ImageIdentity;
  /**
   * The brand's boot signers: the slot gets a signed boot payload (a unified kernel image or a FIT
   * image, from the gadget's verified-boot/ inputs) instead of its kernel and initramfs files.
   */
  bootSigners?: BootSigners;
  /**
   * The channel the device follows (full form; default latest/stable): a pointer-only key
   * constrained to other channels stays out of the pointer trust store.
   */
  updateChannel?: string;
}

export interface StagedSystem {
  dir: string;
  /** The trust store's files, relative to the slot root (`trust/NAME.pem`), sorted. */
  trustStore: string[];
  /** The pointer trust store's files (`trust-pointer/KEYID.pem`), sorted. */
  pointerTrustStore: string[];
  /** The kernel files, relative to the slot root (`boot/kernel.img`, …), sorted. */
  kernel: string[];
  /** Each bundle's dm-verity parameters, in the resolution's order. */
  verity: BundleVerityEntry[];
  /** A verified slot: its signed boot payload (relative to the slot root). */
  payload?: { kind: VerifiedBootKind; files: string[] };
}

/**
 * Stages one complete system: the signed model and every assertion it rests on, the bundle files
 * exactly as resolved, the kernel (and initrd) for the bootloader, the device trust store and a
 * slot manifest. Both the composer's slots and update bundles come from here, so an image's slot
 * and an update's slot cannot differ.
 *
 * ```ts
 * const s = await stageSystem({ resolution, trusted, dir: 'work/slot' });
 * s.trustStore; // ['trust/acme-AbCdEf012345.pem', …]
 * ```
 */
export async function stageSystem(opts: StageSystemOptions): Promise<StagedSystem> {
  const r = opts.resolution;
  const model = opts.modelAssertion ?? r.assertions.find((a) => a.type === 'model');
  if (!model) throw new ComposeError('ERR_NO_MODEL', `the resolution of ${r.model.brandId}/${r.model.model} carries no model assertion`);
  const kernel = r.bundles.find((b) => b.type === 'kernel');
  if (!kernel) throw new ComposeError('ERR_NO_KERNEL', `${r.model.brandId}/${r.model.model} has no kernel snap`);
  deviceAgent(r);
  const id = opts.identity ?? new ImageIdentity(r.model.brandId, r.model.model, r.model.revision, r.model.timestamp);
  mkdirSync(opts.dir, { recursive: true });
  // Next to the slot, not inside it: the slot holds only what the device gets.
  const scratch = mkdtempSync(`${opts.dir}.kernel-`);
  try {
    const kernelDir = join(scratch, 'files');
    // Each bundle's dm-verity tree next to it (verity/), hashed while the kernel is unpacked.
    mkdirSync(join(opts.dir, 'bundles'), { recursive: true });
    const [, verity] = await Promise.all([extractKernel(kernel, kernelDir), Promise.all(r.bundles.map((b) => placeBundleVerity(b, join(opts.dir, `${slotBundleFile(b)}.verity`), `${slotBundleFile(b)}.verity`)))]);
    const payload = opts.bootSigners ? await verifiedPayload(opts.dir, scratch, kernelDir, r, id, verity, opts.bootSigners) : undefined;
    const { trustStore, pointerTrustStore } = stageSlot(opts.dir, r, opts.trusted, model, kernelDir, id, verity, opts.updateChannel ?? UPDATE_DEFAULTS.channel, payload);
    return { dir: opts.dir, trustStore, pointerTrustStore, kernel: payload ? [] : readdirSync(kernelDir).sort().map((f) => `boot/${f}`), verity, ...(payload ? { payload } : {}) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The model's device agent: its one snap of type `snapd` (as Ubuntu Core models name snapd), which
 * the initramfs mounts at /run/edgeimage/agent and every base's init calls (update, health, boot
 * environment, first-boot growth). Without it the device would boot and never commit or update.
 */
export function deviceAgent(r: Resolution): ResolvedBundle {
  const agents = r.bundles.filter((b) => b.type === 'snapd');
  const model = `${r.model.brandId}/${r.model.model}`;
  if (agents.length === 0) {
    throw new ComposeError('ERR_NO_AGENT', `model ${model} has no snap of type snapd (the device agent, which updates the device, checks its health and commits a try boot): add the snap edge-agent with type: snapd to the model's snaps (and its validation set)`, { model });
  }
  if (agents.length > 1) {
    throw new ComposeError('ERR_SEVERAL_AGENTS', `model ${model} has ${agents.length} snaps of type snapd (${agents.map((a) => a.name).join(', ')}): the device mounts exactly one agent; keep one`, { model, agents: agents.map((a) => a.name) });
  }
  return agents[0]!;
}

/**
 * The slot's signed boot payload, from the kernel bundle's files (unpacked in kernelDir) and
 * the gadget's verified-boot/ inputs (the gadget is unpacked here: an update stages its slot
 * without the composer's copy of it).
 */
async function verifiedPayload(dir: string, scratch: string, kernelDir: string, r: Resolution, id: ImageIdentity, verity: BundleVerityEntry[], signers: BootSigners): Promise<{ kind: VerifiedBootKind; files: string[] }> {
  const gadget = r.bundles.find((b) => b.type === 'gadget');
  if (!gadget) throw new ComposeError('ERR_NO_GADGET', `${r.model.brandId}/${r.model.model} has no gadget snap: nothing provides its verified boot chain`);
  const gadgetDir = join(scratch, 'gadget');
  await extractBundle({ name: gadget.name, revision: gadget.revision, path: gadget.path, type: 'gadget' }, gadgetDir);
  const base = r.bundles.find((b) => b.type === 'base');
  if (!base) throw new ComposeError('ERR_NO_BASE', `${r.model.brandId}/${r.model.model} has no base snap: a verified slot mounts its base through dm-verity`);
  return stageSlotPayload({
    slotDir: dir,
    kernelDir,
    gadgetDir,
    gadget: `${gadget.name}_${gadget.revision}.snap`,
    arch: r.model.architecture ?? '',
    grade: r.model.grade,
    brandModel: `${r.model.brandId}/${r.model.model}`,
    revision: r.model.revision,
    sourceDateEpoch: id.sourceDateEpoch,
    base: slotBundleFile(base),
    agent: slotBundleFile(deviceAgent(r)),
    kernel: slotBundleFile(r.bundles.find((b) => b.type === 'kernel')!),
    apps: r.bundles.filter((b) => b.type === 'app').map(slotBundleFile),
    verity,
    signers,
  });
}

/**
 * kernel.img (and initrd.img when present) from the kernel bundle, for the bootloader: regular
 * files inside the bundle, of a bounded size (extractBundle refuses anything else before
 * unpacking).
 */
async function extractKernel(kernel: ResolvedBundle, dir: string): Promise<void> {
  const ref = { name: kernel.name, revision: kernel.revision, path: kernel.path, type: 'kernel' };
  const top = (await listBundle(ref)).filter((e) => !e.path.includes('/')).map((e) => e.path);
  if (!top.includes('kernel.img')) {
    throw new ComposeError('ERR_KERNEL_NO_IMAGE', `kernel bundle ${kernel.name} revision ${kernel.revision} has no kernel.img at its top level (found: ${top.join(', ') || 'nothing'})`, { bundle: kernel.name });
  }
  await extractBundle(ref, dir, { files: ['kernel.img', ...(top.includes('initrd.img') ? ['initrd.img'] : [])] });
}

/**
 * The device trust store: the keys allowed to sign updates for this model, which are the brand's
 * keys from the verified chain that are valid at build time. A root's or a store's key never
 * signs an update, and an expired or future key must not become one on the device. Nor may a
 * key whose `constraints` do not admit this model (say `model: kiosk-.*` on a robot): the trust
 * database would refuse it for this model, so it must not sign the model's updates.
 */
export function deviceTrustKeys(r: Resolution, trusted: Assertion[], model: Assertion): Assertion[] {
  return [...trusted, ...r.assertions].filter((a) => {
    if (a.type !== 'account-key' || !a.body || a.header('account-id') !== r.model.brandId) return false;
    const key = SigningKey.fromAccountKey(a);
    return key.isValidAt(r.at) && (key.constraints === undefined || key.constraints.allows(model));
  });
}

/**
 * The device's pointer trust store: the keys allowed to sign the channel pointers the device
 * follows, and nothing else. As `update release` and `channel show` check a pointer key: an
 * account-key of the model's brand whose constraints are all of type channel-pointer (never the
 * model key, which must stay offline), admitting this model and channel, valid at build time.
 * They are kept apart from trust/ because a pointer key must never be able to sign an update.
 */
export function devicePointerKeys(r: Resolution, trusted: Assertion[], channel: string): Assertion[] {
  return [...trusted, ...r.assertions].filter((a) => {
    if (a.type !== 'account-key' || !a.body || a.header('account-id') !== r.model.brandId) return false;
    const key = SigningKey.fromAccountKey(a);
    if (!key.constraints?.pointerOnly || !key.isValidAt(r.at)) return false;
    return key.constraints.allowsHeaders({ type: CHANNEL_POINTER_TYPE, 'brand-id': r.model.brandId, model: r.model.model, channel });
  });
}

/** Writes the slot tree; returns the trust stores' file names. */
function stageSlot(dir: string, r: Resolution, trusted: Assertion[], model: Assertion, kernelDir: string, id: ImageIdentity, verity: BundleVerityEntry[], updateChannel: string, payload?: { kind: VerifiedBootKind; files: string[] }): { trustStore: string[]; pointerTrustStore: string[] } {
  mkdirSync(join(dir, 'bundles'), { recursive: true });
  mkdirSync(join(dir, 'boot'), { recursive: true });
  mkdirSync(join(dir, 'trust'), { recursive: true });
  writeFileSync(join(dir, 'model.assert'), model.encode());
  const others = [...r.assertions.filter((a) => a !== model)].sort((a, b) => (a.type + a.content.toString()).localeCompare(b.type + b.content.toString()));
  writeFileSync(join(dir, 'assertions.assert'), encodeStream([...trusted, ...others].map((a) => a.encode())));
  for (const b of r.bundles) copyFileSync(b.path, join(dir, 'bundles', `${b.name}_${b.revision}.snap`));
  // A verified slot's payload (written before) replaces the kernel files; slot.env stays for the
  // host's tools (inspect, scenarios): a verified initramfs never reads it, its own copy is signed.
  if (!payload) for (const f of readdirSync(kernelDir)) copyFileSync(join(kernelDir, f), join(dir, 'boot', f));
  // What the initramfs sources to find the slot's bundles (names and revisions need no quoting);
  // the kernel bundle is mounted too, for the modules a base loads at run time.
  const slotFile = (b: { name: string; revision: number }) => `bundles/${b.name}_${b.revision}.snap`;
  const base = r.bundles.find((b) => b.type === 'base');
  const apps = r.bundles.filter((b) => b.type === 'app').map(slotFile);
  const agent = slotFile(deviceAgent(r));
  const kernel = r.bundles.find((b) => b.type === 'kernel');
  // EDGE_GRADE: the model's grade, where the device reads it (the slot is covered by the update
  // manifest's signature; system-boot is not): only grade dangerous keeps the device's test hooks.
  writeFileSync(join(dir, 'boot', 'slot.env'), `EDGE_BASE=${base ? slotFile(base) : ''}\nEDGE_AGENT=${agent}\nEDGE_KERNEL=${kernel ? slotFile(kernel) : ''}\nEDGE_APPS="${apps.join(' ')}"\nEDGE_GRADE=${r.model.grade}\n`);
  const keyAssertions = deviceTrustKeys(r, trusted, model);
  const names: string[] = [];
  const seen = new Set<string>();
  for (const a of keyAssertions) {
    const account = a.header('account-id')!;
    const keyId = a.header('public-key-sha3-384')!;
    if (seen.has(keyId)) continue;
    seen.add(keyId);
    const name = `${account}-${keyId.slice(0, 12)}.pem`;
    writeFileSync(join(dir, 'trust', name), PublicKey.fromAccountKeyBody(a.body!.toString()).toPem());
    names.push(`trust/${name}`);
  }
  // The full key id as the name: the pointer's sign-key-sha3-384 line names the file to verify
  // with. Computed from the key itself, so a file name is never taken from a header.
  const pointerNames: string[] = [];
  for (const a of devicePointerKeys(r, trusted, updateChannel)) {
    const key = PublicKey.fromAccountKeyBody(a.body!.toString());
    const file = `trust-pointer/${key.id}.pem`;
    if (pointerNames.includes(file)) continue;
    mkdirSync(join(dir, 'trust-pointer'), { recursive: true });
    writeFileSync(join(dir, file), key.toPem());
    pointerNames.push(file);
  }
  pointerNames.sort();
  const slotManifest = {
    format: 1,
    model: { 'brand-id': r.model.brandId, model: r.model.model, revision: r.model.revision },
    bundles: r.bundles.map((b, i) => ({ name: b.name, type: b.type, revision: b.revision, 'sha3-384': b['sha3-384'], file: `bundles/${b.name}_${b.revision}.snap`, verity: verity[i]! })),
    kernel: payload ? [] : readdirSync(kernelDir).sort().map((f) => `boot/${f}`),
    ...(payload ? { 'verified-boot': payload } : {}),
    'trust-store': names.sort(),
    // Only when there is one: the slot manifests of images without pointer keys keep their bytes.
    ...(pointerNames.length ? { 'pointer-trust-store': pointerNames } : {}),
    'source-date-epoch': id.sourceDateEpoch,
    // The example root's private key is public: say so wherever the image is looked at.
    ...(signedWithTestKeys(model, [...trusted, ...r.assertions]) ? { 'test-keys': true } : {}),
  };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(slotManifest, null, 2)}\n`);
  return { trustStore: names.sort(), pointerTrustStore: pointerNames };
}
