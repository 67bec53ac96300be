/**
 * Runs the CLI in-process for tests: a capturing Io, temporary folders that are removed after the
 * test file, environment overrides, and a small own trust chain (root → acme account → brand key).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeContent, encodeSigned, type Headers, type PrivateKey } from '@edgeimage/assertions';
import { main, type Io } from '@edgeimage/cli';
import { CLI_BIN } from './repo.js';

export interface RunResult {
  status: number;
  out: string;
  err: string;
}

/** Everything any command printed (stdout and stderr) in this test file, for "never printed" checks. */
export const transcript: string[] = [];

const line = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);

/** `edgeimage ARGV`, in-process; returns the exit status and what went to stdout and stderr. */
export async function run(argv: string[]): Promise<RunResult> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => {
      out += line(t);
    },
    err: (t) => {
      err += line(t);
    },
  };
  const status = await main(argv, io);
  transcript.push(out, err);
  return { status, out, err };
}

/** Like `run`, but the command must succeed; the failure message shows what it printed. */
export async function runOk(argv: string[]): Promise<RunResult> {
  const r = await run(argv);
  if (r.status !== 0) throw new Error(`edgeimage ${argv.join(' ')} exited ${r.status}\nstdout: ${r.out}\nstderr: ${r.err}`);
  return r;
}

/**
 * Temporary folders for one test file, all removed in `afterAll`. Call at the top level of a test
 * file; the returned function makes a new folder.
 */
export function useTempDirs(prefix = 'edgeimage-cli-test-'): () => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

// One withEnv for every package's tests (the CLI's tests already build on the store's helpers).
export { withEnv } from './bundle-trees.js';

/** The base64 lines of a PEM file (without the BEGIN/END lines). */
export function pemBody(pem: string): string[] {
  return pem.split('\n').filter((l) => l && !l.startsWith('-----'));
}

/** Since of every key of the test chains: well in the past, so that any "now" is inside. */
export const CHAIN_SINCE = '2020-01-01T00:00:00Z';

/** A UC20-shaped model of brand `acme`, as models/pc-amd64.yaml (with `series: 16` unquoted). */
export function modelYaml(opts: { authorityId?: string; brandId?: string; timestamp?: string; extra?: string } = {}): string {
  const brand = opts.brandId ?? 'acme';
  return [
    'type: model',
    `authority-id: ${opts.authorityId ?? brand}`,
    `brand-id: ${brand}`,
    'series: 16',
    'model: pc-amd64',
    'display-name: Acme kiosk, PC (amd64, UEFI)',
    'architecture: amd64',
    'base: busybox-base',
    'grade: signed',
    'storage-safety: prefer-unencrypted',
    'snaps:',
    '  - name: pc',
    '    id: QKIbEFxTKZuCe8CAzfYeQJDBKNE4Qb3T',
    '    type: gadget',
    '    default-channel: latest/stable',
    '  - name: debian-kernel-amd64',
    '    id: owvwCGlJdsGH0ifSu3dq17IjvVG0QXRS',
    '    type: kernel',
    '    default-channel: latest/stable',
    '  - name: busybox-base',
    '    id: 9PdxHCABjC2zl6zhJCr4qWpiGSR4BU97',
    '    type: base',
    '    default-channel: latest/stable',
    '  - name: hello-kiosk',
    '    id: 2590O0UsoRyodqlJJNUwE9N8tbrlaz7W',
    '    type: app',
    '    default-channel: latest/stable',
    'validation-sets:',
    `  - account-id: ${brand}`,
    '    name: pc-amd64',
    '    mode: enforce',
    ...(opts.timestamp ? [`timestamp: ${opts.timestamp}`] : []),
    ...(opts.extra ? [opts.extra] : []),
    '',
  ].join('\n');
}

/** An `account` headers file for `sign`. */
export function accountYaml(accountId: string, opts: { authorityId?: string; revision?: number; timestamp?: string; displayName?: string } = {}): string {
  return [
    'type: account',
    `authority-id: ${opts.authorityId ?? 'acme'}`,
    `account-id: ${accountId}`,
    `display-name: ${opts.displayName ?? `Account ${accountId}`}`,
    'validation: verified',
    `timestamp: ${opts.timestamp ?? CHAIN_SINCE}`,
    ...(opts.revision !== undefined ? [`revision: ${opts.revision}`] : []),
    '',
  ].join('\n');
}

