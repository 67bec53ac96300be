import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseEnv, decodeGrubEnv, encodeGrubEnv, ENV_WRITE_STEPS, GRUB_ENV_HEADER, initialEnv, setEnvVars } from './env.js';
import { cleanUp, run, tempDir } from '@edgeimage/testkit/fs-trees';
import { requires } from '@edgeimage/testkit/skips';

afterAll(cleanUp);

const hasGrubEditenv = run('sh', ['-c', 'command -v grub-editenv']).status === 0;

describe('encodeGrubEnv / decodeGrubEnv', () => {
  test('encodes exactly 1024 bytes: header, sorted key=value lines, # padding', () => {
    const b = encodeGrubEnv({ edge_status: '', edge_slot: 'a', Zed: '1', edge_try_slot: '', edge_failed_slot: '' });
    expect(b.length).toBe(1024);
    const text = `${GRUB_ENV_HEADER}Zed=1\nedge_failed_slot=\nedge_slot=a\nedge_status=\nedge_try_slot=\n`;
    expect(b.subarray(0, text.length).toString()).toBe(text);
    expect(b.subarray(text.length).every((c) => c === 0x23)).toBe(true);
  });

  test('is deterministic: the same variables in any order give the same bytes', () => {
    const a = encodeGrubEnv({ b: '2', a: '1', c: '3' });
    const b = encodeGrubEnv({ c: '3', a: '1', b: '2' });
    expect(a.equals(b)).toBe(true);
  });

  test('round-trips, values with = and spaces included', () => {
    const vars = { ...initialEnv(), cmdline: 'console=ttyS0 panic=10 root=PARTLABEL=system-a', empty: '' };
    expect(decodeGrubEnv(encodeGrubEnv(vars))).toEqual(vars);
  });

  test('refuses a wrong size, a wrong header and a malformed line', () => {
    const good = encodeGrubEnv({ a: '1' });
    expect(() => decodeGrubEnv(good.subarray(0, 1000))).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_SIZE' }));
    expect(() => decodeGrubEnv(Buffer.concat([good, Buffer.from('#')]))).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_SIZE' }));
    const header = Buffer.from(good);
    header.write('# GRUB Environment Blocx');
    expect(() => decodeGrubEnv(header)).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_HEADER' }));
    const noEq = Buffer.from(good);
    noEq.write('novalue\n', GRUB_ENV_HEADER.length);
    expect(() => decodeGrubEnv(noEq)).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_FORMAT' }));
    // Half a block: the first 512 bytes, zeros after (an interrupted write).
    const half = Buffer.alloc(1024);
    good.copy(half, 0, 0, 512);
    expect(() => decodeGrubEnv(half)).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_FORMAT' }));
  });

  test('refuses values a block cannot hold and variables over 1024 bytes, with clear messages', () => {
    expect(() => encodeGrubEnv({ a: 'x\ny' })).toThrow(/value of a contains a newline/);
    expect(() => encodeGrubEnv({ a: 'x\\y' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    expect(() => encodeGrubEnv({ a: 'x\0y' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    expect(() => encodeGrubEnv({ 'bad key': 'x' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_KEY' }));
    expect(() => encodeGrubEnv({ 'a=b': 'x' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_KEY' }));
    expect(() => encodeGrubEnv({ big: 'x'.repeat(1000) })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_TOO_LARGE', message: expect.stringMatching(/1030 bytes; a GRUB environment block holds 1024/) }));
    // Exactly full is fine.
    const fill = 1024 - GRUB_ENV_HEADER.length - 'k=\n'.length;
    expect(encodeGrubEnv({ k: 'v'.repeat(fill) }).length).toBe(1024);
  });

  requires(hasGrubEditenv ? undefined : 'grub-editenv is not installed').test('is what grub-editenv reads and writes', () => {
    const d = tempDir();
    const ours = join(d, 'ours');
    writeFileSync(ours, encodeGrubEnv({ ...initialEnv(), edge_failed_slot: 'b' }));
    expect(run('grub-editenv', [ours, 'list']).stdout).toBe('edge_failed_slot=b\nedge_slot=a\nedge_status=\nedge_try_slot=\n');
    const theirs = join(d, 'theirs');
    expect(run('grub-editenv', [theirs, 'create']).status).toBe(0);
    expect(run('grub-editenv', [theirs, 'set', 'edge_slot=b', 'edge_status=try']).status).toBe(0);
    expect(decodeGrubEnv(readFileSync(theirs))).toEqual({ edge_slot: 'b', edge_status: 'try' });
    // grub-editenv escapes a backslash; GRUB would read the escape, the device's bootenv reads lines:
    // both sides of the contract refuse such a copy instead of reading it two ways.
    expect(run('grub-editenv', [theirs, 'set', 'odd=back\\slash']).status).toBe(0);
    expect(() => decodeGrubEnv(readFileSync(theirs))).toThrow(/holds a backslash at offset \d+/);
    // GRUB rewrites our block in place, keeping its size.
    expect(run('grub-editenv', [ours, 'set', 'edge_status=trying', 'edge_try_slot=b']).status).toBe(0);
    expect(readFileSync(ours).length).toBe(1024);
    expect(decodeGrubEnv(readFileSync(ours))).toMatchObject({ edge_status: 'trying', edge_try_slot: 'b' });
  });
});

describe('setEnvVars', () => {
  test('validates the state machine variables with clear errors', () => {
    const env = initialEnv();
    expect(setEnvVars(env, { edge_try_slot: 'b', edge_status: 'try' })).toEqual({ ...env, edge_try_slot: 'b', edge_status: 'try' });
    expect(() => setEnvVars(env, { edge_slot: 'c' })).toThrow(/edge_slot="c" is not allowed; edge_slot is one of a, b/);
    expect(() => setEnvVars(env, { edge_slot: '' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    expect(() => setEnvVars(env, { edge_status: 'tried' })).toThrow(/edge_status is one of '' \(empty\), try, trying/);
    expect(() => setEnvVars(env, { edge_try_slot: 'x' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    expect(() => setEnvVars(env, { edge_failed_slot: 'A' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_VALUE' }));
    // the boot count is enumerated (the bootloaders do not do arithmetic): 1, 2, 3 or empty
    expect(setEnvVars(env, { edge_boot_count: '3' })).toEqual({ ...env, edge_boot_count: '3' });
    expect(() => setEnvVars(env, { edge_boot_count: '4' })).toThrow(/edge_boot_count="4" is not allowed; edge_boot_count is one of '' \(empty\), 1, 2, 3/);
    expect(() => setEnvVars(env, { edge_status: 'try' })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_STATE', message: expect.stringMatching(/edge_status=try needs edge_try_slot/) }));
    expect(() => setEnvVars(env, { edge_slot: null })).toThrow(/cannot be removed/);
    expect(setEnvVars({ ...env, other: 'x' }, { other: null })).toEqual(env);
    expect(() => setEnvVars(env, { note: 'y'.repeat(2000) })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_TOO_LARGE' }));
  });
});

describe('chooseEnv', () => {
  const old = encodeGrubEnv(initialEnv());
  const next = encodeGrubEnv({ ...initialEnv(), edge_slot: 'b' });
  const lock = (v: '0' | '1') => encodeGrubEnv({ editing: v });

  test('takes env1 when its lock says editing=0', () => {
    expect(chooseEnv({ env1: next, lock1: lock('0'), env2: old, lock2: lock('0') })).toEqual({ vars: decodeGrubEnv(next), from: 'env1' });
  });

  test('takes env2 when lock1 says editing=1, whatever env1 holds', () => {
    const r = chooseEnv({ env1: next, lock1: lock('1'), env2: old, lock2: lock('0') });
    expect(r.from).toBe('env2');
    expect(r.vars.edge_slot).toBe('a');
    expect(r.reason).toMatch(/lock1 says editing=1/);
  });

  test('takes env2 when env1 is missing or invalid; a missing lock does not say editing', () => {
    expect(chooseEnv({ env1: old.subarray(0, 512), lock1: lock('0'), env2: next }).from).toBe('env2');
    expect(chooseEnv({ lock1: lock('0'), env2: next }).from).toBe('env2');
    expect(chooseEnv({ env1: old, env2: next }).from).toBe('env1');
    expect(chooseEnv({ env1: old, lock1: Buffer.alloc(1024), env2: next }).from).toBe('env1');
  });

  test('fails when neither copy is usable', () => {
    expect(() => chooseEnv({ env1: old, lock1: lock('1'), env2: Buffer.alloc(1024) })).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_UNREADABLE', message: expect.stringMatching(/lock1 says editing=1.*env2 is invalid/) }));
    expect(() => chooseEnv({})).toThrow(expect.objectContaining({ code: 'ERR_BOOTENV_UNREADABLE' }));
  });

  test('every prefix of the write protocol leaves a copy the reader takes: the old one, then the new one', () => {
    for (let done = 0; done <= ENV_WRITE_STEPS.length; done++) {
      const files = { env1: old, lock1: lock('0'), env2: old, lock2: lock('0') };
      for (const step of ENV_WRITE_STEPS.slice(0, done)) files[step.file] = 'editing' in step ? lock(step.editing) : next;
      expect(chooseEnv(files).vars.edge_slot).toBe(done < 3 ? 'a' : 'b');
    }
  });
});
