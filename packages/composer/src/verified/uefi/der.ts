/**
 * The few DER encodings and the one reading the Authenticode signer needs. Its structures are
 * fixed and small, so they are written out directly instead of through node-forge, which is no
 * dependency of the composer (adding it would change every workspace's lockfile entry).
 */
import { ComposeError } from '../../errors.js';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const sequence = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
/** A SET OF: DER orders the elements by their encodings (X.690 11.6). */
export const setOf = (...c: Buffer[]): Buffer => tlv(0x31, ...[...c].sort(Buffer.compare));
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
export const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
export const explicit = (n: number, ...c: Buffer[]): Buffer => tlv(0xa0 | n, ...c);

export function integer(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export interface Tlv {
  tag: number;
  /** The whole element, header included. */
  raw: Buffer;
  content: Buffer;
}

/** Reads one element at `offset` within `data`; lengths over 4 bytes or past the end are ERR_SIGNER_CERT (`what` says whose). */
export function readTlv(data: Buffer, offset: number, what: string): Tlv {
  const fail = (why: string): never => {
    throw new ComposeError('ERR_SIGNER_CERT', `${what}: ${why} at offset ${offset}`, { offset });
  };
  if (offset + 2 > data.length) fail('truncated DER');
  const tag = data[offset]!;
  let len = data[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > data.length) fail('unsupported DER length');
    len = data.readUIntBE(offset + 2, n);
    header += n;
  }
  if (offset + header + len > data.length) fail('DER element runs past its container');
  return { tag, raw: data.subarray(offset, offset + header + len), content: data.subarray(offset + header, offset + header + len) };
}

/** The elements inside a constructed element's content. */
export function children(parent: Tlv, what: string, max = 64): Tlv[] {
  const out: Tlv[] = [];
  for (let o = 0; o < parent.content.length && out.length < max; ) {
    const t = readTlv(parent.content, o, what);
    out.push(t);
    o += t.raw.length;
  }
  return out;
}
