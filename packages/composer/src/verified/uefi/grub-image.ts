/**
 * GRUB for a verified image: one EFI binary with its configuration built in (a memdisk), the
 * `pgp` verifier enforcing detached signatures with the db key, Authenticode-signed with db.
 * Nothing it runs is read from the ESP unsigned: under Secure Boot GRUB locks down and loads no
 * module from disk, so every module the configuration uses is built in.
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ComposeError } from '../../errors.js';
import { runTool } from '../../fs/tool.js';
import { writeTar } from '../../update/tar.js';
import { signPe, type PeSigner } from './authenticode.js';
import { grubPublicKey } from './grub-pgp.js';

export type GrubEfiFormat = 'x86_64-efi' | 'arm64-efi';

/** What a verified GRUB configuration can use (the slot search, boot counting, chainloading) plus the verifier. */
export const GRUB_VERIFIED_MODULES: readonly string[] = [
  'part_gpt', 'part_msdos', 'fat', 'ext2', 'normal', 'chain', 'loadenv', 'test', 'true', 'echo', 'regexp', 'sleep',
  'reboot', 'halt', 'probe', 'memdisk', 'tar', 'pgp', 'gcry_rsa', 'gcry_sha512',
];

/** Files grub-mkimage reads from the module folder besides the modules: the kernel and the dependency list. */
const GRUB_MKIMAGE_FILES = ['kernel.img', 'moddep.lst'];
const MAX_MODDEP = 1 << 20;
const MODULE_NAME = /^[a-z0-9_-]{1,64}$/;

export interface SignedGrubOptions {
  format: GrubEfiFormat;
  /** A GRUB module folder: /usr/lib/grub/x86_64-efi, a gadget's verified-boot/grub/<format>/. */
  moduleDir: string;
  /** The grub.cfg built in, as (memdisk)/boot/grub/grub.cfg. */
  config: string;
  signer: PeSigner;
  /** Defaults to {@link GRUB_VERIFIED_MODULES}. */
  modules?: readonly string[];
  /** Where the private work folder goes (default the OS temp folder); it is removed either way. */
  tmpDir?: string;
}

function modulesError(moduleDir: string, message: string, context: Record<string, unknown> = {}): ComposeError {
  return new ComposeError('ERR_GRUB_MODULES', `GRUB module folder ${moduleDir}: ${message}`, { moduleDir, ...context });
}

/** moddep.lst as module → dependencies, bounded. */
function readModdep(moduleDir: string): Map<string, string[]> {
  const file = join(moduleDir, 'moddep.lst');
  let text: string;
  try {
    const st = lstatSync(file);
    if (!st.isFile() || st.size > MAX_MODDEP) throw modulesError(moduleDir, `moddep.lst is ${st.isFile() ? `${st.size} bytes, over ${MAX_MODDEP}` : 'not a regular file'}`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ComposeError) throw e;
    throw modulesError(moduleDir, `cannot read moddep.lst (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is it a GRUB module folder?`);
  }
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]{1,64}):((?: [^:\s]{1,64}){0,256})\s*$/.exec(line);
    if (m) deps.set(m[1]!, m[2]!.split(' ').filter(Boolean));
  }
  return deps;
}

/** `modules` and everything they depend on, checked to exist as `<name>.mod` in `moduleDir`. */
function moduleClosure(moduleDir: string, modules: readonly string[]): string[] {
  const deps = readModdep(moduleDir);
  const seen = new Set<string>();
  const queue = [...modules];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    if (!MODULE_NAME.test(name)) throw modulesError(moduleDir, `${JSON.stringify(name)} is not a GRUB module name`, { module: name });
    if (!existsSync(join(moduleDir, `${name}.mod`))) throw modulesError(moduleDir, `module ${name} (${name}.mod) is missing`, { module: name });
    seen.add(name);
    queue.push(...(deps.get(name) ?? []));
  }
  return [...seen].sort();
}

/**
 * Copies the named modules, their dependencies (moddep.lst), moddep.lst and kernel.img from
 * `moduleDir` into `destDir` (which must not exist; made whole or not at all), so a gadget ships
 * only what grub-mkimage needs to build the verified GRUB. Returns the file names copied.
 *
 * @example
 * grubModuleSubset('/usr/lib/grub/x86_64-efi', GRUB_VERIFIED_MODULES, 'gadget/verified-boot/grub/x86_64-efi');
 */
export function grubModuleSubset(moduleDir: string, modules: readonly string[], destDir: string): string[] {
  const files = [...GRUB_MKIMAGE_FILES, ...moduleClosure(moduleDir, modules).map((m) => `${m}.mod`)];
  for (const f of GRUB_MKIMAGE_FILES) if (!existsSync(join(moduleDir, f))) throw modulesError(moduleDir, `${f} is missing`, { file: f });
  if (existsSync(destDir)) throw new ComposeError('ERR_FS_OUTPUT_EXISTS', `${destDir} exists already: the GRUB module subset is written to a new folder`, { path: destDir });
  mkdirSync(dirname(destDir), { recursive: true });
  const tmp = mkdtempSync(join(dirname(destDir), `.${basename(destDir)}.tmp-`));
  try {
    for (const f of files) copyFileSync(join(moduleDir, f), join(tmp, f));
    renameSync(tmp, destDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return files;
}

/**
 * Builds and signs the verified GRUB: grub-mkimage with `--disable-shim-lock` (there is no shim),
 * the db key as its OpenPGP key (`--pubkey`), an early config setting `check_signatures=enforce`,
 * and a memdisk holding boot/grub/grub.cfg = `config` (prefix `(memdisk)/boot/grub`, so no
 * grub.cfg on the ESP is ever read), then Authenticode-signed with `signer`. Deterministic.
 *
 * @example
 * const efi = await buildSignedGrub({ format: 'x86_64-efi', moduleDir: '/usr/lib/grub/x86_64-efi', config, signer });
 */
export async function buildSignedGrub(opts: SignedGrubOptions): Promise<Buffer> {
  if (opts.format !== 'x86_64-efi' && opts.format !== 'arm64-efi') throw new ComposeError('ERR_GRUB_FORMAT', `GRUB format ${JSON.stringify(opts.format)}, expected x86_64-efi or arm64-efi`);
  const modules = moduleClosure(opts.moduleDir, opts.modules ?? GRUB_VERIFIED_MODULES);
  for (const f of GRUB_MKIMAGE_FILES) if (!existsSync(join(opts.moduleDir, f))) throw modulesError(opts.moduleDir, `${f} is missing`, { file: f });
  const work = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'edgeimage-grub-'));
  try {
    const pubkey = join(work, 'pubkey.pgp');
    const early = join(work, 'early.cfg');
    const memdisk = join(work, 'memdisk.tar');
    const out = join(work, 'grub.efi');
    writeFileSync(pubkey, grubPublicKey(opts.signer.key));
    // Set before the memdisk config runs, and exported so a configfile/submenu cannot drop it.
    writeFileSync(early, 'set check_signatures=enforce\nexport check_signatures\n');
    await writeTar(memdisk, [{ name: 'boot/grub/grub.cfg', data: Buffer.from(opts.config, 'utf8') }]);
    await runTool('grub-mkimage', [
      '-O', opts.format, '-d', opts.moduleDir, '--disable-shim-lock', '--pubkey', pubkey, '-c', early, '-m', memdisk,
      '-p', '(memdisk)/boot/grub', '-o', out, ...modules,
    ]);
    return signPe(readFileSync(out), opts.signer);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
