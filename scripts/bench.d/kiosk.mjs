// The kiosk browser candidates (issue 16, contract K2): what each of Debian 12's kiosk browsers
// costs a device, measured from real boots under QEMU TCG.
//
// Candidates: the reference (bundles/kiosk-base: netsurf-fb on SDL 1.2's fbcon), and the bases of
// bundles/kiosk-candidates/NAME (cog = WPE WebKit on DRM/KMS, chromium = Chromium under the cage
// Wayland compositor, cage-netsurf = netsurf-fb on Wayland under cage). Every base ships
// /usr/libexec/kiosk-browser URL; the app kiosk-page serves the page (top half #1E90FF) and runs it.
//
// How: scripts/reference-images --out WORK kiosk-pc-amd64 [kiosk-arm64-efi] gives the store (the
// reference bundles, verified) and the reference images, booted as they are. Each candidate base is
// built by `edgeimage base build` from its lock (cached by its inputs' digest in CACHE/bases/) and
// published into that store with a gadget derived from the reference pc gadget with 512 MiB slots
// (pc-kiosk-candidates: the same bootloader; a 171-281 MB base does not fit the pc gadget's 192M
// slots), then a grade dangerous model kiosk-candidate-NAME-pc-amd64 (the TEST-ONLY brand key;
// gadget, debian-kernel-amd64, the base, edge-agent, kiosk-page) is signed and composed verified
// (--boot-keys signing-keys.example). While the committed kiosk-page runs netsurf-fb itself instead
// of /usr/libexec/kiosk-browser, a copy of it that runs the base's launcher is used (--snap), said.
//
// Boot: bootTest under TCG with Secure Boot (the brand's keys enrolled), a display, MEMORY MiB:
// markers "kiosk-browser: showing" (the app starts the browser), then the screen: the first
// screendump (polled once a second) with >= 40 % of pixels within +-8 of #1E90FF = the time to
// first frame (seconds since QEMU started), then 35 s more for the memory lines: the app's
// (VmHWM of the process it started, and MemTotal - MemAvailable ~10 s after the start) and, on a
// candidate base, its launcher's (PSS of every browser process, and the system's, every 30 s: the
// first line at or after the first frame is taken). MEMORY is 512, then 1024, then 2048 when the
// boot failed and the console shows the OOM killer. The display: QEMU's VGA (bochs DRM) on amd64,
// virtio-gpu on arm64; the cage candidates get virtio-vga on amd64 (Debian 12's wlroots 0.15 needs
// a card that imports PRIME buffers; bochs does not), said in the table.
//
// Sizes: the base bundle (.snap, squashfs), the bundles of one slot (the manifest's sum: gadget,
// kernel, base, agent, app), the image file (the gadget's layout) and its allocated bytes.
//
// Results are cached in CACHE/results/ by the image's digest, the memory and the display (a boot of
// the same bytes is not repeated); BENCH_KIOSK_FRESH=1 boots again. CACHE is
// $EDGEIMAGE_CACHE/bench/kiosk (default ~/.cache/edgeimage/bench/kiosk).
// BENCH_KIOSK_CANDIDATES=netsurf-fb,cog,cage-netsurf,chromium (default all), BENCH_KIOSK_ARM64=0
// skips the reference on arm64-efi, BENCH_KIOSK_TIMEOUT (default 600 s per boot),
// BENCH_KIOSK_MEMORY=512,1024,2048 (the ladder).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapIdFor } from '../../packages/assertions/dist/index.js';
import { bootTest, DISPLAY_DEVICE, factoryFilesOf, parseScreenExpect, readSecureBootKeys } from '../../packages/qemu/dist/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'packages/cli/bin/edgeimage.js');
const KEYS = join(REPO, 'signing-keys.example');
const CACHE = join(process.env.EDGEIMAGE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'edgeimage'), 'bench', 'kiosk');
const ALL = ['netsurf-fb', 'cog', 'cage-netsurf', 'chromium'];
const WANTED = (process.env.BENCH_KIOSK_CANDIDATES ?? ALL.join(',')).split(',');
for (const c of WANTED) if (!ALL.includes(c)) throw new Error(`BENCH_KIOSK_CANDIDATES: expected some of ${ALL.join(', ')}, found ${c}`);
const ARM64 = process.env.BENCH_KIOSK_ARM64 !== '0' && WANTED.includes('netsurf-fb');
const TIMEOUT = Number(process.env.BENCH_KIOSK_TIMEOUT ?? 600);
const LADDER = (process.env.BENCH_KIOSK_MEMORY ?? '512,1024,2048').split(',').map(Number);
const FRESH = process.env.BENCH_KIOSK_FRESH === '1';
const SETTLE = 35;
const STORE_ID = 'example-store';
const SCREEN = '#1E90FF';
const VGA = DISPLAY_DEVICE.amd64;
const VIRTIO_VGA = 'virtio-vga,addr=0x11';
// what each candidate is (the reference's base is bundles/kiosk-base, booted from its reference image)
const CANDIDATES = {
  'netsurf-fb': { what: 'netsurf-fb 3.10, SDL 1.2 fbcon (reference)', reference: true },
  cog: { what: 'cog 0.16 + WPE WebKit 2.38, DRM/KMS, Mesa swrast', dir: 'cog', display: VGA },
  chromium: { what: 'Chromium 156 under cage 0.1.4 (pixman)', dir: 'chromium', display: VIRTIO_VGA },
  'cage-netsurf': { what: 'netsurf-fb 3.10 -f wld under cage 0.1.4', dir: 'cage-netsurf', display: VIRTIO_VGA },
};

