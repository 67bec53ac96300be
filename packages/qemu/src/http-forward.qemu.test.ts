/**
 * --forward and --expect-http on a real guest, cheaply: Debian's amd64 kernel booted directly with
 * a busybox initramfs that loads virtio_net, takes eth0's address from QEMU's DHCP (10.0.2.15) and
 * serves with busybox httpd on port 8080. Proves the NIC only with forwards, DHCP under restrict=on, the forward reaching
 * the guest's server from 127.0.0.1, the answer as a marker, restrict=on (the guest cannot reach
 * a server on the host's loopback through 10.0.2.2), and the failure of an answer that never matches.
 * The same through a composed image and its app bundle: image-http.qemu.test.ts (test/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs } from '@edgeimage/composer';
import { CONSOLE, INIT_PRELUDE, hasQemu, makeGuest, type Guest } from '@edgeimage/testkit/qemu-guest';
import { bootTest } from './boot-test.js';

const T = 240_000;
const guest: Guest | string = hasQemu('amd64') ? await makeGuest('amd64') : 'qemu-system-x86_64 is not installed';
afterAll(() => {
  if (typeof guest !== 'string') guest.cleanup();
});

/** A free port on 127.0.0.1 (bound, then closed). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

// The guest's address from QEMU's DHCP (restrict=on keeps it, without a router option: a systemd
// base's networkd relies on it), a page with a JSON health, then a probe of the host's loopback through the slirp gateway (10.0.2.2 is the
// host's 127.0.0.1 unless restrict=on: without it this probe answers "reachable"), then the
// server in the foreground. (nc, not wget: the static busybox's wget crashes in getaddrinfo here.)
const script = (probePort: number) => `
ip link set lo up
ip link set eth0 up
printf '#!/bin/sh\\n[ "$1" = bound ] || exit 0\\nip addr add "$ip/$mask" dev "$interface" && echo "$ip router \${router:-none}" > /lease\\n' > /dhcp.sh && chmod 755 /dhcp.sh
udhcpc -i eth0 -n -q -t 5 -s /dhcp.sh >/dev/null 2>&1
[ -s /lease ] && echo "guest: dhcp $(cat /lease)" || echo "guest: no dhcp lease"
ip -o link show eth0 >/dev/null 2>&1 && echo "guest: eth0 present" || echo "guest: no eth0"
mkdir -p /www && printf '{"status": "ok", "slot": "a"}\\n' > /www/health
if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.0.2.2 ${probePort} | grep -q '^host$'; then echo "guest: outside reachable"; else echo "guest: outside unreachable"; fi
echo "guest: serving"
exec httpd -f -p 8080 -h /www
`;

(typeof guest === 'string' ? describe.skip : describe)(`bootTest forwards and expectHttp on a direct amd64 boot${typeof guest === 'string' ? ` — skipped: ${guest}` : ''}`, () => {
  const g = guest as Guest;
  let dir: string;
  let initrd: string;
  let noNicInitrd: string;
  let host: Server;
  let probePort: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgeimage-http-forward-'));
    // a server on the host's loopback that the guest must not reach
    host = createServer((_q, res) => res.end('host'));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    probePort = (host.address() as AddressInfo).port;
    const build = async (name: string, body: string) =>
      (await buildInitramfs({ kernelTree: g.kernel.dir, version: g.kernel.version, arch: 'amd64', modules: ['virtio_pci', 'virtio_blk', 'virtio_net'], busybox: g.busybox, init: INIT_PRELUDE + body, output: join(dir, name) })).output;
    initrd = await build('net.gz', script(probePort));
    noNicInitrd = await build('no-nic.gz', 'ip -o link show eth0 >/dev/null 2>&1 && echo "guest: eth0 present" || echo "guest: no eth0"\nsleep 600\n');
  }, T);
  afterAll(async () => {
    await new Promise((r) => host?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const direct = (i: string) => ({ kernel: g.kernel.vmlinuz, initrd: i, append: `${CONSOLE.amd64} quiet loglevel=1 nowatchdog nosoftlockup panic=-1` });

  test('through the forward: the answer of the guest is a marker after the console ones; DHCP works and the guest cannot reach the host (restrict=on)', async () => {
    const port = await freePort();
    const r = await bootTest({
      arch: 'amd64',
      direct: direct(initrd),
      expect: [/guest: (dhcp .*|no dhcp lease)$/, /guest: eth0 present/, /guest: outside (un)?reachable/, /guest: serving/],
      forwards: [{ host: port, guest: 8080 }],
      expectHttp: [{ url: `http://127.0.0.1:${port}/health`, pattern: /"status": *"ok"/ }, { url: `http://localhost:${port}/health` }],
      timeoutSeconds: 120,
    });
    console.log(`direct boot: serving at ${r.markers[3]?.seconds.toFixed(2)} s, first answer at ${r.markers[4]?.seconds.toFixed(2)} s`);
    expect(r.reason).toBeUndefined();
    expect(r.passed).toBe(true);
    // restricted, QEMU's DHCP offers no router: the guest has its address and the on-link 10.0.2.2 only
    expect(r.markers[0]!.line).toMatch(/guest: dhcp 10\.0\.2\.15 router none$/);
    expect(r.markers[2]!.line).toMatch(/guest: outside unreachable$/);
    expect(r.markers.slice(4)).toEqual([
      { pattern: `GET http://127.0.0.1:${port}/health =~ /"status": *"ok"/`, seconds: expect.any(Number), line: 'HTTP 200 {"status": "ok", "slot": "a"}', http: { url: `http://127.0.0.1:${port}/health`, status: 200 } },
      { pattern: `GET http://localhost:${port}/health (2xx)`, seconds: expect.any(Number), line: 'HTTP 200 {"status": "ok", "slot": "a"}', http: { url: `http://localhost:${port}/health`, status: 200 } },
    ]);
    expect(r.markers[4]!.seconds).toBeGreaterThanOrEqual(r.markers[3]!.seconds);
    expect(r.expected).toHaveLength(6);
    const args = r.command.args.join(' ');
    expect(args).toContain(`-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:8080 -device virtio-net-pci,netdev=net0,romfile=,addr=0x10`);
  }, T);

  test('an answer that never matches fails the boot naming the URL, the status and the body [ERR_HTTP_EXPECT]; without forwards the guest has no NIC', async () => {
    const port = await freePort();
    const r = await bootTest({
      arch: 'amd64',
      direct: direct(initrd),
      expect: [/guest: serving/],
      forwards: [{ host: port, guest: 8080 }],
      expectHttp: [{ url: `http://127.0.0.1:${port}/health`, pattern: /"status": *"degraded"/ }],
      timeoutSeconds: 20,
    });
    expect(r.passed).toBe(false);
    expect(r.code).toBe('ERR_HTTP_EXPECT');
    expect(r.reason).toMatch(new RegExp(`^no 2xx answer matching /"status": \\*"degraded"/ from http://127\\.0\\.0\\.1:${port}/health in time \\(\\d+ requests; last: HTTP 200, the body does not match /"status": \\*"degraded"/; last body "\\{\\\\"status\\\\": \\\\"ok\\\\", \\\\"slot\\\\": \\\\"a\\\\"\\}\\\\n"\\)$`));
    expect(r.markers.map((m) => m.pattern)).toEqual(['guest: serving']);

    const none = await bootTest({ arch: 'amd64', direct: direct(noNicInitrd), expect: [/guest: (no eth0|eth0 present)/], timeoutSeconds: 120 });
    expect(none.markers[0]?.line).toMatch(/guest: no eth0$/);
    expect(none.command.args.join(' ')).not.toMatch(/netdev|virtio-net/);
  }, T);
});
