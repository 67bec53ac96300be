import { X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool, stderrTail, HostToolMissingError } from '@edgeimage/host-tools';
import { rsaNumbers } from '@edgeimage/assertions';
import { ComposeError } from '../../errors.js';

/** What signs a FIT: the private key in memory and its certificate (BootKeys.signer('FIT') gives one). */
export interface FitSigner {
  key: KeyObject;
  certPem: string;
}

/**
 * U-Boot finds the key as `/signature/key-<name>` and mkimage reads `<name>.key`: a file name and a
 * node name, so lower-case letters, digits, `-`, `_` and `.` only (no `@`: signature checking
 * refuses unit addresses), as fitKeyName() makes them.
 */
const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function checkKeyName(keyName: string): void {
  if (!KEY_NAME.test(keyName)) throw new ComposeError('ERR_FIT_KEY', `FIT key name ${JSON.stringify(keyName.slice(0, 80))} is not a valid key name: expected 1-63 of a-z 0-9 . _ - (it names <name>.key and U-Boot's node /signature/key-<name>)`, { keyName });
}

/**
 * Refuses a signer U-Boot could not verify with the `sha256,rsa2048` algorithm of our FITs: the
 * private key must be RSA with a 2048-bit modulus and the certificate must be that key's (mkimage
 * signs with the .key but writes the control dtb's public key from the .crt: a mismatch would give
 * a device that refuses every payload).
 */
export function checkFitSigner(signer: FitSigner): void {
  const k = signer.key;
  if (k.type !== 'private' || k.asymmetricKeyType !== 'rsa') throw new ComposeError('ERR_FIT_KEY', `the FIT signing key is a ${k.type} ${k.asymmetricKeyType ?? 'unknown'} key: expected a private RSA key (U-Boot verifies sha256,rsa2048)`, { type: k.type, algorithm: k.asymmetricKeyType });
  // (not node's key details: they can hang Node 20 on a generated key — rsaNumbers)
  const bits = rsaNumbers(k).bits;
  if (bits !== 2048) throw new ComposeError('ERR_FIT_KEY', `the FIT signing key is RSA-${bits}: expected RSA-2048 (the FIT's signature algorithm is sha256,rsa2048)`, { bits });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(signer.certPem);
  } catch (e) {
    throw new ComposeError('ERR_FIT_KEY', `the FIT key's certificate cannot be read: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(k)) throw new ComposeError('ERR_FIT_KEY', `the FIT key's certificate (${cert.subject.replace(/\n/g, ', ')}) is not the signing key's: U-Boot's control dtb would hold another key than the one the FIT is signed with`, { subject: cert.subject });
}

/**
 * Runs `fn` with a private 0700 folder (in `tmpDir`, default the system's) holding `<keyName>.key` (0600) and `<keyName>.crt`, as
 * mkimage -k reads them, and removes the folder afterwards whatever happens: the key exists on
 * disk only while mkimage runs.
 */
export async function withKeyDir<T>(keyName: string, signer: FitSigner, tmpDir: string | undefined, fn: (work: string, keyDir: string) => Promise<T>): Promise<T> {
  checkKeyName(keyName);
  checkFitSigner(signer);
  const work = mkdtempSync(join(tmpDir ?? tmpdir(), 'edgeimage-fit-'));
  try {
    chmodSync(work, 0o700);
    const keyDir = join(work, 'keys');
    mkdirSync(keyDir, { mode: 0o700 });
    writeFileSync(join(keyDir, `${keyName}.key`), signer.key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(join(keyDir, `${keyName}.crt`), signer.certPem, { mode: 0o644, flag: 'wx' });
    return await fn(work, keyDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `mkimage ARGS` with a fixed time: SOURCE_DATE_EPOCH sets the FIT's timestamp and its signature
 * node's, so the same inputs give the same bytes. A missing mkimage (u-boot-tools) or dtc
 * (device-tree-compiler, which mkimage -f runs) is ERR_HOST_TOOL; any other failure ERR_TOOL_FAILED.
 */
export async function mkimage(args: readonly string[], sourceDateEpoch: number, what: string): Promise<string> {
  let r;
  try {
    r = await runTool('mkimage', args, { env: { SOURCE_DATE_EPOCH: String(sourceDateEpoch) } });
  } catch (e) {
    if (e instanceof HostToolMissingError) throw new ComposeError('ERR_HOST_TOOL', `${what}: mkimage is not installed (Debian package u-boot-tools)`, { tool: 'mkimage', package: 'u-boot-tools' });
    throw e;
  }
  if (r.exitCode !== 0) {
    if (/dtc: not found|dtc: No such file|Can't run dtc|sh: 1: dtc/.test(r.stderr)) throw new ComposeError('ERR_HOST_TOOL', `${what}: mkimage -f needs dtc (Debian package device-tree-compiler)`, { tool: 'dtc', package: 'device-tree-compiler' });
    throw new ComposeError('ERR_TOOL_FAILED', `${what}: mkimage failed (exit ${r.exitCode ?? r.signal}): ${stderrTail(`${r.stdout.toString('utf8')}\n${r.stderr}`.split(/\nUsage:/)[0]!)}`, { tool: 'mkimage', stderr: r.stderr.slice(-2000) });
  }
  return r.stdout.toString('utf8');
}
