/**
 * A complete private world for the composer's integration tests, along the lines of the
 * resolver's `makeWorld`: a root of trust, a brand (signs models and validation-sets), a store
 * (signs declarations and revisions), a directory store holding real bundles packed from trees —
 * A/B gadgets (GPT and MBR, small sizes so tests stay fast), a kernel with a fake `kernel.img`
 * and `initrd.img`, a base and an app — and helpers to sign models, resolve them with
 * `resolveModel` and compose them with `composeImage` into temporary folders.
 *
 * Also small checks with real host tools (sfdisk, debugfs, mtools) used by several test files.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Assertion, encodeStream, type PrivateKey, snapIdFor } from '@edgeimage/assertions';
import { BundleCache, resolveModel, Store, type Resolution } from '@edgeimage/store';
import type { TestChain } from '../../../../assertions/src/test-helpers/chain.js';
import { writeTree, type Entry } from '../../../../store/src/bundle/test-helpers/bundles.js';
import { pack } from '../../../../store/src/bundle/pack.js';
import { makeTrustedStore } from '../../../../store/src/resolver/test-helpers/world.js';
import { composeImage, type ComposeOptions, type ComposeResult } from '../compose.js';

export const STORE_ID = 'acme-store';
export const BRAND = 'acme';
/** The time every verification runs at (keys are valid from 2026-01-01). */
export const AT = new Date('2026-06-01T00:00:00Z');
export const MODEL_TIMESTAMP = '2026-03-01T00:00:00Z';
export const MiB = 1 << 20;
/** Real host tools on small images: allow for a slow machine. */
export const SLOW = 120_000;

/** The repository root and the built CLI (`tsc -b` must have run). */
export const REPO = fileURLToPath(new URL('../../../../../', import.meta.url));
export const CLI_BIN = join(REPO, 'packages/cli/bin/edgeimage.js');

