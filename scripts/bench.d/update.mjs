// Update: for pc-amd64, the size of a bundle-level delta update (--from the image: only hello-kiosk
// changed, 1.0 → 1.1) next to the full update of the same model revision; then, under QEMU TCG,
// the `update` scenario (scripts/scenarios --only update): the time edge-update takes on the device
// from "found an update" to "applied … rebooting" (verify signature, model, every digest; format
// and write the inactive slot; read it back; set the environment), and the time from "applied"
// to "committed" (the rest of that boot, the firmware, the try boot to the health check's commit).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const board = process.env.BENCH_UPDATE_BOARD ?? 'pc-amd64';
const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-update-'));
const ei = (...args) => execFileSync('node', [join(REPO, 'packages/cli/bin/edgeimage.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).toString();
try {
  execFileSync(join(REPO, 'scripts/scenarios'), ['--board', board, '--only', 'update', '--work', work, '--json', join(work, 'bench-report.json')], { cwd: REPO, stdio: ['ignore', 'ignore', 'ignore'] });
  const report = JSON.parse(readFileSync(join(work, 'reports/update.json'), 'utf8'));
  // the delta as the scenario used it, and the full update of the same model for comparison
  const delta = join(work, 'updates/good.update');
  const model = readdirSync(join(work, 'models')).filter((f) => /\.r2\.s\d+\.assert$/.test(f) && f.startsWith(`${board}.`)).map((f) => join(work, 'models', f))[0];
  const keys = join(REPO, 'signing-keys.example');
  const trust = ['root.account-key', 'example-root.account', 'store.account-key', 'example-store.account'].flatMap((f) => ['--trusted', join(keys, f)]);
  const full = join(work, 'full.update');
  ei('update', 'create', model, '--store', join(work, 'ref/store'), '--key', 'brand', '--keyring', keys, '--no-default-trust', ...trust, '-o', full);
  const mb = (f) => (statSync(f).size / 1e6).toFixed(2);
  console.log(`${board}: one app bundle changed (hello-kiosk 1.0 → 1.1), model revision 1 → 2`);
  console.log(`  delta update (--from the image)  ${mb(delta).padStart(8)} MB`);
  console.log(`  full update                      ${mb(full).padStart(8)} MB   (ratio ${(statSync(delta).size / statSync(full).size).toFixed(3)})`);
  const [first, second] = report.steps;
  const at = (step, re) => step.markers.find((m) => re.test(m.line ?? m.pattern))?.seconds;
  const found = at(first, /found an update/);
  const applied = at(first, /applied revision/);
  const committed = at(second, /committed slot/);
  console.log(`  edge-update apply on the device (TCG): ${(applied - found).toFixed(1)} s from "found an update" to "applied … rebooting"`);
  console.log(`  applied → committed: ${(first.seconds - applied + committed).toFixed(1)} s (the end of that boot ${(first.seconds - applied).toFixed(1)} s, then the try boot to the commit ${committed.toFixed(1)} s)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

// Over the network (scripts/scenarios --only ota-update): the device at revision 1 polls the store
// the host serves; revision 2 is released; what the store sent (the pointer and its signature at
// each poll, the delta once), and the time from the release (the host serves revision 2's pointer)
// to the try boot's commit, under TCG.
const ota = mkdtempSync(join(tmpdir(), 'edgeimage-bench-ota-'));
try {
  execFileSync(join(REPO, 'scripts/scenarios'), ['--board', board, '--only', 'ota-update', '--work', ota, '--json', join(ota, 'bench-report.json')], { cwd: REPO, stdio: ['ignore', 'ignore', 'ignore'] });
  const r = JSON.parse(readFileSync(join(ota, 'reports/ota-update.json'), 'utf8'));
  const pointer = readFileSync(join(ota, 'ota/pointers/r2'), 'utf8');
  const line = (from) => pointer.split('\n').find((l) => l.startsWith(`update: ${from} `))?.split(' ');
  const [, , , deltaSize, deltaPath] = line('1');
  const [, , , fullSize] = line('full');
  const sent = (p) => r.served.filter((s) => s.path.endsWith(p)).reduce((n, s) => n + s.bytes, 0);
  const at = (name) => r.steps.find((s) => s.name === name)?.seconds;
  console.log(`${board} over the network (ota-update): hello-kiosk 1.0 → 1.1, model revision 1 → 2`);
  console.log(`  downloaded: the delta ${sent(deltaPath)} bytes (its size ${deltaSize}; the full update would be ${fullSize}: ratio ${(Number(deltaSize) / Number(fullSize)).toFixed(3)}); pointers and signatures ${sent('.pointer') + sent('.pointer.sig')} bytes over ${r.requests.filter((q) => q.path.endsWith('.pointer')).length} polls`);
  console.log(`  release → committed (TCG): ${(at('boot 2: committed') - at('revision 1: up to date')).toFixed(1)} s (a poll every 3 s, the hook of the scenario's image; the download, edge-update apply, the reboot and the try boot)`);
} finally {
  rmSync(ota, { recursive: true, force: true });
}
