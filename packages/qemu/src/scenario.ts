/**
 * The scenarios — update, rollback, refuse, power-cut — as boots and checks on the run harness,
 * each waiting for the device contract's markers.
 */
import { factoryFilesOf } from './factory-files.js';
import { FAIL, other, PREDICTED, SCENARIO_MARKERS, type CrashPoint, type Slot } from './scenario-contract.js';
import { envText, runOnDisks, sha256Range, slotPartition, StepFailed, type Played, type PowerCutOutcome, type Run, type ScenarioResult } from './scenario-harness.js';
import { checkHookGrade, checkScenarioOptions, type ScenarioOptions } from './scenario-options.js';
import { checkScreenExpect, checkScreenshotPath } from './boot-test.js';
import type { UpdateManifest } from './update-file.js';

const M = SCENARIO_MARKERS;

/** The first boot of update, rollback and power-cut: healthy on the active slot, then the update is applied to the other one. */
async function applyBoot(run: Run, active: Slot, manifest: UpdateManifest): Promise<void> {
  const s = await run.mustBoot({
    name: `healthy on slot ${active}, the update on /dev/vdb applied to slot ${other(active)}, reboot`,
    expect: [M.booting(active), M.healthy(active), M.found, M.applied()],
    updateDisk: true,
    untilExit: true,
    failOn: [FAIL.refused, FAIL.unhealthy],
    outcome: 'applied',
  });
  const line = s.markers[s.markers.length - 1]!.line;
  const m = M.applied().exec(line)!;
  run.check('the update went to the inactive slot', m.groups!['target'] === other(active), `"${line.trim()}" (the inactive slot is ${other(active)})`);
  if (manifest.revision !== undefined) run.check('the revision applied is the update\'s', Number(m.groups!['revision']) === manifest.revision, `applied revision ${m.groups!['revision']}, the update's manifest says revision ${manifest.revision}`);
}

async function updateScenario(run: Run, manifest: UpdateManifest): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await applyBoot(run, a, manifest);
  const env1 = await run.env();
  run.check('the update set a try of the new slot', env1['edge_try_slot'] === b && env1['edge_status'] === 'try', `after boot 1: ${envText(env1)}`);
  await run.mustBoot({ name: `the try boot of slot ${b} is committed and healthy`, expect: [M.booting(b), M.committed(b), M.healthy(b)], failOn: [FAIL.unhealthy], outcome: 'healthy' });
  await run.mustBoot({ name: `slot ${b} stays: healthy again`, expect: [M.booting(b), M.healthy(b)], failOn: [FAIL.unhealthy], outcome: 'healthy', last: true });
  const env = await run.env();
  run.check('the boot environment names the new slot', env['edge_slot'] === b && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (expected edge_slot=${b}, edge_status and edge_try_slot empty)`);
  return b;
}

async function rollbackScenario(run: Run, manifest: UpdateManifest): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await applyBoot(run, a, manifest);
  await run.mustBoot({
    name: `the try boot of slot ${b} is never healthy: not committed, reboot`,
    expect: [M.booting(b), M.unhealthy(b), M.notCommitted(b)],
    untilExit: true,
    failOn: [FAIL.committed],
    outcome: 'not-committed',
  });
  // the device reports the rolled-back slot after it is healthy (`edge-update: status: … failed b`)
  await run.mustBoot({ name: `the bootloader rolls back: healthy on slot ${a}, slot ${b} reported failed`, expect: [M.booting(a), M.healthy(a), M.statusFailed(b)], failOn: [FAIL.unhealthy], outcome: 'rolled-back', last: true });
  const env = await run.env();
  run.check('the boot environment records the rollback', env['edge_slot'] === a && env['edge_failed_slot'] === b && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (expected edge_slot=${a}, edge_failed_slot=${b}, edge_status and edge_try_slot empty)`);
  return a;
}

async function refuseScenario(run: Run): Promise<Slot> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  const part = slotPartition(run.disk, b);
  const before = await sha256Range(run.disk, part.start, part.size);
  const s = await run.mustBoot({
    name: `healthy on slot ${a}, the update on /dev/vdb refused, the system stays up`,
    expect: [M.booting(a), M.healthy(a), M.found, M.refused],
    updateDisk: true,
    settle: true,
    failOn: [FAIL.applied],
    outcome: 'refused',
  });
  const line = s.markers[s.markers.length - 1]!.line.trim();
  if (run.o.refusal) run.check('the refusal names the cause', run.o.refusal.test(line), `"${line}" (expected it to match /${run.o.refusal.source}/${run.o.refusal.flags})`);
  const after = await sha256Range(run.disk, part.start, part.size);
  run.check(`slot ${b} unchanged`, after === before, `system-${b} (${part.size} bytes at ${part.start}): sha256 ${before.slice(0, 16)}… before, ${after.slice(0, 16)}… after`);
  const env = await run.env();
  // a missing variable is the same as an empty one (README "The boot environment"): the boot's own
  // count (edge_boot_count, set by the bootloader, cleared by the health check) may add it empty
  const set = (e: Record<string, string>) => JSON.stringify(Object.entries(e).filter(([, v]) => v !== '').sort());
  const same = set(env) === set(env0);
  run.check('the boot environment unchanged', same, `before: ${envText(env0)}; after: ${envText(env)}`);
  await run.mustBoot({ name: `without the update: healthy on slot ${a}`, expect: [M.booting(a), M.healthy(a)], failOn: [FAIL.unhealthy], outcome: 'healthy' });
  return a;
}