export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** Incompressible but deterministic bytes. */
export function noise(n: number, seed: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 64 < n; i++) out.push(createHash('sha512').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const sha3 = (b: Uint8Array) => createHash('sha3-384').update(b).digest('hex');

export interface StructureSpec {
  name: string;
  role?: string;
  filesystem: string;
  label?: string;
  type: string;
  size: string;
  offset?: string;
  'offset-write'?: string;
  /** The GPT partition GUID. */
  id?: string;
  content?: ({ source: string; target: string } | { image: string })[];
}

/** One volume of a gadget.yaml (its lines, indented under `volumes:`). */
export function volumeYaml(volume: string, schema: 'gpt' | 'mbr', bootloader: string | undefined, structures: StructureSpec[], id?: string): string[] {
  const lines = [`  ${volume}:`, `    schema: ${schema}`];
  if (bootloader) lines.push(`    bootloader: ${bootloader}`);
  if (id) lines.push(`    id: ${id}`);
  lines.push('    structure:');
  for (const s of structures) {
    lines.push(`      - name: ${s.name}`);
    if (s.role) lines.push(`        role: ${s.role}`);
    lines.push(`        filesystem: ${s.filesystem}`);
    if (s.label) lines.push(`        filesystem-label: ${s.label}`);
    lines.push(`        type: ${s.type}`, `        size: ${s.size}`);
    if (s.offset) lines.push(`        offset: ${s.offset}`);
    if (s['offset-write']) lines.push(`        offset-write: ${s['offset-write']}`);
    if (s.id) lines.push(`        id: ${s.id}`);
    if (s.content?.length) {
      lines.push('        content:');
      for (const c of s.content) {
        if ('image' in c) lines.push(`          - image: ${c.image}`);
        else lines.push(`          - source: ${c.source}`, `            target: ${c.target}`);
      }
    }
  }
  return lines;
}

/** A gadget.yaml with one volume. */
export function gadgetYaml(volume: string, schema: 'gpt' | 'mbr', bootloader: string, structures: StructureSpec[], id?: string): string {
  return `${['volumes:', ...volumeYaml(volume, schema, bootloader, structures, id)].join('\n')}\n`;
}

/** The four A/B structures (like bundles/pc, with small sizes). */
export function abStructures(schema: 'gpt' | 'mbr', sizes: { boot?: string; slot?: string; data?: string } = {}): StructureSpec[] {
  const t = (gpt: string, mbr: string) => (schema === 'gpt' ? gpt : mbr);
  return [
    { name: 'system-boot', role: 'system-boot', filesystem: 'vfat', label: 'system-boot', type: t(ESP_TYPE, '0C'), size: sizes.boot ?? '16M', content: [{ source: 'boot-assets/', target: '/' }] },
    { name: 'system-a', role: 'system-a', filesystem: 'ext4', label: 'system-a', type: t(LINUX_TYPE, '83'), size: sizes.slot ?? '24M' },
    { name: 'system-b', role: 'system-b', filesystem: 'ext4', label: 'system-b', type: t(LINUX_TYPE, '83'), size: sizes.slot ?? '24M' },
    { name: 'system-data', role: 'system-data', filesystem: 'ext4', label: 'system-data', type: t(LINUX_TYPE, '83'), size: sizes.data ?? '16M' },
  ];
}

export const snapYaml = (name: string, type: string, arch: string) => `name: ${name}\nversion: '1.0'\ntype: ${type}\narchitectures: [${arch}]\n`;

/** The boot assets every test gadget carries (a fake EFI binary and a GRUB config). */
export const BOOT_ASSETS: Record<string, Entry> = {
  'boot-assets/EFI/BOOT/BOOTX64.EFI': noise(40_000, 'bootx64'),
  'boot-assets/EFI/edgeimage/grub.cfg': 'set timeout=0\nload_env --file ($root)/EFI/edgeimage/env1/env\n',
};

export function gadgetTree(name: string, yaml: string, opts: { arch?: string; snapYamlText?: string; extra?: Record<string, Entry> } = {}): Record<string, Entry> {
  return { 'meta/snap.yaml': opts.snapYamlText ?? snapYaml(name, 'gadget', opts.arch ?? 'amd64'), 'meta/gadget.yaml': yaml, ...BOOT_ASSETS, ...opts.extra };
}

export const KERNEL_IMG = noise(300_000, 'kernel.img');
export const INITRD_IMG = noise(100_000, 'initrd.img');

export function kernelTree(name: string, opts: { arch?: string; kernelImg?: boolean } = {}): Record<string, Entry> {
  return {
    'meta/snap.yaml': snapYaml(name, 'kernel', opts.arch ?? 'amd64'),
    ...(opts.kernelImg === false ? { 'vmlinuz-6.1.0': KERNEL_IMG } : { 'kernel.img': KERNEL_IMG }),
    'initrd.img': INITRD_IMG,
    'modules/6.1.0/modules.dep': '',
  };
}

export const baseTree = (name: string, arch = 'amd64'): Record<string, Entry> => ({
  'meta/snap.yaml': snapYaml(name, 'base', arch),
  'etc/os-release': 'NAME="edge base"\nID=edge\n',
  'bin/sh': { data: '#!/bin/true\n', mode: 0o755 },
});

export const appTree = (name: string, payload = 20_000): Record<string, Entry> => ({
  'meta/snap.yaml': `${snapYaml(name, 'app', 'all')}apps:\n  ${name}:\n    command: bin/${name}\n    daemon: simple\n`,
  [`bin/${name}`]: { data: '#!/bin/sh\necho hello\n', mode: 0o755 },
  'share/payload.bin': noise(payload, name),
});

export interface PublishedBundle {
  name: string;
  type: string;
  revision: number;
  /** The packed file (the same bytes the store holds). */
  file: string;
}

export interface ModelSpec {
  /** Model name (default `edge-pc`): the image is `<model>.img`. */
  model?: string;
  gadget?: string;
  kernel?: string;
  base?: string;
  apps?: string[];
  architecture?: string;
  grade?: 'signed' | 'dangerous' | 'secured';
  revision?: number;
  timestamp?: string;
}

export interface ImageWorld {
  dir: string;
  storeDir: string;
  store: Store;
  chain: TestChain;
  brandKey: PrivateKey;
  storeKey: PrivateKey;
  /** root account-key + account, store account-key + account. */
  trusted: Assertion[];
  /** Brand account and account-key: what travels with a model. */
  brandAssertions: Assertion[];
  bundles: Map<string, PublishedBundle>;
  snapId(name: string): string;
  /** Packs `tree` into a bundle file without publishing it (a local bundle for `--snap`). */
  pack(name: string, tree: Record<string, Entry>): Promise<string>;
  /** Packs `tree` and publishes it (to latest/stable); the latest publication of a name wins in `bundles`. */
  publish(name: string, tree: Record<string, Entry>): Promise<PublishedBundle>;
  /**
   * Signs a model naming gadget, kernel, base and apps (default: the standard GPT world). Grade
   * signed/secured models get a validation-set pinning the current revisions, published to the store.
   */
  model(spec?: ModelSpec): Promise<Assertion>;
  /** The model stream a user hands to `build`: brand account, account-key, model. */
  modelStream(model: Assertion): Buffer;
  /** Resolves with a fresh cache (or `cache`), at {@link AT}. */
  resolve(model: Assertion, opts?: { cache?: string; localBundles?: string[] }): Promise<Resolution>;
  /** composeImage into a fresh output folder (or `outputDir`). */
  compose(resolution: Resolution, opts?: Partial<ComposeOptions>): Promise<ComposeResult>;
  /** A fresh folder inside the world (removed by cleanup). */
  tempDir(prefix?: string): string;
  /** Writes the model stream and the trusted assertions as files, for the CLI. */
  files(model: Assertion, name?: string): { model: string; trusted: string[]; trustArgs: string[] };
  cleanup(): void;
}

/** Standard bundle names of the world. */
export const GADGET_GPT = 'edge-pc';
export const GADGET_MBR = 'edge-uboot';
export const KERNEL = 'edge-kernel';
export const BASE = 'edge-base';
export const APP = 'hello';

export async function makeImageWorld(): Promise<ImageWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeimage-image-world-'));
  chmodSync(dir, 0o755);
  const storeDir = join(dir, 'store');
  const { chain, brandKey, storeKey, store, trusted, brandAssertions } = await makeTrustedStore(storeDir);

  const bundles = new Map<string, PublishedBundle>();
  let n = 0;
  const tempDir = (prefix = 'tmp-') => {
    const d = mkdtempSync(join(dir, prefix));
    chmodSync(d, 0o755);
    return d;
  };
  const snapId = (name: string) => snapIdFor(STORE_ID, name);
  const packTree = async (name: string, tree: Record<string, Entry>) => {
    const src = writeTree(join(dir, 'trees', `${name}-${++n}`), tree);
    const out = join(dir, 'packed', String(n));
    mkdirSync(out, { recursive: true });
    return pack(src, { output: `${out}/` });
  };
  const publish = async (name: string, tree: Record<string, Entry>) => {
    const packed = await packTree(name, tree);
    const r = await store.publish(packed.path, { channel: 'stable', key: storeKey });
    const b = { name, type: packed.snap.type, revision: r.revision, file: packed.path };
    bundles.set(name, b);
    return b;
  };

  await publish(GADGET_GPT, gadgetTree(GADGET_GPT, gadgetYaml('pc', 'gpt', 'grub', abStructures('gpt'))));
  await publish(GADGET_MBR, gadgetTree(GADGET_MBR, gadgetYaml('uboot', 'mbr', 'u-boot', abStructures('mbr'))));
  await publish(KERNEL, kernelTree(KERNEL));
  await publish(BASE, baseTree(BASE));
  await publish(APP, appTree(APP));

  let sets = 0;
  const model = async (spec: ModelSpec = {}) => {
    const grade = spec.grade ?? 'signed';
    const snaps = [
      { name: spec.gadget ?? GADGET_GPT, type: 'gadget' },
      { name: spec.kernel ?? KERNEL, type: 'kernel' },
      { name: spec.base ?? BASE, type: 'base' },
      ...(spec.apps ?? [APP]).map((a) => ({ name: a, type: 'app' })),
    ];
    const headers: Record<string, unknown> = {
      type: 'model',
      'authority-id': BRAND,
      series: '16',
      'brand-id': BRAND,
      model: spec.model ?? 'edge-pc',
      architecture: spec.architecture ?? 'amd64',
      base: spec.base ?? BASE,
      grade,
      snaps: snaps.map((s) => ({ name: s.name, id: snapId(s.name), type: s.type, 'default-channel': 'latest/stable' })),
      timestamp: spec.timestamp ?? MODEL_TIMESTAMP,
    };
    if (spec.revision !== undefined) headers['revision'] = String(spec.revision);
    if (grade !== 'dangerous') {
      const name = `set-${++sets}`;
      const vs = chain.sign(
        {
          type: 'validation-set',
          'authority-id': BRAND,
          'account-id': BRAND,
          series: '16',
          name,
          sequence: '1',
          snaps: snaps.map((s) => {
            const b = bundles.get(s.name);
            if (!b) throw new Error(`image world: no bundle ${s.name} published`);
            return { name: s.name, id: snapId(s.name), presence: 'required', revision: String(b.revision) };
          }),
          timestamp: MODEL_TIMESTAMP,
        },
        brandKey,
      );
      await store.publishAssertion(vs);
      headers['validation-sets'] = [{ 'account-id': BRAND, name, mode: 'enforce' }];
    }
    return chain.sign(headers as never, brandKey);
  };

  const modelStream = (m: Assertion) => encodeStream([...brandAssertions, m].map((a) => a.encode()));
  const resolve = (m: Assertion, opts: { cache?: string; localBundles?: string[] } = {}) =>
    resolveModel([...brandAssertions, m], { store, trusted, at: AT, cache: new BundleCache(opts.cache ?? tempDir('cache-')), localBundles: opts.localBundles });
  const compose = (resolution: Resolution, opts: Partial<ComposeOptions> = {}) => composeImage({ resolution, trusted, outputDir: opts.outputDir ?? tempDir('out-'), ...opts });
  const files = (m: Assertion, name = 'model.assert') => {
    const fdir = join(dir, 'files');
    mkdirSync(fdir, { recursive: true });
    chmodSync(fdir, 0o755);
    const modelFile = join(fdir, name);
    writeFileSync(modelFile, modelStream(m), { mode: 0o644 });
    const trustedFiles = trusted.map((a, i) => {
      const p = join(fdir, `trusted-${i}.assert`);
      writeFileSync(p, encodeStream([a.encode()]), { mode: 0o644 });
      return p;
    });
    return { model: modelFile, trusted: trustedFiles, trustArgs: ['--no-default-trust', ...trustedFiles.flatMap((f) => ['--trusted', f])] };
  };
  return {
    dir,
    storeDir,
    store,
    chain,
    brandKey,
    storeKey,
    trusted,
    brandAssertions,
    bundles,
    snapId,
    pack: async (name, tree) => (await packTree(name, tree)).path,
    publish,
    model,
    modelStream,
    resolve,
    compose,
    tempDir,
    files,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// Checks with real host tools.

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

const TOOL_ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` };

/** Runs a host tool synchronously, in a fixed locale. */
export function sh(cmd: string, args: string[]): Ran {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: TOOL_ENV, maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a host tool that must succeed; returns its raw stdout. */
export function shBytes(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: TOOL_ENV, maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  bootable?: boolean;
}

export interface SfdiskTable {
  label: string;
  id: string;
  unit: string;
  sectorsize?: number;
  partitions: SfdiskPartition[];
}

export function sfdiskJson(image: string): SfdiskTable {
  const r = sh('sfdisk', ['--json', image]);
  if (r.status !== 0) throw new Error(`sfdisk --json ${image}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { partitiontable: SfdiskTable }).partitiontable;
}

