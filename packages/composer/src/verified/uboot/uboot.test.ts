import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, verify, publicDecrypt, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey, rsaNumbers, selfSignedCertificate } from '@edgeimage/assertions';
import { firstMissing, requires } from '@edgeimage/testkit/skips';
import { crc32 } from '../../partition/crc32.js';
import { buildFit, controlDtb, fdtNode, fdtStrings, readFdt, ubootScriptFlash, writeUbootFlash, envValue, legacyScriptImage, UBOOT_ENV_SIZE, UBOOT_FLASH_BANK_SIZE, type FitSigner } from './index.js';

const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const EPOCH = 1767225600;
const has = (t: string): boolean => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;
const missingTools = firstMissing(has('mkimage') ? undefined : 'mkimage (u-boot-tools) is not installed', has('dtc') ? undefined : 'dtc (device-tree-compiler) is not installed');
const missingUboot = spawnSync('test', ['-r', UBOOT]).status === 0 ? undefined : `no ${UBOOT} (u-boot-qemu)`;

let dir: string;
/** The work folder every buildFit/controlDtb call here gets (tmpDir): what they leave is visible. */
let work: string;
let signer: FitSigner;
let other: FitSigner;
let kernel: string;
let initrd: string;
let fdt: string;

function makeSigner(bits = 2048, key?: KeyObject): FitSigner {
  const k = key ?? generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
  return { key: k, certPem: selfSignedCertificate(PrivateKey.fromKeyObject(k), { commonName: 'test FIT key', organization: 'acme', now: new Date(EPOCH * 1000) }).pem };
}

