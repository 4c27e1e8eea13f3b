// What the meter's accounting costs a loop and a call on the browser's engine, without a host:
// bench/meter-calls.wat's `hash(2e7)` (one loop) and `fib(32)` (3.5 million calls), in one
// blank page, each module given in turns for 25 rounds; prints the median ms and the ratio to
// the first module's. Figures, not a test:
//   R=target/release/examples/rewrite  # cargo build --release -p tabnode-meter --example rewrite
//   $R bench/meter-calls.wat /tmp/calls.wasm --as-is
//   $R bench/meter-calls.wat /tmp/calls.plain.wasm --plain
//   $R bench/meter-calls.wat /tmp/calls.lean.wasm
//   node bench/meter-calls.mjs /tmp/calls.wasm /tmp/calls.plain.wasm /tmp/calls.lean.wasm
import { readFileSync } from 'node:fs';
import { launchChromium } from '../tests/e2e/browser.mjs';

const paths = process.argv.slice(2);
if (paths.length < 1) throw new Error('usage: node bench/meter-calls.mjs A.wasm [B.wasm ...]');
const browser = await launchChromium();
try {
  const page = await (await browser.newContext()).newPage();
  await page.setContent('<!doctype html><title>meter calls</title>');
  const medians = await page.evaluate(async (modules) => {
    const exports = [];
    for (const b64 of modules) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      exports.push((await WebAssembly.instantiate(bytes, {})).instance.exports);
    }
    const ms = (f) => {
      const t = performance.now();
      f();
      return performance.now() - t;
    };
    const times = exports.map(() => ({ hash: [], fib: [] }));
    for (let round = 0; round < 26; round++) {
      for (const [i, e] of exports.entries()) {
        // A rewritten module meters itself: give it fuel enough.
        if (e.__tabnode_fuel) e.__tabnode_fuel.value = 1n << 60n;
        const hash = ms(() => e.hash(20_000_000));
        const fib = ms(() => e.fib(32));
        // The first round warms up (V8 tiers up).
        if (round > 0) times[i].hash.push(hash), times[i].fib.push(fib);
      }
    }
    const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
    return times.map((t) => [median(t.hash), median(t.fib)]);
  }, paths.map((p) => readFileSync(p).toString('base64')));
  console.log('\n| module | hash(2e7) ms | / first | fib(32) ms | / first |\n|---|---|---|---|---|');
  for (const [i, path] of paths.entries()) {
    const [hash, fib] = medians[i];
    console.log(`| ${path} | ${hash.toFixed(1)} | ${(hash / medians[0][0]).toFixed(2)} | ${fib.toFixed(1)} | ${(fib / medians[0][1]).toFixed(2)} |`);
  }
} finally {
  await browser.close();
}
