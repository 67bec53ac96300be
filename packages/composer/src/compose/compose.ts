import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { makePlan, type PlanOptions } from './plan.js';
import { writePlan, type ComposeEvent, type ComposeResult, type WriteOptions } from './write.js';

export type { OutputFormat } from './plan.js';
export type { ImageManifest, PartitionManifest } from './manifest.js';
export { sha256File, type ComposeEvent, type ComposeResult } from './write.js';
export { MAPPED_DIGEST, type DigestMode } from './digest.js';

export interface ComposeOptions extends Omit<PlanOptions, 'onEvent'>, Omit<WriteOptions, 'inProgress' | 'onEvent'> {
  onEvent?: (e: ComposeEvent) => void;
}

/** Temp files and folders of builds in progress, removed on exit (Ctrl-C included: see the CLI). */
export const inProgress = new Set<string>();
export function removeInProgress(): void {
  for (const p of inProgress) rmSync(p, { recursive: true, force: true });
  inProgress.clear();
}

/**
 * Composes the A/B disk image of a resolved model: plans it ({@link makePlan}: unpacks the
 * gadget, lays out its volumes, stages every filesystem's tree), then writes the plan
 * ({@link writePlan}: filesystems built in their place in a sparse file under a temporary name,
 * the partition table, the outputs, renamed into place at the end). Rootless: nothing is mounted.
 *
 * ```ts
 * const r = await composeImage({ resolution, trusted, outputDir: 'images' });
 * r.images[0].path; // images/pc-amd64.img
 * ```
 */
export async function composeImage(opts: ComposeOptions): Promise<ComposeResult> {
  checkOutputDir(opts.outputDir);
  const work = mkdtempSync(join(tmpdir(), 'edgeimage-compose-'));
  inProgress.add(work);
  try {
    const { plan, workspace } = await makePlan(opts, work);
    return await writePlan(plan, workspace, { onEvent: opts.onEvent, digests: opts.digests, beforeImageWrite: opts.beforeImageWrite, inProgress });
  } finally {
    rmSync(work, { recursive: true, force: true });
    inProgress.delete(work);
  }
}

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