/** The FIT key folders buildFit and controlDtb make (they must be gone after every call). */
const keyDirs = (): string[] => readdirSync(work);

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeimage-uboot-test-'));
  work = join(dir, 'work');
  mkdirSync(work);
  signer = makeSigner();
  other = makeSigner();
  // an arm64 Image as far as the header goes: "ARMd" at 0x38
  const image = Buffer.alloc(64 * 1024, 0x5a);
  image.write('ARMd', 0x38, 'latin1');
  kernel = join(dir, 'Image');
  writeFileSync(kernel, image);
  initrd = join(dir, 'initrd.cpio.gz');
  writeFileSync(initrd, Buffer.alloc(10_000, 0x33));
  fdt = join(dir, 'board.dtb');
  if (!missingTools) spawnSync('dtc', ['-I', 'dts', '-O', 'dtb', '-o', fdt, '-'], { input: '/dts-v1/;\n/ { model = "test board"; #address-cells = <2>; #size-cells = <2>; chosen { }; };\n' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * What a FIT configuration signature covers, computed as U-Boot does (fit_config_check_sig: libfdt's
 * fdt_find_regions over the `hashed-nodes`, without the `data*` properties, then the strings block
 * up to `hashed-strings`), ported here so a fast test checks the signature the way the board will.
 */
function signedRegions(fit: Buffer, nodes: string[], strings: [number, number]): Buffer {
  const offStruct = fit.readUInt32BE(8);
  const offStrings = fit.readUInt32BE(12);
  const exclude = new Set(['data', 'data-size', 'data-position', 'data-offset']);
  const regions: [number, number][] = [];
  const stack: number[] = [];
  const path: string[] = [];
  let want = 0;
  let start = -1;
  let next = 0;
  let tag: number;
  const align = (n: number): number => (n + 3) & ~3;
  do {
    const offset = next;
    tag = fit.readUInt32BE(offStruct + offset);
    let include = 0;
    let stopAt: number;
    if (tag === 1) {
      const nameEnd = fit.indexOf(0, offStruct + offset + 4);
      const name = fit.toString('latin1', offStruct + offset + 4, nameEnd);
      next = align(nameEnd + 1 - offStruct);
      stopAt = next;
      path.push(name);
      const p = path.length === 1 ? '/' : path.join('/');
      stack.push(want);
      if (want === 1) stopAt = offset;
      if (nodes.includes(p)) want = 2;
      else if (want) want--;
      else stopAt = offset;
      include = want;
    } else if (tag === 3) {
      const len = fit.readUInt32BE(offStruct + offset + 4);
      const nameOff = fit.readUInt32BE(offStruct + offset + 8);
      const name = fit.toString('latin1', offStrings + nameOff, fit.indexOf(0, offStrings + nameOff));
      next = align(offset + 12 + len);
      stopAt = offset;
      include = want >= 2 && !exclude.has(name) ? 1 : 0;
    } else if (tag === 4) {
      next = offset + 4;
      stopAt = offset;
      include = want >= 2 ? 1 : 0;
    } else if (tag === 2) {
      next = offset + 4;
      stopAt = next;
      include = want;
      want = stack.pop()!;
      path.pop();
    } else {
      next = offset + 4;
      stopAt = next;
      include = 1;
    }
    if (include && start === -1) {
      const last = regions[regions.length - 1];
      if (last && offset === last[0] + last[1] - offStruct) start = regions.pop()![0] - offStruct;
      else start = offset;
    }
    if (!include && start !== -1) {
      regions.push([offStruct + start, stopAt - start]);
      start = -1;
    }
  } while (tag !== 9);
  if (start !== -1) regions.push([offStruct + start, next - start]);
  regions.push([offStrings + strings[0], strings[1]]);
  return Buffer.concat(regions.map(([o, l]) => fit.subarray(o, o + l)));
}

/** Checks conf-1's signature of `fit` against `certPem` as U-Boot's fit_config_check_sig does. */
function configSignatureVerifies(fit: Buffer, certPem: string): boolean {
  const sig = fdtNode(readFdt(fit, 'fit'), '/configurations/conf-1/signature-1')!;
  const hs = sig.props.get('hashed-strings')!;
  const data = signedRegions(fit, fdtStrings(sig.props.get('hashed-nodes')), [hs.readUInt32BE(0), hs.readUInt32BE(4)]);
  return verify('sha256', data, { key: certPem, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig.props.get('value')!);
}

requires(missingTools).describe('buildFit', () => {
  test('signs conf-1 over kernel, ramdisk and fdt with sha256,rsa2048 under the key name; the signature is the key\'s, each image hash is its data\'s; same inputs, same bytes; no key left on disk', async () => {
    const before = keyDirs();
    const fit = await buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH });
    expect(keyDirs()).toEqual(before);
    expect((await buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH })).equals(fit)).toBe(true);
    const root = readFdt(fit, 'fit');
    expect(root.props.get('timestamp')!.readUInt32BE(0)).toBe(EPOCH);
    for (const [image, file] of [['kernel-1', kernel], ['ramdisk-1', initrd], ['fdt-1', fdt]] as const) {
      const node = fdtNode(root, `/images/${image}`)!;
      expect(node.props.get('data')!.equals(readFileSync(file))).toBe(true);
      expect(fdtStrings(node.props.get('compression'))).toEqual(['none']);
      expect(fdtNode(node, 'hash-1')!.props.get('value')!.equals(createHash('sha256').update(readFileSync(file)).digest())).toBe(true);
    }
    expect(fdtNode(root, '/images/kernel-1')!.props.get('load')!.readUInt32BE(0)).toBe(0x40400000);
    expect(fdtNode(root, '/images/kernel-1')!.props.get('entry')!.readUInt32BE(0)).toBe(0x40400000);
    const sig = fdtNode(root, '/configurations/conf-1/signature-1')!;
    expect(fdtStrings(sig.props.get('algo'))).toEqual(['sha256,rsa2048']);
    expect(fdtStrings(sig.props.get('key-name-hint'))).toEqual(['acme-fit']);
    expect(fdtStrings(sig.props.get('sign-images'))).toEqual(['kernel', 'ramdisk', 'fdt']);
    expect(fdtStrings(sig.props.get('hashed-nodes'))).toEqual(['/', '/configurations/conf-1', '/images/kernel-1', '/images/kernel-1/hash-1', '/images/ramdisk-1', '/images/ramdisk-1/hash-1', '/images/fdt-1', '/images/fdt-1/hash-1']);
    const value = sig.props.get('value')!;
    expect(value.length).toBe(256);
    // PKCS#1 v1.5: the certificate's key opens it to a sha256 DigestInfo; another key's does not
    const info = publicDecrypt({ key: signer.certPem, padding: cryptoConstants.RSA_PKCS1_PADDING }, value);
    expect(info.subarray(0, 19).toString('hex')).toBe('3031300d060960864801650304020105000420');
    expect(info.length).toBe(51);
    expect(() => publicDecrypt({ key: other.certPem, padding: cryptoConstants.RSA_PKCS1_PADDING }, value)).toThrow();
    // the signature over the signed regions, as U-Boot checks it; a changed ramdisk hash breaks it
    expect(configSignatureVerifies(fit, signer.certPem)).toBe(true);
    expect(configSignatureVerifies(fit, other.certPem)).toBe(false);
    const forged = Buffer.from(fit);
    const h = fdtNode(readFdt(fit, 'fit'), '/images/ramdisk-1/hash-1')!.props.get('value')!;
    forged.writeUInt8(forged.readUInt8(h.byteOffset - fit.byteOffset) ^ 1, h.byteOffset - fit.byteOffset);
    expect(configSignatureVerifies(forged, signer.certPem)).toBe(false);
    // the image data itself is outside the signed regions (covered by its hash): flipping it keeps the signature
    const d = fdtNode(readFdt(fit, 'fit'), '/images/ramdisk-1')!.props.get('data')!;
    const flipped = Buffer.from(fit);
    flipped.writeUInt8(flipped.readUInt8(d.byteOffset - fit.byteOffset + 5) ^ 1, d.byteOffset - fit.byteOffset + 5);
    expect(configSignatureVerifies(flipped, signer.certPem)).toBe(true);
    // another time: another FIT (the timestamp is signed)
    expect((await buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH + 1 })).equals(fit)).toBe(false);
  });

  test('refuses inputs that are missing or not what they must be (ERR_FIT_INPUT), naming the role and file', async () => {
    const before = keyDirs();
    const gz = join(dir, 'vmlinuz.gz');
    writeFileSync(gz, Buffer.from('1f8b0800000000000003', 'hex'));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const cases: [Partial<Parameters<typeof buildFit>[0]>, RegExp][] = [
      [{ kernel: join(dir, 'nope') }, /the FIT's kernel .*nope cannot be read: ENOENT/],
      [{ kernel: gz }, /the FIT's kernel .*vmlinuz\.gz is not an arm64 Linux Image/],
      [{ kernel: dir }, /the FIT's kernel .* is not a regular file/],
      [{ initrd: empty }, /the FIT's initrd .*empty is 0 bytes: expected 1 to/],
      [{ fdt: kernel }, /the FIT's fdt .*Image is not a flattened device tree/],
      [{ sourceDateEpoch: -1 }, /sourceDateEpoch -1 is not a time a FIT holds/],
    ];
    for (const [change, message] of cases) {
      const e = await refusal(buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH, ...change }));
      expect(e.code).toBe('ERR_FIT_INPUT');
      expect(e.message).toMatch(message);
    }
    expect(keyDirs()).toEqual(before);
  });

  test('refuses keys U-Boot cannot verify or that do not match their certificate, and bad key names (ERR_FIT_KEY); no key is written', async () => {
    const before = keyDirs();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const cases: [FitSigner, string, RegExp][] = [
      [makeSigner(3072), 'acme-fit', /the FIT signing key is RSA-3072: expected RSA-2048/],
      [{ key: ec, certPem: signer.certPem }, 'acme-fit', /the FIT signing key is a private ec key: expected a private RSA key/],
      [{ key: signer.key, certPem: other.certPem }, 'acme-fit', /the FIT key's certificate \(.*CN=test FIT key.*\) is not the signing key's/],
      [{ key: signer.key, certPem: 'not a certificate' }, 'acme-fit', /the FIT key's certificate cannot be read/],
      [signer, 'acme@fit', /FIT key name "acme@fit" is not a valid key name/],
      [signer, '../acme', /FIT key name "\.\.\/acme" is not a valid key name/],
    ];
    for (const [s, keyName, message] of cases) {
      const e = await refusal(buildFit({ tmpDir: work, kernel, initrd, fdt, keyName, signer: s, sourceDateEpoch: EPOCH }));
      expect(e.code).toBe('ERR_FIT_KEY');
      expect(e.message).toMatch(message);
      const c = await refusal(controlDtb({ tmpDir: work, baseDtb: fdt, keyName, signer: s }));
      expect(c.code).toBe('ERR_FIT_KEY');
    }
    expect(keyDirs()).toEqual(before);
  });

  test('without mkimage, or without the dtc mkimage -f runs, it is ERR_HOST_TOOL naming the Debian package; the key folder is removed', async () => {
    const before = keyDirs();
    const path = process.env.PATH;
    const bin = join(dir, 'bin-no-dtc');
    spawnSync('mkdir', ['-p', bin]);
    spawnSync('ln', ['-sf', spawnSync('sh', ['-c', 'command -v mkimage'], { encoding: 'utf8' }).stdout.trim(), join(bin, 'mkimage')]);
    try {
      process.env.PATH = join(dir, 'empty-bin');
      const e = await refusal(buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH }));
      expect(e.code).toBe('ERR_HOST_TOOL');
      expect(e.message).toContain('mkimage is not installed (Debian package u-boot-tools)');
      process.env.PATH = bin;
      const d = await refusal(buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH }));
      expect(d.code).toBe('ERR_HOST_TOOL');
      expect(d.message).toContain('mkimage -f needs dtc (Debian package device-tree-compiler)');
    } finally {
      process.env.PATH = path;
    }
    expect(keyDirs()).toEqual(before);
  });

  test('mkimage sees the key as <name>.key (0600) and <name>.crt in a 0700 folder; a failing mkimage is ERR_TOOL_FAILED with its words, and the folder is gone', async () => {
    const before = keyDirs();
    const bin = join(dir, 'bin-fake');
    const seen = join(dir, 'seen.txt');
    spawnSync('mkdir', ['-p', bin]);
    // records what it was given, then fails as mkimage does on a bad .its
    writeFileSync(join(bin, 'mkimage'), `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -k ] && k=$2; shift; done\n/usr/bin/stat -c '%a %n' "$k" "$k"/* "$(/usr/bin/dirname "$k")" > ${seen}\necho "FATAL ERROR: Couldn't open boot.its" >&2\nexit 1\n`, { mode: 0o755 });
    const path = process.env.PATH;
    try {
      process.env.PATH = bin;
      const e = await refusal(buildFit({ tmpDir: work, kernel, initrd, fdt, keyName: 'acme-fit', signer, sourceDateEpoch: EPOCH }));
      expect(e.code).toBe('ERR_TOOL_FAILED');
      expect(e.message).toContain("signing the FIT: mkimage failed (exit 1): FATAL ERROR: Couldn't open boot.its");
    } finally {
      process.env.PATH = path;
    }
    const lines = readFileSync(seen, 'utf8').trim().split('\n').map((l) => l.replace(/^(\d+) .*\/edgeimage-fit-[^/]+/, '$1 W'));
    expect(lines).toEqual(['700 W/keys', '644 W/keys/acme-fit.crt', '600 W/keys/acme-fit.key', '700 W']);
    expect(keyDirs()).toEqual(before);
  });
});

