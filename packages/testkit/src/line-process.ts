import type { ChildProcess } from 'node:child_process';

/** A child process whose stdout and stderr are read line by line, and awaited by pattern. */
export interface LineProcess {
  child: ChildProcess;
  /** Every complete line so far, stdout and stderr interleaved as they came. */
  out: string[];
  exited: Promise<number | null>;
  /** The first line from index `from` on matching `re`, within `ms` (the output so far in the error). */
  line(re: RegExp, ms?: number, from?: number): Promise<string>;
}

/** Watches a spawned child's output (its stdout and stderr must be pipes). */
export function watchLines(child: ChildProcess): LineProcess {
  const out: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let partial = '';
  const add = (b: Buffer) => {
    const parts = (partial + b.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      out.push(l);
      for (const w of waiters.filter((x) => x.re.test(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    out,
    exited,
    line: (re, ms = 10_000, from = 0) =>
      new Promise((resolveLine, reject) => {
        const seen = out.slice(from).find((l) => re.test(l));
        if (seen !== undefined) return resolveLine(seen);
        const t = setTimeout(() => reject(new Error(`no line matching ${re} in ${ms} ms; output:\n${out.join('\n')}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolveLine(l)) });
      }),
  };
}
