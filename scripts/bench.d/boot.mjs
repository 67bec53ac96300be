// Boot: each reference board's image booted under QEMU TCG from a copy to the health check's
// healthy line, in two tables from one run. The bench builds its images itself from the reference
// store (scripts/reference-images --store-only into a temp folder, then `edgeimage build` twice:
// unverified, and verified with --boot-keys signing-keys.example), so it does not depend on the
// flavour scripts/reference-images builds by default.
//
// Firmware vs direct boot (the UNVERIFIED image: pc-amd64: OVMF → GRUB; arm64-efi: AAVMF → GRUB;
// arm64-uboot: U-Boot with bootdelay=0 → boot.scr), next to a direct -kernel/-initrd boot of the
// same kernel and initramfs (taken from the image's slot a, which only an unverified slot has),
// with the same machine, CPU, memory and disk, to the same healthy line. The direct boot gets the
// bootloader's own command line (edgeimage.bootpart= included, or the initramfs would look at
// every disk), so both do the same work after the kernel starts. The ratio is what firmware,
// bootloader and slot selection cost. `start` is the firmware's own start, to the bootloader's
// first console line (GRUB's "Welcome to GRUB!", U-Boot's banner): on EFI boards it is not ours to
// cut, so `after/direct` compares the rest (bootloader, kernel, userland) with the whole direct
// boot. `loader` is the bootloader's share, from its first line to the instant the kernel's clock
// starts (GRUB's script, reading the kernel and initrd, the EFI stub or booti, the kernel's first
// steps); `kernel` and `d.kernel` run from that instant to healthy after the firmware boot and
// after the direct boot, so `after/direct` splits into what the bootloader adds and what the
// kernel and userland run slower or faster. The kernel prints nothing until its console is up
// (seconds on x86), so that instant is taken from its timestamped lines: the smallest (console
// seconds - the line's [kernel seconds]).
//
// Verified vs unverified: the same board's verified image booted as a board fresh from the factory
// (UEFI: Secure Boot firmware with the brand's PK/KEK/db from IMAGE.boot-keys/ enrolled — amd64's
// secboot OVMF on q35,smm=on, arm64's AAVMF; U-Boot: its IMAGE.uboot-env.img flash and the
// IMAGE.uboot.dtb control dtb holding the FIT key), next to the unverified firmware boot of the
// table above, and where the time goes, from console timestamps: `start` (to the bootloader's first
// line: under Secure Boot the firmware checks GRUB's signature), `script` (to the bootloader's
// "booting slot" line), `load` (from there to the kernel's clock: reading the payload, GRUB's
// OpenPGP check of the UKI and the firmware's Authenticode check of it, or U-Boot's FIT hashes and
// RSA check, the EFI stub or booti), `kernel` (to the initramfs' "slot X mounted" line), `bundles`
// (to its last "base/app mounted" line: loop-mounting the base and apps, or in a verified slot
// opening each through dm-verity and reading it in full), `userland` (to the supervisor's first
// "started" line), `health` (to healthy: the health check's settle time, counted in whole seconds
// of its 1 s polling, so it moves by a second between boots). A third table
// splits the verified boot's checks: `check` (from "booting slot" to GRUB's chainloader printing
// the UKI's path — it has read uki.efi and its .sig and the OpenPGP check passed — or to U-Boot's
// "Starting kernel", after the FIT's load, conf-1 RSA check and sha256 of each image), `handoff`
// (from there to the kernel's clock: on UEFI the firmware's LoadImage with its Authenticode check
// against db, and systemd-stub), `dm-verity` (from "slot mounted" to the last "bundle verified").
// Each boot runs RUNS times (BENCH_BOOT_RUNS, default 3), interleaved; medians are shown, with the
// load average (TCG shares the cores: figures are comparable only within one run).
// BENCH_BOOT_BOARDS=a,b: those boards only; BENCH_BOOT_KEEP=1 keeps the temp folder (images,
// factory files, each boot's console log).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPartitionTable } from '../../packages/composer/dist/index.js';
import { bootTest, factoryFilesOf, HEALTHY, KERNEL_CONSOLE, readSecureBootKeys } from '../../packages/qemu/dist/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RUNS = Number(process.env.BENCH_BOOT_RUNS ?? 3);
if (!(Number.isInteger(RUNS) && RUNS >= 1 && RUNS <= 50)) throw new Error(`BENCH_BOOT_RUNS: expected a whole number from 1 to 50, found ${process.env.BENCH_BOOT_RUNS}`);
const KEYS = join(REPO, 'signing-keys.example');
const BOARDS = [
  { name: 'pc-amd64', arch: 'amd64', firmware: 'OVMF → GRUB', verified: 'OVMF SB (secboot, SMM) → signed GRUB → UKI', first: /Welcome to GRUB!/, checks: 'GRUB OpenPGP / Authenticode, stub' },
  { name: 'arm64-efi', arch: 'arm64', firmware: 'AAVMF → GRUB', verified: 'AAVMF SB → signed GRUB → UKI', first: /Welcome to GRUB!/, checks: 'GRUB OpenPGP / Authenticode, stub' },
  { name: 'arm64-uboot', arch: 'arm64', firmware: 'U-Boot (bootdelay=0) → boot.scr', verified: 'U-Boot, flash script → signed FIT', first: /U-Boot 20\d\d/, checks: 'load + FIT hashes, RSA / booti' },
].filter((b) => !process.env.BENCH_BOOT_BOARDS || process.env.BENCH_BOOT_BOARDS.split(',').includes(b.name));
if (BOARDS.length === 0) throw new Error(`BENCH_BOOT_BOARDS: expected boards among pc-amd64,arm64-efi,arm64-uboot, found ${process.env.BENCH_BOOT_BOARDS}`);
// the console lines that split a boot (console seconds from QEMU's start): the first of each
const STEPS = {
  slot: /edgeimage-(?:grub|uboot): booting slot [ab]/,
  // the payload read and checked, the firmware about to start it: GRUB's chainloader prints the
  // UKI's device path once its verifier passed; U-Boot's bootm once the FIT's hashes and signature did
  checked: /^file path: |^Starting kernel \.\.\./,
  mounted: /edgeimage-initramfs: slot [ab]: \S+ mounted on /,
  services: /edgeimage-supervisor: started /,
};
// … and the last of each
const LAST = {
  bundles: /edgeimage-initramfs: (?:base \S+ mounted read-only|app \S+ mounted on )/,
  verity: /edgeimage-initramfs: bundle \S+ verified: /,
};
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cell = (x, w) => (typeof x === 'number' ? x.toFixed(2) : x).padStart(w);
const row = (name, path, cells, head) => `${name.padEnd(12)} ${path.padEnd(44)} ${cells.map((c, i) => cell(c, Math.max(8, head[i].length))).join(' ')}`;
// A kernel line `[    1.287210] …`: its own clock, which starts early in the kernel's boot.
const KERNEL_STAMP = /^\[\s*(\d{1,6}\.\d{1,9})\]/;
/** bootTest's onLine: when (console seconds) the kernel's clock started, each of STEPS was first seen and each of LAST last seen. */
function timeline() {
  let kernel = Infinity;
  const seen = {};
  return {
    onLine: (l) => {
      const m = KERNEL_STAMP.exec(l.text);
      if (m) kernel = Math.min(kernel, l.seconds - Number(m[1]));
      for (const [k, re] of Object.entries(STEPS)) if (seen[k] === undefined && re.test(l.text)) seen[k] = l.seconds;
      for (const [k, re] of Object.entries(LAST)) if (re.test(l.text)) seen[k] = l.seconds;
    },
    kernel: () => kernel,
    at: (k) => seen[k] ?? NaN,
  };
}