requires(missingTools).describe('controlDtb', () => {
  test('adds /signature/key-<name> with required = "conf", the certificate\'s modulus and the algorithm; deterministic; the base is kept as it was', async () => {
    const base = readFileSync(fdt);
    const ctl = await controlDtb({ tmpDir: work, baseDtb: fdt, keyName: 'acme-fit', signer });
    expect(readFileSync(fdt).equals(base)).toBe(true);
    expect((await controlDtb({ tmpDir: work, baseDtb: base, keyName: 'acme-fit', signer })).equals(ctl)).toBe(true);
    const key = fdtNode(readFdt(ctl, 'ctl'), '/signature/key-acme-fit')!;
    expect(fdtStrings(key.props.get('required'))).toEqual(['conf']);
    expect(fdtStrings(key.props.get('algo'))).toEqual(['sha256,rsa2048']);
    expect(fdtStrings(key.props.get('key-name-hint'))).toEqual(['acme-fit']);
    const { n } = rsaNumbers(signer.key);
    expect(key.props.get('rsa,modulus')!.equals(n)).toBe(true);
    expect(fdtStrings(readFdt(ctl, 'ctl').props.get('model'))).toEqual(['test board']);
  });

  test('refuses a base that already holds keys (ERR_UBOOT_DTB) and one that is no device tree (ERR_FDT_FORMAT)', async () => {
    const keyed = join(dir, 'keyed.dtb');
    writeFileSync(keyed, await controlDtb({ tmpDir: work, baseDtb: fdt, keyName: 'acme-fit', signer }));
    const e = await refusal(controlDtb({ tmpDir: work, baseDtb: keyed, keyName: 'acme-fit', signer: other }));
    expect(e.code).toBe('ERR_UBOOT_DTB');
    expect(e.message).toContain(`the base dtb ${keyed} already has a /signature node`);
    const f = await refusal(controlDtb({ tmpDir: work, baseDtb: kernel, keyName: 'acme-fit', signer }));
    expect(f.code).toBe('ERR_FDT_FORMAT');
    expect(f.message).toMatch(/Image: not a valid flattened device tree \(first word 5a5a5a5a, expected d00dfeed\)/);
    const g = await refusal(controlDtb({ tmpDir: work, baseDtb: join(dir, 'nope.dtb'), keyName: 'acme-fit', signer }));
    expect(g.code).toBe('ERR_UBOOT_DTB');
    expect(g.message).toMatch(/nope\.dtb cannot be read: ENOENT/);
  });
});

