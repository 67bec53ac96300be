import type { Headers } from '../assertion.js';
import { encodeEntry } from './headers.js';

export interface ContentLayout {
  /** The type's primary-key headers in order, and the defaults of optional ones (omitted when equal). */
  primaryKey: readonly string[];
  optionalPrimaryKeyDefaults?: Readonly<Record<string, string>>;
  /** Types such as serial-request carry no authority-id. */
  noAuthority?: boolean;
}

/**
 * Lays out the signed content in snapd's order: type, format (if > 0), authority-id,
 * revision (if > 0), primary key, every other header sorted, body-length (if > 0),
 * sign-key-sha3-384; then the body. `headers` must already hold `sign-key-sha3-384`.
 */
export function encodeContent(layout: ContentLayout, headers: Headers, body?: Uint8Array): Buffer {
  const h: Headers = { ...headers };
  const bodyLength = body?.length ?? 0;
  delete h['body-length'];
  const out: string[] = [];
  const written = new Set(['type', 'format', 'authority-id', 'revision', 'body-length', 'sign-key-sha3-384']);
  const put = (name: string) => encodeEntry(out, `${name}:`, h[name], 0);

  put('type');
  if (h['format'] !== undefined && h['format'] !== '0') put('format');
  if (!layout.noAuthority) put('authority-id');
  if (h['revision'] !== undefined && h['revision'] !== '0') put('revision');
  for (const k of layout.primaryKey) {
    written.add(k);
    const dflt = layout.optionalPrimaryKeyDefaults?.[k];
    if (h[k] !== undefined && h[k] !== dflt) put(k);
  }
  for (const k of Object.keys(h).sort()) if (!written.has(k)) put(k);
  if (bodyLength > 0) out.push(`body-length: ${bodyLength}`);
  put('sign-key-sha3-384');

  const text = Buffer.from(out.join('\n'));
  return bodyLength > 0 ? Buffer.concat([text, Buffer.from('\n\n'), body!]) : text;
}

/** Joins content and signature text into the file form, with snapd's "cat friendly" final newline. */
export function encodeSigned(content: Uint8Array, signatureText: string): Buffer {
  return Buffer.concat([content, Buffer.from(`\n\n${signatureText}\n`)]);
}

/** Writes a stream: assertions separated by one blank line, as snapd's Encoder does. */
export function encodeStream(encoded: Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  encoded.forEach((e, i) => {
    if (i > 0) parts.push(Buffer.from('\n'));
    parts.push(e);
  });
  return Buffer.concat(parts);
}
