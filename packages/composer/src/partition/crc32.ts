import * as zlib from 'node:zlib';

/**
 * CRC-32 as GPT uses it (IEEE 802.3, reflected polynomial 0xEDB88320, initial value and final
 * XOR 0xFFFFFFFF — the same CRC as zlib and PNG).
 *
 * Uses `zlib.crc32` where Node provides it (Node ≥ 20.15 / 22.2) and a table-driven
 * implementation otherwise; both give the same result.
 *
 * ```ts
 * crc32(Buffer.from('123456789')); // 0xcbf43926
 * ```
 *
 * @param data bytes to checksum
 * @param previous the CRC of the bytes before `data`, to checksum in pieces
 * @returns the CRC as an unsigned 32-bit number
 */
export function crc32(data: Uint8Array, previous = 0): number {
  return native ? native(data, previous) >>> 0 : crc32Table(data, previous);
}

const native: ((data: Uint8Array, value?: number) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? zlib.crc32 : undefined;

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/**
 * The table-driven CRC-32, independent of zlib. {@link crc32} uses it when `zlib.crc32` is
 * missing; exported so tests can check both agree.
 *
 * ```ts
 * crc32Table(Buffer.from('123456789')) === crc32(Buffer.from('123456789')); // true
 * ```
 */
export function crc32Table(data: Uint8Array, previous = 0): number {
  const t = (table ??= makeTable());
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) {
    // Both indices are in range: i < data.length and the xor is masked to 0..255.
    c = (t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  }
  return (c ^ 0xffffffff) >>> 0;
}
