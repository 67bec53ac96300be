/**
 * The slot's `update.conf`: where and how the device's agent polls for updates (README "Updates
 * over the network", "On the device: what the image carries"). The agent reads it line by line at
 * fixed line numbers in busybox sh, so the order is fixed and nothing else may be in it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GadgetUpdateDefaults, type UpdateMode, updateIntervalProblem, updateJitterProblem, updateModeProblem, updateWindowProblem } from '@edgeimage/gadget';
import { checkChannel } from '@edgeimage/store';
import { ComposeError } from '../errors.js';

export const UPDATE_CONF = 'update.conf';
export const UPDATE_CONF_FORMAT = 1;
export const UPDATE_URL_MAX = 255;
export const UPDATE_DEFAULTS = { channel: 'latest/stable', interval: 21600, jitter: 600, window: '-', mode: 'auto' } as const;

/** The build's update settings (`edgeimage build --update-url …`); what it leaves out comes from the gadget, then the defaults. */
export interface UpdateConfig {
  /** The store's base URL (http or https); a trailing `/` is dropped. */
  url: string;
  /** `TRACK/RISK`, or a bare risk (`stable` = `latest/stable`). */
  channel?: string;
  interval?: number;
  jitter?: number;
  window?: string;
  mode?: UpdateMode;
}

/** Every field decided: what update.conf says. */
export interface ResolvedUpdateConfig {
  url: string;
  channel: string;
  interval: number;
  jitter: number;
  window: string;
  mode: UpdateMode;
}

const URL_CHARS = /^[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$/;

/** The URL as update.conf holds it (trailing `/` dropped), or why it cannot be one. */
export function updateUrlProblem(url: string): { url: string } | { problem: string } {
  const found = JSON.stringify(url);
  const u = url.replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(url)) return { problem: `expected an http:// or https:// URL (the store's base, as \`update release --store\` serves it), found ${found}` };
  if (!URL_CHARS.test(u)) {
    const bad = [...u].find((c) => !URL_CHARS.test(c))!;
    return { problem: `expected a URL of the characters A-Z a-z 0-9 . _ ~ : / ? # @ ! $ & ' ( ) * + , ; = % - (percent-encode others), found ${found} (it holds ${JSON.stringify(bad)})` };
  }
  if (u.length > UPDATE_URL_MAX) return { problem: `expected a URL of at most ${UPDATE_URL_MAX} characters, found one of ${u.length}` };
  // The device appends /channels/… to it: a query or fragment would swallow that path.
  if (/[?#]/.test(u)) return { problem: `expected a base URL without a query or fragment (the device appends /channels/BRAND.MODEL.TRACK+RISK.pointer to it), found ${found}` };
  if (!/^https?:\/\/[^/@]+/i.test(u)) return { problem: `expected a host after the scheme, found ${found}` };
  return { url: u };
}

/** The channel in full `TRACK/RISK` form, or why it is not one. */
export function updateChannelProblem(channel: string): { channel: string } | { problem: string } {
  let full: string;
  try {
    full = checkChannel(channel);
  } catch {
    return { problem: `expected TRACK/RISK (e.g. latest/stable) or a risk (stable, candidate, beta, edge), found ${JSON.stringify(channel)}` };
  }
  // The device names the pointer channels/BRAND.MODEL.TRACK+RISK.pointer from it: two parts only.
  if (full.split('/').length !== 2) return { problem: `expected TRACK/RISK without a branch (the device follows a track and a risk), found ${JSON.stringify(channel)}` };
  return { channel: full };
}

/**
 * The settings update.conf says: the build's, else the gadget's, else the defaults. Each value is
 * checked (ERR_UPDATE_CONF names the field, what was expected and what was found), so that a
 * library caller cannot write a file the device would refuse.
 */
export function resolveUpdateConfig(build: UpdateConfig, gadget: GadgetUpdateDefaults = {}): ResolvedUpdateConfig {
  const fail = (field: string, problem: string, found: unknown): never => {
    throw new ComposeError('ERR_UPDATE_CONF', `update settings: ${field}: ${problem}`, { field, found });
  };
  const url = updateUrlProblem(build.url);
  if ('problem' in url) return fail('url', url.problem, build.url);
  const channel = updateChannelProblem(build.channel ?? UPDATE_DEFAULTS.channel);
  if ('problem' in channel) return fail('channel', channel.problem, build.channel);
  const interval = build.interval ?? gadget.interval ?? UPDATE_DEFAULTS.interval;
  const jitter = build.jitter ?? gadget.jitter ?? UPDATE_DEFAULTS.jitter;
  const window = build.window ?? gadget.window ?? UPDATE_DEFAULTS.window;
  const mode = build.mode ?? gadget.mode ?? UPDATE_DEFAULTS.mode;
  const checks: [string, unknown, string | undefined][] = [
    ['interval', interval, updateIntervalProblem(String(interval))],
    ['jitter', jitter, updateJitterProblem(String(jitter))],
    ['window', window, updateWindowProblem(window)],
    ['mode', mode, updateModeProblem(mode)],
  ];
  for (const [field, found, problem] of checks) if (problem) fail(field, problem, found);
  return { url: url.url, channel: channel.channel, interval, jitter, window, mode };
}

/** update.conf's exact bytes: LF lines in the contract's order, nothing else. */
export function encodeUpdateConf(c: ResolvedUpdateConfig): Buffer {
  return Buffer.from(
    [`edgeimage-update-conf: ${UPDATE_CONF_FORMAT}`, `url: ${c.url}`, `channel: ${c.channel}`, `interval: ${c.interval}`, `jitter: ${c.jitter}`, `window: ${c.window}`, `mode: ${c.mode}`].map((l) => `${l}\n`).join(''),
    'ascii',
  );
}

/** Writes `update.conf` at the slot's root. */
export function writeUpdateConf(slotDir: string, c: ResolvedUpdateConfig): void {
  writeFileSync(join(slotDir, UPDATE_CONF), encodeUpdateConf(c));
}
