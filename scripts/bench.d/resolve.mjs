// Resolver: a cold resolve of a model whose bundles total >= 200 MB from an HTTP store on
// loopback (busybox httpd), next to curl fetching the same files one after another (ratio) and to
// `openssl dgst -sha3-384` over the same bytes (ratio: verifying should cost no more than the
// hash itself); then a warm-cache resolve.
import { execFile, execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey, accountKeyHeaders, signAssertion, snapIdFor } from '../../packages/assertions/dist/index.js';
import { BundleCache, Store, bundlePath, pack, resolveModel } from '../../packages/store/dist/index.js';

const MB = 1e6;
const SIZES = [70, 60, 50, 30]; // MB of incompressible payload per bundle: 210 MB in all
const work = mkdtempSync(join(tmpdir(), 'edgeimage-bench-resolve-'));
const packedDir = join(homedir(), '.cache', 'edgeimage', 'bench', 'bundles');
mkdirSync(packedDir, { recursive: true });
const secs = (t) => (Number(process.hrtime.bigint() - t) / 1e9);

function sign(h, k, body) {
  return signAssertion(h, body, k);
}

try {
  const since = new Date('2026-01-01T00:00:00Z');
  const [root, brand, storeKey] = await Promise.all([PrivateKey.generate(2048), PrivateKey.generate(2048), PrivateKey.generate(2048)]);
  const account = (id) => sign({ type: 'account', 'authority-id': 'root', 'account-id': id, 'display-name': id, validation: 'verified', timestamp: '2026-01-02T00:00:00Z' }, root);
  const akey = (k, id, name) => {
    const { headers, body } = accountKeyHeaders(k.publicKey, { accountId: id, authorityId: 'root', name, since });
    return sign(headers, root, body);
  };
  const trusted = [akey(root, 'root', 'root'), account('root'), akey(storeKey, 'bench-store', 'store'), account('bench-store')];

  // Bundles: packed once and kept in the cache folder, since packing 200 MB takes a while.
  const specs = SIZES.map((mb, i) => ({ name: ['bench-gadget', 'bench-kernel', 'bench-base', 'bench-app'][i], type: ['gadget', 'kernel', 'base', 'app'][i], mb }));
  const files = [];
  for (const s of specs) {
    const file = join(packedDir, `${s.name}_${s.mb}.snap`);
    if (!existsSync(file)) {
      const tree = join(work, 'tree', s.name);
      mkdirSync(join(tree, 'meta'), { recursive: true });
      writeFileSync(join(tree, 'meta', 'snap.yaml'), `name: ${s.name}\nversion: '1'\ntype: ${s.type}\narchitectures: [amd64]\n`);
      const chunks = [];
      for (let i = 0; i * 64 < s.mb * MB; i++) chunks.push(createHash('sha512').update(`${s.name}${i}`).digest());
      writeFileSync(join(tree, 'payload'), Buffer.concat(chunks));
      const tmp = join(packedDir, `.${s.name}.tmp`);
      mkdirSync(tmp, { recursive: true });
      const r = await pack(tree, { output: `${tmp}/` });
      execFileSync('mv', [r.path, file]);
      rmSync(tmp, { recursive: true, force: true });
    }
    files.push(file);
  }

  const storeDir = join(work, 'store');
  const store = await Store.init(storeDir, { authorityId: 'bench-store', key: storeKey, keyName: 'store' });
  await store.publishAssertion(account('bench-store'));
  for (const f of files) await store.publish(f, { channel: 'stable', key: storeKey });
  const vs = sign({ type: 'validation-set', 'authority-id': 'bench', 'account-id': 'bench', series: '16', name: 'bench', sequence: '1',
    snaps: specs.map((s) => ({ name: s.name, id: snapIdFor('bench-store', s.name), presence: 'required', revision: '1' })), timestamp: '2026-03-01T00:00:00Z' }, brand);
  const model = sign({ type: 'model', 'authority-id': 'bench', series: '16', 'brand-id': 'bench', model: 'bench', architecture: 'amd64', base: 'bench-base', grade: 'signed',
    snaps: specs.map((s) => ({ name: s.name, id: snapIdFor('bench-store', s.name), type: s.type })), 'validation-sets': [{ 'account-id': 'bench', name: 'bench', mode: 'enforce' }],
    timestamp: '2026-03-01T00:00:00Z' }, brand);
  const input = [account('bench'), akey(brand, 'bench', 'models'), vs, model];

  // A static server in its own process, as a store is served in deployment (nginx, a CDN): busybox
  // httpd sends files with sendfile(2), as those do. The store is not on the building machine
  // there, so the server's own CPU is kept small: a Node static server took 0.19 s of the 2 cores
  // that the resolve itself needs.
  const freePort = await new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
  const serverProc = spawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${freePort}`, '-h', storeDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${freePort}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(`${url}/`, { method: 'HEAD' });
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const server = { close: () => serverProc.kill() };
  const total = files.reduce((n, f) => n + statSync(f).size, 0);

  const cacheDir = join(work, 'cache');
  let t = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const { readdirSync: lsTasks, readFileSync: readTask } = await import('node:fs');
  const taskTimes = () => new Map(lsTasks('/proc/self/task').map((t) => { try { const f = readTask(`/proc/self/task/${t}/stat`, 'utf8'); const rest = f.slice(f.lastIndexOf(')') + 2).split(' '); return [`${t} ${f.slice(f.indexOf('(') + 1, f.lastIndexOf(')'))}`, (Number(rest[11]) + Number(rest[12])) / 100]; } catch { return [t, 0]; } }));
  const tasks0 = taskTimes();
  const { performance } = await import('node:perf_hooks');
  const elu0 = performance.eventLoopUtilization();
  const cold = await resolveModel(input, { store: await Store.open(url), trusted, at: new Date("2026-06-01T00:00:00Z"), cache: new BundleCache(cacheDir), concurrency: Number(process.env.RESOLVE_CONCURRENCY) || undefined, onEvent: process.env.RESOLVE_TRACE ? (e) => { if (e.kind !== "download-progress") console.error(secs(t).toFixed(3), e.kind, e.name ?? "") } : undefined });
  const coldS = secs(t);
  const coldCpu = process.cpuUsage(cpu0);
  if (process.env.RESOLVE_TRACE) for (const [k, v] of taskTimes()) if (v - (tasks0.get(k) ?? 0) > 0.02) console.error(`  thread ${k}: ${(v - (tasks0.get(k) ?? 0)).toFixed(2)} s cpu`);
  if (process.env.RESOLVE_TRACE) console.error(`cold resolve cpu: user ${(coldCpu.user / 1e6).toFixed(2)} s, sys ${(coldCpu.system / 1e6).toFixed(2)} s, main thread busy ${(performance.eventLoopUtilization(elu0).active / 1e3).toFixed(2)} s`);
  if (cold.downloaded !== files.length) throw new Error('cold resolve did not download every bundle');

  t = process.hrtime.bigint();
  const warm = await resolveModel(input, { store: await Store.open(url), trusted, at: new Date('2026-06-01T00:00:00Z'), cache: new BundleCache(cacheDir) });
  const warmS = secs(t);
  if (warm.downloaded !== 0) throw new Error('warm resolve downloaded');

  t = process.hrtime.bigint();
  // Asynchronously: the server runs in this process and must keep answering.
  for (const s of specs) await promisify(execFile)('curl', ['-sf', '-o', '/dev/null', `${url}/${bundlePath(s.name, 1)}`]);
  const curlS = secs(t);

  t = process.hrtime.bigint();
  execFileSync('openssl', ['dgst', '-sha3-384', ...files], { stdio: 'ignore' });
  const sslS = secs(t);
  server.close();

  const rate = (s) => `${(total / MB / s).toFixed(0).padStart(5)} MB/s`;
  console.log(`bundles: ${files.length}, ${(total / MB).toFixed(0)} MB, HTTP store on loopback`);
  console.log(`cold resolve (download + sha3-384 + verify)  ${coldS.toFixed(2).padStart(6)} s ${rate(coldS)}`);
  console.log(`curl, same files one after another           ${curlS.toFixed(2).padStart(6)} s ${rate(curlS)}   ratio resolve/curl ${(coldS / curlS).toFixed(2)}`);
  console.log(`openssl dgst -sha3-384, same bytes           ${sslS.toFixed(2).padStart(6)} s ${rate(sslS)}   ratio resolve/openssl ${(coldS / sslS).toFixed(2)}`);
  console.log(`warm resolve (all cached)                    ${warmS.toFixed(2).padStart(6)} s`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