export interface Chain {
  dir: string;
  keyring: string;
  /** Self-signed account-key of key `root`, account `acme`: the trust anchor. */
  rootAccountKey: string;
  /** The `acme` account, signed by root: the trusted account. */
  acmeAccount: string;
  /** Account-key of key `brand` for account `acme`, signed by root. */
  brandAccountKey: string;
  /** `verify` options that trust exactly this chain's root. */
  trustArgs: string[];
  /** Writes a file in the chain's folder and returns its path. */
  write(name: string, text: string | Uint8Array): string;
  /** `--keyring <keyring>`. */
  ring: string[];
}

/**
 * Builds an own chain of trust with the CLI itself, in `dir`: keys root and brand (2048 bits, for
 * speed), `root.account-key` (self-signed, account acme), `acme.account` (signed by root) and
 * `brand.account-key` (signed by root). Every key is valid since {@link CHAIN_SINCE}.
 */
export async function buildChain(dir: string): Promise<Chain> {
  const keyring = join(dir, 'keys');
  const ring = ['--keyring', keyring];
  const write = (name: string, text: string | Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  await runOk(['key', 'create', 'root', '--bits', '2048', ...ring]);
  await runOk(['key', 'create', 'brand', '--bits', '2048', ...ring]);
  const rootAccountKey = join(dir, 'root.account-key');
  await runOk(['account-key', 'root', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--since', CHAIN_SINCE, '-o', rootAccountKey, ...ring]);
  const acmeAccount = join(dir, 'acme.account');
  await runOk(['sign', write('acme.yaml', accountYaml('acme', { displayName: 'Acme Corp' })), '--key', 'root', '-o', acmeAccount, ...ring]);
  const brandAccountKey = join(dir, 'brand.account-key');
  await runOk(['account-key', 'brand', '--account-id', 'acme', '--authority-id', 'acme', '--key', 'root', '--since', CHAIN_SINCE, '-o', brandAccountKey, ...ring]);
  return {
    dir,
    keyring,
    rootAccountKey,
    acmeAccount,
    brandAccountKey,
    trustArgs: ['--no-default-trust', '--trusted', rootAccountKey, '--trusted', acmeAccount],
    write,
    ring,
  };
}

/**
 * Signs headers as given, bypassing `signAssertion`'s validation: for assertions the CLI refuses
 * to produce (to test that `verify` refuses them too). `primaryKey` orders the layout.
 */
export function signRaw(headers: Headers, key: PrivateKey, primaryKey: readonly string[], body?: string, at = new Date(CHAIN_SINCE)): Buffer {
  const h: Headers = { ...headers, 'sign-key-sha3-384': key.publicKey.id };
  const content = encodeContent({ primaryKey }, h, body === undefined ? undefined : Buffer.from(body));
  return encodeSigned(content, key.sign(content, at));
}

export interface Interrupted {
  status: number | null;
  signal: NodeJS.Signals | null;
  /** The file whose appearance triggered the SIGINT (undefined: the command ended first). */
  seen?: string;
  stderr: string;
}

/**
 * Runs the built CLI (`edgeimage ARGV`) in its own process group with TMPDIR `tmp` and, as soon
 * as a file matching `when` appears in `dir`, sends SIGINT to the group, as a terminal's Ctrl-C does.
 */
export async function interruptWhen(argv: string[], dir: string, when: RegExp, tmp: string): Promise<Interrupted> {
  const child = spawn(process.execPath, [CLI_BIN, ...argv], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: tmp },
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let seen: string | undefined;
  const watcher = watch(dir, () => {
    if (seen) return;
    seen = readdirSync(dir).find((n) => when.test(n));
    if (seen) process.kill(-child.pid!, 'SIGINT');
  });
  const res = await new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (status, signal) => resolve({ status, signal })));
  watcher.close();
  return { ...res, seen, stderr };
}
