// node --import ./register.mjs run-as.mjs MODULE_URL FUNCTION ARGS_JSON
// Calls MODULE[FUNCTION](...ARGS); keys named `timestamp` are revived as Dates. Prints a thrown
// error as JSON on stderr and exits 1.
const [mod, fn, json] = process.argv.slice(2);
try {
  const m = await import(mod);
  const args = JSON.parse(json, (k, v) => (k === 'timestamp' ? new Date(v) : v));
  const result = await m[fn](...args);
  process.stdout.write(JSON.stringify(result ?? null));
} catch (err) {
  process.stderr.write(JSON.stringify({ code: err.code, message: err.message }));
  process.exit(1);
}
