import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuCommand } from '../machine.js';
import { QemuSession } from '../session.js';

/** What OVMF prints once its first start has written its boot options and tries them in turn. */
const INITIALIZED = /BdsDxe: (?:loading|failed to load) Boot\d+ "EFI Internal Shell"/;

/**
 * OVMF's variable store as the firmware leaves it after its first start on this machine: boot
 * options written for the disk slot and its own defaults. A device's firmware starts that way
 * once, at the factory; every boot of the OS after it finds an initialized store. A blank store
 * (Debian's OVMF_VARS_4M.fd) makes every test boot a never-started board, and OVMF's first start
 * took 0.7-0.9 s longer under TCG (3.6-3.9 s against 3.0 s), most of pc-amd64's firmware boot
 * over a direct boot (bench boot). The boot option written is the removable-media path of the
 * first virtio disk (`PciRoot(0x0)/Pci(0x2,0x0)`), which holds for every image booted on the same
 * machine layout. Made once by booting OVMF with an empty disk in that slot until it reaches its
 * shell, then kept in ~/.cache/edgeimage/firmware/ by the digests of the code and the blank store
 * (temporary name, then renamed). Undefined when that boot does not reach the shell in time: the
 * caller then uses the blank store.
 */
export async function initializedOvmfVars(code: string, blankVars: string, opts: { memoryMiB?: number; cacheDir?: string } = {}): Promise<string | undefined> {
  const digest = createHash('sha256').update(readFileSync(code)).update(readFileSync(blankVars)).update(String(opts.memoryMiB ?? 512)).digest('hex').slice(0, 16);
  const dir = opts.cacheDir ?? join(process.env['EDGEIMAGE_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'edgeimage'), 'firmware');
  const out = join(dir, `ovmf-vars-initialized-${digest}.fd`);
  if (existsSync(out) && statSync(out).size === statSync(blankVars).size) return out;
  const work = join(tmpdir(), `edgeimage-nvram-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(work, { recursive: true });
  let session: QemuSession | undefined;
  try {
    const vars = join(work, 'vars.fd');
    copyFileSync(blankVars, vars);
    const disk = join(work, 'empty.img');
    copyFileSync('/dev/null', disk);
    truncateSync(disk, 64 * 1024 * 1024);
    session = QemuSession.start(qemuCommand({ arch: 'amd64', accel: 'tcg', memoryMiB: opts.memoryMiB, disk, firmware: { kind: 'uefi', files: { code, vars } } }), { log: join(work, 'console.log') });
    try {
      await session.waitFor(INITIALIZED, 60_000);
    } catch {
      return undefined;
    }
    await session.kill();
    session = undefined;
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    copyFileSync(vars, tmp);
    renameSync(tmp, out);
    return out;
  } finally {
    await session?.kill();
    rmSync(work, { recursive: true, force: true });
  }
}
