import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeStream, Keyring } from '@edgeimage/assertions';
import { ASSERTIONS_DIR, describeFixtures } from '@edgeimage/testkit/assertion-fixtures';
import { accountYaml, buildChain, CHAIN_SINCE, modelYaml, run, runOk, signRaw, useTempDirs, type Chain, type RunResult } from '@edgeimage/testkit/cli-run';

const tempDir = useTempDirs('edgeimage-verify-test-');
let chain: Chain;
/** pc.model: a UC20 model signed by the brand key, timestamp 2026-01-01. */
let model: string;
const MODEL_REF = 'model series=16 brand-id=acme model=pc-amd64';

interface JsonResult {
  file?: string;
  index?: number;
  line?: number;
  type: string;
  ref: string;
  ok: boolean;
  error?: { code: string; message: string };
  'sign-key-sha3-384'?: string;
}

const verify = (...args: string[]) => run(['verify', ...chain.trustArgs, ...args]);
const verifyJson = async (...args: string[]) => {
  const r = await verify('--json', ...args);
  return { ...r, results: JSON.parse(r.out) as JsonResult[] };
};

/** Exit 1, and one FAIL line on stderr that names the file, the assertion and the code. */
function expectFail(r: RunResult, file: string, ref: string, code: string, ...more: string[]): string {
  expect(r.status).toBe(1);
  const line = r.err.split('\n').find((l) => l.startsWith('FAIL ') && l.includes(file) && l.includes(ref));
  expect(line).toBeDefined();
  expect(line).toContain(`[${code}]`);
  for (const m of more) expect(line).toContain(m);
  return line!;
}

/** Replaces one character at `index` of `text` by another base64 character. */
function flipChar(text: string, index: number): string {
  const c = text[index]!;
  return text.slice(0, index) + (c === 'A' ? 'B' : 'A') + text.slice(index + 1);
}

/** Splits an assertion file into its content and signature text. */
function splitSignature(text: string): { content: string; signature: string } {
  const i = text.lastIndexOf('\n\n', text.length - 2);
  return { content: text.slice(0, i), signature: text.slice(i + 2) };
}

const key = (name: string) => new Keyring(chain.keyring).load(name);

beforeAll(async () => {
  delete process.env['EDGEIMAGE_KEY_PASSPHRASE'];
  chain = await buildChain(tempDir());
  model = join(chain.dir, 'pc.model');
  await runOk(['sign', chain.write('pc.yaml', modelYaml({ timestamp: '2026-01-01T00:00:00Z' })), '--key', 'brand', '-o', model, ...chain.ring]);
});

describe('edgeimage verify: an own chain of trust', () => {
  it('verifies the model and its account-key against the trusted root (exit 0)', async () => {
    const r = await verify(model, chain.brandAccountKey);
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain(`ok   ${MODEL_REF} (${model}:1) signed by acme`);
    expect(r.out).toContain('2 of 2 assertions verified\n');
  });

  it('--json gives one object per assertion with ok and the signing key', async () => {
    const r = await verifyJson(model, chain.brandAccountKey);
    expect(r.status).toBe(0);
    expect(r.results).toHaveLength(2);
    expect(r.results[0]).toMatchObject({ file: model, index: 1, line: 1, type: 'model', ref: MODEL_REF, ok: true });
    expect(r.results[0]!['sign-key-sha3-384']).toBe(key('brand').publicKey.id);
    expect(r.results[1]).toMatchObject({ file: chain.brandAccountKey, type: 'account-key', ok: true, 'sign-key-sha3-384': key('root').publicKey.id });
  });

  it('verifies assertions in any order, across files and within one stream', async () => {
    const stream = chain.write('reversed.assert', encodeStream([readFileSync(model), readFileSync(chain.brandAccountKey), readFileSync(chain.acmeAccount)]));
    const r = await verify(stream);
    expect(r.status).toBe(0);
    expect(r.out).toContain('3 of 3 assertions verified');
    // The trust anchors themselves may be among the inputs too.
    const all = await verify(model, chain.brandAccountKey, chain.acmeAccount, chain.rootAccountKey);
    expect(all.status).toBe(0);
  });

  it('fails without the trusted root (--no-default-trust alone): ERR_UNKNOWN_KEY', async () => {
    const r = await run(['verify', '--no-default-trust', model, chain.brandAccountKey]);
    expectFail(r, chain.brandAccountKey, 'account-key', 'ERR_UNKNOWN_KEY');
    expectFail(r, model, MODEL_REF, 'ERR_UNKNOWN_KEY');
    expect(r.out).toContain('0 of 2 assertions verified, 2 failed');
  });
});