const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-boot-'));
let logs = 0;
const boot = async (what, opts) => {
  const r = await bootTest({ timeoutSeconds: 300, log: join(work, `boot-${++logs}.log`), ...opts });
  if (!r.passed) throw new Error(`${what}: ${r.reason}\n${r.tail}`);
  return r;
};
try {
  const ei = (...args) => execFileSync(process.execPath, [join(REPO, 'packages/cli/bin/edgeimage.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const store = execFileSync(join(REPO, 'scripts/reference-images'), ['--out', work, '--store-only'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).toString().trim();
  const trust = ['--no-default-trust', ...['root.account-key', 'example-root.account', 'store.account-key', 'example-store.account'].flatMap((f) => ['--trusted', join(KEYS, f)])];
  for (const b of BOARDS) {
    const model = join(work, 'models', `${b.name}.assert`);
    ei('build', model, '--store', store, ...trust, '-o', join(work, 'unverified'));
    ei('build', model, '--store', store, ...trust, '-o', join(work, 'verified'), '--boot-keys', KEYS);
  }
  console.log(`TCG, 512 MiB, healthy marker ${HEALTHY.source}; median of ${RUNS} boots each; load average ${load()}`);
  const results = [];
  for (const b of BOARDS) {
    const image = join(work, 'unverified', `${b.name}.img`);
    const vimage = join(work, 'verified', `${b.name}.img`);
    // slot a's kernel and initramfs, as the bootloader loads them
    const table = readPartitionTable(image);
    const slot = table.kind === 'gpt' ? table.partitions.find((p) => p.name === 'system-a') : table.partitions[1];
    const fs = join(work, `${b.name}.slot-a.ext4`);
    execFileSync('dd', [`if=${image}`, `of=${fs}`, 'bs=1M', `skip=${slot.start / 1048576}`, `count=${slot.size / 1048576}`, 'status=none']);
    for (const f of ['kernel.img', 'initrd.img']) execFileSync('debugfs', ['-R', `dump /boot/${f} ${join(work, `${b.name}.${f}`)}`, fs], { stdio: 'ignore' });
    rmSync(fs);
    // edgeimage.bootpart as the bootloader passes it: system-boot's PARTUUID
    const bootpart = table.kind === 'gpt' ? table.partitions.find((p) => p.name === 'system-boot').partGuid.toLowerCase() : `${table.diskId.toString(16).padStart(8, '0')}-01`;
    // a board fresh from the factory: the certificates its build wrote next to it enrolled (UEFI);
    // bootTest takes a U-Boot image's flash and control dtb from next to it by itself
    const factory = factoryFilesOf(vimage);
    if (b.name !== 'arm64-uboot' && !factory.bootKeys) throw new Error(`${vimage}: no ${b.name}.boot-keys/ next to it`);
    if (b.name === 'arm64-uboot' && !(factory.ubootEnv && factory.ubootDtb)) throw new Error(`${vimage}: no ${b.name}.uboot-env.img and ${b.name}.uboot.dtb next to it`);
    const secureBoot = factory.bootKeys && b.name !== 'arm64-uboot' ? { keys: readSecureBootKeys(factory.bootKeys) } : undefined;
    // what the initramfs opens through dm-verity: the base and the apps (verity.list)
    const verityBundles = JSON.parse(readFileSync(`${vimage}.manifest.json`, 'utf8')).bundles.filter((x) => x.type === 'base' || x.type === 'app');
    const res = { b, verityBundles, fw: [], start: [], loader: [], kernel: [], direct: [], dkernel: [], u: [], v: [] };
    const split = (r, t, first) => {
      const [s, healthy] = [first, r.markers[r.markers.length - 1].seconds];
      const k = t.kernel();
      const parts = { start: s, script: t.at('slot') - s, load: k - t.at('slot'), kernel: t.at('mounted') - k, bundles: t.at('bundles') - t.at('mounted'), userland: t.at('services') - t.at('bundles'), health: healthy - t.at('services'), total: healthy };
      // the verified boot's checks: the payload read and checked, the firmware's start of it, dm-verity
      return { ...parts, check: t.at('checked') - t.at('slot'), handoff: k - t.at('checked'), verity: t.at('verity') - t.at('mounted') };
    };
    for (let i = 0; i < RUNS; i++) {
      const kc = timeline();
      const r = await boot(b.name, { image, expect: [b.first, HEALTHY], onLine: kc.onLine });
      const [first, healthy] = r.markers.map((m) => m.seconds);
      const k = kc.kernel();
      res.start.push(first);
      res.loader.push(k - first);
      res.kernel.push(healthy - k);
      res.fw.push(healthy);
      res.u.push(split(r, kc, first));
      const dc = timeline();
      const d = await boot(`${b.name} direct`, {
        image,
        arch: b.arch,
        direct: { kernel: join(work, `${b.name}.kernel.img`), initrd: join(work, `${b.name}.initrd.img`), append: `console=${KERNEL_CONSOLE[b.arch]} edgeimage.slot=a edgeimage.bootpart=${bootpart} panic=5 loglevel=6` },
        expect: [HEALTHY],
        onLine: dc.onLine,
      });
      res.direct.push(d.markers[0].seconds);
      res.dkernel.push(d.markers[0].seconds - dc.kernel());
      const vc = timeline();
      const v = await boot(`${b.name} verified`, { image: vimage, ...(secureBoot ? { secureBoot } : {}), expect: [b.first, ...(secureBoot ? [/edgeimage-init: secure boot enabled/] : []), /edgeimage-initramfs: verified boot/, HEALTHY], onLine: vc.onLine });
      res.v.push(split(v, vc, v.markers[0].seconds));
    }
    results.push(res);
  }

  console.log('\nFirmware vs direct boot (unverified images)');
  const head = ['start s', 'loader s', 'kernel s', 'firmware s', 'd.kernel s', 'direct s', 'ratio', 'after/direct'];
  console.log(row('board', 'firmware path', head, head));
  for (const { b, ...x } of results) {
    const f = median(x.fw);
    const d = median(x.direct);
    const after = median(x.fw.map((t, i) => t - x.start[i]));
    console.log(row(b.name, b.firmware, [x.start, x.loader, x.kernel, x.fw, x.dkernel, x.direct].map(median).concat([(f / d).toFixed(2), (after / d).toFixed(2)]), head));
  }

  console.log('\nVerified vs unverified (firmware boots to healthy; ratio verified/unverified, also to the first service started; Δ = verified - unverified, medians of each part)');
  const parts = ['start', 'script', 'load', 'kernel', 'bundles', 'userland', 'health'];
  // `to service`: healthy less the health check's settle (a fixed wait, polled each second)
  const vhead = ['unverified s', 'verified s', 'ratio', 'to service', ...parts.map((p) => `Δ${p}`)];
  console.log(row('board', 'verified path', vhead, vhead));
  for (const { b, u, v } of results) {
    const m = (xs, k) => median(xs.map((x) => x[k]));
    const svc = (xs) => median(xs.map((x) => x.total - x.health));
    console.log(row(b.name, b.verified, [m(u, 'total'), m(v, 'total'), (m(v, 'total') / m(u, 'total')).toFixed(2), (svc(v) / svc(u)).toFixed(2), ...parts.map((p) => m(v, p) - m(u, p))], vhead));
  }
  console.log('\nWhere the time goes (median s of each part)');
  const phead = parts.map((p) => `${p}`.padStart(11));
  console.log(row('board', '', phead, phead));
  for (const { b, u, v } of results) console.log(row(b.name, 'unverified/verified', parts.map((p) => `${median(u.map((x) => x[p])).toFixed(2)}/${median(v.map((x) => x[p])).toFixed(2)}`), phead));

  console.log('\nThe checks of the verified boot (median s): check = "booting slot" to the payload checked, handoff = from there to the kernel\'s clock, dm-verity = opening and reading the bundles');
  const chead = ['check s', 'handoff s', 'dm-verity s', 'bundles', 'MB read'];
  console.log(row('board', 'check / handoff', chead, chead));
  for (const { b, v, verityBundles } of results) {
    const m = (k) => median(v.map((x) => x[k]));
    console.log(row(b.name, b.checks, [m('check'), m('handoff'), m('verity'), String(verityBundles.length), (verityBundles.reduce((n, x) => n + x.size, 0) / 1e6).toFixed(1)], chead));
  }
  console.log(`load average at the end ${load()}`);
} finally {
  // BENCH_BOOT_KEEP=1: the images, factory files and every boot's console log stay for a look
  if (process.env.BENCH_BOOT_KEEP === '1') console.error(`bench boot: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
