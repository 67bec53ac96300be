/**
 * Property tests of the gadget.yaml parser on untrusted text: random input and mutations of real
 * gadgets (the shared fixtures and the repo's own bundles) end in a gadget or an `[ERR_…]` error —
 * never an untyped error, a crash or a hang.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseGadgetYaml } from './parse.js';
import { fixtureFile, fixtureGadgets } from '@edgeimage/testkit/gadget-fixtures';
import { mutated, noise, resultOrTypedError, runs } from '@edgeimage/testkit/mutations';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const inputs = [...['pc', 'arm64-efi', 'arm64-uboot'].map((g) => readFileSync(`${REPO}bundles/${g}/meta/gadget.yaml`)), ...fixtureGadgets().map((g) => readFileSync(fixtureFile(g)))];

const parse = (b: Buffer) => resultOrTypedError(() => parseGadgetYaml(b.toString('utf8'), 'meta/gadget.yaml'));

test('the real gadgets parse (the mutations start from valid ones)', () => {
  for (const b of inputs.slice(0, 3)) expect(parseGadgetYaml(b.toString('utf8'), 'meta/gadget.yaml').volumeOrder.length).toBeGreaterThan(0);
});

test('random input ends in a gadget or an [ERR_…] error', () => {
  fc.assert(fc.property(noise(), parse), { numRuns: runs(1000) });
});

test('mutated real gadgets end in a gadget or an [ERR_…] error', () => {
  fc.assert(fc.property(mutated(inputs), parse), { numRuns: runs(1500) });
});
