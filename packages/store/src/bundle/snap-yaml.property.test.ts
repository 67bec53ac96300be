/**
 * Property tests of the snap.yaml parser on untrusted text (every bundle's meta/snap.yaml): random
 * input and mutations of real snap.yaml files end in a value or an `[ERR_…]` error — never an
 * untyped error, a crash or a hang.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSnapYaml } from './snap-yaml.js';
import { mutated, noise, resultOrTypedError, runs } from '@edgeimage/testkit/mutations';

const BUNDLES = fileURLToPath(new URL('../../../../bundles/', import.meta.url));
const own = readdirSync(BUNDLES, { withFileTypes: true }).flatMap((d) => {
  try {
    // Some are templates: bundles/build puts the architecture in.
    return d.isDirectory() ? [Buffer.from(readFileSync(`${BUNDLES}${d.name}/meta/snap.yaml`, 'utf8').replaceAll('@ARCH@', 'amd64'))] : [];
  } catch {
    return [];
  }
});
// A fuller one: apps with daemons, anchors and aliases, a block list, comments.
const RICH = Buffer.from(`name: hello-kiosk
version: '1.0+git3'
summary: Kiosk
description: |
  Shows a page.
type: app
base: core22
architectures:
  - amd64
  - arm64
apps:
  kiosk: &app
    command: bin/kiosk --url "http://x"
    daemon: simple
    restart-condition: on-failure
  other: *app # same again
`);
const inputs = [RICH, ...own];

const parse = (b: Buffer) => resultOrTypedError(() => parseSnapYaml(b.toString('utf8'), 'meta/snap.yaml'));

test('the real snap.yaml files parse (the mutations start from valid ones)', () => {
  expect(own.length).toBeGreaterThan(2);
  for (const b of inputs) expect(parseSnapYaml(b.toString('utf8'), 'meta/snap.yaml').name).toBeTruthy();
});

test('random input ends in a value or an [ERR_…] error', () => {
  fc.assert(fc.property(noise(), parse), { numRuns: runs(1000) });
});

test('mutated real snap.yaml files end in a value or an [ERR_…] error', () => {
  fc.assert(fc.property(mutated(inputs), parse), { numRuns: runs(1500) });
});
