/**
 * A later revision of a reference model's grade dangerous twin, as the QEMU tests sign it for an
 * update: models/NAME.yaml with `model: TWIN`, `grade: dangerous`, `revision: N`, and without its
 * validation-sets (the set pins the app revisions of the images; the update carries newer ones).
 * models/sign-examples derives the twin the same way.
 */
export function twinRevision(modelYaml: string, twin: string, revision: number): string {
  const out: string[] = [];
  let skip = false;
  for (const line of modelYaml.split('\n')) {
    if (/^validation-sets:/.test(line)) {
      skip = true;
      continue;
    }
    if (skip && /^\S/.test(line)) skip = false;
    if (skip) continue;
    out.push(line.replace(/^model: .*$/, `model: ${twin}`).replace(/^grade: signed$/, `grade: dangerous\nrevision: ${revision}`));
  }
  return out.join('\n');
}
