import { ComposeError } from '../errors.js';

/**
 * The boot environment: GRUB environment blocks on `system-boot`, redundant, with the variables
 * of edgeimage's A/B state machine. The contract (every variable, who writes it, the write
 * protocol, which copy a reader takes) is bundles/bootloader/README.md "The boot environment";
 * GRUB, U-Boot and the device's `bootenv` implement the same, and
 * bundles/bootloader/env-cases.json is the table of cases this code and the device's are tested
 * against (packages/qemu/test/bootenv-cases.test.ts). A summary:
 *
 * ## The variables
 *
 * | variable | values | meaning |
 * | --- | --- | --- |
 * | `edge_slot` | `a` \| `b` | the known-good slot |
 * | `edge_try_slot` | `''` \| `a` \| `b` | the slot to try on the next boot |
 * | `edge_status` | `''` \| `try` \| `trying` | where a try stands |
 * | `edge_failed_slot` | `''` \| `a` \| `b` | the slot that failed last (a rolled-back try, or a known-good slot left) |
 * | `edge_boot_count` | `''` \| `1` \| `2` \| `3` | boots of `edge_slot` the health check has not confirmed |
 *
 * At boot the bootloader (GRUB or U-Boot, same semantics; modelled by `bootloaderStart` in
 * state.ts):
 * - `edge_status` empty → counts the boot in `edge_boot_count` and boots `edge_slot`; after 3
 *   boots without a healthy one, leaves it for the other slot (`edge_failed_slot`), or, if that
 *   one failed too, powers off;
 * - `edge_status=try` → sets `edge_status=trying`, saves, boots `edge_try_slot`;
 * - `edge_status=trying` (the try never reported success) → sets `edge_failed_slot` to
 *   `edge_try_slot`, clears `edge_status` and `edge_try_slot`, saves, boots `edge_slot`: the
 *   rollback.
 *
 * After a boot the device's health check sees `trying` and, when healthy, commits:
 * `edge_slot := edge_try_slot`, both cleared. An update writes the inactive slot, sets
 * `edge_try_slot` and `edge_status=try`, and reboots.
 *
 * ## The redundant files
 *
 * Four files on `system-boot` ({@link ENV_FILES}), each exactly one 1024-byte GRUB environment
 * block, so GRUB's `load_env`/`save_env` work on them in place and U-Boot can `load` one and
 * `env import -t` it (U-Boot skips the `#` header and padding lines as comments):
 *
 * - `EFI/edgeimage/env1/env`, `EFI/edgeimage/env2/env`: two copies of the variables;
 * - `EFI/edgeimage/env1/lock`, `EFI/edgeimage/env2/lock`: each holds `editing=1` while its copy
 *   is being written, `editing=0` otherwise.
 *
 * A writer goes: lock1 `editing=1` → env1 → lock1 `editing=0` → lock2 `editing=1` → env2 → lock2
 * `editing=0` ({@link ENV_WRITE_STEPS}), syncing after each step. A reader takes env1 unless lock1
 * says `editing=1` or env1 is not a valid block, else env2 ({@link chooseEnv}). A power cut at any
 * step leaves one complete copy that the reader picks: the old variables up to step 2, the new
 * ones from step 3 on.
 *
 * GRUB, for example:
 * ```
 * set envdir=($root)/EFI/edgeimage
 * set editing=0
 * load_env --file $envdir/env1/lock editing
 * if [ "$editing" = 1 ]; then set envcopy=env2; else set envcopy=env1; fi
 * load_env --file $envdir/$envcopy/env edge_slot edge_try_slot edge_status edge_failed_slot
 * ```
 */
export type BootEnv = Record<string, string>;

/** The state of a fresh image: slot a is good, nothing to try. */
export function initialEnv(): BootEnv {
  return { edge_slot: 'a', edge_try_slot: '', edge_status: '', edge_failed_slot: '' };
}

/** Paths of the redundant environment on `system-boot`, relative to its root. */
export const ENV_FILES = {
  env1: 'EFI/edgeimage/env1/env',
  lock1: 'EFI/edgeimage/env1/lock',
  env2: 'EFI/edgeimage/env2/env',
  lock2: 'EFI/edgeimage/env2/lock',
} as const;

export type EnvFile = keyof typeof ENV_FILES;

/** One step of the write protocol: which file, and whether it gets the variables or a lock value. */
export type EnvWriteStep = { file: 'lock1' | 'lock2'; editing: '0' | '1' } | { file: 'env1' | 'env2' };

/** The write protocol, in order. */
export const ENV_WRITE_STEPS: readonly EnvWriteStep[] = [
  { file: 'lock1', editing: '1' },
  { file: 'env1' },
  { file: 'lock1', editing: '0' },
  { file: 'lock2', editing: '1' },
  { file: 'env2' },
  { file: 'lock2', editing: '0' },
];

