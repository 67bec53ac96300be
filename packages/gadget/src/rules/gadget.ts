/** Rules across the whole gadget.yaml: the bootloader, defaults, connections, volume-assignments. */
import type { RawGadget } from '../lib/schema.js';
import type { Volume } from '../types.js';
import type { Ctx } from './context.js';

const SNAP_ID = /^[a-z0-9A-Z]{32}$/;
const systemOrSnapId = (s: string) => s === 'system' || SNAP_ID.test(s);

/** Exactly one volume names a bootloader (snapd: "bootloader not declared in any volume" / "too many (N) bootloaders declared"). */
export function checkBootloaders(ctx: Ctx, volumes: Volume[]): void {
  const with_ = volumes.filter((v) => v.bootloader !== undefined);
  if (with_.length === 0) {
    ctx.failKey('ERR_GADGET_BOOTLOADER', 'bootloader not declared in any volume: exactly one volume names its bootloader (grub, u-boot, android-boot, piboot or lk)', [], 'volumes');
  }
  if (with_.length > 1) {
    const second = with_[1]!;
    ctx.fail(
      'ERR_GADGET_BOOTLOADER',
      `too many (${with_.length}) bootloaders declared: volumes ${with_.map((v) => JSON.stringify(v.name)).join(', ')}; exactly one volume names the bootloader`,
      ['volumes', second.name, 'bootloader'],
    );
  }
}

export function checkDefaults(ctx: Ctx, g: RawGadget): void {
  for (const [key, value] of Object.entries(g.defaults ?? {})) {
    if (!systemOrSnapId(key)) ctx.failKey('ERR_GADGET_VALUE', `default stanza not keyed by "system" or a snap-id (32 letters and digits): ${JSON.stringify(key)}`, ['defaults'], key);
    if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
      ctx.fail('ERR_GADGET_VALUE', `defaults for ${JSON.stringify(key)} must be a map of configuration keys to values`, ['defaults', key]);
    }
  }
}

/** `plug: (SNAP-ID|system):PLUG`, optional `slot: (SNAP-ID|system):SLOT`. */
export function checkConnections(ctx: Ctx, g: RawGadget): void {
  (g.connections ?? []).forEach((c, i) => {
    for (const key of ['plug', 'slot'] as const) {
      const v = c[key];
      if (v === undefined) continue;
      const parts = v.split(':');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        ctx.fail('ERR_GADGET_VALUE', `connection #${i}: ${key}: expected "(<snap-id>|system):name", not ${JSON.stringify(v)}`, ['connections', i, key]);
      }
      if (!systemOrSnapId(parts[0])) ctx.fail('ERR_GADGET_VALUE', `connection #${i}: ${key}: ${JSON.stringify(parts[0])} is neither "system" nor a snap-id`, ['connections', i, key]);
    }
  });
}

/** Each variant assigns existing volumes to /dev/disk/by-path or by-id devices; no two variants are identical. */
export function checkVolumeAssignments(ctx: Ctx, g: RawGadget, volumes: ReadonlySet<string>): void {
  const seen = new Map<string, string>();
  (g['volume-assignments'] ?? []).forEach((va, i) => {
    const path = ['volume-assignments', i];
    const name = va['assignment-name'];
    const entries = Object.entries(va.assignment);
    if (entries.length === 0) ctx.fail('ERR_GADGET_VALUE', `volume-assignment ${JSON.stringify(name)}: no assignments specified`, [...path, 'assignment']);
    for (const [vol, da] of entries) {
      if (!volumes.has(vol)) ctx.failKey('ERR_GADGET_VALUE', `volume-assignment ${JSON.stringify(name)}: volume ${JSON.stringify(vol)} is not defined`, [...path, 'assignment'], vol);
      if (!da.device.startsWith('/dev/disk/by-path') && !da.device.startsWith('/dev/disk/by-id')) {
        ctx.fail('ERR_GADGET_VALUE', `volume-assignment ${JSON.stringify(name)}: ${JSON.stringify(vol)}: unsupported device path ${JSON.stringify(da.device)}, only paths under /dev/disk/{by-path,by-id} are valid`, [
          ...path,
          'assignment',
          vol,
          'device',
        ]);
      }
    }
    const key = entries
      .map(([vol, da]) => `${vol}\0${da.device}`)
      .sort()
      .join('\n');
    const twin = seen.get(key);
    if (twin !== undefined) ctx.fail('ERR_GADGET_VALUE', `volume-assignment ${JSON.stringify(name)}: identical to ${JSON.stringify(twin)}`, path);
    seen.set(key, name);
  });
}
