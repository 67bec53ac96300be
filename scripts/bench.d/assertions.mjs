// Assertions: RSA-4096 verification through the full decode + chain check, next to bare
// crypto.verify over the same bytes (the floor); signing; key creation.
import { createPrivateKey, createPublicKey, sign as rawSign, verify as rawVerify } from 'node:crypto';
import { ACCOUNT_KEY_NAME, PrivateKey, TrustDatabase, accountKeyHeaders, decodeStream, signAssertion } from '../../packages/assertions/dist/index.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);

function rate(fn) {
  for (let i = 0; i < 20; i++) fn(); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < DURATION_MS) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (n / elapsed) * 1000;
}
const fmt = (x) => x.toFixed(0).padStart(8);

let t = Date.now();
const root = await PrivateKey.generate(4096);
const keygenMs = Date.now() - t;
const brand = await PrivateKey.generate(4096);

const since = new Date('2026-01-01T00:00:00Z');
const sign = (h, k, b) => signAssertion(h, b, k);
const rootAk = accountKeyHeaders(root.publicKey, { accountId: 'root', authorityId: 'root', name: 'root', since });
const anchors = [
  sign(rootAk.headers, root, rootAk.body),
  sign({ type: 'account', 'authority-id': 'root', 'account-id': 'root', 'display-name': 'Root', validation: 'verified', timestamp: '2026-01-02T00:00:00Z' }, root),
];
const brandAccount = sign({ type: 'account', 'authority-id': 'root', 'account-id': 'acme', 'display-name': 'Acme', validation: 'verified', timestamp: '2026-01-02T00:00:00Z' }, root);
const brandAk = accountKeyHeaders(brand.publicKey, { accountId: 'acme', authorityId: 'root', name: 'brand', since });
const brandKeyA = sign(brandAk.headers, root, brandAk.body);
const modelHeaders = {
  type: 'model', 'authority-id': 'acme', series: '16', 'brand-id': 'acme', model: 'kiosk', architecture: 'amd64', base: 'core22', grade: 'dangerous',
  snaps: [{ name: 'pc', type: 'gadget' }, { name: 'pc-kernel', type: 'kernel' }, { name: 'core22', type: 'base' }],
  timestamp: '2026-03-01T00:00:00Z',
};
const model = sign(modelHeaders, brand);
const modelBytes = model.encode();
const at = new Date('2026-06-01T00:00:00Z');

// Full path: decode the file bytes, assemble, find the key, check validity, RSA verify, cross checks.
const db = new TrustDatabase({ trusted: anchors, at });
db.addAll([brandAccount, brandKeyA]);
const full = rate(() => {
  const [a] = decodeStream(modelBytes, { file: 'model.assert' });
  db.check(a);
});

// Floor: the RSA-4096 PKCS#1 v1.5 SHA-512 verification alone, over the same content bytes.
const brandPriv = createPrivateKey(brand.toPem());
const brandPub = createPublicKey(brand.publicKey.toPem());
const rawSig = rawSign('sha512', model.content, brandPriv);
const floor = rate(() => rawVerify('sha512', model.content, brandPub, rawSig));

const signs = rate(() => brand.sign(model.content));

// Decoding a stream of many small assertions (a store's assertion dump), 1 MB and 10 MB: the
// time per MB stays the same when decoding is linear in the input.
function decodeMs(mb) {
  const one = brandAccount.encode().toString('utf8').replace(/\n+$/, '');
  const n = Math.ceil((mb * 1024 * 1024) / (one.length + 2));
  const stream = Buffer.from(`${Array(n).fill(one).join('\n\n')}\n`);
  decodeStream(stream); // warm up
  const start = process.hrtime.bigint();
  const out = decodeStream(stream);
  return { n: out.length, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}
// The account-key name check on a hostile name (100 kB of digits and a bad last character): linear
// now; snapd's form of the expression backtracked exponentially (28 characters: ~2 s).
const hostile = `${'1'.repeat(100_000)}!`;
let t0 = process.hrtime.bigint();
ACCOUNT_KEY_NAME.test(hostile);
const nameMs = Number(process.hrtime.bigint() - t0) / 1e6;
const dec1 = decodeMs(1);
const dec10 = decodeMs(10);

console.log(`verify (decode + chain check), RSA-4096  ${fmt(full)} /s`);
console.log(`bare crypto.verify, same bytes (floor)   ${fmt(floor)} /s`);
console.log(`ratio full/floor                         ${(floor / full).toFixed(2).padStart(8)} x slower than the floor`);
console.log(`sign (RSA-4096, snapd signature packet)  ${fmt(signs)} /s`);
console.log(`key creation, RSA-4096                   ${fmt(keygenMs)} ms`);
console.log(`account-key name check, hostile 100 kB   ${nameMs.toFixed(2).padStart(8)} ms`);
console.log(`decode, 1 MB stream (${dec1.n} assertions)     ${fmt(dec1.ms)} ms`);
console.log(`decode, 10 MB stream (${dec10.n} assertions)   ${fmt(dec10.ms)} ms  (${(dec10.ms / dec1.ms).toFixed(1)} x the 1 MB time: 10 when linear)`);
