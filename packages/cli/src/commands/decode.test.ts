import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeStream } from '@edgeimage/assertions';
import { ASSERTIONS_DIR, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { run, runOk, useTempDirs } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-decode-test-');
const f = (name: string) => `${ASSERTIONS_DIR}${name}`;

interface Decoded {
  headers: Record<string, unknown>;
  body?: string;
}
const decode = async (...args: string[]) => JSON.parse((await runOk(['decode', ...args])).out) as Decoded[];

describeFixtures('edgeimage decode (real assertions from the shared fixtures)', () => {
  it('prints [{"headers": {...}}] for ubuntu-core-22-amd64.model: series "16", snaps a list of maps, no body', async () => {
    const r = await runOk(['decode', f('ubuntu-core-22-amd64.model'), '--json']);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^\[\n {2}\{\n {4}"headers": \{\n/);
    const out = JSON.parse(r.out) as Decoded[];
    expect(out).toHaveLength(1);
    expect(Object.keys(out[0]!)).toEqual(['headers']);
    const h = out[0]!.headers;
    expect(h['type']).toBe('model');
    expect(h['series']).toBe('16');
    expect(h['brand-id']).toBe('canonical');
    expect(h['model']).toBe('ubuntu-core-22-amd64');
    expect(h['timestamp']).toBe('2022-04-04T10:40:41+00:00');
    expect(h['snaps']).toEqual([
      { 'default-channel': '22/stable', id: 'UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH', name: 'pc', type: 'gadget' },
      { 'default-channel': '22/stable', id: 'pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza', name: 'pc-kernel', type: 'kernel' },
      { 'default-channel': 'latest/stable', id: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT', name: 'core22', type: 'base' },
      { 'default-channel': 'latest/stable', id: 'PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4', name: 'snapd', type: 'snapd' },
    ]);
  });

  it('keeps the headers in file order, including sign-key-sha3-384 last', async () => {
    const [m] = await decode(f('ubuntu-core-22-amd64.model'));
    const names = readFileSync(f('ubuntu-core-22-amd64.model'), 'utf8')
      .split('\n\n')[0]!
      .split('\n')
      .filter((l) => /^[a-z]/.test(l))
      .map((l) => l.slice(0, l.indexOf(':')));
    expect(Object.keys(m!.headers)).toEqual(names);
  });

  it('gives an account-key its body, exactly the body-length bytes of the file', async () => {
    const [k] = await decode(f('generic-models.account-key'));
    expect(k!.headers['type']).toBe('account-key');
    expect(typeof k!.body).toBe('string');
    expect(Buffer.byteLength(k!.body!)).toBe(Number(k!.headers['body-length']));
    const text = readFileSync(f('generic-models.account-key'), 'utf8');
    expect(text).toContain(`\n\n${k!.body}\n\n`);
    expect(k!.body).toMatch(/^AcbBTQRW/);
  });

  it('prints one object per assertion of a stream, in order', async () => {
    const names = ['generic.account', 'generic-models.account-key', 'generic-classic.model'];
    const stream = join(tempDir(), 'generic.assert');
    writeFileSync(stream, encodeStream(names.map((n) => readFileSync(f(n)))));
    const out = await decode(stream);
    expect(out.map((x) => x.headers['type'])).toEqual(['account', 'account-key', 'model']);
    expect(out.map((x) => 'body' in x)).toEqual([false, true, false]);
    expect(out[2]!.headers['model']).toBe('generic-classic');
  });

  it('concatenates the assertions of several files, in argument order', async () => {
    const out = await decode(f('generic-classic.model'), f('generic.account'), f('xSfWKG-bar-1.validation-set'));
    expect(out.map((x) => x.headers['type'])).toEqual(['model', 'account', 'validation-set']);
  });

  it('does not check signatures: a tampered assertion still decodes, showing the tampered value', async () => {
    const bad = join(tempDir(), 'tampered.model');
    writeFileSync(bad, readFileSync(f('generic-classic.model'), 'utf8').replace('model: generic-classic', 'model: generic-klassic'));
    const [m] = await decode(bad);
    expect(m!.headers['model']).toBe('generic-klassic');
  });

  it('prints the map of a validation-set with nested lists of maps', async () => {
    const [v] = await decode(f('xSfWKG-bar-1.validation-set'));
    expect(v!.headers['type']).toBe('validation-set');
    expect(Array.isArray(v!.headers['snaps'])).toBe(true);
    for (const s of v!.headers['snaps'] as unknown[]) expect(typeof s).toBe('object');
  });
});

describe('edgeimage decode: malformed input', () => {
  it('exits 1 naming the file and the line of a bad header', async () => {
    const bad = join(tempDir(), 'bad.assert');
    writeFileSync(bad, 'type: account\nauthority-id: acme\nthis line has no colon\n\nAcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY\n');
    const r = await run(['decode', bad, '--json']);
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${bad} (assertion 1, line 3)`);
    expect(r.err).toContain('[ERR_ASSERTION_FORMAT]');
  });

  it('names the assertion and the line in the file when a later assertion of a stream is bad', async () => {
    const bad = join(tempDir(), 'stream.assert');
    const good = 'type: account\nauthority-id: acme\naccount-id: acme\n\nAcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY\n';
    writeFileSync(bad, `${good}\ntype: account\nauthority-id: acme\n  indented: wrongly\n\nAcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY\n`);
    const r = await run(['decode', bad]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${bad} (assertion 2, line 9)`);
  });

  it('exits 1 for a body shorter than its body-length, naming the file and line', async () => {
    const bad = join(tempDir(), 'short-body.assert');
    writeFileSync(bad, 'type: account\nauthority-id: acme\nbody-length: 100\n\nshort\n\nAcLBXAQAAQoABgUCWYuXiAAKCRAdLQyY\n');
    const r = await run(['decode', bad]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${bad} (assertion 1, line 5)`);
    expect(r.err).toContain('body-length is 100');
  });

  it('exits 1 for an empty file and for CRLF line endings', async () => {
    const dir = tempDir();
    const empty = join(dir, 'empty.assert');
    writeFileSync(empty, '');
    const e = await run(['decode', empty]);
    expect(e.status).toBe(1);
    expect(e.err).toContain(`${empty} (line 1): empty input`);
    const crlf = join(dir, 'crlf.assert');
    writeFileSync(crlf, 'type: account\r\nauthority-id: acme\r\n\r\nsig\r\n');
    const c = await run(['decode', crlf]);
    expect(c.status).toBe(1);
    expect(c.err).toContain(crlf);
    expect(c.err).toContain('CRLF');
  });

  it('exits 1 for a missing file, naming it', async () => {
    const missing = join(tempDir(), 'missing.assert');
    const r = await run(['decode', missing]);
    expect(r.status).toBe(1);
    expect(r.err).toContain(missing);
    expect(r.err).toContain('[ENOENT]');
  });

  it('needs at least one file: usage error, exit 2', async () => {
    const r = await run(['decode']);
    expect(r.status).toBe(2);
  });
});
