import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { runTool } from '../fs/tool.js';
import { chooseEnv, encodeGrubEnv, ENV_FILES, ENV_WRITE_STEPS, setEnvVars, type BootEnv, type ChosenEnv, type EnvFile, type EnvFiles, type EnvWriteStep } from './env.js';

/**
 * Offline access to the boot environment of a disk image: the FAT filesystem of `system-boot`
 * starting at byte `partitionOffset` of `image`, reached with mtools (`-i image@@offset`); nothing
 * is mounted, nothing needs root.
 */

export interface WriteImageEnvOptions {
  /** Time stamped on the rewritten files (default: now). */
  timestamp?: Date;
  /** Called after each protocol step has been written and synced (tests interrupt here). */
  onStep?: (step: EnvWriteStep, index: number) => void | Promise<void>;
}

/**
 * Reads the four files of the redundant environment; a file that is not there is left out.
 *
 * @example
 * const files = await readImageEnvFiles('images/pc.img', 1048576);
 */
export async function readImageEnvFiles(image: string, partitionOffset: number): Promise<EnvFiles> {
  const spec = await imageSpec(image, partitionOffset);
  const tmp = await mkdtemp(join(tmpdir(), 'edgeimage-env-'));
  try {
    const files: EnvFiles = {};
    for (const key of Object.keys(ENV_FILES) as EnvFile[]) {
      const out = join(tmp, key);
      const r = await runTool('mcopy', ['-n', '-i', spec, `::/${ENV_FILES[key]}`, out], { check: false });
      if (r.code === 0) files[key] = await readFile(out);
      else if (!/not found/i.test(r.stderr)) {
        throw new ComposeError('ERR_TOOL_FAILED', `${image}: cannot read ${ENV_FILES[key]} from the FAT filesystem at offset ${partitionOffset}: ${r.stderr.trim()}`, { image, partitionOffset, file: ENV_FILES[key] });
      }
    }
    return files;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Reads the boot environment following the protocol: env1 unless lock1 says `editing=1` or env1
 * is unusable, else env2. Returns the variables and which copy they came from.
 *
 * @example
 * const { vars } = await readImageEnv('images/pc.img', 1048576); // vars.edge_slot === 'a'
 */
export async function readImageEnv(image: string, partitionOffset: number): Promise<ChosenEnv> {
  const files = await readImageEnvFiles(image, partitionOffset);
  try {
    return chooseEnv(files);
  } catch (err) {
    if (err instanceof ComposeError) throw new ComposeError(err.code, `${image} (FAT at offset ${partitionOffset}): ${err.message}`, { ...err.context, image, partitionOffset });
    throw err;
  }
}

/**
 * Changes variables (`null` removes one) following the write protocol: lock1 `editing=1` →
 * env1 → lock1 `editing=0` → lock2 `editing=1` → env2 → lock2 `editing=0`, each file rewritten
 * whole with `mcopy -o` and the image synced after each step. Returns the new variables.
 *
 * @example
 * await writeImageEnv('images/pc.img', 1048576, { edge_try_slot: 'b', edge_status: 'try' });
 */
export async function writeImageEnv(image: string, partitionOffset: number, changes: Record<string, string | null>, opts: WriteImageEnvOptions = {}): Promise<BootEnv> {
  const { vars } = await readImageEnv(image, partitionOffset);
  const next = setEnvVars(vars, changes);
  const blocks = { env: encodeGrubEnv(next), '0': encodeGrubEnv({ editing: '0' }), '1': encodeGrubEnv({ editing: '1' }) };
  for (const [i, step] of ENV_WRITE_STEPS.entries()) {
    await writeImageFile(image, partitionOffset, ENV_FILES[step.file], 'editing' in step ? blocks[step.editing] : blocks.env, opts.timestamp);
    await opts.onStep?.(step, i);
  }
  return next;
}

/**
 * Replaces one file of the FAT filesystem at `partitionOffset` with `bytes` (`mcopy -o`) and
 * syncs the image. The protocol's building block; tests use it to build interrupted states.
 */
export async function writeImageFile(image: string, partitionOffset: number, path: string, bytes: Uint8Array, timestamp?: Date): Promise<void> {
  const spec = await imageSpec(image, partitionOffset);
  const tmp = await mkdtemp(join(tmpdir(), 'edgeimage-env-'));
  try {
    const src = join(tmp, 'file');
    await writeFile(src, bytes);
    const env = timestamp ? { SOURCE_DATE_EPOCH: String(Math.floor(timestamp.getTime() / 1000)) } : undefined;
    const r = await runTool('mcopy', ['-o', '-i', spec, src, `::/${path}`], { env, check: false });
    if (r.code !== 0 || /\S/.test(r.stderr)) {
      throw new ComposeError('ERR_TOOL_FAILED', `${image}: cannot write ${path} to the FAT filesystem at offset ${partitionOffset}: ${r.stderr.trim() || `mcopy exit ${r.code}`}`, { image, partitionOffset, file: path });
    }
    const fh = await open(image, 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function imageSpec(image: string, partitionOffset: number): Promise<string> {
  if (!Number.isSafeInteger(partitionOffset) || partitionOffset < 0) {
    throw new ComposeError('ERR_IMAGE_RANGE', `${image}: partition offset ${partitionOffset} is not a non-negative integer`, { image, partitionOffset });
  }
  if (image.includes('@@')) throw new ComposeError('ERR_IMAGE_OPEN', `${image}: mtools cannot address a path containing "@@"`, { image });
  let size: number;
  try {
    size = (await stat(image)).size;
  } catch (err) {
    throw new ComposeError('ERR_IMAGE_OPEN', `cannot open ${image}: ${(err as Error).message}`, { image });
  }
  if (partitionOffset >= size) throw new ComposeError('ERR_IMAGE_RANGE', `${image}: partition offset ${partitionOffset} is past the end of the ${size}-byte image`, { image, partitionOffset, size });
  return `${image}@@${partitionOffset}`;
}
