import type { BootTestResult, MarkerResult } from './boot-test.js';
import type { ScenarioResult } from './scenario-harness.js';

const xml = (s: string): string =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A marker in `--json`: with the HTTP answer's url and status, the screen's colour and share, when it is one. */
const markerJson = (m: MarkerResult) => ({ pattern: m.pattern, seconds: Number(m.seconds.toFixed(3)), line: m.line, ...(m.http ? { url: m.http.url, status: m.http.status } : {}), ...(m.screen ? { screen: m.screen } : {}) });

/** The JSON report of a boot: `{passed, slot, markers: [{pattern, seconds}], log}` (+ `reason`, `code` when failed). */
export function jsonReport(r: BootTestResult): Record<string, unknown> {
  return {
    passed: r.passed,
    slot: r.slot ?? null,
    markers: r.markers.map(markerJson),
    log: r.log,
    ...(r.screenshot ? { screenshot: r.screenshot.file, screenshotSeconds: Number(r.screenshot.seconds.toFixed(3)) } : {}),
    ...(r.passed ? {} : { reason: r.reason, code: r.code }),
  };
}

/**
 * The boot as JUnit XML: one testsuite, one testcase per expected marker (its time: seconds
 * since the previous marker). The marker that was not reached carries the failure (the reason,
 * the log's tail); later ones are skipped.
 */
export function junitReport(r: BootTestResult, name = `boot-test ${r.image ?? ''}`.trim()): string {
  const cases: string[] = [];
  let previous = 0;
  r.expected.forEach((pattern, i) => {
    const m = r.markers[i];
    const attrs = `classname="${xml(name)}" name="${xml(pattern)}"`;
    if (m) {
      cases.push(`  <testcase ${attrs} time="${(m.seconds - previous).toFixed(3)}"/>`);
      previous = m.seconds;
    } else if (i === r.markers.length && !r.passed) {
      cases.push(`  <testcase ${attrs} time="${(r.seconds - previous).toFixed(3)}">\n    <failure type="${xml(r.code ?? 'ERR_BOOT_FAILED')}" message="${xml(r.reason ?? 'failed')}">${xml(r.tail ?? '')}</failure>\n  </testcase>`);
    } else {
      cases.push(`  <testcase ${attrs} time="0.000">\n    <skipped/>\n  </testcase>`);
    }
  });
  if (!r.passed && r.markers.length === r.expected.length) {
    // Every marker was seen, then the boot failed (waiting for QEMU to exit).
    cases.push(`  <testcase classname="${xml(name)}" name="QEMU exits" time="${(r.seconds - previous).toFixed(3)}">\n    <failure type="${xml(r.code ?? 'ERR_BOOT_FAILED')}" message="${xml(r.reason ?? 'failed')}">${xml(r.tail ?? '')}</failure>\n  </testcase>`);
  }
  const failures = r.passed ? 0 : 1;
  const skipped = Math.max(0, r.expected.length - r.markers.length - failures);
  const tests = cases.length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${tests}" failures="${failures}" time="${r.seconds.toFixed(3)}">`,
    `<testsuite name="${xml(name)}" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${r.seconds.toFixed(3)}">`,
    `  <properties>\n    <property name="arch" value="${r.arch}"/>\n    <property name="firmware" value="${r.firmware}"/>\n    <property name="log" value="${xml(r.log)}"/>${r.slot ? `\n    <property name="slot" value="${r.slot}"/>` : ''}\n  </properties>`,
    ...cases,
    `  <system-out>log: ${xml(r.log)}</system-out>`,
    '</testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** The `--json` fields of a scenario: `scenario` and `steps` (each boot), with the checks, the outcome per crash point and the failure. */
export function scenarioReport(r: ScenarioResult): Record<string, unknown> {
  const last = r.steps[r.steps.length - 1];
  return {
    passed: r.passed,
    slot: r.slot,
    markers: (last?.markers ?? []).map(markerJson),
    log: last?.log ?? null,
    ...(last?.screenshot ? { screenshot: last.screenshot.file, screenshotSeconds: Number(last.screenshot.seconds.toFixed(3)) } : {}),
    scenario: r.scenario,
    update: { file: r.update, 'brand-id': r.manifest.brandId ?? null, model: r.manifest.model ?? null, revision: r.manifest.revision ?? null },
    steps: r.steps.map((s) => ({
      name: s.name,
      ...(s.point ? { point: s.point } : {}),
      boot: s.boot,
      updateDisk: s.updateDisk,
      slot: s.slot,
      outcome: s.outcome,
      summary: s.summary,
      markers: s.markers.map(markerJson),
      status: s.status,
      seconds: Number(s.seconds.toFixed(3)),
      passed: s.passed,
      log: s.log,
      ...(s.screenshot ? { screenshot: s.screenshot.file } : {}),
      ...(s.passed ? {} : { reason: s.reason, code: s.code }),
    })),
    checks: r.checks,
    env: r.env,
    ...(r.powerCut ? { powerCut: r.powerCut } : {}),
    ...(r.failure ? { reason: `${r.failure.step}: ${r.failure.reason}`, code: r.failure.code, failure: r.failure } : {}),
    seconds: Number(r.seconds.toFixed(1)),
    ...(r.kept.length ? { kept: r.kept } : {}),
  };
}
