// Boot: each reference image (pc-amd64: OVMF → GRUB; arm64-efi: AAVMF → GRUB; arm64-uboot: U-Boot
// with bootdelay=0 → boot.scr) booted under QEMU TCG from a copy to the health check's healthy line;
// next to it, in the same run, a direct -kernel/-initrd boot of the same kernel and initramfs (taken
// from the image's slot a), with the same machine, CPU, memory and disk, to the same healthy line.
// The direct boot gets the bootloader's own command line (edgeimage.bootpart= included, or the
// initramfs would look at every disk), so both do the same work after the kernel starts.
// The ratio is what firmware, bootloader and slot selection cost. `start` is the firmware's own
// start, to the bootloader's first console line (GRUB's "Welcome to GRUB!", U-Boot's banner): on
// EFI boards it is not ours to cut, so `after/direct` compares the rest (bootloader, kernel,
// userland) with the whole direct boot. `loader` is the bootloader's share, from its first line to
// the instant the kernel's clock starts (GRUB's script, reading the kernel and initrd, the EFI stub
// or booti, the kernel's first steps); `kernel` and `d.kernel` run from that instant to healthy
// after the firmware boot and after the direct boot, so `after/direct` splits into what the
// bootloader adds and what the kernel and userland run slower or faster. The kernel prints nothing
// until its console is up (seconds on x86), so that instant is taken from its timestamped lines:
// the smallest (console seconds - the line's [kernel seconds]). Each boot runs RUNS times; medians
// are shown, with the load average (TCG shares the cores: figures are comparable only within one
// run). Images come from scripts/reference-images (into a temp folder).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPartitionTable } from '../../packages/composer/dist/index.js';
import { bootTest, HEALTHY, KERNEL_CONSOLE } from '../../packages/qemu/dist/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RUNS = Number(process.env.BENCH_BOOT_RUNS ?? 3);
const BOARDS = [
  { name: 'pc-amd64', arch: 'amd64', firmware: 'OVMF → GRUB', first: /Welcome to GRUB!/ },
  { name: 'arm64-efi', arch: 'arm64', firmware: 'AAVMF → GRUB', first: /Welcome to GRUB!/ },
  { name: 'arm64-uboot', arch: 'arm64', firmware: 'U-Boot (bootdelay=0) → boot.scr', first: /U-Boot 20\d\d/ },
];
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// A kernel line `[    1.287210] …`: its own clock, which starts early in the kernel's boot.
const KERNEL_STAMP = /^\[\s*(\d{1,6}\.\d{1,9})\]/;
/** A boot's lines, and when (console seconds) the kernel's clock started: bootTest's onLine collects. */
function kernelClock() {
  let start = Infinity;
  return {
    onLine: (l) => {
      const m = KERNEL_STAMP.exec(l.text);
      if (m) start = Math.min(start, l.seconds - Number(m[1]));
    },
    start: () => start,
  };
}

const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-boot-'));
try {
  execFileSync(join(REPO, 'scripts/reference-images'), ['--out', work, ...BOARDS.map((b) => b.name)], { stdio: ['ignore', 'ignore', 'ignore'] });
  console.log(`TCG, 512 MiB, healthy marker ${HEALTHY.source}; median of ${RUNS} boots each; load average ${load()}`);
  const head = ['start s', 'loader s', 'kernel s', 'firmware s', 'd.kernel s', 'direct s', 'ratio', 'after/direct'];
  console.log(`${'board'.padEnd(12)} ${'firmware path'.padEnd(32)} ${head.map((h) => h.padStart(Math.max(8, h.length))).join(' ')}`);
  for (const b of BOARDS) {
    const image = join(work, `${b.name}.img`);
    // slot a's kernel and initramfs, as the bootloader loads them
    const table = readPartitionTable(image);
    const slot = table.kind === 'gpt' ? table.partitions.find((p) => p.name === 'system-a') : table.partitions[1];
    const fs = join(work, `${b.name}.slot-a.ext4`);
    execFileSync('dd', [`if=${image}`, `of=${fs}`, 'bs=1M', `skip=${slot.start / 1048576}`, `count=${slot.size / 1048576}`, 'status=none']);
    for (const f of ['kernel.img', 'initrd.img']) execFileSync('debugfs', ['-R', `dump /boot/${f} ${join(work, `${b.name}.${f}`)}`, fs], { stdio: 'ignore' });
    rmSync(fs);
    // edgeimage.bootpart as the bootloader passes it: system-boot's PARTUUID
    const bootpart = table.kind === 'gpt' ? table.partitions.find((p) => p.name === 'system-boot').partGuid.toLowerCase() : `${table.diskId.toString(16).padStart(8, '0')}-01`;
    const fw = [];
    const start = [];
    const loader = [];
    const kernel = [];
    const direct = [];
    const dkernel = [];
    for (let i = 0; i < RUNS; i++) {
      const kc = kernelClock();
      const r = await bootTest({ image, expect: [b.first, HEALTHY], timeoutSeconds: 300, onLine: kc.onLine });
      if (!r.passed) throw new Error(`${b.name}: ${r.reason}\n${r.tail}`);
      const [first, healthy] = r.markers.map((m) => m.seconds);
      const k = kc.start();
      start.push(first);
      loader.push(k - first);
      kernel.push(healthy - k);
      fw.push(healthy);
      const dc = kernelClock();
      const d = await bootTest({
        image,
        arch: b.arch,
        direct: { kernel: join(work, `${b.name}.kernel.img`), initrd: join(work, `${b.name}.initrd.img`), append: `console=${KERNEL_CONSOLE[b.arch]} edgeimage.slot=a edgeimage.bootpart=${bootpart} panic=5 loglevel=6` },
        expect: [HEALTHY],
        timeoutSeconds: 300,
        onLine: dc.onLine,
      });
      if (!d.passed) throw new Error(`${b.name} direct: ${d.reason}\n${d.tail}`);
      direct.push(d.markers[0].seconds);
      dkernel.push(d.markers[0].seconds - dc.start());
    }
    const f = median(fw);
    const st = median(start);
    const d = median(direct);
    const after = median(fw.map((x, i) => x - start[i]));
    const cells = [st, median(loader), median(kernel), f, median(dkernel), d].map((x) => x.toFixed(2)).concat([(f / d).toFixed(2), (after / d).toFixed(2)]);
    console.log(`${b.name.padEnd(12)} ${b.firmware.padEnd(32)} ${cells.map((c, i) => c.padStart(Math.max(8, head[i].length))).join(' ')}`);
  }
  console.log(`load average at the end ${load()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