/** A file of the ext4 filesystem at `offset` (debugfs; no mounting), or undefined when absent. */
export function ext4Cat(image: string, offset: number, path: string): Buffer | undefined {
  const r = spawnSync('debugfs', ['-R', `cat "${path}"`, `${image}?offset=${offset}`], { env: TOOL_ENV, maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  const err = r.stderr.toString();
  if (/File not found|not found by ext2_lookup/.test(err)) return undefined;
  if (r.status !== 0) throw new Error(`debugfs cat ${path}: ${err}`);
  return r.stdout;
}

/** Names in a directory of the ext4 filesystem at `offset` (without . and ..). */
export function ext4Ls(image: string, offset: number, path: string): string[] {
  const r = sh('debugfs', ['-R', `ls -p "${path}"`, `${image}?offset=${offset}`]);
  if (r.status !== 0) throw new Error(`debugfs ls ${path}: ${r.stderr}`);
  // -p: /INODE/MODE/UID/GID/NAME/SIZE/
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('/'))
    .map((l) => l.split('/')[5] ?? '')
    .filter((n) => n && n !== '.' && n !== '..')
    .sort();
}

/** Dumps the whole ext4 filesystem at `offset` into `dest` (debugfs rdump) and returns path → sha256. */
export function ext4Tree(image: string, offset: number, dest: string): Record<string, string> {
  mkdirSync(dest, { recursive: true });
  const r = sh('debugfs', ['-R', `rdump / "${dest}"`, `${image}?offset=${offset}`]);
  if (r.status !== 0) throw new Error(`debugfs rdump: ${r.stderr}`);
  return treeDigest(dest);
}

/** path → sha256 (files), `dir` (folders), `-> target` (symlinks), relative to `root`. */
export function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        walk(p, r);
      } else out[r] = sha256(readFileSync(p));
    }
  };
  walk(root, '');
  return out;
}

