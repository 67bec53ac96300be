/**
 * Sizes and offsets as gadget.yaml writes them (snapd's `gadget/quantity`): plain bytes, `NM`
 * (MiB) or `NG` (GiB). Nothing else: no `K`, no `MB`, no hexadecimal, no fractions.
 */

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/**
 * Parses a size or offset; returns the bytes, or a reason (a sentence fragment) when the text is
 * not one.
 *
 * @example
 * parseQuantity('1M'); // { bytes: 1048576 }
 * parseQuantity('1K'); // { error: 'invalid suffix "K" (use bytes, M for MiB or G for GiB)' }
 */
export function parseQuantity(text: string): { bytes: number } | { error: string } {
  // snapd splits at the first character that is neither a digit nor '-', then parses the
  // prefix as a decimal int64 and the rest as the unit.
  const m = /^([0-9-]*)(.*)$/s.exec(text)!;
  const prefix = m[1]!;
  const unit = m[2]!;
  if (prefix === '' && unit !== '') return { error: 'no numerical prefix' };
  if (!/^-?[0-9]+$/.test(prefix)) return { error: `${JSON.stringify(prefix)} is not a number` };
  let multiplier: number;
  switch (unit) {
    case '':
      multiplier = 1;
      break;
    case 'M':
      multiplier = MiB;
      break;
    case 'G':
      multiplier = GiB;
      break;
    default:
      return { error: `invalid suffix ${JSON.stringify(unit)} (use bytes, M for MiB or G for GiB)` };
  }
  const n = BigInt(prefix) * BigInt(multiplier);
  if (n < 0n) return { error: 'cannot be negative' };
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return { error: `too large (at most ${Number.MAX_SAFE_INTEGER} bytes)` };
  return { bytes: Number(n) };
}

/** `1258291200` → `1.17 GiB`; exact values print without decimals (`1 MiB`, `440 B`). */
export function iec(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(2);
  return `${text} ${units[i]}`;
}
