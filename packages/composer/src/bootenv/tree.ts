import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkEnvState, encodeGrubEnv, ENV_FILES, type BootEnv } from './env.js';

/**
 * Writes the redundant boot environment into a staging tree (the future root of `system-boot`):
 * both copies hold `vars`, both locks `editing=0`. Synchronous, so it can run just before the
 * tree is handed to the vfat builder.
 *
 * @example
 * writeEnvTree('work/stage/boot', initialEnv());
 * // work/stage/boot/EFI/edgeimage/env1/{env,lock}, …/env2/{env,lock}
 */
export function writeEnvTree(dir: string, vars: BootEnv): void {
  checkEnvState(vars);
  const env = encodeGrubEnv(vars);
  const lock = encodeGrubEnv({ editing: '0' });
  const files: [string, Buffer][] = [
    [ENV_FILES.env1, env],
    [ENV_FILES.lock1, lock],
    [ENV_FILES.env2, env],
    [ENV_FILES.lock2, lock],
  ];
  for (const [rel, bytes] of files) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes, { mode: 0o644 });
  }
}
