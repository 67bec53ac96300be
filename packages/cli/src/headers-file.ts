import { readFileSync } from 'node:fs';
import { EdgeimageError, checkHeaderValue, type Headers } from '@edgeimage/assertions';
import { LineCounter, parseDocument } from 'yaml';

export class HeadersFileError extends EdgeimageError {
  constructor(file: string, message: string, line?: number, col?: number) {
    super('ERR_HEADERS_FILE', `${file}${line ? `:${line}${col ? `:${col}` : ''}` : ''}: ${message}`, { file, line, col });
  }
}

/**
 * Reads the headers to sign from YAML or JSON. YAML is read with the failsafe schema so that
 * `series: 16` or `classic: true` stay the strings snapd expects instead of becoming numbers.
 * An optional `body` key holds the body text.
 */
export function readHeadersFile(file: string): { headers: Headers; body?: string } {
  const text = readFileSync(file, 'utf8');
  let data: unknown;
  if (file.endsWith('.json')) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new HeadersFileError(file, `invalid JSON: ${(e as Error).message}`);
    }
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { schema: 'failsafe', lineCounter, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const pos = lineCounter.linePos(err.pos[0]);
      // The library's first line ends with its own position and a colon introducing an excerpt.
      const message = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '');
      throw new HeadersFileError(file, message, pos.line, pos.col);
    }
    data = doc.toJS();
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new HeadersFileError(file, 'expected a map of header names to values');
  }
  const { body, ...rest } = data as Record<string, unknown>;
  if (body !== undefined && typeof body !== 'string') throw new HeadersFileError(file, `"body" must be a string, found ${typeof body}`);
  const headers: Headers = {};
  for (const [k, v] of Object.entries(rest)) {
    try {
      headers[k] = checkHeaderValue(v, k);
    } catch (e) {
      throw new HeadersFileError(file, (e as Error).message);
    }
  }
  return body === undefined ? { headers } : { headers, body };
}
