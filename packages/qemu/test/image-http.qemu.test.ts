/**
 * boot-test --forward/--expect-http on composed images (issue 14, the reference robot's HTTP
 * checks): the grade dangerous twins of pc-amd64 (q35, OVMF) and arm64-uboot (virt, U-Boot) built
 * from the reference store with a test-only app in place of hello-kiosk (`build --snap`, the same
 * name the model pins). The app, run as root by the base's supervisor, brings eth0 up with
 * QEMU's slirp address (virtio_net is loaded by the initramfs: BOARD_MODULES) and serves a JSON
 * health page with busybox httpd on port 8080. From the host: the CLI boots each image with
 * `--forward PORT:8080 --expect-http http://127.0.0.1:PORT/health='"status": *"ok"' --json` and
 * the answer is in the JSON markers, after healthy. One boot per board; the arm64 one proves
 * virtio-net-pci on the virt machine with U-Boot (which must not try a network boot first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@edgeimage/testkit/oci-registry';
import { writeTree } from '@edgeimage/testkit/bundle-trees';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOARDS = ['pc-amd64', 'arm64-uboot'] as const;
const BOOT_TIMEOUT_S = 300;
const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('qemu-system-aarch64', ['--version']).status === 0;

const ei = (args: string[]) => spawnSync('node', [join(ROOT, 'packages/cli/bin/edgeimage.js'), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

/** The test's app: the name of the model's app so that `build --snap` takes it in its place. */
const APP_TREE = {
  'meta/snap.yaml': ['name: hello-kiosk', "version: '9.9-http-test'", 'type: app', 'architectures: [all]', 'summary: TEST ONLY - serves a JSON health page on port 8080', 'apps:', '  hello-kiosk:', '    command: bin/serve', '    daemon: simple', ''].join('\n'),
  // POSIX sh on busybox. The address is what QEMU's DHCP would give (10.0.2.15); on a restart
  // it is already there. The page lives in $SNAP_DATA (writable); httpd stays in the foreground.
  'bin/serve': {
    mode: 0o755,
    data: `#!/bin/sh
ip link set lo up
ip link set eth0 up || { echo "http-test: no eth0"; exit 1; }
ip addr add 10.0.2.15/24 dev eth0 2>/dev/null
www=\${SNAP_DATA:?}/www
mkdir -p "$www"
printf '{"status": "ok", "version": "%s", "slot": "%s"}\\n' "$SNAP_VERSION" "$EDGE_SLOT" > "$www/health"
echo "http-test: serving $www on port 8080"
exec httpd -f -p 8080 -h "$www"
`,
  },
};

let work: string;
const images: Record<string, string> = {};
let buildError: string | undefined;

beforeAll(() => {
  if (!hasQemu) return;
  work = mkdtempSync(join(tmpdir(), 'edgeimage-image-http-'));
  const r = spawnSync(join(ROOT, 'scripts/reference-images'), ['--unverified', '--store-only', '--out', work], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) {
    buildError = `scripts/reference-images failed (${r.status}):\n${r.stderr.split('\n').slice(-30).join('\n')}`;
    return;
  }
  const store = r.stdout.trim().split('\n').pop()!;
  const tree = writeTree(join(work, 'app'), APP_TREE);
  const packed = ei(['pack', tree, '-o', join(work, 'local'), '--json']);
  if (packed.status !== 0) {
    buildError = `pack failed: ${packed.stderr}`;
    return;
  }
  const local = JSON.parse(packed.stdout).path as string;
  const keys = join(ROOT, 'signing-keys.example');
  const trust = ['--no-default-trust', '--trusted', join(keys, 'root.account-key'), '--trusted', join(keys, 'example-root.account'), '--trusted', join(keys, 'store.account-key'), '--trusted', join(keys, 'example-store.account')];
  for (const b of BOARDS) {
    const out = join(work, 'out');
    const built = ei(['build', join(work, 'models', `${b}-dangerous.assert`), '--store', store, ...trust, '-o', out, '--format', 'raw', '--snap', local]);
    if (built.status !== 0) {
      buildError = `build ${b}-dangerous failed: ${built.stderr.split('\n').slice(-20).join('\n')}`;
      return;
    }
    images[b] = join(out, `${b}-dangerous.img`);
  }
}, 30 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.each(BOARDS)('%s: the guest answers through the forward', (board) => {
  (hasQemu ? test : test.skip)(`boot-test --forward --expect-http --json: healthy, then /health answers ok from the slot${hasQemu ? '' : ' — skipped: QEMU is not installed'}`, async () => {
    if (buildError) throw new Error(buildError);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/health`;
    const r = ei(['boot-test', images[board]!, '--forward', `${port}:8080`, '--expect', 'http-test: serving', '--expect', 'edgeimage-health: healthy on slot ([ab])', '--expect-http', `${url}="status": *"ok"`, '--timeout', String(BOOT_TIMEOUT_S), '--json']);
    const report = JSON.parse(r.stdout || '{}') as { passed: boolean; reason?: string; markers: { pattern: string; seconds: number; line: string; url?: string; status?: number }[]; log: string };
    expect([r.status, report.reason, r.stderr.slice(-2000)]).toEqual([0, undefined, expect.any(String)]);
    const http = report.markers[2]!;
    console.log(`${board}: healthy at ${report.markers[1]!.seconds.toFixed(1)} s, first HTTP answer at ${http.seconds.toFixed(1)} s`);
    expect(http).toMatchObject({ pattern: `GET ${url} =~ /"status": *"ok"/`, url, status: 200, line: 'HTTP 200 {"status": "ok", "version": "9.9-http-test", "slot": "a"}' });
    expect(http.seconds).toBeGreaterThanOrEqual(report.markers[1]!.seconds);
  }, (BOOT_TIMEOUT_S + 30) * 1000);
});
