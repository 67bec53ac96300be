import type { ResolveEvent } from '@edgeimage/store';
import cliProgress from 'cli-progress';

const mb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`);

/**
 * Shows resolve events: bars on a terminal, one plain line per event otherwise (CI logs, pipes).
 * Always on stderr, so `--json` output on stdout stays clean.
 */
export function resolveProgress(log: (line: string) => void, stream: NodeJS.WriteStream = process.stderr): { onEvent: (e: ResolveEvent) => void; stop: () => void } {
  const tty = Boolean(stream.isTTY) && (stream.columns ?? 0) > 20;
  const line = log;
  if (!tty) {
    return {
      onEvent: (e) => {
        switch (e.kind) {
          case 'model':
            return line(`model ${e.model}: verified`);
          case 'fetch-assertion':
            return line(`fetching ${e.ref}`);
          case 'plan':
            return line(`${e.bundles.length} bundles: ${e.bundles.map((b) => `${b.name}@${b.revision}${b.cached ? ' (cached)' : ''}`).join(', ')}`);
          case 'download-start':
            return line(`downloading ${e.name} (${mb(e.size)})`);
          case 'download-done':
            return line(`verified and cached ${e.name}`);
          case 'retry':
            return line(`retry ${e.attempt} of ${e.what} in ${e.delayMs} ms: ${e.error}`);
          case 'cache-corrupt':
            return line(`cache entry of ${e.name} is damaged (${e.why})`);
          default:
            return;
        }
      },
      stop: () => {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { stream, format: ' {name} |{bar}| {percentage}% {size}', hideCursor: true, clearOnComplete: false, barsize: 30, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    onEvent: (e) => {
      if (e.kind === 'download-start') bars.set(e.name, multi.create(e.size, 0, { name: e.name.padEnd(22), size: mb(e.size) }));
      else if (e.kind === 'download-progress') bars.get(e.name)?.increment(e.bytes);
      else if (e.kind === 'retry') multi.log(`retry ${e.attempt} of ${e.what}: ${e.error}\n`);
      else if (e.kind === 'cache-corrupt') multi.log(`cache entry of ${e.name} is damaged (${e.why})\n`);
      else if (e.kind === 'model') multi.log(`model ${e.model}: verified\n`);
    },
    stop: () => multi.stop(),
  };
}