function flashEnv(head: Buffer): string[] {
  const block = head.subarray(0, UBOOT_ENV_SIZE);
  expect(block.readUInt32LE(0)).toBe(crc32(block.subarray(4)) >>> 0);
  const data = block.subarray(4);
  return data.subarray(0, data.indexOf(Buffer.from([0, 0]))).toString('latin1').split('\0');
}

requires(missingUboot).describe('ubootScriptFlash', () => {
  const SCRIPT = 'echo "edgeimage-uboot: hello from flash"\nif test 1 = 1; then\n  poweroff\nfi\n';

  test('the environment runs the script from flash (bootcmd=source 0x04040000, bootdelay=-2) and keeps no distro boot; the script image is mkimage -T script\'s', () => {
    const head = ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { bootargs: 'console=ttyAMA0', edge_board: 'virt' }, sourceDateEpoch: EPOCH });
    const env = flashEnv(head);
    expect(env[0]).toBe('bootcmd=source 0x04040000');
    expect(envValue(env, 'bootdelay')).toBe('-2');
    expect(envValue(env, 'bootargs')).toBe('console=ttyAMA0');
    expect(envValue(env, 'edge_board')).toBe('virt');
    expect(envValue(env, 'kernel_addr_r')).toBe('0x40400000');
    for (const kv of env) {
      expect(kv).not.toMatch(/^(distro_bootcmd|boot_targets|bootcmd_|scan_dev_for_|boot_a_script|boot_efi_)/);
      if (!kv.startsWith('bootcmd=')) expect(kv).not.toMatch(/\b(source|booti|bootefi|sysboot|bootm|distro_bootcmd)\b/);
    }
    const scr = join(dir, 'script.cmd');
    writeFileSync(scr, SCRIPT);
    const theirs = join(dir, 'script.img');
    const r = spawnSync('mkimage', ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-n', 'edgeimage boot script', '-d', scr, theirs], { env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const script = readFileSync(theirs);
    expect(head.subarray(0x40000, 0x40000 + script.length).equals(script)).toBe(true);
    // the whole bank, as QEMU's pflash needs it; zeros after the script
    expect(head.length).toBe(UBOOT_FLASH_BANK_SIZE);
    expect(head.subarray(0x40000 + script.length).every((b) => b === 0)).toBe(true);
    expect(ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { bootargs: 'console=ttyAMA0', edge_board: 'virt' }, sourceDateEpoch: EPOCH }).equals(head)).toBe(true);
    // written sparse, the same bytes
    const out = join(dir, 'flash.img');
    writeUbootFlash(out, head);
    const bank = readFileSync(out);
    expect(bank.length).toBe(UBOOT_FLASH_BANK_SIZE);
    expect(bank.equals(head)).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThan(1024 * 1024);
  });

  test('refuses extraEnv that would change what runs or turn verification off, and scripts U-Boot cannot hold (ERR_UBOOT_ENV / ERR_UBOOT_SCRIPT); nothing is written', () => {
    const code = (f: () => unknown): { code: string; message: string } => {
      try {
        f();
      } catch (e) {
        return e as { code: string; message: string };
      }
      throw new Error('expected a refusal');
    };
    for (const name of ['verify', 'bootcmd', 'bootdelay', 'preboot', 'distro_bootcmd', 'bootcmd_virtio0']) {
      const e = code(() => ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { [name]: 'no' } }));
      expect(e.code).toBe('ERR_UBOOT_ENV');
      expect(e.message).toContain(`extraEnv may not set ${name}`);
    }
    expect(code(() => ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { 'a b': 'x' } })).message).toMatch(/U-Boot variable name "a b" is invalid/);
    expect(code(() => ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { edge_x: 'a\nbootcmd=booti' } })).message).toMatch(/U-Boot variable edge_x: its value holds a NUL or line break/);
    expect(code(() => ubootScriptFlash({ ubootBin: UBOOT, script: SCRIPT, extraEnv: { edge_x: 'x'.repeat(UBOOT_ENV_SIZE) } })).code).toBe('ERR_UBOOT_ENV');
    expect(code(() => ubootScriptFlash({ ubootBin: UBOOT, script: 'echo a\0echo b' })).code).toBe('ERR_UBOOT_SCRIPT');
    expect(code(() => ubootScriptFlash({ ubootBin: UBOOT, script: '' })).code).toBe('ERR_UBOOT_SCRIPT');
    const bogus = join(dir, 'not-u-boot.bin');
    writeFileSync(bogus, Buffer.alloc(4096));
    const e = code(() => ubootScriptFlash({ ubootBin: bogus, script: SCRIPT }));
    expect(e.code).toBe('ERR_UBOOT_ENV');
    expect(e.message).toMatch(/not-u-boot\.bin: no default environment found/);
    expect(code(() => ubootScriptFlash({ ubootBin: join(dir, 'nope.bin'), script: SCRIPT })).message).toMatch(/nope\.bin cannot be read: ENOENT/);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});