describe('edgeimage verify: each failure is reported, exit 1', () => {
  it('a tampered header byte: ERR_SIGNATURE_INVALID', async () => {
    const text = readFileSync(model, 'utf8');
    expect(text).toContain('display-name: Acme kiosk');
    const bad = chain.write('tampered-header.model', text.replace('display-name: Acme kiosk', 'display-name: Acme kiosK'));
    const r = await verify(bad, chain.brandAccountKey);
    expectFail(r, bad, MODEL_REF, 'ERR_SIGNATURE_INVALID', 'signature does not verify');
    expect(r.out).toContain('1 of 2 assertions verified, 1 failed');
  });

  it('a tampered header byte, --json: ok false with the code', async () => {
    const bad = chain.write('tampered-header2.model', readFileSync(model, 'utf8').replace('model: pc-amd64', 'model: pc-amd65'));
    const r = await verifyJson(bad, chain.brandAccountKey);
    expect(r.status).toBe(1);
    expect(r.results[0]).toMatchObject({ file: bad, type: 'model', ref: 'model series=16 brand-id=acme model=pc-amd65', ok: false, error: { code: 'ERR_SIGNATURE_INVALID' } });
    expect(r.results[0]!.error!.message).toContain(bad);
    expect(r.results[1]!.ok).toBe(true);
  });

  it('a tampered body byte of an account-key: ERR_SIGNATURE_INVALID, and what it signed fails too', async () => {
    const text = readFileSync(chain.brandAccountKey, 'utf8');
    const bodyStart = text.indexOf('\n\n') + 2;
    const bad = chain.write('tampered-body.account-key', flipChar(text, bodyStart + 200));
    const r = await verify(model, bad);
    expectFail(r, bad, 'account-key public-key-sha3-384=', 'ERR_SIGNATURE_INVALID');
    expectFail(r, model, MODEL_REF, 'ERR_UNKNOWN_KEY');
  });

  it('a tampered signature byte: ERR_SIGNATURE_INVALID', async () => {
    const { content, signature } = splitSignature(readFileSync(model, 'utf8'));
    const lines = signature.split('\n');
    lines[3] = flipChar(lines[3]!, 30); // inside the RSA value
    const bad = chain.write('tampered-sig.model', `${content}\n\n${lines.join('\n')}`);
    const r = await verify(bad, chain.brandAccountKey);
    expectFail(r, bad, MODEL_REF, 'ERR_SIGNATURE_INVALID', 'does not verify');
  });

  it('a signature that is not base64: ERR_SIGNATURE_ENCODING', async () => {
    const { content } = splitSignature(readFileSync(model, 'utf8'));
    const bad = chain.write('not-base64.model', `${content}\n\nthis is *not* base64!\n`);
    const r = await verify(bad, chain.brandAccountKey);
    expectFail(r, bad, MODEL_REF, 'ERR_SIGNATURE_ENCODING', 'base64');
  });

  it('a signature that is not base64, --json', async () => {
    const { content } = splitSignature(readFileSync(model, 'utf8'));
    const bad = chain.write('not-base64-2.model', `${content}\n\n%%%%\n`);
    const r = await verifyJson(bad, chain.brandAccountKey);
    expect(r.status).toBe(1);
    expect(r.results.find((x) => x.file === bad)).toMatchObject({ ok: false, error: { code: 'ERR_SIGNATURE_ENCODING' } });
  });

  it('an unknown signing key: ERR_UNKNOWN_KEY naming the key id', async () => {
    const r = await verify(model);
    expectFail(r, model, MODEL_REF, 'ERR_UNKNOWN_KEY', key('brand').publicKey.id);
  });

  it('an unknown signing key, --json', async () => {
    const r = await verifyJson(model);
    expect(r.status).toBe(1);
    expect(r.results).toEqual([expect.objectContaining({ file: model, ref: MODEL_REF, ok: false, error: expect.objectContaining({ code: 'ERR_UNKNOWN_KEY' }) })]);
  });

  describe('key validity', () => {
    let oldKey: string;
    let oldModel: string;

    beforeAll(async () => {
      await runOk(['key', 'create', 'old', '--bits', '2048', ...chain.ring]);
      oldKey = join(chain.dir, 'old.account-key');
      await runOk(['account-key', 'old', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--since', '2020-06-01T00:00:00Z', '--until', '2021-01-01T00:00:00Z', '-o', oldKey, ...chain.ring]);
      oldModel = join(chain.dir, 'old.model');
      await runOk(['sign', chain.write('old.yaml', modelYaml({ timestamp: '2020-07-01T00:00:00Z' })), '--key', 'old', '-o', oldModel, ...chain.ring]);
    });

    it('a key whose until has passed: ERR_KEY_EXPIRED', async () => {
      const r = await verify(oldModel, oldKey);
      expectFail(r, oldModel, MODEL_REF, 'ERR_KEY_EXPIRED', 'has expired', '--at');
      expect(r.out).toContain('1 of 2 assertions verified, 1 failed');
    });

    it('the same, checked --at a time inside the window: exit 0', async () => {
      const r = await verify('--at', '2020-08-01T00:00:00Z', oldModel, oldKey);
      expect(r.err).toBe('');
      expect(r.status).toBe(0);
    });

    it('--at before the key\'s since: ERR_KEY_NOT_YET_VALID', async () => {
      const r = await verify('--at', '2020-03-01T00:00:00Z', oldModel, oldKey);
      expectFail(r, oldModel, MODEL_REF, 'ERR_KEY_NOT_YET_VALID', 'is not yet valid');
    });

    it('--at before the root key\'s since: the account-key it signed is not yet valid', async () => {
      const r = await verify('--at', '2019-06-01T00:00:00Z', model, chain.brandAccountKey);
      expectFail(r, chain.brandAccountKey, 'account-key', 'ERR_KEY_NOT_YET_VALID');
      expect(r.out).toContain('0 of 2 assertions verified, 2 failed');
    });

    it('a model timestamp outside its key validity: ERR_KEY_VALIDITY', async () => {
      const early = join(chain.dir, 'early.model');
      await runOk(['sign', chain.write('early.yaml', modelYaml({ timestamp: '2019-12-31T23:59:59Z' })), '--key', 'brand', '-o', early, ...chain.ring]);
      const r = await verify(early, chain.brandAccountKey);
      expectFail(r, early, MODEL_REF, 'ERR_KEY_VALIDITY', '2019-12-31T23:59:59Z');
    });

    it('a model timestamp after its key\'s until: ERR_KEY_VALIDITY even --at a valid time', async () => {
      const late = join(chain.dir, 'late.model');
      await runOk(['sign', chain.write('late.yaml', modelYaml({ timestamp: '2021-06-01T00:00:00Z' })), '--key', 'old', '-o', late, ...chain.ring]);
      const r = await verify('--at', '2020-08-01T00:00:00Z', late, oldKey);
      expectFail(r, late, MODEL_REF, 'ERR_KEY_VALIDITY');
    });
  });

  it('a model whose authority-id is not its brand-id: ERR_AUTHORITY_NOT_BRAND', async () => {
    // `sign` refuses to make one (see sign.test.ts), so sign the raw bytes with the library.
    const headers = {
      type: 'model',
      'authority-id': 'acme',
      series: '16',
      'brand-id': 'other',
      model: 'pc-amd64',
      architecture: 'amd64',
      base: 'busybox-base',
      snaps: [
        { name: 'pc', id: 'QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T', type: 'gadget' },
        { name: 'debian-kernel-amd64', id: 'owvwCGlJdsGH0ifSu3dq17IjvVG0QXRS', type: 'kernel' },
        { name: 'busybox-base', id: '9PdxHCABjC2zl6zhJCr4qWpiGSR4BU97', type: 'base' },
      ],
      timestamp: '2026-01-01T00:00:00Z',
    };
    const bad = chain.write('not-brand.model', signRaw(headers, key('brand'), ['series', 'brand-id', 'model']));
    const r = await verify(bad, chain.brandAccountKey);
    expectFail(r, bad, 'model series=16 brand-id=other model=pc-amd64', 'ERR_AUTHORITY_NOT_BRAND', '"authority-id" header must equal "brand-id"');
  });

  describe('accounts and account-keys', () => {
    beforeAll(async () => {
      // beta: an account vouched for by the trusted acme, with a key of its own.
      await runOk(['key', 'create', 'beta', '--bits', '2048', ...chain.ring]);
      await runOk(['key', 'create', 'gamma', '--bits', '2048', ...chain.ring]);
      await runOk(['sign', chain.write('beta.yaml', accountYaml('beta')), '--key', 'root', '-o', join(chain.dir, 'beta.account'), ...chain.ring]);
      await runOk(['account-key', 'beta', '--account-id', 'beta', '--authority-id', 'acme', '--key', 'root', '--since', CHAIN_SINCE, '-o', join(chain.dir, 'beta.account-key'), ...chain.ring]);
    });

    it('the chain acme → beta account → beta key verifies (the baseline of the next tests)', async () => {
      const r = await verify(join(chain.dir, 'beta.account'), join(chain.dir, 'beta.account-key'));
      expect(r.err).toBe('');
      expect(r.status).toBe(0);
    });

    it('an account-key signed by an authority that is not directly trusted: ERR_NOT_DIRECTLY_TRUSTED', async () => {
      // gamma's key vouched for by beta: beta's key checks, but beta is no trust anchor.
      const gamma = join(chain.dir, 'gamma-by-beta.account-key');
      await runOk(['account-key', 'gamma', '--account-id', 'beta', '--authority-id', 'beta', '--key', 'beta', '--key-name', 'gamma', '--since', CHAIN_SINCE, '-o', gamma, ...chain.ring]);
      const r = await verify(join(chain.dir, 'beta.account'), join(chain.dir, 'beta.account-key'), gamma);
      expectFail(r, gamma, 'account-key public-key-sha3-384=', 'ERR_NOT_DIRECTLY_TRUSTED', '"beta" is not trusted');
      expect(r.out).toContain('2 of 3 assertions verified, 1 failed');
    });

    it('an account and account-key whose authority is only in the input, not trusted: ERR_NOT_DIRECTLY_TRUSTED', async () => {
      const r = await run(['verify', '--no-default-trust', '--trusted', chain.rootAccountKey, chain.acmeAccount, chain.brandAccountKey]);
      expectFail(r, chain.acmeAccount, 'account account-id=acme', 'ERR_NOT_DIRECTLY_TRUSTED');
      expectFail(r, chain.brandAccountKey, 'account-key', 'ERR_NOT_DIRECTLY_TRUSTED');
    });

    it('an account-key whose account is missing: ERR_MISSING_ACCOUNT', async () => {
      const orphan = join(chain.dir, 'gamma.account-key');
      await runOk(['account-key', 'gamma', '--account-id', 'gamma', '--authority-id', 'acme', '--key', 'root', '--since', CHAIN_SINCE, '-o', orphan, ...chain.ring]);
      const r = await verify(orphan);
      expectFail(r, orphan, 'account-key public-key-sha3-384=', 'ERR_MISSING_ACCOUNT', '"gamma"');
      // Given the account, it verifies, whatever the order.
      await runOk(['sign', chain.write('gamma.yaml', accountYaml('gamma')), '--key', 'root', '-o', join(chain.dir, 'gamma.account'), ...chain.ring]);
      expect((await verify(orphan, join(chain.dir, 'gamma.account'))).status).toBe(0);
    });

    it('revision 2 then revision 1 of the same account: ERR_REVISION_NOT_NEWER for the second', async () => {
      const revs = [1, 2].map((n) => {
        const out = join(chain.dir, `delta-r${n}.account`);
        return { n, out, yaml: chain.write(`delta-r${n}.yaml`, accountYaml('delta', { revision: n, displayName: `Delta rev ${n}` })) };
      });
      for (const { yaml, out } of revs) await runOk(['sign', yaml, '--key', 'root', '-o', out, ...chain.ring]);
      const [r1, r2] = revs.map((x) => readFileSync(x.out));
      const twoThenOne = chain.write('delta-2-then-1.assert', encodeStream([r2!, r1!]));
      const r = await verify(twoThenOne);
      const line = expectFail(r, twoThenOne, 'account account-id=delta', 'ERR_REVISION_NOT_NEWER', 'revision 1 is not newer than the known revision 2');
      expect(line).toContain('assertion 2');
      expect(r.out).toContain(`ok   account account-id=delta (${twoThenOne}:1)`);
      // In increasing order both are accepted.
      expect((await verify(chain.write('delta-1-then-2.assert', encodeStream([r1!, r2!])))).status).toBe(0);
      // Two files, the newer first: the same refusal.
      const files = await verify(revs[1]!.out, revs[0]!.out);
      expectFail(files, revs[0]!.out, 'account account-id=delta', 'ERR_REVISION_NOT_NEWER');
    });

    it('the same revision with different content: ERR_REVISION_NOT_NEWER; the very same bytes twice: accepted', async () => {
      const a = join(chain.dir, 'eps-a.account');
      const b = join(chain.dir, 'eps-b.account');
      await runOk(['sign', chain.write('eps-a.yaml', accountYaml('eps', { revision: 1, displayName: 'Eps A' })), '--key', 'root', '-o', a, ...chain.ring]);
      await runOk(['sign', chain.write('eps-b.yaml', accountYaml('eps', { revision: 1, displayName: 'Eps B' })), '--key', 'root', '-o', b, ...chain.ring]);
      const r = await verify(a, b);
      expectFail(r, b, 'account account-id=eps', 'ERR_REVISION_NOT_NEWER', 'revision 1 is not newer than the known revision 1');
      expect((await verify(a, a)).status).toBe(0);
    });
  });

  it('reports every failing assertion, each naming its file and type with primary key', async () => {
    const text = readFileSync(model, 'utf8');
    const tampered = chain.write('every-1.model', text.replace('display-name: Acme kiosk', 'display-name: Acme kiosX'));
    const orphan = join(chain.dir, 'every-2.account-key');
    await runOk(['key', 'create', 'orphan', '--bits', '2048', ...chain.ring]);
    await runOk(['account-key', 'orphan', '--account-id', 'nobody', '--authority-id', 'acme', '--key', 'root', '--since', CHAIN_SINCE, '-o', orphan, ...chain.ring]);
    const { content } = splitSignature(text);
    const noBase64 = chain.write('every-3.model', `${content.replace('model: pc-amd64', 'model: pc-arm64')}\n\n@@@\n`);
    const r = await verify(tampered, orphan, chain.brandAccountKey, noBase64);
    expectFail(r, tampered, MODEL_REF, 'ERR_SIGNATURE_INVALID');
    expectFail(r, orphan, 'account-key public-key-sha3-384=', 'ERR_MISSING_ACCOUNT');
    expectFail(r, noBase64, 'model series=16 brand-id=acme model=pc-arm64', 'ERR_SIGNATURE_ENCODING');
    expect(r.err.split('\n').filter((l) => l.startsWith('FAIL '))).toHaveLength(3);
    expect(r.out).toContain(`ok   account-key`);
    expect(r.out).toContain('1 of 4 assertions verified, 3 failed');
    const j = await verifyJson(tampered, orphan, chain.brandAccountKey, noBase64);
    expect(j.results.map((x) => [x.file, x.ok, x.error?.code])).toEqual([
      [tampered, false, 'ERR_SIGNATURE_INVALID'],
      [orphan, false, 'ERR_MISSING_ACCOUNT'],
      [chain.brandAccountKey, true, undefined],
      [noBase64, false, 'ERR_SIGNATURE_ENCODING'],
    ]);
  });

  it('a file that does not decode stops with its name and line, exit 1', async () => {
    const bad = chain.write('garbage.model', 'type: model\nthis is no header\n\nsig\n');
    const r = await verify(bad);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`${bad} (assertion 1, line 2)`);
    expect(r.err).toContain('[ERR_ASSERTION_FORMAT]');
  });

  it('a --trusted file that is not an account or account-key is refused (ERR_BAD_ANCHOR)', async () => {
    const r = await run(['verify', '--no-default-trust', '--trusted', model, chain.brandAccountKey]);
    expect(r.status).toBe(1);
    expect(r.err).toContain('[ERR_BAD_ANCHOR]');
  });

  it.each(['yesterday', '2026-13-01T00:00:00Z', '2026-01-01 00:00:00', '1767225600'])('--at %j: usage error, exit 2', async (at) => {
    const r = await verify('--at', at, model, chain.brandAccountKey);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(`--at: expected an RFC 3339 time such as 2026-01-31T12:00:00Z, found ${JSON.stringify(at)}`);
    expect(r.err).toContain('Run with --help for usage.');
  });

  it.each(['2026-01-01T00:00:00Z', '2026-01-01T01:00:00+01:00', '2026-01-01T00:00:00.5Z'])('--at %j is accepted', async (at) => {
    expect((await verify('--at', at, model, chain.brandAccountKey)).status).toBe(0);
  });

  // JavaScript's Date would roll Feb 30 over to Mar 2 and silently check another day.
  it('--at "2026-02-30T00:00:00Z" (no such day): usage error, exit 2', async () => {
    const r = await verify('--at', '2026-02-30T00:00:00Z', model, chain.brandAccountKey);
    expect(r.status).toBe(2);
  });

  // The crypto layer's errors know no file or assertion; the trust layer adds them exactly once.
  it('a signature failure names only the real file, without a stray "<input>: :"', async () => {
    const bad = chain.write('stray-input.model', readFileSync(model, 'utf8').replace('display-name: Acme kiosk', 'display-name: Acme kiosQ'));
    const r = await verify(bad, chain.brandAccountKey);
    expect(r.status).toBe(1);
    expect(r.err).not.toContain('<input>');
    expect(r.err).not.toContain(': : ');
  });
});

describeFixtures('edgeimage verify: the real generic chain (shared fixtures)', () => {
  const f = (name: string) => `${ASSERTIONS_DIR}${name}`;

  it("verifies generic.account generic-models.account-key generic-classic.model through Canonical's built-in root (exit 0)", async () => {
    const r = await run(['verify', f('generic.account'), f('generic-models.account-key'), f('generic-classic.model')]);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain('ok   model series=16 brand-id=generic model=generic-classic');
    expect(r.out).toContain('3 of 3 assertions verified');
  });

  it('verifies them in reverse order too', async () => {
    const r = await run(['verify', f('generic-classic.model'), f('generic-models.account-key'), f('generic.account')]);
    expect(r.status).toBe(0);
  });

  it('fails with --no-default-trust: every assertion ERR_UNKNOWN_KEY', async () => {
    const r = await run(['verify', '--no-default-trust', f('generic.account'), f('generic-models.account-key'), f('generic-classic.model')]);
    expectFail(r, f('generic.account'), 'account account-id=generic', 'ERR_UNKNOWN_KEY');
    expectFail(r, f('generic-models.account-key'), 'account-key public-key-sha3-384=d-JcZF9nD9eB', 'ERR_UNKNOWN_KEY');
    expectFail(r, f('generic-classic.model'), 'model series=16 brand-id=generic model=generic-classic', 'ERR_UNKNOWN_KEY');
    expect(r.out).toContain('0 of 3 assertions verified, 3 failed');
  });

  it('passes again with --no-default-trust and the Canonical root as --trusted files', async () => {
    const r = await run(['verify', '--no-default-trust', '--trusted', f('canonical-root.account-key'), '--trusted', f('canonical.account'), f('generic.account'), f('generic-models.account-key'), f('generic-classic.model')]);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
  });

  it('the model alone fails: its key is unknown without generic-models.account-key', async () => {
    const r = await run(['verify', f('generic-classic.model')]);
    expectFail(r, f('generic-classic.model'), 'model series=16 brand-id=generic model=generic-classic', 'ERR_UNKNOWN_KEY', 'd-JcZF9nD9eB');
  });
});
