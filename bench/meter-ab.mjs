// What the meter's rewrite costs the guest on the browser's engine, and whether a change to the
// meter lowers it: kv-store `set`s on the bare host (bench/bare-host.js: a JS host, a Map as
// storage, nothing of the node) in one blank page, once per module given, each module in its
// own host filled to N keys; then windows of sets taken in turns (module 1, 2, ... each round),
// so that load on the machine falls on all alike. Prints each module's median sets/s over the
// rounds and its ratio to the first module's: by the clock, and (on Linux) by the CPU time the
// page's main thread spent in the window, which leaves out the time the machine gave to others.
// Figures, not a test: `node bench/meter-ab.mjs N ROUNDS WINDOW A.wasm B.wasm ...`, e.g. the
// guest as built and as the meter rewrites it:
//   cargo run --release -p tabnode-meter --example rewrite -- tests/apps/dist/kv_store.wasm /tmp/kv.metered.wasm
//   node bench/meter-ab.mjs 1000 15 30 tests/apps/dist/kv_store.wasm /tmp/kv.metered.wasm
// V8 compiles a module's functions again, optimized, once they run hot, and what it makes of
// them (what it inlines) varies from load to load: the same module given twice differed by up
// to 7%. `JS_FLAGS=--no-liftoff` has it compile every function optimized up front, the same
// way each time (the same module then agrees within about 2%); give the module under test
// twice to see the spread of a run.
import { readFile, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as kit from '../crates/web/npm/testing/index.js';
import { CHROMIUM_ARGS } from '../tests/e2e/browser.mjs';

const [n, rounds, window_, ...paths] = process.argv.slice(2);
const size = Number(n);
const count = Number(window_);
if (!(size > 0) || !(Number(rounds) > 0) || !(count > 0) || paths.length < 1) {
  throw new Error('usage: [JS_FLAGS=...] node bench/meter-ab.mjs N ROUNDS WINDOW A.wasm [B.wasm ...]');
}

/** The CPU time (ns) of each renderer's main thread this process started, by /proc (Linux). */
async function rendererMainThreads() {
  const parent = (pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return 0;
    }
  };
  const ours = (pid) => {
    for (let p = pid, depth = 0; p > 1 && depth < 20; p = parent(p), depth++) if (p === process.pid) return true;
    return false;
  };
  const found = [];
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    // A process's main thread has the process's id.
    if (cmdline.includes('--type=renderer') && ours(Number(pid))) found.push(`/proc/${pid}/task/${pid}/schedstat`);
  }
  return () => found.map((f) => Number(readFileSync(f, 'utf8').split(' ')[0]));
}

const jsFlags = process.env.JS_FLAGS ? [`--js-flags=${process.env.JS_FLAGS}`] : [];
const browser = await kit.launchChromium({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [...CHROMIUM_ARGS, ...jsFlags],
});
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
  const cpu = await rendererMainThreads();
  // Returns [sets/s by the clock, sets/s by the busiest renderer main thread's CPU time].
  const windowOf = async (i) => {
    const before = cpu();
    const ms = await page.evaluate(({ i, count }) => {
      const host = window.hosts[i];
      const t = performance.now();
      for (let k = 0; k < count; k++, host.next++) {
        host.call('set', { key: `key-${String(host.next).padStart(6, '0')}`, value: `v${host.next}` });
      }
      return performance.now() - t;
    }, { i, count });
    const ns = Math.max(0, ...cpu().map((v, j) => v - before[j]));
    return [(count * 1000) / ms, ns > 0 ? (count * 1e9) / ns : NaN];
  };
  // Warm up every module (untimed): V8 tiers wasm up over its first runs.
  for (const i of paths.keys()) await windowOf(i);
  const rates = paths.map(() => [[], []]);
  for (let r = 0; r < Number(rounds); r++) {
    for (const i of paths.keys()) (await windowOf(i)).forEach((rate, m) => rates[i][m].push(rate));
  }
  const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const cell = (i, m) => `${median(rates[i][m]).toFixed(1)} | ${(median(rates[i][m]) / median(rates[0][m])).toFixed(3)}`;
  console.log(`\nkv-store set on the bare host from ${size} keys, ${rounds} rounds of ${count} sets each (medians)${jsFlags.length ? `, ${jsFlags[0]}` : ''}\n`);
  console.log('| module | set/s | / first | set/s of CPU time | / first |\n|---|---|---|---|---|');
  for (const [i, path] of paths.entries()) console.log(`| ${path} | ${cell(i, 0)} | ${cell(i, 1)} |`);
} finally {
  await browser.close();
}
