import type { BootEnv } from './env.js';

/**
 * The A/B state machine of bundles/bootloader/README.md "The boot state machine", as the host
 * models it: what GRUB's grub.cfg and U-Boot's boot.cmd do at one start, and what the device's
 * health check writes once healthy (`bootenv healthy SLOT`). The scripts are the implementations;
 * this is the table's third reader, so that bundles/bootloader/env-cases.json ("counting") is
 * checked on the host as well as on the device and, for some rows, in QEMU.
 */
export type BootSlot = 'a' | 'b';

/** Boots of the known-good slot without a healthy one, before the bootloader leaves it. */
export const MAX_UNCONFIRMED_BOOTS = 3;

export interface BootloaderStart {
  /** The slots the bootloader booted, in order: more than one when a slot failed to load. */
  attempts: BootSlot[];
  /** The slot that started, or null: no bootable slot (the bootloader powers off). */
  boots: BootSlot | null;
  /** The variables after the start; `written` says whether they were saved. */
  vars: BootEnv;
  written: boolean;
}

const other = (s: BootSlot): BootSlot => (s === 'a' ? 'b' : 'a');
/** The bootloaders' garbage guard: a slot value other than `b` is `a`. */
const slotOf = (v: string | undefined): BootSlot => (v === 'b' ? 'b' : 'a');

/**
 * One start of the bootloader on `vars` (the copy it read; `undefined` when no copy was usable:
 * slot a, nothing counted, nothing written). `loads(slot)` says whether the slot's kernel (or
 * signed payload) loads and starts; one that does not is failed at once, in the same start.
 */
export function bootloaderStart(read: BootEnv | undefined, loads: (slot: BootSlot) => boolean = () => true): BootloaderStart {
  if (read === undefined) {
    const boots = loads('a') ? 'a' : null;
    return { attempts: ['a'], boots, vars: {}, written: false };
  }
  const v: BootEnv = { ...read };
  let written = false;
  v.edge_slot = slotOf(v.edge_slot);
  let slot: BootSlot | null = v.edge_slot as BootSlot;
  let trying = false;
  // the known-good slot failed: leave it for the other one, unless that one failed before
  const leave = () => {
    const good = v.edge_slot as BootSlot;
    if ((v.edge_failed_slot ?? '') === other(good)) {
      slot = null;
      if (v.edge_boot_count !== String(MAX_UNCONFIRMED_BOOTS)) {
        v.edge_boot_count = String(MAX_UNCONFIRMED_BOOTS);
        written = true;
      }
    } else {
      Object.assign(v, { edge_failed_slot: good, edge_slot: other(good), edge_boot_count: '1' });
      slot = other(good);
      written = true;
    }
  };
  const status = v.edge_status ?? '';
  if (status === 'try') {
    v.edge_try_slot = slotOf(v.edge_try_slot);
    v.edge_status = 'trying';
    written = true;
    slot = v.edge_try_slot as BootSlot;
    trying = true;
  } else if (status === 'trying') {
    Object.assign(v, { edge_failed_slot: slotOf(v.edge_try_slot), edge_status: '', edge_try_slot: '', edge_boot_count: '1' });
    written = true;
  } else {
    // enumerated, as the scripts count: anything but empty, 1 or 2 is exhausted
    const next: Record<string, string> = { '': '1', '1': '2', '2': '3' };
    const n = next[v.edge_boot_count ?? ''];
    if (n === undefined) leave();
    else {
      v.edge_boot_count = n;
      written = true;
    }
  }
  const attempts: BootSlot[] = [];
  for (let i = 0; i < 3 && slot !== null; i++) {
    attempts.push(slot);
    if (loads(slot)) return { attempts, boots: slot, vars: v, written };
    if (trying) {
      trying = false;
      Object.assign(v, { edge_failed_slot: v.edge_try_slot!, edge_status: '', edge_try_slot: '', edge_boot_count: '1' });
      written = true;
      slot = v.edge_slot as BootSlot;
    } else leave();
  }
  return { attempts, boots: null, vars: v, written };
}

/**
 * What the health check writes once slot `booted` is healthy: a try of that slot is committed
 * (it becomes the known-good slot; the try, the status and the count cleared); a boot of the
 * known-good slot clears its count. `null`: nothing to write.
 */
export function healthyChanges(vars: BootEnv, booted: BootSlot): Record<string, string> | null {
  if (vars.edge_status === 'trying' && vars.edge_try_slot === booted) return { edge_slot: booted, edge_try_slot: '', edge_status: '', edge_boot_count: '' };
  if (vars.edge_slot === booted && (vars.edge_boot_count ?? '') !== '') return { edge_boot_count: '' };
  return null;
}
