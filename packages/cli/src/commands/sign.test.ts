import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeOne, PublicKey } from '@edgeimage/assertions';
import { accountYaml, buildChain, modelYaml, run, runOk, useTempDirs, type Chain } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-sign-test-');
let chain: Chain;
let brandKeyId: string;

beforeAll(async () => {
  delete process.env['EDGEIMAGE_KEY_PASSPHRASE'];
  chain = await buildChain(tempDir());
  brandKeyId = PublicKey.fromPem(readFileSync(join(chain.keyring, 'brand.pub'), 'utf8')).id;
});

/** The names of the top-level headers, in the order written. */
function headerOrder(assertion: string): string[] {
  const head = assertion.slice(0, assertion.indexOf('\n\n'));
  return head
    .split('\n')
    .filter((l) => /^[a-z]/.test(l))
    .map((l) => l.slice(0, l.indexOf(':')));
}

const sign = (file: string, ...more: string[]) => run(['sign', file, '--key', 'brand', ...chain.ring, ...more]);

describe('edgeimage sign', () => {
  it('signs a UC20 model that verifies through an own root of trust', async () => {
    const model = join(chain.dir, 'pc.model');
    await runOk(['sign', chain.write('pc.yaml', modelYaml()), '--key', 'brand', '-o', model, ...chain.ring]);
    const v = await run(['verify', ...chain.trustArgs, model, chain.brandAccountKey]);
    expect(v.err).toBe('');
    expect(v.status).toBe(0);
    expect(v.out).toContain(`ok   model series=16 brand-id=acme model=pc-amd64 (${model}:1) signed by acme key ${brandKeyId}`);
    expect(v.out).toContain('2 of 2 assertions verified');
  });

  it('keeps `series: 16` (unquoted YAML) the string "16", and YAML-looking scalars strings', async () => {
    const ok = await runOk(['sign', chain.write('strings2.yaml', modelYaml({ timestamp: '2026-01-01T00:00:00Z', extra: 'extra-flag: true\nextra-null: null\nextra-float: 1.50\nextra-date: 2026-01-01' })), '--key', 'brand', ...chain.ring]);
    expect(ok.out).toMatch(/^series: 16$/m);
    const a = decodeOne(Buffer.from(ok.out));
    expect(a.headers['series']).toBe('16');
    expect(a.headers['extra-flag']).toBe('true');
    expect(a.headers['extra-null']).toBe('null');
    expect(a.headers['extra-float']).toBe('1.50');
    expect(a.headers['extra-date']).toBe('2026-01-01');
    const decoded = JSON.parse((await runOk(['decode', chain.write('strings.model', ok.out)])).out) as { headers: Record<string, unknown> }[];
    expect(decoded[0]!.headers['series']).toBe('16');
  });

  it("writes headers in snapd's order: type, authority-id, revision, primary key, others sorted, sign-key-sha3-384 last", async () => {
    // Deliberately scrambled input order.
    const yaml = [
      'validation-sets:',
      '  - name: pc-amd64',
      '    mode: enforce',
      'timestamp: 2026-01-01T00:00:00Z',
      'model: pc-amd64',
      'storage-safety: prefer-unencrypted',
      'snaps:',
      '  - name: pc',
      '    id: QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T',
      '    type: gadget',
      '  - name: debian-kernel-amd64',
      '    id: owvwCGlJdsGH0ifSu3dq17IjvVG0QXRS',
      '    type: kernel',
      '  - name: busybox-base',
      '    id: 9PdxHCABjC2zl6zhJCr4qWpiGSR4BU97',
      '    type: base',
      'revision: 3',
      'brand-id: acme',
      'base: busybox-base',
      'architecture: amd64',
      'series: 16',
      'display-name: Scrambled',
      'authority-id: acme',
      'grade: signed',
      'type: model',
      '',
    ].join('\n');
    const r = await runOk(['sign', chain.write('scrambled.yaml', yaml), '--key', 'brand', ...chain.ring]);
    expect(headerOrder(r.out)).toEqual([
      'type',
      'authority-id',
      'revision',
      'series',
      'brand-id',
      'model',
      'architecture',
      'base',
      'display-name',
      'grade',
      'snaps',
      'storage-safety',
      'timestamp',
      'validation-sets',
      'sign-key-sha3-384',
    ]);
    expect(r.out).toContain(`\nsign-key-sha3-384: ${brandKeyId}\n\n`);
    // Map keys inside lists are sorted too, as snapd's encoder does.
    expect(r.out).toContain('snaps:\n  -\n    id: QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T\n    name: pc\n    type: gadget\n');
  });

  it('leaves out revision when absent or 0, and puts body-length just before sign-key-sha3-384', async () => {
    const r = await runOk(['sign', chain.write('rev0.yaml', `${accountYaml('beta', { revision: 0 })}body: some text\n`), '--key', 'brand', ...chain.ring]);
    expect(headerOrder(r.out)).toEqual(['type', 'authority-id', 'account-id', 'display-name', 'timestamp', 'validation', 'body-length', 'sign-key-sha3-384']);
    expect(r.out).toContain('\nbody-length: 9\n');
    expect(r.out).toContain('\n\nsome text\n\n');
  });

  it('fills timestamp with the current time (RFC 3339, whole seconds) when absent', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const r = await runOk(['sign', chain.write('no-ts.yaml', modelYaml()), '--key', 'brand', ...chain.ring]);
    const after = Date.now();
    const ts = /^timestamp: (.*)$/m.exec(r.out)?.[1];
    expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const t = new Date(ts!).getTime();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
  });

  it('keeps a given timestamp exactly as written', async () => {
    const r = await runOk(['sign', chain.write('ts.yaml', modelYaml({ timestamp: '2026-03-04T05:06:07+02:00' })), '--key', 'brand', ...chain.ring]);
    expect(r.out).toMatch(/^timestamp: 2026-03-04T05:06:07\+02:00$/m);
  });

  it('gives identical bytes when the same headers (with timestamp) are signed twice', async () => {
    const file = chain.write('twice.yaml', modelYaml({ timestamp: '2026-01-01T00:00:00Z' }));
    const a = await runOk(['sign', file, '--key', 'brand', ...chain.ring]);
    const b = await runOk(['sign', file, '--key', 'brand', ...chain.ring]);
    expect(a.out).toBe(b.out);
  });

  it('signs a JSON headers file the same as the equivalent YAML', async () => {
    const json = {
      type: 'model',
      'authority-id': 'acme',
      'brand-id': 'acme',
      series: '16',
      model: 'pc-amd64',
      'display-name': 'Acme kiosk, PC (amd64, UEFI)',
      architecture: 'amd64',
      base: 'busybox-base',
      grade: 'signed',
      'storage-safety': 'prefer-unencrypted',
      snaps: [
        { name: 'pc', id: 'QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T', type: 'gadget', 'default-channel': 'latest/stable' },
        { name: 'debian-kernel-amd64', id: 'owvwCGlJdsGH0ifSu3dq17IjvVG0QXRS', type: 'kernel', 'default-channel': 'latest/stable' },
        { name: 'busybox-base', id: '9PdxHCABjC2zl6zhJCr4qWpiGSR4BU97', type: 'base', 'default-channel': 'latest/stable' },
        { name: 'hello-kiosk', id: '2590O0UsoRyodqlJJNUwE9N8tbrlaz7W', type: 'app', 'default-channel': 'latest/stable' },
      ],
      'validation-sets': [{ 'account-id': 'acme', name: 'pc-amd64', mode: 'enforce' }],
      timestamp: '2026-01-01T00:00:00Z',
    };
    const fromJson = await runOk(['sign', chain.write('model.json', JSON.stringify(json, null, 2)), '--key', 'brand', ...chain.ring]);
    const fromYaml = await runOk(['sign', chain.write('model-same.yaml', modelYaml({ timestamp: '2026-01-01T00:00:00Z' })), '--key', 'brand', ...chain.ring]);
    expect(fromJson.out).toBe(fromYaml.out);
  });

  it.each([
    ['an unclosed flow list', 'type: account\nauthority-id: acme\nx: [a, b\n', 4, 1],
    ['tab indentation', 'type: account\nauthority-id: acme\n\taccount-id: acme\n', 3, 1],
    ['a repeated header', 'type: account\nauthority-id: acme\naccount-id: a\naccount-id: b\n', 4, 1],
  ])('reports a YAML syntax error (%s) as file:line:col with [ERR_HEADERS_FILE]', async (_what, text, line, col) => {
    const file = chain.write(`bad-${line}-${col}-${text.length}.yaml`, text);
    const r = await sign(file);
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`edgeimage: error: ${file}:${line}:${col}: `);
    expect(r.err).toContain('[ERR_HEADERS_FILE]');
  });

  it.each([
    ['a number', '{"type":"account","revision":3}', 'revision', 'number 3'],
    ['a boolean in a map', '{"type":"account","extra":{"flag":true}}', 'extra.flag', 'boolean true'],
    ['null in a list', '{"type":"account","extra":["a",null]}', 'extra[1]', 'null'],
  ])('refuses %s in JSON, naming the field', async (_what, text, field, found) => {
    const file = chain.write(`bad-${field.replace(/\W/g, '')}.json`, text);
    const r = await sign(file);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${file}: ${field}: header values must be strings`);
    expect(r.err).toContain(found);
    expect(r.err).toContain('[ERR_HEADERS_FILE]');
  });

  it('reports invalid JSON with the file name', async () => {
    const file = chain.write('trunc.json', '{"type": "account",');
    const r = await sign(file);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${file}: invalid JSON`);
    expect(r.err).toContain('[ERR_HEADERS_FILE]');
  });

  it.each([
    ['a list', '- type: account\n'],
    ['a scalar', 'just text\n'],
  ])('refuses a headers file that is %s rather than a map', async (_what, text) => {
    const file = chain.write(`notmap-${text.length}.yaml`, text);
    const r = await sign(file);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${file}: expected a map of header names to values`);
  });

  it('writes the file with -o (mode 0644) and nothing to stdout; the note goes to stderr', async () => {
    const out = join(chain.dir, 'out.model');
    const r = await runOk(['sign', chain.write('o.yaml', modelYaml({ timestamp: '2026-01-01T00:00:00Z' })), '--key', 'brand', '-o', out, ...chain.ring]);
    expect(r.out).toBe('');
    expect(r.err).toContain(`signed model with key "brand" (${brandKeyId}) → ${out}`);
    expect(statSync(out).mode & 0o777).toBe(0o644);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^type: model\n/);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
    // The same bytes as on stdout.
    const stdout = await runOk(['sign', join(chain.dir, 'o.yaml'), '--key', 'brand', ...chain.ring]);
    expect(stdout.out).toBe(text);
  });

  it('refuses a model whose authority-id is not its brand-id (ERR_AUTHORITY_NOT_BRAND) and writes nothing', async () => {
    const out = join(chain.dir, 'not-brand.model');
    const r = await sign(chain.write('not-brand.yaml', modelYaml({ authorityId: 'acme', brandId: 'other' })), '-o', out);
    expect(r.status).toBe(1);
    expect(r.err).toContain('"authority-id" header must equal "brand-id"');
    expect(r.err).toContain('[ERR_AUTHORITY_NOT_BRAND]');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses headers that break the type rules, naming the header', async () => {
    const r = await sign(chain.write('no-arch.yaml', modelYaml().replace('architecture: amd64\n', '')));
    expect(r.status).toBe(1);
    expect(r.err).toContain('"architecture" header is mandatory');
    expect(r.err).toContain('[ERR_ASSERTION_INVALID]');
  });

  it('refuses an unknown assertion type', async () => {
    const r = await sign(chain.write('unknown-type.yaml', 'type: flying-saucer\nauthority-id: acme\n'));
    expect(r.status).toBe(1);
    expect(r.err).toContain('[ERR_ASSERTION_UNKNOWN_TYPE]');
  });

  it('fails with ERR_KEY_NOT_FOUND for an unknown key, listing the keys there', async () => {
    const r = await run(['sign', chain.write('k.yaml', modelYaml()), '--key', 'nope', ...chain.ring]);
    expect(r.status).toBe(1);
    expect(r.err).toContain('no key "nope"');
    expect(r.err).toContain('keys there: brand, root');
    expect(r.err).toContain('[ERR_KEY_NOT_FOUND]');
  });

  it('reports a missing headers file with its path', async () => {
    const missing = join(chain.dir, 'missing.yaml');
    const r = await sign(missing);
    expect(r.status).toBe(1);
    expect(r.err).toContain(missing);
    expect(r.err).toContain('[ENOENT]');
  });

  it('needs --key: a usage error (exit 2)', async () => {
    const r = await run(['sign', chain.write('nokey.yaml', modelYaml()), ...chain.ring]);
    expect(r.status).toBe(2);
    expect(r.err).toContain('key');
    expect(r.err).toContain('Run with --help for usage.');
  });
});

describe('edgeimage account-key', () => {
  it("writes snapd's header order with the key's body, and the key id of the named key", async () => {
    const r = await runOk(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--since', '2024-01-01T00:00:00Z', '--until', '2030-01-01T00:00:00Z', '--revision', '2', ...chain.ring]);
    expect(headerOrder(r.out)).toEqual(['type', 'authority-id', 'revision', 'public-key-sha3-384', 'account-id', 'name', 'since', 'until', 'body-length', 'sign-key-sha3-384']);
    const a = decodeOne(Buffer.from(r.out));
    expect(a.headers['public-key-sha3-384']).toBe(brandKeyId);
    expect(a.headers['name']).toBe('brand');
    expect(a.headers['since']).toBe('2024-01-01T00:00:00Z');
    expect(a.headers['until']).toBe('2030-01-01T00:00:00Z');
    expect(PublicKey.fromAccountKeyBody(a.body!.toString('utf8')).id).toBe(brandKeyId);
  });

  it('--key-name sets the "name" header', async () => {
    const r = await runOk(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--key-name', 'models', ...chain.ring]);
    expect(r.out).toMatch(/^name: models$/m);
  });

  it('refuses an until before since', async () => {
    const r = await run(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--since', '2022-01-01T00:00:00Z', '--until', '2021-01-01T00:00:00Z', ...chain.ring]);
    expect(r.status).toBe(1);
    expect(r.err).toContain('"until" header must not be before "since"');
  });

  it.each(['--since', '--until'])('refuses a %s that is not an RFC 3339 time (usage error, exit 2)', async (opt) => {
    const r = await run(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', opt, 'next tuesday', ...chain.ring]);
    expect(r.status).toBe(2);
    expect(r.err).toContain(`${opt}: expected an RFC 3339 time`);
  });
});
