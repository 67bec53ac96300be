/**
 * The device's network update poller, edge-fetch, run for real — the agent's busybox sh, wget and
 * Debian's openssl — in a chroot of the amd64 busybox-base bundle (root needed). The chroot shares
 * the host's network, so a Node HTTP server on 127.0.0.1 is the store, and each test makes it
 * misbehave as an attacker or a bad network would: pointers signed by the wrong key, expired,
 * replayed, for a rollback or another model; a connection dropped mid-download, a server that
 * ignores Range, an endless body, a trickle, wrong bytes. Pointers are signed with the real
 * signing code by a pointer-only key of the example brand (its account-key signed by the example
 * root). edge-update is the real one for `failed-revision`; `apply` is a stand-in that only
 * records what it was given (the real apply is edge-update.test.ts's and the QEMU scenarios').
 * The grade dangerous hooks (edge.ota-min-rate=, edge.ota-window=) keep the rate windows short.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountKeyHeaders, Keyring, POINTER_ONLY_CONSTRAINTS, PrivateKey, signAssertion, SigningKey } from '@edgeimage/assertions';
import { encodeChannelPointer, signChannelPointer, type ChannelPointer } from '@edgeimage/composer';
import { REPO as ROOT } from '@edgeimage/testkit/repo';
import { isRoot, useBaseChroot } from '@edgeimage/testkit/base-chroot';
import { missingRoot, requires } from '@edgeimage/testkit/skips';

const keys = new Keyring(join(ROOT, 'signing-keys.example'));
const AGENT_LIB = 'run/edgeimage/agent/lib/edgeimage';
const BRAND = 'example-brand';
const MODEL = 'pc-amd64';
const CHANNEL = 'latest/stable';
const POINTER = `/store/channels/${BRAND}.${MODEL}.latest+stable.pointer`;
const FULL = 'updates/example-brand.pc-amd64.2.full.update';
const DELTA = 'updates/example-brand.pc-amd64.2.from-1.update';
/** The build time the slot's manifest.json gives (a floor for the device's now). */
const BUILD_EPOCH = 1767225600; // 2026-01-01T00:00:00Z

let work: string;
let chroot: string;
let pointerKey: PrivateKey;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const day = 86400_000;
const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