const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;
const sha256 = (x) => createHash('sha256').update(x).digest('hex');
const ei = (args, opts = {}) => execFileSync('node', [CLI, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const log = (s) => process.stderr.write(`[bench kiosk] ${s}\n`);
const filesUnder = (dir) => readdirSync(dir, { withFileTypes: true, recursive: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath ?? d.path, d.name)).sort();

mkdirSync(join(CACHE, 'bases'), { recursive: true });
mkdirSync(join(CACHE, 'results'), { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-kiosk-'));
try {
  // --- the store and the reference images ---
  const ref = join(work, 'ref');
  const boards = ['kiosk-pc-amd64', ...(ARM64 ? ['kiosk-arm64-efi'] : [])];
  log(`scripts/reference-images ${boards.join(' ')}`);
  execFileSync(join(REPO, 'scripts/reference-images'), ['--out', ref, ...boards], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 256 * 1024 * 1024 });
  const store = join(ref, 'store');
  const publish = (file) => ei(['store', 'publish', store, file, '--channel', 'stable', '--keyring', KEYS]);
  const bundlesOut = join(REPO, 'images/bundles');
  const built = (names) => execFileSync(join(REPO, 'bundles/build'), [bundlesOut, ...names], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n');

  // --- the candidates' gadget: the reference pc gadget with 512 MiB slots ---
  const candidates = WANTED.filter((c) => !CANDIDATES[c].reference);
  let gadgetFile;
  if (candidates.length) {
    const pc = built(['pc']).find((f) => f.includes('/pc_'));
    const tree = join(work, 'gadget');
    execFileSync('unsquashfs', ['-q', '-n', '-d', tree, pc], { stdio: 'ignore' });
    const snapYaml = join(tree, 'meta/snap.yaml');
    writeFileSync(snapYaml, readFileSync(snapYaml, 'utf8').replace(/^name: pc$/m, 'name: pc-kiosk-candidates').replace(/^summary: .*$/m, 'summary: Example gadget for pc boards with 512 MiB slots, for the kiosk candidates (TEST ONLY)'));
    const gadgetYaml = join(tree, 'meta/gadget.yaml');
    const g = readFileSync(gadgetYaml, 'utf8').replace(/(role: system-[ab]\n(?:.*\n){0,3}?\s*size: )\d+M/g, '$1512M');
    if ((g.match(/size: 512M/g) ?? []).length !== 2) throw new Error(`${pc}: its gadget.yaml has no system-a and system-b sizes to grow`);
    writeFileSync(gadgetYaml, g);
    gadgetFile = JSON.parse(ei(['pack', tree, '-o', work, '--json'])).path;
    publish(gadgetFile);
  }

  // --- the app: the committed kiosk-page, or a copy that runs the base's launcher ---
  let pageSnap;
  const browserScript = readFileSync(join(REPO, 'bundles/kiosk-page/bin/browser'), 'utf8');
  const pageUsesLauncher = browserScript.includes('/usr/libexec/kiosk-browser');
  if (candidates.length && !pageUsesLauncher) {
    const tree = join(work, 'kiosk-page');
    cpSync(join(REPO, 'bundles/kiosk-page'), tree, { recursive: true });
    const b = join(tree, 'bin/browser');
    const s = readFileSync(b, 'utf8');
    // its browser command, "$BROWSER" and NetSurf's options up to "$URL", becomes the base's launcher
    const t = s.replace(/"\$BROWSER"[\s\S]*?"\$URL"/, '/usr/libexec/kiosk-browser "$URL"');
    if (t === s) throw new Error('bundles/kiosk-page/bin/browser: neither /usr/libexec/kiosk-browser nor a "$BROWSER" ... "$URL" command in it');
    writeFileSync(b, t);
    const c = join(tree, 'bin/check');
    writeFileSync(c, readFileSync(c, 'utf8').replace('in netsurf*)', 'in netsurf*|cog|cage|kiosk-browser)'));
    pageSnap = JSON.parse(ei(['pack', tree, '-o', work, '--json'])).path;
    log('kiosk-page: the committed one runs netsurf-fb itself: the candidates get a copy whose browser runs /usr/libexec/kiosk-browser');
  }

  // --- the candidates' bases, models and images ---
  const images = [];
  const trust = ['--no-default-trust', '--trusted', join(KEYS, 'root.account-key'), '--trusted', join(KEYS, 'example-root.account'), '--trusted', join(KEYS, 'store.account-key'), '--trusted', join(KEYS, 'example-store.account')];
  if (WANTED.includes('netsurf-fb')) {
    images.push({ name: 'netsurf-fb', board: 'pc-amd64', image: join(ref, 'kiosk-pc-amd64.img'), base: built(['kiosk-base']).find((f) => f.endsWith('_amd64.snap')), display: VGA });
    if (ARM64) images.push({ name: 'netsurf-fb', board: 'arm64-efi', image: join(ref, 'kiosk-arm64-efi.img'), base: built(['kiosk-base']).find((f) => f.endsWith('_arm64.snap')), display: DISPLAY_DEVICE.arm64 });
  }
  for (const name of candidates) {
    const dir = join(REPO, 'bundles/kiosk-candidates', CANDIDATES[name].dir);
    const key = sha256(filesUnder(dir).map((f) => `${f.slice(dir.length)}\0${sha256(readFileSync(f))}\n`).join('') + readdirSync(join(REPO, 'packages/base/src')).join());
    const base = join(CACHE, 'bases', `kiosk-base-${name}-${key.slice(0, 16)}_amd64.snap`);
    let buildSeconds;
    if (!existsSync(base)) {
      log(`building kiosk-base-${name} (edgeimage base build, from its lock)`);
      const t = process.hrtime.bigint();
      ei(['base', 'build', join(dir, 'BASE.yaml'), '-o', `${base}.tmp`]);
      buildSeconds = Number(process.hrtime.bigint() - t) / 1e9;
      execFileSync('mv', [`${base}.tmp`, base]);
    }
    publish(base);
    const model = `kiosk-candidate-${name}-pc-amd64`;
    const snaps = [
      ['pc-kiosk-candidates', 'gadget'], ['debian-kernel-amd64', 'kernel'], [`kiosk-base-${name}`, 'base'], ['edge-agent', 'snapd'], ['kiosk-page', 'app'],
    ].map(([n, type]) => `  - name: ${n}\n    id: ${snapIdFor(STORE_ID, n)}\n    type: ${type}\n    default-channel: latest/stable\n`).join('');
    const yaml = join(work, `${model}.yaml`);
    writeFileSync(yaml, `type: model\nauthority-id: example-brand\nbrand-id: example-brand\nseries: 16\nmodel: ${model}\ndisplay-name: Kiosk candidate ${name}, PC (amd64, UEFI) - TEST ONLY\narchitecture: amd64\nbase: kiosk-base-${name}\ngrade: dangerous\nstorage-safety: prefer-unencrypted\nsnaps:\n${snaps}timestamp: 2026-11-01T00:00:00Z\n`);
    ei(['sign', yaml, '--key', 'brand', '--keyring', KEYS, '-o', join(work, `${model}.model`)]);
    const assert = join(work, `${model}.assert`);
    writeFileSync(assert, [readFileSync(join(KEYS, 'example-brand.account'), 'utf8'), readFileSync(join(KEYS, 'brand.account-key'), 'utf8'), readFileSync(join(work, `${model}.model`), 'utf8')].join('\n'));
    ei(['build', assert, '--store', store, ...trust, '-o', join(work, 'img'), '--format', 'raw', '--boot-keys', KEYS, ...(pageSnap ? ['--snap', pageSnap] : [])]);
    images.push({ name, board: 'pc-amd64', image: join(work, 'img', `${model}.img`), base, buildSeconds, display: CANDIDATES[name].display });
  }

  // --- the table: a row per boot, printed as it ends ---
  const fmt = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  console.log(`Kiosk browser candidates under QEMU TCG (Secure Boot, verified images; load before: ${load()})`);
  console.log('| candidate | board | base bundle | slot (all bundles) | image | -m MiB | page shown | browser started s | first frame s | frame - start s | memory: browser | memory: system used |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  const printRow = (r, a) => {
    const mem = a.base ? `${a.base.pss} MiB PSS, ${a.base.processes} processes (at ${a.base.after} s)` : a.app ? `${a.app.browserHwm} MiB VmHWM` : '-';
    const sys = a.base ? `${a.base.systemUsed} of ${a.base.total} MiB` : a.app ? `${a.app.systemUsed} of ${a.app.total} MiB` : '-';
    const shown = a.passed ? 'yes' : `NO: ${(a.reason ?? '').replace(/\|/g, '/').slice(0, 160)}${a.oom ? ' (OOM killer)' : ''}`;
    console.log(`| ${r.name}${r.display === VIRTIO_VGA ? ' (virtio-vga)' : ''} | ${r.board} | ${mb(r.baseBytes)} | ${mb(r.slotBytes)} | ${mb(r.imageBytes)} (${mb(r.allocated)} allocated) | ${a.memory} | ${shown} | ${fmt(a.shown)} | ${fmt(a.frame)} | ${a.frame === undefined || a.shown === undefined ? '-' : fmt(a.frame - a.shown)} | ${mem} | ${sys} |${a.cached ? ' (cached)' : ''}`);
  };

  // --- the boots ---
  const OOM = /Out of memory|invoked oom-killer|oom-kill:/;
  const rows = [];
  for (const c of images) {
    const manifest = JSON.parse(readFileSync(`${c.image}.manifest.json`, 'utf8'));
    const slotBytes = manifest.bundles.reduce((n, b) => n + b.size, 0);
    const allocated = statSync(c.image).blocks * 512;
    const digest = manifest.outputs.find((o) => o.format === 'raw')?.sha256 ?? sha256(readFileSync(c.image));
    const row = { ...c, baseBytes: statSync(c.base).size, slotBytes, imageBytes: manifest.size, allocated, attempts: [] };
    for (const memory of LADDER) {
      const resultFile = join(CACHE, 'results', `${sha256(`${digest} ${memory} ${c.display} ${SCREEN} ${SETTLE} v1`).slice(0, 24)}.json`);
      let a;
      if (!FRESH && existsSync(resultFile)) a = { ...JSON.parse(readFileSync(resultFile, 'utf8')), cached: true };
      else {
        log(`booting ${c.name} on ${c.board} with ${memory} MiB (display ${c.display}; load ${load()})`);
        const lines = [];
        const factory = factoryFilesOf(c.image);
        const arch = c.board === 'arm64-efi' ? 'arm64' : 'amd64';
        const saved = DISPLAY_DEVICE[arch];
        DISPLAY_DEVICE[arch] = c.display;
        const loadBefore = load();
        let r;
        try {
          r = await bootTest({
            image: c.image,
            ...(factory.bootKeys ? { secureBoot: { keys: readSecureBootKeys(factory.bootKeys) } } : {}),
            memoryMiB: memory,
            expect: [/kiosk-browser: showing/],
            expectScreen: [parseScreenExpect(SCREEN)],
            settleSeconds: SETTLE,
            timeoutSeconds: TIMEOUT,
            onLine: (l) => lines.push(l),
          });
        } finally {
          DISPLAY_DEVICE[arch] = saved;
        }
        const shown = r.markers[0]?.seconds;
        const frame = r.passed ? r.markers[1]?.seconds : undefined;
        const appMem = lines.map((l) => ({ s: l.seconds, m: /kiosk-browser: memory: browser (\d+) MiB \(VmHWM\), system used (\d+) MiB of (\d+) MiB/.exec(l.text) })).find((x) => x.m);
        const baseMem = lines.map((l) => ({ s: l.seconds, m: /kiosk-browser: memory after (\d+) s: browser processes (\d+) MiB \(PSS, (\d+) processes\), system used (\d+) MiB of (\d+) MiB/.exec(l.text) })).filter((x) => x.m);
        const atFrame = frame === undefined ? baseMem.at(-1) : (baseMem.find((x) => x.s >= frame) ?? baseMem.at(-1));
        a = {
          memory, passed: r.passed, shown, frame, reason: r.passed ? undefined : r.reason, oom: lines.some((l) => OOM.test(l.text)),
          app: appMem ? { seconds: appMem.s, browserHwm: Number(appMem.m[1]), systemUsed: Number(appMem.m[2]), total: Number(appMem.m[3]) } : undefined,
          base: atFrame ? { seconds: atFrame.s, after: Number(atFrame.m[1]), pss: Number(atFrame.m[2]), processes: Number(atFrame.m[3]), systemUsed: Number(atFrame.m[4]), total: Number(atFrame.m[5]) } : undefined,
          load: `${loadBefore} -> ${load()}`, log: r.log,
        };
        writeFileSync(resultFile, JSON.stringify(a, null, 1));
      }
      row.attempts.push(a);
      printRow(row, a);
      if (a.passed || !a.oom) break;
    }
    rows.push(row);
  }

  for (const r of rows) if (r.buildSeconds !== undefined) console.log(`(kiosk-base-${r.name}: built in ${r.buildSeconds.toFixed(0)} s)`);
  writeFileSync(join(CACHE, 'last.json'), JSON.stringify(rows, null, 1));
} finally {
  if (process.env.BENCH_KIOSK_KEEP === '1') console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
