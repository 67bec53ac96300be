import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './repo.js';
import { twinRevision } from './model-revision.js';

test("a later revision of a reference model's dangerous twin: renamed, graded, revised, its validation-sets left out", () => {
  const yaml = readFileSync(join(REPO, 'models/kiosk-pc-amd64.yaml'), 'utf8');
  const out = twinRevision(yaml, 'kiosk-pc-amd64-dangerous', 2);
  expect(out).toMatch(/^model: kiosk-pc-amd64-dangerous$/m);
  expect(out).toMatch(/^grade: dangerous\nrevision: 2$/m);
  expect(out).not.toMatch(/^grade: signed$/m);
  expect(out).not.toMatch(/validation-sets|sequence: 1|mode: enforce/);
  // everything else kept, in order: the snaps and the timestamp after the left-out block
  expect(out).toMatch(/^snaps:\n(  .*\n)+/m);
  expect(out).toMatch(/^timestamp: /m);
});
