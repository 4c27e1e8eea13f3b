// What the meter's rewrite costs the guest on the browser's engine, and whether a change to the
// meter lowers it: kv-store `set`s on the bare host (bench/bare-host.js: a JS host, a Map as
// storage, nothing of the node) in one blank page, once per module given, each module in its
// own host filled to N keys; then windows of sets taken in turns (module 1, 2, ... each round),
// so that load on the machine falls on all alike. Prints each module's median sets/s over the
// rounds and its ratio to the first module's.
// Figures, not a test: `node bench/meter-ab.mjs N ROUNDS WINDOW A.wasm B.wasm ...`, e.g. the
// guest as built and as the meter rewrites it:
//   cargo run --release -p tabnode-meter --example rewrite -- tests/apps/dist/kv_store.wasm /tmp/kv.metered.wasm
//   node bench/meter-ab.mjs 1000 15 30 tests/apps/dist/kv_store.wasm /tmp/kv.metered.wasm
import { readFile } from 'node:fs/promises';
import { launchChromium } from '../tests/e2e/browser.mjs';

const [n, rounds, window_, ...paths] = process.argv.slice(2);
const size = Number(n);
const count = Number(window_);
if (!(size > 0) || !(Number(rounds) > 0) || !(count > 0) || paths.length < 1) {
  throw new Error('usage: node bench/meter-ab.mjs N ROUNDS WINDOW A.wasm [B.wasm ...]');
}

const browser = await launchChromium();
try {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (err) => console.log(`[page] ${err.message}`));
  await page.setContent('<!doctype html><title>meter a/b</title>');
  await page.addScriptTag({ path: new URL('./bare-host.js', import.meta.url).pathname });
  for (const [i, path] of paths.entries()) {
    const wasm = await readFile(path);
    await page.evaluate(async ({ i, b64, size }) => {
      window.hosts ??= [];
      const host = await window.bareHost(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
      for (let k = 0; k < size; k++) host.call('set', { key: `key-${String(k).padStart(6, '0')}`, value: `v${k}` });
      host.next = size;
      window.hosts[i] = host;
    }, { i, b64: wasm.toString('base64'), size });
  }
  // Warm up every module (untimed): V8 tiers wasm up over its first runs.
  const windowOf = (i) => page.evaluate(({ i, count }) => {
    const host = window.hosts[i];
    const t = performance.now();
    for (let k = 0; k < count; k++, host.next++) {
      host.call('set', { key: `key-${String(host.next).padStart(6, '0')}`, value: `v${host.next}` });
    }
    return (count * 1000) / (performance.now() - t);
  }, { i, count });
  for (const i of paths.keys()) await windowOf(i);
  const rates = paths.map(() => []);
  for (let r = 0; r < Number(rounds); r++) for (const i of paths.keys()) rates[i].push(await windowOf(i));
  const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  console.log(`\nkv-store set on the bare host from ${size} keys, ${rounds} rounds of ${count} sets each (medians)\n`);
  console.log('| module | set/s | / first |\n|---|---|---|');
  for (const [i, path] of paths.entries()) {
    console.log(`| ${path} | ${median(rates[i]).toFixed(1)} | ${(median(rates[i]) / median(rates[0])).toFixed(3)} |`);
  }
} finally {
  await browser.close();
}
