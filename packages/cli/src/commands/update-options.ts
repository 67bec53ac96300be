/**
 * The device's update settings (`--update-url` and the other `--update-*` options): declared and
 * checked here for `build`, `update create` and `update release` alike, so that the three write
 * the same update.conf and refuse the same values with the same words.
 */
import { updateChannelProblem, updateUrlProblem, type UpdateConfig } from '@edgeimage/composer';
import { updateIntervalProblem, updateJitterProblem, updateWindowProblem } from '@edgeimage/gadget';
import type { Argv } from 'yargs';
import { UsageError } from '../output.js';

export interface UpdateArgs {
  updateUrl?: string;
  updateChannel?: string;
  updateInterval?: string;
  updateJitter?: string;
  updateWindow?: string;
  updateDownloadOnly?: boolean;
}

/** How the command words what the options apply to and where the channel defaults from. */
export interface UpdateOptionsHelp {
  /** What gets update.conf: "each slot", "the update's slot". */
  target: string;
  /** The channel's default, as --help says it. */
  channelDefault: string;
}

export const BUILD_UPDATE_HELP: UpdateOptionsHelp = { target: 'each slot gets update.conf. Without it the image has no update.conf and the device does not poll', channelDefault: 'stable = latest/stable; the default' };

/** Declares the `--update-*` options on a command. */
export function updateOptions<T>(y: Argv<T>, help: UpdateOptionsHelp) {
  return y
    .option('update-url', { type: 'string', describe: `the store the device polls for updates (http or https, its base URL as \`update release --store\` fills it): ${help.target}` })
    .option('update-channel', { type: 'string', describe: `the channel the device follows: TRACK/RISK, or a risk (${help.channelDefault})` })
    .option('update-interval', { type: 'string', describe: "seconds between polls, 10..2592000 (default: the gadget's edgeimage-updates: interval, else 21600)" })
    .option('update-jitter', { type: 'string', describe: "random 0..N seconds added to each wait, 0..86400 (default: the gadget's, else 600)" })
    .option('update-window', { type: 'string', describe: "HH:MM-HH:MM (UTC, may wrap midnight): apply and reboot only inside it; - for any time (default: the gadget's, else -)" })
    .option('update-download-only', { type: 'boolean', describe: "download and verify an update but apply it only on `edge-update apply-downloaded` (default: the gadget's mode, else auto)" });
}

/**
 * The update settings from the options, each checked before any work (the gadget's defaults fill
 * the rest later); undefined without --update-url. The other --update-* options without it are
 * refused: they would silently do nothing. `defaultChannel` is the channel when --update-channel
 * is absent (update release: the channel released to), with the option it comes from.
 */
export function updateConfigOf(a: UpdateArgs, defaultChannel?: { channel: string; option: string }): UpdateConfig | undefined {
  if (a.updateUrl === undefined) {
    const stray = (['updateChannel', 'updateInterval', 'updateJitter', 'updateWindow'] as const).find((k) => a[k] !== undefined) ?? (a.updateDownloadOnly ? 'updateDownloadOnly' : undefined);
    if (stray) throw new UsageError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: expected together with --update-url (the store the device polls), found it alone`);
    return undefined;
  }
  const url = updateUrlProblem(a.updateUrl);
  if ('problem' in url) throw new UsageError(`--update-url: ${url.problem}`);
  const conf: UpdateConfig = { url: url.url };
  if (a.updateChannel !== undefined) {
    const ch = updateChannelProblem(a.updateChannel);
    if ('problem' in ch) throw new UsageError(`--update-channel: ${ch.problem}`);
    conf.channel = ch.channel;
  } else if (defaultChannel) {
    // A branch is a publisher's temporary channel: the device cannot be told to follow it.
    const ch = updateChannelProblem(defaultChannel.channel);
    if ('problem' in ch) throw new UsageError(`--update-channel: (absent: ${defaultChannel.option} ${defaultChannel.channel} is its default) ${ch.problem}; give --update-channel`);
    conf.channel = ch.channel;
  }
  const seconds = (option: string, v: string | undefined, problem: (v: string) => string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const why = problem(v);
    if (why) throw new UsageError(`${option}: ${why}`);
    return Number(v);
  };
  const interval = seconds('--update-interval', a.updateInterval, updateIntervalProblem);
  const jitter = seconds('--update-jitter', a.updateJitter, updateJitterProblem);
  if (interval !== undefined) conf.interval = interval;
  if (jitter !== undefined) conf.jitter = jitter;
  if (a.updateWindow !== undefined) {
    const why = updateWindowProblem(a.updateWindow);
    if (why) throw new UsageError(`--update-window: ${why}`);
    conf.window = a.updateWindow;
  }
  if (a.updateDownloadOnly) conf.mode = 'download-only';
  return conf;
}