export const GRUB_ENV_SIZE = 1024;
export const GRUB_ENV_HEADER = '# GRUB Environment Block\n';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Domains of the state machine's variables. */
export const EDGE_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  edge_slot: ['a', 'b'],
  edge_try_slot: ['', 'a', 'b'],
  edge_status: ['', 'try', 'trying'],
  edge_failed_slot: ['', 'a', 'b'],
  edge_boot_count: ['', '1', '2', '3'],
};

/**
 * Encodes variables as a GRUB environment block: exactly 1024 bytes, the header,
 * `key=value\n` lines in byte order of the keys, `#` padding. Keys must be shell-style names
 * (usable from GRUB script and U-Boot); values must not hold a newline (neither GRUB's nor
 * snapd's format can), a backslash (GRUB reads it as an escape) or NUL (U-Boot's terminator).
 *
 * @example
 * const block = encodeGrubEnv(initialEnv()); // 1024 bytes
 */
export function encodeGrubEnv(vars: BootEnv): Buffer {
  const keys = Object.keys(vars).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  let text = GRUB_ENV_HEADER;
  for (const k of keys) {
    checkKey(k);
    const v = vars[k];
    if (typeof v !== 'string') throw new ComposeError('ERR_BOOTENV_VALUE', `boot environment: ${k} has no string value`, { key: k });
    checkValue(k, v);
    text += `${k}=${v}\n`;
  }
  const body = Buffer.from(text, 'utf8');
  if (body.length > GRUB_ENV_SIZE) {
    throw new ComposeError('ERR_BOOTENV_TOO_LARGE', `boot environment: the variables take ${body.length} bytes; a GRUB environment block holds ${GRUB_ENV_SIZE} (header included)`, { bytes: body.length, max: GRUB_ENV_SIZE });
  }
  const out = Buffer.alloc(GRUB_ENV_SIZE, '#');
  body.copy(out);
  return out;
}

/**
 * Decodes a GRUB environment block. Refuses any size but 1024 bytes and a missing header, as
 * GRUB does, and, stricter than GRUB, NUL bytes (the zeros of an interrupted write); skips `#`
 * lines (padding, comments); refuses a backslash (grub-editenv's escape: GRUB would join lines
 * that the device's bootenv reads apart — no writer of the contract makes one).
 *
 * @example
 * decodeGrubEnv(readFileSync('env1/env')).edge_slot; // 'a'
 */
export function decodeGrubEnv(bytes: Uint8Array): BootEnv {
  if (bytes.length !== GRUB_ENV_SIZE) {
    throw new ComposeError('ERR_BOOTENV_SIZE', `boot environment: a GRUB environment block is exactly ${GRUB_ENV_SIZE} bytes, this one ${bytes.length}`, { bytes: bytes.length });
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!buf.subarray(0, GRUB_ENV_HEADER.length).equals(Buffer.from(GRUB_ENV_HEADER))) {
    throw new ComposeError('ERR_BOOTENV_HEADER', `boot environment: the block does not start with ${JSON.stringify(GRUB_ENV_HEADER)}`, {});
  }
  const nul = buf.indexOf(0);
  if (nul >= 0) {
    // Never in a block GRUB or we wrote: '#' pads it. Zeros are what an interrupted write leaves.
    throw new ComposeError('ERR_BOOTENV_FORMAT', `boot environment: the block holds a NUL byte at offset ${nul} (an incomplete write?)`, { offset: nul });
  }
  const backslash = buf.indexOf(0x5c);
  if (backslash >= 0) {
    // GRUB reads it as an escape that joins lines; the device's bootenv reads line by line. No writer
    // of the contract (bundles/bootloader/README.md) makes one, so both refuse the copy.
    throw new ComposeError('ERR_BOOTENV_FORMAT', `boot environment: the block holds a backslash at offset ${backslash} (an escape, which no writer of the boot environment makes)`, { offset: backslash });
  }
  const text = buf.subarray(GRUB_ENV_HEADER.length).toString('utf8');
  const vars: BootEnv = {};
  let i = 0;
  let line = 1;
  while (i < text.length) {
    line++;
    let raw = '';
    let end = false;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\n') {
        i++;
        end = true;
        break;
      } else raw += c;
    }
    if (raw.startsWith('#') || (raw === '' && end)) continue;
    if (!end) {
      throw new ComposeError('ERR_BOOTENV_FORMAT', `boot environment: line ${line} (${JSON.stringify(raw.slice(0, 40))}) runs into the end of the block`, { line });
    }
    const eq = raw.indexOf('=');
    if (eq <= 0) throw new ComposeError('ERR_BOOTENV_FORMAT', `boot environment: line ${line} (${JSON.stringify(raw.slice(0, 40))}) is not key=value`, { line });
    vars[raw.slice(0, eq)] = raw.slice(eq + 1);
  }
  return vars;
}

export interface EnvFiles {
  env1?: Uint8Array;
  lock1?: Uint8Array;
  env2?: Uint8Array;
  lock2?: Uint8Array;
}