const ready = useBaseChroot('edgeimage-edge-fetch-', isRoot, (w, c) => {
  work = w;
  chroot = c;
  const run = join(chroot, 'run/edgeimage');
  mkdirSync(join(run, 'slot/boot'), { recursive: true });
  writeFileSync(join(run, 'slot/model.assert'), `type: model\nauthority-id: ${BRAND}\nbrand-id: ${BRAND}\nmodel: ${MODEL}\nrevision: 1\n\nSIGNATURE\n`);
  writeFileSync(join(run, 'slot/manifest.json'), `{\n  "format": 1,\n  "source-date-epoch": ${BUILD_EPOCH}\n}\n`);
  // grade dangerous: the test hooks of the command line are read
  writeFileSync(join(run, 'slot/boot/slot.env'), 'EDGE_GRADE=dangerous\n');
  writeFileSync(join(run, 'slot-name'), 'a\n');
  writeFileSync(join(run, 'devices'), 'slot_dev=/dev/vda2\ndata_dev=/dev/vda4\nboot_dev=\n');
  // the tools under test from the source tree (the bundle was built from it too)
  const lib = join(chroot, AGENT_LIB);
  copyFileSync(join(ROOT, 'bundles/edge-agent/lib/edgeimage/edge-fetch'), join(lib, 'edge-fetch'));
  copyFileSync(join(ROOT, 'bundles/edge-agent/lib/edgeimage/edge-update'), join(lib, 'edge-update.real'));
  chmodSync(join(lib, 'edge-fetch'), 0o755);
  chmodSync(join(lib, 'edge-update.real'), 0o755);
  // the stand-in only observes apply: which file, and its sha256 at that moment
  writeFileSync(
    join(lib, 'edge-update'),
    [
      '#!/run/edgeimage/agent/bin/sh',
      'case "$1" in',
      // exit: 0, or what /run/edgeimage/apply-exit says (a refusal, a failure)
      '  apply) echo "$2 $(sha256sum "$2" | cut -d" " -f1)" >> /run/edgeimage/applied; echo "edge-update (stand-in): apply $2"; exit "$(cat /run/edgeimage/apply-exit 2>/dev/null || echo 0)" ;;',
      '  *) exec /run/edgeimage/agent/lib/edgeimage/edge-update.real "$@" ;;',
      'esac',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
});

beforeAll(async () => {
  pointerKey = await PrivateKey.generate(2048);
}, 60_000);

/** The device's pointer trust store holds the pointer key only (never the brand's model key). */
function trustPointer(): void {
  const dir = join(chroot, 'run/edgeimage/slot/trust-pointer');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(join(dir, `${pointerKey.publicKey.id}.pem`), pointerKey.publicKey.toPem());
}

function conf(over: { mode?: string; window?: string; url?: string } = {}): void {
  writeFileSync(
    join(chroot, 'run/edgeimage/slot/update.conf'),
    `edgeimage-update-conf: 1\nurl: ${over.url ?? `${base}/store`}\nchannel: ${CHANNEL}\ninterval: 21600\njitter: 0\nwindow: ${over.window ?? '-'}\nmode: ${over.mode ?? 'auto'}\n`,
  );
}

// ---- the store: a real HTTP server, with a behaviour per path ----

type Behaviour = 'normal' | { dropAfter: number } | 'ignore-range' | 'endless' | 'trickle' | 'silent';
interface Served {
  bytes: number;
  ranges: (string | undefined)[];
}
let server: Server;
let base: string;
const files = new Map<string, Buffer>();
const behaviour = new Map<string, Behaviour>();
const served = new Map<string, Served>();

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  const s = served.get(path) ?? { bytes: 0, ranges: [] };
  served.set(path, s);
  s.ranges.push(req.headers.range);
  const body = files.get(path);
  if (!body) {
    res.writeHead(404).end();
    return;
  }
  const b = behaviour.get(path) ?? 'normal';
  // a store that takes the request and never answers: the socket stays open until the client goes
  if (b === 'silent') return;
  const send = (chunk: Buffer) => {
    s.bytes += chunk.length;
    return res.write(chunk);
  };
  if (b === 'endless' || b === 'trickle') {
    res.writeHead(200);
    let at = 0;
    // the real bytes, then more for ever: the device must stop at SIZE
    const next = () => (at < body.length ? body.subarray(at, (at += b === 'trickle' ? 10 : 65536)) : randomBytes(b === 'trickle' ? 10 : 65536));
    const pump = () => {
      while (!res.destroyed) {
        if (b === 'trickle') {
          send(next());
          setTimeout(pump, 200);
          return;
        }
        if (!send(next())) {
          res.once('drain', pump);
          return;
        }
      }
    };
    res.on('close', () => res.destroy());
    pump();
    return;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let from = 0;
  if (m && b !== 'ignore-range') {
    from = Number(m[1]);
    res.writeHead(206, { 'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` });
  } else {
    res.writeHead(200, { 'Content-Length': body.length });
  }
  if (typeof b === 'object') {
    // the whole length announced, part of it sent, then the connection cut
    send(body.subarray(from, b.dropAfter));
    setTimeout(() => res.socket?.destroy(), 50);
    return;
  }
  send(body.subarray(from));
  res.end();
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

// not a whole number of 512-byte blocks: the file size limit stops an endless answer a little after SIZE
const UPDATE = randomBytes(300 * 1024 + 100);
const DELTA_BYTES = randomBytes(40 * 1024);

const pointer = (over: Partial<ChannelPointer> = {}): ChannelPointer => ({
  'brand-id': BRAND,
  model: MODEL,
  channel: CHANNEL,
  revision: 2,
  sequence: 5,
  expires: new Date(Date.now() + 7 * day),
  rollout: 100,
  'sign-key-sha3-384': pointerKey.publicKey.id,
  updates: [{ from: 'full', sha256: sha(UPDATE), size: UPDATE.length, path: FULL }],
  ...over,
});

/** Publishes a pointer signed by `key` (default: the pointer key), its bytes changed after signing by `tamper`. */
function publish(p: ChannelPointer, o: { key?: PrivateKey; tamper?: (b: Buffer) => Buffer; sig?: Buffer } = {}): void {
  const key = o.key ?? pointerKey;
  const bytes = encodeChannelPointer({ ...p, 'sign-key-sha3-384': key.publicKey.id });
  files.set(POINTER, o.tamper ? o.tamper(bytes) : bytes);
  files.set(`${POINTER}.sig`, o.sig ?? signChannelPointer(bytes, key));
}

const ota = (f = '') => join(chroot, 'writable/system/ota', f);
const applied = () => (existsSync(join(chroot, 'run/edgeimage/applied')) ? readFileSync(join(chroot, 'run/edgeimage/applied'), 'utf8') : '');
const downloads = () => (existsSync(ota('download')) ? readdirSync(ota('download')) : []);

/** A fresh device and store: nothing accepted yet, the full update and a delta from 1 published. */
function fresh(): void {
  ready();
  rmSync(join(chroot, 'writable/system'), { recursive: true, force: true });
  rmSync(join(chroot, 'run/edgeimage/applied'), { force: true });
  rmSync(join(chroot, 'run/edgeimage/apply-exit'), { force: true });
  trustPointer();
  conf();
  files.clear();
  behaviour.clear();
  served.clear();
  files.set(`/store/${FULL}`, UPDATE);
  files.set(`/store/${DELTA}`, DELTA_BYTES);
}

/**
 * Runs `edge-fetch ARGS` in the chroot as the device would: /dev (urandom), a /proc whose cmdline
 * carries the test hooks; in a mount namespace of its own. Asynchronous: the store answers from
 * this process.
 */
function edgeFetch(args: string, cmdline = 'edge.ota-min-rate=1024 edge.ota-window=2', timeoutMs = 60_000): Promise<{ status: number | null; out: string }> {
  const cmdFile = join(work, 'cmdline');
  writeFileSync(cmdFile, `${cmdline}\n`);
  const script = [
    'set -e',
    'mount --rbind /dev "$1/dev"',
    'mount -t proc proc "$1/proc"',
    'mount --bind "$2" "$1/proc/cmdline"',
    'set +e',
    `exec chroot "$1" /${AGENT_LIB}/edge-fetch ${args} 2>&1`,
  ].join('\n');
  return new Promise((resolve) => {
    const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', chroot, cmdFile], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, detached: true });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => process.kill(-p.pid!, 'SIGKILL'), timeoutMs);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out });
    });
  });
}
const check = (cmdline?: string) => edgeFetch('check', cmdline);

/** The bucket edge-fetch must compute for this device and revision (contract: first 8 hex digits of sha256 mod 100). */
const bucketOf = (deviceId: string, revision: number) => parseInt(sha(Buffer.from(`${deviceId} ${BRAND}/${MODEL} ${revision}`)).slice(0, 8), 16) % 100;

requires(missingRoot('edge-fetch in a chroot of the base bundle')).describe('edge-fetch: the device polls a store over HTTP (chroot of the amd64 base)', () => {
  test('the pointer key is a pointer-only account-key of the example brand, signed by the example root', () => {
    const { headers, body } = accountKeyHeaders(pointerKey.publicKey, { accountId: BRAND, authorityId: 'example-root', since: new Date('2026-01-01T00:00:00Z'), name: 'pointer', constraints: POINTER_ONLY_CONSTRAINTS });
    const a = signAssertion(headers, body, keys.load('root'));
    expect(SigningKey.fromAccountKey(a).constraints?.pointerOnly).toBe(true);
  });

  test('a good pointer: accepted, the full update downloaded, its digest checked, handed to edge-update apply; state and status written', async () => {
    fresh();
    // a device that has the delta's base takes the delta: here, only the full update is named
    publish(pointer());
    const r = await check();
    expect(r.out).toContain('edge-fetch: pointer revision 2 sequence 5 accepted');
    expect(r.out).toContain(`edge-fetch: downloading ${FULL} (${UPDATE.length} bytes) from byte 0`);
    expect(r.out).toContain(`edge-fetch: downloaded ${UPDATE.length} bytes of ${FULL}, sha256 verified`);
    expect(r.out).toContain('edge-fetch: applying revision 2');
    expect(r.status).toBe(0);
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
    expect(downloads()).toEqual([]);
    expect(readFileSync(ota('last-sequence'), 'utf8')).toBe(`5 ${base}/store ${CHANNEL}\n`);
    expect(readFileSync(ota('last-time'), 'utf8')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    expect(readFileSync(ota('device-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    const st = statSync(ota());
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o700]);
    const status = readFileSync(ota('status'), 'utf8').split('\n');
    expect(status[0]).toBe(`network: channel: ${CHANNEL} at ${base}/store`);
    expect(status[1]).toMatch(/^network: last check: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(status[2]).toMatch(/^network: found: revision 2 sequence 5 expires \S+ rollout 100 %$/);
    expect(status[3]).toBe('network: decision: revision 2 applied');
  }, 60_000);

  test('the delta for the installed revision is taken when the pointer names one', async () => {
    fresh();
    publish(pointer({ updates: [{ from: 'full', sha256: sha(UPDATE), size: UPDATE.length, path: FULL }, { from: 1, sha256: sha(DELTA_BYTES), size: DELTA_BYTES.length, path: DELTA }] }));
    const r = await check();
    expect(r.status).toBe(0);
    expect(served.has(`/store/${FULL}`)).toBe(false);
    expect(applied()).toBe(`/writable/system/ota/download/2.1.update ${sha(DELTA_BYTES)}\n`);
  }, 60_000);

  test('the installed revision: up to date, nothing downloaded', async () => {
    fresh();
    publish(pointer({ revision: 1 }));
    const r = await check();
    expect(r.out).toContain('edge-fetch: up to date (revision 1)');
    expect(r.status).toBe(0);
    expect(served.has(`/store/${FULL}`)).toBe(false);
  }, 60_000);

  test('up to date: a download left for the installed revision (applied, the reboot before its removal) is removed', async () => {
    fresh();
    mkdirSync(ota('download'), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    writeFileSync(ota('download/1.full.update'), UPDATE);
    writeFileSync(ota('download/1.0.part'), 'x');
    publish(pointer({ revision: 1 }));
    const r = await check();
    expect(r.out).toContain('edge-fetch: up to date (revision 1)');
    expect(r.status).toBe(0);
    expect(existsSync(ota('download'))).toBe(false);
  }, 60_000);

  const refused: [string, () => void, RegExp][] = [
    ['an expired pointer', () => publish(pointer({ expires: new Date(Date.now() - 60_000) })), /edge-fetch: REFUSED pointer: expired at \S+ \(the device's now is \S+\)/],
    [
      // the clock set back: a pointer not expired by the clock, but the device accepted a pointer after its expiry
      'a pointer that expired before the last time the device accepted one (a clock set back)',
      () => {
        publish(pointer({ expires: new Date(Date.now() + day) }));
        mkdirSync(ota(), { recursive: true, mode: 0o700 });
        writeFileSync(ota('last-time'), `${iso(Date.now() + 2 * day)}\n`);
      },
      /edge-fetch: REFUSED pointer: expired at \S+ \(the device's now is \S+\)/,
    ],
    ['a pointer signed by the brand\'s model key (not in trust-pointer/)', () => publish(pointer(), { key: keys.load('brand') }), /edge-fetch: REFUSED pointer: signed with key \S{64}, which is not in the device's pointer trust store \(trust-pointer\/\)/],
    ['a pointer changed after signing', () => publish(pointer(), { tamper: (b) => Buffer.from(b.toString().replace('rollout: 100', 'rollout: 99 ')) }), /edge-fetch: REFUSED pointer: signature does not verify with key/],
    ['a pointer to a revision lower than the installed one', () => publish(pointer({ revision: 0, updates: [{ from: 'full', sha256: sha(UPDATE), size: UPDATE.length, path: FULL }] })), /edge-fetch: REFUSED pointer: rollback: revision 0 is lower than the installed revision 1/],
    [
      'a sequence lower than the last accepted (a replay)',
      () => {
        publish(pointer({ sequence: 4 }));
        mkdirSync(ota(), { recursive: true, mode: 0o700 });
        writeFileSync(ota('last-sequence'), '5\n');
      },
      /edge-fetch: REFUSED pointer: replay: sequence 4 is lower than the last accepted sequence 5/,
    ],
    ['a pointer for another model of the brand', () => publish(pointer({ model: 'pc-amd64-lab' })), /edge-fetch: REFUSED pointer: model: for pc-amd64-lab, this device is pc-amd64/],
    ['a pointer over 16 KiB (an endless one: not read further)', () => { publish(pointer()); behaviour.set(POINTER, 'endless'); }, /edge-fetch: REFUSED pointer: size: more than 16384 bytes/],
    ['a signature over 1024 bytes', () => publish(pointer(), { sig: randomBytes(2048) }), /edge-fetch: REFUSED pointer: signature size: more than 1024 bytes/],
    // what only a leaked pointer key signs (the publisher's tools stop at 365 days): one pointer
    // that would hold the device on this revision for years
    ['a pointer that expires more than 366 days after the device\'s now', () => publish(pointer({ expires: new Date(Date.now() + 400 * day) })), /edge-fetch: REFUSED pointer: expires \S+: more than 366 days after the device's now \(\S+\)/],
  ];
  test.each(refused)('refused before anything is downloaded or remembered: %s', async (_name, arrange, message) => {
    fresh();
    arrange();
    const before = existsSync(ota('last-sequence')) ? readFileSync(ota('last-sequence'), 'utf8') : undefined;
    const r = await check();
    expect(r.out).toMatch(message);
    expect(r.status).toBe(3);
    expect(r.out).not.toMatch(/pointer revision \d+ sequence \d+ accepted/);
    expect(served.has(`/store/${FULL}`)).toBe(false);
    expect(existsSync(ota('download'))).toBe(false);
    expect(existsSync(ota('last-sequence')) ? readFileSync(ota('last-sequence'), 'utf8') : undefined).toBe(before);
    expect(readFileSync(ota('status'), 'utf8')).toMatch(/^network: decision: REFUSED pointer: /m);
    expect(applied()).toBe('');
  }, 60_000);

  test('an image built after the pointer expired refuses it whatever its clock says (the build time is a floor for now)', async () => {
    fresh();
    publish(pointer({ expires: new Date(Date.now() + day) }));
    const manifest = join(chroot, 'run/edgeimage/slot/manifest.json');
    writeFileSync(manifest, `{\n  "format": 1,\n  "source-date-epoch": ${Math.floor((Date.now() + 2 * day) / 1000)}\n}\n`);
    try {
      const r = await check();
      expect(r.out).toContain(`edge-fetch: REFUSED pointer: expired at ${iso(Math.floor((Date.now() + day) / 1000) * 1000).slice(0, 13)}`);
      expect(r.out).toContain(`(the device's now is ${iso(Date.now() + 2 * day).slice(0, 13)}`);
      expect(r.status).toBe(3);
    } finally {
      writeFileSync(manifest, `{\n  "format": 1,\n  "source-date-epoch": ${BUILD_EPOCH}\n}\n`);
    }
  }, 60_000);

  test('a store that never answers the pointer request: given up after the window, exit 1 (the daemon backs off)', async () => {
    fresh();
    publish(pointer());
    behaviour.set(POINTER, 'silent');
    const t0 = Date.now();
    const r = await check();
    expect(r.out).toMatch(/edge-fetch: cannot fetch \S+\.pointer: no answer in 2 s: will retry/);
    expect(r.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(existsSync(ota('download'))).toBe(false);
  }, 60_000);

  test('rollout: 0 % is never taken, 100 % always; in between by a bucket that is stable per device id', async () => {
    fresh();
    publish(pointer({ rollout: 0 }));
    let r = await check();
    const id = readFileSync(ota('device-id'), 'utf8').trim();
    const bucket = bucketOf(id, 2);
    expect(r.out).toContain(`edge-fetch: not in the rollout (bucket ${bucket} ≥ 0 %)`);
    expect(r.status).toBe(0);
    expect(served.has(`/store/${FULL}`)).toBe(false);
    // the same device, the same bucket: at rollout = bucket it is still out, one more and it is in
    publish(pointer({ rollout: bucket, sequence: 6 }));
    r = await check();
    expect(r.out).toContain(`edge-fetch: not in the rollout (bucket ${bucket} ≥ ${bucket} %)`);
    expect(readFileSync(ota('device-id'), 'utf8').trim()).toBe(id);
    publish(pointer({ rollout: Math.min(bucket + 1, 100), sequence: 7 }));
    r = await check();
    expect(r.out).toContain('edge-fetch: applying revision 2');
    // another device id, another bucket for the same revision (here: one whose bucket is known)
    writeFileSync(ota('device-id'), `${'0'.repeat(32)}\n`);
    publish(pointer({ rollout: 100, sequence: 8 }));
    rmSync(join(chroot, 'run/edgeimage/applied'));
    r = await check();
    expect(r.out).toContain('edge-fetch: applying revision 2');
    publish(pointer({ rollout: bucketOf('0'.repeat(32), 2), sequence: 9 }));
    r = await check();
    expect(r.out).toContain(`edge-fetch: not in the rollout (bucket ${bucketOf('0'.repeat(32), 2)} ≥ ${bucketOf('0'.repeat(32), 2)} %)`);
  }, 60_000);

  test('the connection dropped mid-download: exit 1, the part kept; the next check resumes with Range from the part\'s size, and the server sends at most 110 % of the update', async () => {
    fresh();
    publish(pointer());
    behaviour.set(`/store/${FULL}`, { dropAfter: 100_000 });
    let r = await check();
    expect(r.status).toBe(1);
    expect(r.out).toContain(`edge-fetch: the connection ended at byte 100000 of ${UPDATE.length}`);
    expect(downloads()).toEqual(['2.full.part']);
    expect(readFileSync(ota('download/2.full.part')).equals(UPDATE.subarray(0, 100_000))).toBe(true);
    behaviour.delete(`/store/${FULL}`);
    r = await check();
    expect(r.out).toContain(`edge-fetch: downloading ${FULL} (${UPDATE.length} bytes) from byte 100000`);
    expect(r.status).toBe(0);
    expect(served.get(`/store/${FULL}`)!.ranges).toEqual([undefined, 'bytes=100000-']);
    expect(served.get(`/store/${FULL}`)!.bytes).toBeLessThanOrEqual(UPDATE.length * 1.1);
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
  }, 60_000);

  test('a server that ignores Range (200): the download starts again from byte 0 and is still right', async () => {
    fresh();
    publish(pointer());
    behaviour.set(`/store/${FULL}`, { dropAfter: 100_000 });
    expect((await check()).status).toBe(1);
    behaviour.set(`/store/${FULL}`, 'ignore-range');
    const r = await check();
    expect(r.out).toContain('edge-fetch: the server ignored the Range request (200): restarted from byte 0');
    expect(r.status).toBe(0);
    expect(served.get(`/store/${FULL}`)!.ranges).toEqual([undefined, 'bytes=100000-']);
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
  }, 60_000);

  test('an endless body: read up to SIZE only, then the digest decides (the right bytes first: applied)', async () => {
    fresh();
    publish(pointer());
    behaviour.set(`/store/${FULL}`, 'endless');
    let r = await check();
    expect(r.out).toContain(`edge-fetch: the server sent more than the ${UPDATE.length} bytes the pointer gives: cut there`);
    expect(r.status).toBe(0);
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
    // endless bytes that are not the update: refused by the digest, nothing kept
    files.set(`/store/${FULL}`, randomBytes(1000));
    publish(pointer({ sequence: 6 }));
    r = await check();
    expect(r.out).toContain('edge-fetch: REFUSED download: digest mismatch');
    expect(r.status).toBe(3);
    expect(downloads()).toEqual([]);
  }, 60_000);

  test('wrong bytes of the right size: digest mismatch, the file removed, exit 3, the status says so', async () => {
    fresh();
    publish(pointer());
    files.set(`/store/${FULL}`, randomBytes(UPDATE.length));
    const r = await check();
    expect(r.out).toContain(`edge-fetch: REFUSED download: digest mismatch: ${FULL} does not have the sha256 the pointer gives: removed`);
    expect(r.status).toBe(3);
    expect(downloads()).toEqual([]);
    expect(readFileSync(ota('status'), 'utf8')).toContain('network: decision: REFUSED download: digest mismatch');
    expect(applied()).toBe('');
  }, 60_000);

  test('a sequence accepted from another store or channel (update.conf moved the device) is no replay here; from this one it is', async () => {
    fresh();
    publish(pointer({ sequence: 5 }));
    mkdirSync(ota(), { recursive: true, mode: 0o700 });
    writeFileSync(ota('last-sequence'), `9 ${base}/store latest/beta\n`);
    let r = await check();
    expect(r.out).toContain('edge-fetch: pointer revision 2 sequence 5 accepted');
    expect(readFileSync(ota('last-sequence'), 'utf8')).toBe(`5 ${base}/store ${CHANNEL}\n`);
    publish(pointer({ sequence: 4 }));
    r = await check();
    expect(r.out).toMatch(/edge-fetch: REFUSED pointer: replay: sequence 4 is lower than the last accepted sequence 5/);
  }, 60_000);

  describe('one check at a time: the lock on the tmpfs of /run/edgeimage', () => {
    const lock = () => join(chroot, 'run/edgeimage/edge-fetch.lock');
    afterEach(() => rmSync(lock(), { recursive: true, force: true }));
    test('a check that has just made the lock (no pid yet): another check says so and stops', async () => {
      fresh();
      publish(pointer());
      mkdirSync(lock());
      const r = await check();
      expect(r.out).toContain('edge-fetch: another check is running (pid starting)');
      expect(r.status).toBe(1);
      expect(served.has(POINTER)).toBe(false);
    }, 60_000);
    test('a lock whose pid is now a process that is not root\'s edge-fetch check (a reboot, a reused pid): taken over', async () => {
      fresh();
      publish(pointer({ revision: 1 }));
      mkdirSync(lock());
      // a live process whose command line names edge-fetch, but is no check
      const squatter = spawn('sh', ['-c', 'exec -a edge-fetch sleep 30'], { stdio: 'ignore' });
      try {
        writeFileSync(join(lock(), 'pid'), `${squatter.pid}\n`);
        const r = await check();
        expect(r.out).toContain('edge-fetch: up to date (revision 1)');
        expect(existsSync(lock())).toBe(false);
      } finally {
        squatter.kill('SIGKILL');
      }
    }, 60_000);
  });

  test('a resumed download answered 200 (Range ignored) and too slow: the part, rewritten from byte 0 in place, is removed', async () => {
    fresh();
    publish(pointer());
    mkdirSync(ota('download'), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    writeFileSync(ota('download/2.full.part'), UPDATE.subarray(0, 100_000));
    behaviour.set(`/store/${FULL}`, 'trickle');
    const r = await check('edge.ota-min-rate=1024 edge.ota-window=2');
    expect(r.out).toContain('edge-fetch: the server ignored the Range request (200): restarted from byte 0');
    expect(r.out).toContain('edge-fetch: download too slow after the server ignored the Range request (200): started again from byte 0 at the next check: will retry');
    expect(r.status).toBe(1);
    expect(downloads()).toEqual([]);
  }, 60_000);

  test('a trickle below the minimum rate over the window: killed, exit 1, what came is kept for the next check', async () => {
    fresh();
    publish(pointer());
    behaviour.set(`/store/${FULL}`, 'trickle');
    const t0 = Date.now();
    const r = await check('edge.ota-min-rate=1024 edge.ota-window=2');
    expect(r.out).toMatch(/edge-fetch: download too slow \(\d+ bytes in the last 2 s, fewer than 1024 bytes\/s\): stopped at byte \d+ of \d+, kept for the next check: will retry/);
    expect(r.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(downloads()).toEqual(['2.full.part']);
    const kept = readFileSync(ota('download/2.full.part'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.equals(UPDATE.subarray(0, kept.length))).toBe(true);
  }, 60_000);

  test('mode download-only: downloaded and verified, kept, not applied; the next check does not download it again', async () => {
    fresh();
    conf({ mode: 'download-only' });
    publish(pointer());
    let r = await check();
    expect(r.out).toContain('edge-fetch: revision 2 downloaded and verified, kept in /writable/system/ota/download/2.full.update (mode download-only)');
    expect(r.status).toBe(0);
    expect(applied()).toBe('');
    expect(readFileSync(ota('download/2.full.update')).equals(UPDATE)).toBe(true);
    r = await check();
    expect(r.out).toContain('edge-fetch: revision 2 already downloaded and verified');
    expect(served.get(`/store/${FULL}`)!.ranges).toHaveLength(1);
  }, 60_000);

  test('outside the update window: downloaded and verified, kept, applied by a later check inside it', async () => {
    fresh();
    // an hour that starts two hours from now (UTC): now is outside it
    const hh = (h: number) => String((new Date().getUTCHours() + h) % 24).padStart(2, '0');
    conf({ window: `${hh(2)}:00-${hh(3)}:00` });
    publish(pointer());
    let r = await check();
    expect(r.out).toContain(`edge-fetch: revision 2 downloaded and verified; outside the update window ${hh(2)}:00-${hh(3)}:00 (UTC): applied in it`);
    expect(r.status).toBe(0);
    expect(applied()).toBe('');
    expect(downloads()).toEqual(['2.full.update']);
    conf({ window: `${hh(-1 + 24)}:00-${hh(2)}:00` });
    r = await check();
    expect(r.out).toContain('edge-fetch: revision 2 already downloaded and verified');
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
    expect(served.get(`/store/${FULL}`)!.ranges).toHaveLength(1);
  }, 60_000);

  test('the hooks are a grade dangerous device\'s only: a signed one keeps its interval whatever the command line says', async () => {
    fresh();
    publish(pointer({ revision: 1 }));
    const env = join(chroot, 'run/edgeimage/slot/boot/slot.env');
    writeFileSync(env, 'EDGE_GRADE=signed\n');
    try {
      const r = await edgeFetch('daemon', 'edge.ota-interval=1', 3_000);
      expect(r.out.match(/edge-fetch: up to date \(revision 1\)/g)).toHaveLength(1);
      expect(r.out).toContain('edge-fetch: next check in 21600 s');
    } finally {
      writeFileSync(env, 'EDGE_GRADE=dangerous\n');
    }
  }, 30_000);

  test('edge-update failed-revision: nothing when no try boot failed (the poller then goes on)', async () => {
    fresh();
    const r = await new Promise<string>((resolve) => {
      const p = spawn('chroot', [chroot, `/${AGENT_LIB}/edge-update`, 'failed-revision'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.on('close', (code) => resolve(`${code}:${out}`));
    });
    expect(r).toBe('0:');
  });

  test('daemon: polls again after the interval (edge.ota-interval=1 on a dangerous device)', async () => {
    fresh();
    publish(pointer({ revision: 1 }));
    const p = edgeFetch('daemon', 'edge.ota-interval=1', 4_000);
    const r = await p;
    expect(r.out.match(/edge-fetch: up to date \(revision 1\)/g)!.length).toBeGreaterThanOrEqual(2);
    expect(r.out).toContain('edge-fetch: next check in 1 s');
  }, 30_000);
});

/** `edge-update ARGS` in the chroot (no /dev nor /proc: bootenv finds no boot partition, which status reports as blanks); its stdout and stderr apart. */
function edgeUpdate(args: string[]): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('chroot', [chroot, `/${AGENT_LIB}/edge-update`, ...args], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out, err });
    });
  });
}
const networkLines = (out: string) => out.split('\n').filter((l) => l.startsWith('network: '));

requires(missingRoot('edge-update in a chroot of the base bundle')).describe('edge-update status and apply-downloaded: what edge-fetch left (chroot of the amd64 base)', () => {
  test('status prints the network lines edge-fetch wrote after the slots; none before a check', async () => {
    fresh();
    let r = await edgeUpdate(['status']);
    expect(r.out).toMatch(/^slot b: /m);
    expect(networkLines(r.out)).toEqual([]);
    conf({ mode: 'download-only' });
    publish(pointer());
    expect((await check()).status).toBe(0);
    r = await edgeUpdate(['status']);
    expect(r.status).toBe(0);
    const written = readFileSync(ota('status'), 'utf8').trimEnd().split('\n');
    expect(written).toHaveLength(4);
    expect(networkLines(r.out)).toEqual(written);
    expect(r.out.indexOf('network: ')).toBeGreaterThan(r.out.indexOf('slot b: '));
    expect(written[3]).toBe('network: decision: revision 2 downloaded and verified, kept in /writable/system/ota/download/2.full.update (mode download-only)');
  }, 60_000);

  test('status: a planted status file prints 16 network lines at most, each at most 300 printable ASCII characters; other lines never', async () => {
    fresh();
    mkdirSync(ota(), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    const lines = [
      'root:x:0:0:not a network line',
      `network: decision: \x1b[2J\x1b]0;owned\x07cleared the screen\r`,
      `network: found: ${'A'.repeat(1000)}`,
      'network: decision: not in the rollout (bucket 42 ≥ 10 %)',
      ...Array.from({ length: 40 }, (_, i) => `network: line ${i}`),
    ];
    writeFileSync(ota('status'), `${lines.join('\n')}\n`);
    const r = await edgeUpdate(['status']);
    const net = networkLines(r.out);
    expect(net).toHaveLength(16);
    expect(net[0]).toBe('network: decision: [2J]0;ownedcleared the screen');
    expect(net[1]).toBe(`network: found: ${'A'.repeat(300 - 'network: found: '.length)}`);
    expect(net[2]).toBe('network: decision: not in the rollout (bucket 42 >= 10 %)');
    expect(net[15]).toBe('network: line 12');
    expect(r.out).not.toContain('root:x');
    expect(r.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\uffff]/);
  }, 30_000);

  test('status: a status file in a folder that is not edge-fetch\'s (mode 0777, or a link) is not printed', async () => {
    fresh();
    mkdirSync(ota(), { recursive: true });
    chmodSync(ota(), 0o777);
    writeFileSync(ota('status'), 'network: decision: planted\n');
    expect(networkLines((await edgeUpdate(['status'])).out)).toEqual([]);
    rmSync(ota(), { recursive: true });
    mkdirSync(join(chroot, 'writable/elsewhere'), { recursive: true, mode: 0o700 });
    writeFileSync(join(chroot, 'writable/elsewhere/status'), 'network: decision: planted\n');
    symlinkSync('/writable/elsewhere', ota());
    try {
      expect(networkLines((await edgeUpdate(['status'])).out)).toEqual([]);
    } finally {
      rmSync(join(chroot, 'writable/elsewhere'), { recursive: true });
    }
  }, 30_000);

  test('apply-downloaded: the update edge-fetch kept (download-only) is applied through edge-update apply, then removed', async () => {
    fresh();
    conf({ mode: 'download-only' });
    publish(pointer());
    expect((await check()).status).toBe(0);
    expect(downloads()).toEqual(['2.full.update']);
    const r = await edgeUpdate(['apply-downloaded']);
    expect(r.out).toContain('edge-update: applying the downloaded update /writable/system/ota/download/2.full.update');
    expect(r.status).toBe(0);
    expect(applied()).toBe(`/writable/system/ota/download/2.full.update ${sha(UPDATE)}\n`);
    expect(downloads()).toEqual([]);
  }, 60_000);

  test('apply-downloaded refuses when there is none, and when there are several (none applied, all kept)', async () => {
    fresh();
    let r = await edgeUpdate(['apply-downloaded']);
    expect(r.out).toContain('edge-update: REFUSED: no downloaded update: /writable/system/ota/download is missing');
    expect(r.status).toBe(3);
    mkdirSync(ota('download'), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    // a partial download is not an update
    writeFileSync(ota('download/2.full.part'), 'x');
    r = await edgeUpdate(['apply-downloaded']);
    expect(r.out).toContain('edge-update: REFUSED: no downloaded update in /writable/system/ota/download (edge-fetch keeps one there in mode download-only');
    expect(r.status).toBe(3);
    writeFileSync(ota('download/2.full.update'), 'a');
    writeFileSync(ota('download/3.1.update'), 'b');
    r = await edgeUpdate(['apply-downloaded']);
    expect(r.out).toContain('edge-update: REFUSED: 2 downloaded updates in /writable/system/ota/download (2.full.update 3.1.update): remove all but the one to apply');
    expect(r.status).toBe(3);
    expect(applied()).toBe('');
    expect(downloads().sort()).toEqual(['2.full.part', '2.full.update', '3.1.update']);
  }, 30_000);

  test('apply-downloaded: a download of a revision not above the installed one is removed, never applied', async () => {
    fresh();
    mkdirSync(ota('download'), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    writeFileSync(ota('download/1.full.update'), 'old');
    writeFileSync(ota('download/2.1.update'), DELTA_BYTES);
    const r = await edgeUpdate(['apply-downloaded']);
    expect(r.out).toContain('edge-update: removed /writable/system/ota/download/1.full.update: revision 1 is not higher than the installed revision 1');
    expect(r.status).toBe(0);
    expect(applied()).toBe(`/writable/system/ota/download/2.1.update ${sha(DELTA_BYTES)}\n`);
    expect(downloads()).toEqual([]);
  }, 30_000);

  test('apply-downloaded: refused by apply → removed (it would be refused every time); failed → kept for another try; the exit status is apply\'s', async () => {
    fresh();
    mkdirSync(ota('download'), { recursive: true, mode: 0o700 });
    chmodSync(ota(), 0o700);
    writeFileSync(ota('download/2.full.update'), UPDATE);
    writeFileSync(join(chroot, 'run/edgeimage/apply-exit'), '1\n');
    let r = await edgeUpdate(['apply-downloaded']);
    expect(r.status).toBe(1);
    expect(downloads()).toEqual(['2.full.update']);
    writeFileSync(join(chroot, 'run/edgeimage/apply-exit'), '3\n');
    r = await edgeUpdate(['apply-downloaded']);
    expect(r.status).toBe(3);
    expect(r.out).toContain('edge-update: removed /writable/system/ota/download/2.full.update: refused');
    expect(downloads()).toEqual([]);
    expect(applied().split('\n').filter(Boolean)).toHaveLength(2);
  }, 30_000);
});