async function powerCutPoint(run: Run, point: CrashPoint, manifest: UpdateManifest, recoveryBoots: number): Promise<PowerCutOutcome> {
  const env0 = await run.env();
  const a = (env0['edge_slot'] || 'a') as Slot;
  const b = other(a);
  await run.setEnv({ edge_kargs: `edge.crash=${point}` });
  if (point === 'try-before-commit') {
    await applyBoot(run, a, manifest);
    await run.mustBoot({ name: `the try boot of slot ${b} crashes before its commit`, expect: [M.booting(b), M.crash(point)], untilExit: true, failOn: [FAIL.committed], outcome: 'crashed' });
  } else {
    await run.mustBoot({ name: `healthy on slot ${a}, the update on /dev/vdb, a crash at ${point}`, expect: [M.booting(a), M.healthy(a), M.found, M.crash(point)], updateDisk: true, untilExit: true, failOn: [FAIL.refused], outcome: 'crashed' });
  }
  const crashed = await run.clearKargsKeepingState();
  for (let i = 1; i <= recoveryBoots; i++) {
    // No failure lines: a boot that fails and reboots is allowed, as long as one becomes healthy.
    const s = await run.boot({ name: `after the crash (${i} of at most ${recoveryBoots}): healthy on a slot`, expect: [M.booting(), M.healthy()], failOn: null, outcome: 'healthy', rebootAllowed: true });
    if (s.outcome === 'healthy') {
      const env = await run.env();
      const slot = s.slot!;
      const healthy = s.markers.find((m) => /healthy on slot/.test(m.line));
      const hs = healthy ? (/healthy on slot ([ab])/.exec(healthy.line)![1] as Slot) : slot;
      const bootLine = s.markers[0]!.line.trim();
      const why = `healthy on slot ${hs} (${hs === a ? 'the old slot' : 'the new slot'}) after ${i} boot${i > 1 ? 's' : ''}; the environment after the crash: ${crashed}; the bootloader: "${bootLine.replace(/^.*?(edgeimage-)/, '$1')}"; by design: ${PREDICTED[point]}`;
      run.check('the boot environment agrees with the healthy slot', env['edge_slot'] === hs && !env['edge_status'] && !env['edge_try_slot'], `after: ${envText(env)} (healthy on slot ${hs})`);
      return { point, passed: true, slot: hs, boots: i, why };
    }
    if (s.outcome !== 'rebooted') {
      throw new StepFailed({ step: s.name, point, code: s.code ?? 'ERR_BOOT_FAILED', reason: `after a crash at ${point} the device is neither healthy nor rebooting: ${s.reason}`, tail: s.tail, log: s.log });
    }
  }
  const last = run.steps[run.steps.length - 1];
  throw new StepFailed({ step: last?.name ?? point, point, code: 'ERR_NOT_RECOVERED', reason: `after a crash at ${point} the device never became healthy on slot a or b in ${recoveryBoots} boots`, tail: last?.tail, log: last?.log });
}

/**
 * Runs a scenario with one update on a copy of an image (or in place), each boot a QEMU process
 * of its own with `-no-reboot` (a guest reboot ends QEMU; the disk keeps its state):
 *
 * - `update`: boot 1 (update on /dev/vdb) healthy on a, applies to b, reboots; boot 2 tries b,
 *   commits it, healthy; boot 3 healthy on b. The environment: edge_slot=b, edge_status empty.
 * - `rollback`: boot 1 applies; boot 2 tries b, never healthy, not committed, reboots; boot 3
 *   rolls back: healthy on a; edge_failed_slot=b, edge_slot=a.
 * - `refuse`: boot 1 healthy on a, REFUSED, stays up; slot b's bytes and the environment
 *   unchanged; boot 2 healthy on a.
 * - `power-cut`: per crash point (each on a fresh copy): `edge_kargs=edge.crash=POINT` set
 *   offline, the crash, edge_kargs cleared, then at most `recoveryBoots` boots until healthy on a
 *   or b — which one and why is reported.
 *
 * Refusals before anything runs throw a BootTestError ({@link checkScenarioOptions}); a scenario
 * that fails resolves with `passed: false` and `failure` (the step, code, reason, log tail).
 */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const manifest = checkScenarioOptions(o);
  // what the last boot would refuse, refused before the first: minutes of boots earlier
  if (o.lastBoot?.screenshot) checkScreenshotPath(o.lastBoot.screenshot.file);
  for (const e of o.lastBoot?.expectScreen ?? []) checkScreenExpect(e);
  // Every boot runs on a copy: the factory files (a verified U-Boot image's flash and device tree)
  // are looked up next to the image itself.
  const f = factoryFilesOf(o.image);
  o = { ...o, boot: { ...(f.ubootEnv ? { ubootEnvFlash: f.ubootEnv } : {}), ...(f.ubootDtb ? { ubootDtb: f.ubootDtb } : {}), ...Object.fromEntries(Object.entries(o.boot ?? {}).filter(([, v]) => v !== undefined)) } };
  if (o.scenario === 'power-cut') await checkHookGrade(o.image);
  return runOnDisks(o, manifest, async (run, point): Promise<Played> => {
    if (o.scenario === 'update') return { slot: await updateScenario(run, manifest) };
    if (o.scenario === 'rollback') return { slot: await rollbackScenario(run, manifest) };
    if (o.scenario === 'refuse') return { slot: await refuseScenario(run) };
    const out = await powerCutPoint(run, point!, manifest, o.recoveryBoots ?? 3);
    return { slot: out.slot, powerCut: out };
  });
}
