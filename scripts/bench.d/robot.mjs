// The reference robot (issue 14): what a Debian base costs.
//
// Base build: `edgeimage base build bundles/robot-base/BASE.yaml` per architecture from the
// committed lock, into a temp file: `cold` with an empty .deb cache (EDGEIMAGE_CACHE pointed at a
// new folder: every locked .deb fetched from Debian's archive by its exact version, then the
// offline build), `cached` with the .deb files in that cache (the offline build alone: what every
// later build and the suite pay). arm64 runs the packages' maintainer scripts through
// qemu-user-static (binfmt_misc). The two builds must give the same bytes (the lock's
// SOURCE_DATE_EPOCH, nothing per build left in the tree): the table says whether they did.
//
// Bundle sizes: the robot's bundles as bundles/build makes them (images/bundles/), next to the
// busybox kiosk's, and the kernel bundle (which now carries the modules subset a base loads).
//
// Boot: the verified reference robot image of each board (scripts/reference-images
// robot-pc-amd64 robot-arm64-uboot into a temp folder) booted under QEMU TCG as a board fresh from
// the factory (pc-amd64: Secure Boot with the brand's keys enrolled; arm64-uboot: its flash script
// and FIT key), port 8080 forwarded to the host: seconds to the base's init (systemd's first
// line), to the health check's healthy line, and to the first answer of GET /telemetry through the
// forward. RUNS boots each (BENCH_ROBOT_RUNS, default 2), medians, with the load average (TCG
// shares the cores).
// BENCH_ROBOT_ARCHES=amd64,arm64 (default both) limits the base builds and boots;
// BENCH_ROBOT_COLD=0 skips the cold builds (they download ~60 MB per architecture).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootTest, factoryFilesOf, HEALTHY, readSecureBootKeys } from '../../packages/qemu/dist/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RUNS = Number(process.env.BENCH_ROBOT_RUNS ?? 2);
if (!(Number.isInteger(RUNS) && RUNS >= 1 && RUNS <= 20)) throw new Error(`BENCH_ROBOT_RUNS: expected a whole number from 1 to 20, found ${process.env.BENCH_ROBOT_RUNS}`);
const ARCHES = (process.env.BENCH_ROBOT_ARCHES ?? 'amd64,arm64').split(',');
for (const a of ARCHES) if (a !== 'amd64' && a !== 'arm64') throw new Error(`BENCH_ROBOT_ARCHES: expected amd64 and/or arm64, found ${a}`);
const COLD = process.env.BENCH_ROBOT_COLD !== '0';
const BOARDS = [
  { model: 'robot-pc-amd64', arch: 'amd64' },
  { model: 'robot-arm64-uboot', arch: 'arm64' },
].filter((b) => ARCHES.includes(b.arch));
const CLI = join(REPO, 'packages/cli/bin/edgeimage.js');
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (n) => (n < 1048576 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const sha256 = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');

const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-robot-'));
try {
  // --- base builds ---
  console.log(`Base build: bundles/robot-base/BASE.yaml from its lock (load before: ${load()})`);
  console.log(`${'arch'.padEnd(6)} ${'cold s'.padStart(8)} ${'cached s'.padStart(9)} ${'bundle'.padStart(10)}  same bytes`);
  const cache = join(work, 'cache');
  for (const arch of ARCHES) {
    const build = (out, env) => {
      const t = process.hrtime.bigint();
      execFileSync('node', [CLI, 'base', 'build', join(REPO, 'bundles/robot-base/BASE.yaml'), '--arch', arch, '-o', out], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      return Number(process.hrtime.bigint() - t) / 1e9;
    };
    // cold: an empty cache of its own; cached: the same cache again, a new output file
    const coldOut = join(work, `cold-${arch}.snap`);
    const warmOut = join(work, `warm-${arch}.snap`);
    const cold = COLD ? build(coldOut, { EDGEIMAGE_CACHE: cache }) : undefined;
    const cached = build(warmOut, COLD ? { EDGEIMAGE_CACHE: cache } : {});
    const same = cold === undefined ? '-' : sha256(coldOut) === sha256(warmOut) ? 'yes' : 'NO';
    console.log(`${arch.padEnd(6)} ${(cold === undefined ? '-' : cold.toFixed(1)).padStart(8)} ${cached.toFixed(1).padStart(9)} ${mib(statSync(warmOut).size).padStart(10)}  ${same}`);
  }

  // --- bundle sizes ---
  console.log('\nBundle sizes (images/bundles/, as bundles/build makes them)');
  execFileSync(join(REPO, 'bundles/build'), [join(REPO, 'images/bundles')], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  const dir = join(REPO, 'images/bundles');
  const files = readdirSync(dir).filter((f) => f.endsWith('.snap') && /^(robot-|edge-agent|busybox-base|hello-kiosk|debian-kernel)/.test(f)).sort();
  for (const f of files) console.log(`  ${f.padEnd(40)} ${mib(statSync(join(dir, f)).size).padStart(10)}`);

  // --- boots ---
  const ref = join(work, 'ref');
  execFileSync(join(REPO, 'scripts/reference-images'), ['--out', ref, ...BOARDS.map((b) => b.model)], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  const freePort = () => new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
  console.log(`\nBoot of the verified robot image under TCG, ${RUNS} run(s), medians (load before: ${load()})`);
  console.log(`${'model'.padEnd(20)} ${'init s'.padStart(7)} ${'healthy s'.padStart(10)} ${'1st HTTP s'.padStart(11)}`);
  for (const b of BOARDS) {
    const image = join(ref, `${b.model}.img`);
    if (!existsSync(image)) throw new Error(`${image}: scripts/reference-images did not write it`);
    const factory = factoryFilesOf(image);
    const secureBoot = b.arch === 'amd64' && factory.bootKeys ? { keys: readSecureBootKeys(factory.bootKeys) } : undefined;
    const init = [], healthy = [], http = [];
    for (let i = 0; i < RUNS; i++) {
      const port = await freePort();
      const r = await bootTest({
        image,
        ...(secureBoot ? { secureBoot } : {}),
        forwards: [{ host: port, guest: 8080 }],
        expect: [/systemd\[1\]: |Welcome to Debian/, HEALTHY],
        expectHttp: [{ url: `http://127.0.0.1:${port}/telemetry`, pattern: /"celsius"/ }],
        timeoutSeconds: 600,
      });
      if (!r.passed) throw new Error(`${b.model}: the boot failed: ${r.reason ?? 'see its log'} (${r.log})`);
      init.push(r.markers[0].seconds);
      healthy.push(r.markers[1].seconds);
      http.push(r.markers[2].seconds);
    }
    console.log(`${b.model.padEnd(20)} ${median(init).toFixed(1).padStart(7)} ${median(healthy).toFixed(1).padStart(10)} ${median(http).toFixed(1).padStart(11)}`);
  }
  console.log(`(load after: ${load()})`);
} finally {
  if (process.env.BENCH_ROBOT_KEEP === '1') console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