test('legacyScriptImage: header fields and CRCs as U-Boot checks them', () => {
  const img = legacyScriptImage(Buffer.from('echo hi\n'), { time: 7, name: 'n' });
  expect(img.readUInt32BE(0)).toBe(0x27051956);
  const h = Buffer.from(img.subarray(0, 64));
  const hcrc = h.readUInt32BE(4);
  h.writeUInt32BE(0, 4);
  expect(crc32(h) >>> 0).toBe(hcrc);
  expect(img.readUInt32BE(8)).toBe(7);
  expect(img.readUInt32BE(12)).toBe(16);
  expect(crc32(img.subarray(64)) >>> 0).toBe(img.readUInt32BE(24));
  expect([img[28], img[29], img[30], img[31]]).toEqual([5, 22, 6, 0]);
  expect(img.subarray(64 + 8).toString()).toBe('echo hi\n');
});

requires(missingTools).test('readFdt refuses malformed trees within their bytes (ERR_FDT_FORMAT naming the file and what is wrong)', () => {
  const good = readFileSync(fdt);
  expect(fdtStrings(readFdt(good, 'board.dtb').props.get('model'))).toEqual(['test board']);
  const offStruct = good.readUInt32BE(8);
  const cases: [Buffer, RegExp][] = [
    [good.subarray(0, 20), /board\.dtb: not a valid flattened device tree \(20 bytes, a header is 40\)/],
    [good.subarray(0, good.length - 8), /header sizes beyond the \d+ bytes read/],
    [(() => { const b = Buffer.from(good); b.writeUInt32BE(7, offStruct); return b; })(), /unknown tag 7/],
    // the root's first property claims more bytes than the structure block holds
    [(() => { const b = Buffer.from(good); const p = b.indexOf(Buffer.from([0, 0, 0, 3]), offStruct); b.writeUInt32BE(0x7fffffff, p + 4); return b; })(), /runs past the structure block/],
    // a node name without its NUL up to the end of the structure block
    [(() => { const b = Buffer.from(good); b.fill(0x41, offStruct + 4, offStruct + 4 + b.readUInt32BE(36) - 4); return b; })(), /unterminated node name|structure block ends early/],
  ];
  for (const [bytes, message] of cases) {
    let err: { code?: string; message?: string } = {};
    try {
      readFdt(bytes, 'board.dtb');
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('ERR_FDT_FORMAT');
    expect(err.message).toMatch(message);
  }
  // nesting deeper than libfdt's limit
  const deep = spawnSync('dtc', ['-I', 'dts', '-O', 'dtb', '-o', '-', '-'], { input: `/dts-v1/;\n/ { ${'a { '.repeat(40)}${'}; '.repeat(40)}};\n` }).stdout;
  expect(() => readFdt(deep, 'deep.dtb')).toThrow(/nodes nested deeper than 32/);
});