/** A file of the FAT filesystem at `offset` (mtools' mtype/mcopy), or undefined when absent. */
export function fatCat(image: string, offset: number, path: string): Buffer | undefined {
  const r = spawnSync('mtype', ['-i', `${image}@@${offset}`, `::${path}`], { env: { ...TOOL_ENV, MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    if (/not found/i.test(r.stderr.toString())) return undefined;
    throw new Error(`mtype ${path}: ${r.stderr.toString()}`);
  }
  return r.stdout;
}

/** The variables of a GRUB environment block (`# GRUB Environment Block`, key=value lines, # padding). */
export function grubVars(block: Buffer): Record<string, string> {
  const text = block.toString('latin1');
  const vars: Record<string, string> = {};
  for (const l of text.split('\n')) {
    if (!l || l.startsWith('#')) continue;
    const i = l.indexOf('=');
    vars[l.slice(0, i)] = l.slice(i + 1);
  }
  return vars;
}

/** The bytes of `[offset, offset + length)` of a file. */
export function slice(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Files of a folder (recursively), relative; `[]` when it does not exist. */
export function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel ? `${rel}/${n}` : n;
      out.push(r);
      if (lstatSync(p).isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

/**
 * A folder of symbolic links to every program on the host's PATH except `without` (their
 * names): a PATH on which those tools are missing.
 */
export function pathWithout(dir: string, without: readonly string[]): string {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin']) {
    if (!existsSync(d)) continue;
    for (const n of readdirSync(d)) {
      if (without.includes(n) || existsSync(join(dir, n))) continue;
      symlinkSync(join(d, n), join(dir, n));
    }
  }
  return dir;
}

/** mtools' programs (all links to `mtools`). */
export const MTOOLS = ['mtools', 'mattrib', 'mbadblocks', 'mcat', 'mcd', 'mclasserase', 'mcopy', 'mdel', 'mdeltree', 'mdir', 'mdu', 'mformat', 'minfo', 'mlabel', 'mmd', 'mmount', 'mmove', 'mpartition', 'mrd', 'mren', 'mshortname', 'mshowfat', 'mtoolstest', 'mtype', 'mzip', 'amuFormat.sh', 'mcheck', 'mcomp', 'mkmanifest', 'mxtar', 'tgz', 'uz', 'lz'];


/**
 * What is left in `dir` once it is empty or `ms` have passed: builders of other structures may
 * still be finishing (and removing their own temp folders) when a build has already failed.
 */
export async function leftAfter(dir: string, ms = 10_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = listFiles(dir);
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The code and message of what `p` rejects with (fails the test when it resolves). */
export async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string; context: Record<string, unknown>; error: Error }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code?: unknown; context?: Record<string, unknown> };
    return { code: String(err.code), message: err.message, context: err.context ?? {}, error: err };
  }
  throw new Error('expected a refusal, but it succeeded');
}