export interface ChosenEnv {
  vars: BootEnv;
  /** The copy read. */
  from: 'env1' | 'env2';
  /** Why env2 was read, when it was. */
  reason?: string;
}

/**
 * The reader's side of the protocol: env1 unless lock1 says `editing=1` or env1 is missing or
 * not a valid block; else env2. A lock that is missing or unreadable does not say `editing=1`
 * (as for GRUB, whose `load_env` then leaves `editing` unset). Neither copy usable →
 * ERR_BOOTENV_UNREADABLE.
 *
 * @example
 * chooseEnv({ env1, lock1, env2, lock2 }).vars.edge_slot;
 */
export function chooseEnv(files: EnvFiles): ChosenEnv {
  let reason: string;
  if (lockSaysEditing(files.lock1)) reason = 'lock1 says editing=1 (a write of env1 was interrupted)';
  else {
    const env1 = tryDecode(files.env1);
    if (env1.vars) return { vars: env1.vars, from: 'env1' };
    reason = `env1 is ${env1.why}`;
  }
  const env2 = tryDecode(files.env2);
  if (env2.vars) return { vars: env2.vars, from: 'env2', reason };
  throw new ComposeError('ERR_BOOTENV_UNREADABLE', `boot environment: no usable copy: ${reason}, and env2 is ${env2.why}`, { reason, env2: env2.why });
}

function lockSaysEditing(lock: Uint8Array | undefined): boolean {
  return tryDecode(lock).vars?.editing === '1';
}

function tryDecode(bytes: Uint8Array | undefined): { vars?: BootEnv; why: string } {
  if (!bytes) return { why: 'missing' };
  try {
    return { vars: decodeGrubEnv(bytes), why: '' };
  } catch (err) {
    return { why: `invalid (${(err as Error).message.replace(/^boot environment: /, '')})` };
  }
}

/**
 * Applies `changes` (a value of `null` removes a variable) to `current`, checking every key and
 * value, the domains of the `edge_*` variables, and that the result is a state the bootloaders
 * can act on; returns the new variables, which always fit one block.
 *
 * @example
 * setEnvVars(initialEnv(), { edge_try_slot: 'b', edge_status: 'try' });
 */
export function setEnvVars(current: BootEnv, changes: Record<string, string | null>): BootEnv {
  const next: BootEnv = { ...current };
  for (const [k, v] of Object.entries(changes)) {
    checkKey(k);
    if (v === null) {
      if (k in EDGE_VARIABLES) throw new ComposeError('ERR_BOOTENV_VALUE', `boot environment: ${k} cannot be removed (set it to one of ${domain(k)})`, { key: k });
      delete next[k];
      continue;
    }
    checkValue(k, v);
    next[k] = v;
  }
  checkEnvState(next);
  encodeGrubEnv(next);
  return next;
}

/**
 * Checks the state machine's variables: each present one within its domain, `edge_slot`
 * present, and a try (`edge_status` `try` or `trying`) naming the slot it tries.
 */
export function checkEnvState(vars: BootEnv): void {
  for (const k of Object.keys(EDGE_VARIABLES)) if (vars[k] !== undefined) checkValue(k, vars[k]!);
  if (vars.edge_slot === undefined) throw new ComposeError('ERR_BOOTENV_STATE', 'boot environment: edge_slot is not set; the bootloader would not know which slot to boot', {});
  const status = vars.edge_status ?? '';
  if ((status === 'try' || status === 'trying') && !vars.edge_try_slot) {
    throw new ComposeError('ERR_BOOTENV_STATE', `boot environment: edge_status=${status} needs edge_try_slot set to a or b`, { edge_status: status });
  }
}

function checkKey(k: string): void {
  if (!KEY.test(k)) {
    throw new ComposeError('ERR_BOOTENV_KEY', `boot environment: ${JSON.stringify(k)} is not a variable name (letters, digits and _, not starting with a digit)`, { key: k });
  }
}

function checkValue(k: string, v: string): void {
  const bad = /[\n\\\0]/.exec(v);
  if (bad) {
    const what = bad[0] === '\n' ? 'a newline' : bad[0] === '\\' ? 'a backslash' : 'a NUL character';
    throw new ComposeError('ERR_BOOTENV_VALUE', `boot environment: the value of ${k} contains ${what}, which a GRUB environment block cannot hold`, { key: k, value: v });
  }
  const allowed = EDGE_VARIABLES[k];
  if (allowed && !allowed.includes(v)) {
    throw new ComposeError('ERR_BOOTENV_VALUE', `boot environment: ${k}=${JSON.stringify(v)} is not allowed; ${k} is one of ${domain(k)}`, { key: k, value: v, allowed });
  }
}

const domain = (k: string): string => (EDGE_VARIABLES[k] ?? []).map((v) => (v === '' ? "'' (empty)" : v)).join(', ');
