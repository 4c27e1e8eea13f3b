// Where a durable kv-store `set` spends its time in the page (issue 15): a BrowserNode on the
// browser engine, alone in a page (bench/bare-node.mjs), fills its context to N keys, then takes
// a V8 CPU profile (Chrome DevTools Protocol, `Profiler`) over WINDOW sets, and prints the
// main thread's self time per set by part (the guest, the node's Rust by crate, JS glue,
// IndexedDB, WebCrypto, idle = waiting on IndexedDB's commit or a promise) and the heaviest
// functions. The page's IndexedDB transactions are timed too (created → complete).
// Figures, not a test: `node bench/set-profile.mjs [SIZES] [WINDOW]`, e.g.
// `node bench/set-profile.mjs 100,1000 40`. Names of the node's functions need a wasm with
// its name section: `PKG_DIR=/tmp/pkg-names` serves another build of pkg/ (wasm-bindgen of
// the cargo output without wasm-opt's stripping).
import { writeFile } from 'node:fs/promises';
import { startStack } from '../scripts/serve.mjs';
import { launchChromium, waitForNode } from '../tests/e2e/browser.mjs';
import { routeBare } from './bare-node.mjs';

const sizes = (process.argv[2] || '100,1000').split(',').map(Number);
const window_ = Number(process.argv[3] || 40);
const top = Number(process.env.TOP || 25);

/** Times every readwrite transaction the page opens: when made, when its last put was issued, when complete. */
const TX_TIMING = `(() => {
  const log = (window.__tx = []);
  const entries = new WeakMap();
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (...args) {
    const tx = transaction.apply(this, args);
    if (args[1] === 'readwrite') {
      const entry = { made: performance.now(), puts: 0, bytes: 0, putMs: 0, rows: [] };
      entries.set(tx, entry);
      log.push(entry);
      tx.addEventListener('complete', () => { entry.complete = performance.now(); });
    }
    return tx;
  };
  window.__counts = { instances: 0, gets: 0, getMs: 0 };
  const get = IDBObjectStore.prototype.get;
  IDBObjectStore.prototype.get = function (...args) {
    window.__counts.gets += 1;
    const t = performance.now();
    const r = get.apply(this, args);
    r.addEventListener('success', () => { window.__counts.getMs += performance.now() - t; });
    return r;
  };
  // Guest instances, and (TIMELINE=1) when each guest run starts and its last export returns.
  window.__guest = [];
  const Instance = WebAssembly.Instance;
  WebAssembly.Instance = function (...args) {
    window.__counts.instances += 1;
    const made = performance.now();
    const instance = new Instance(...args);
    if (!window.__timeline) return instance;
    const run = { made, instantiated: performance.now(), started: 0, returned: 0 };
    window.__guest.push(run);
    const exports = {};
    for (const [name, value] of Object.entries(instance.exports)) {
      exports[name] = typeof value !== 'function' ? value : (...a) => {
        run.started ||= performance.now();
        try { return value(...a); } finally { run.returned = performance.now(); }
      };
    }
    return { exports };
  };
  WebAssembly.Instance.prototype = Instance.prototype;
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (value, key) {
    const t = performance.now();
    const r = put.call(this, value, key);
    const entry = entries.get(this.transaction);
    if (entry) {
      entry.putMs += performance.now() - t;
      entry.puts += 1;
      entry.bytes += value?.byteLength ?? 0;
      entry.lastPut = performance.now();
      entry.rows.push([this.name, value?.byteLength ?? 0, +(performance.now() - t).toFixed(3)]);
    }
    return r;
  };
})();`;

/** The part of the page a profile node's call frame belongs to. */
function part(frame) {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle (waiting: IndexedDB commit, promises)';
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'V8 / browser internals';
  if (name === '(root)') return 'root';
  if (/^wasm-function\[|^\$?[0-9]+$/.test(name) && !url.includes('tabnode_web')) return 'guest (wasm, browser engine)';
  if (url.includes('tabnode_web_bg.wasm') || url.startsWith('wasm://')) {
    if (/^(tabnode_|wasmi|wasmparser)/.test(name)) return `node wasm: ${name.split('::')[0]}`;
    const crate = name.match(/^<?&?(?:mut )?([a-z_0-9]+)::/);
    return `node wasm: ${crate ? crate[1] : name.slice(0, 30)}`;
  }
  if (url.includes('tabnode_web.js')) return 'wasm-bindgen glue (JS)';
  if (url.includes('snippets')) return 'inline JS of the node (snippets)';
  if (name === 'put' || name === 'transaction' || name === 'objectStore') return 'IndexedDB API';
  if (name === 'encrypt' || name === 'decrypt' || name === 'digest' || name === 'sign') return 'WebCrypto';
  if (url === '') return `native: ${name || '(anonymous)'}`;
  return `page JS: ${name || '(anonymous)'}`;
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const browser = await launchChromium();
try {
  const context = await browser.newContext();
  await routeBare(context, stack.url, process.env.PKG_DIR);
  await context.addInitScript(TX_TIMING);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[page] ${err.message}`));
  await page.goto(`${stack.url}__bench/cold.html?db=profile&relay=&engine=browser`);
  await waitForNode(page);
  const appId = await page.evaluate(async (url) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    return window.tabnode.installApp(bytes);
  }, `${stack.url}apps/kv_store.wasm`);
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });

  const sets = (args) => page.evaluate(async ({ ctx, from, to, timeline }) => {
    const key = (i) => `key-${String(i).padStart(6, '0')}`;
    const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');
    window.__tx.length = 0;
    window.__counts.instances = 0;
    // The node makes a call's instance ahead of it (after the call before), so runs are told
    // apart by when they start, not when made.
    window.__guest = window.__guest.filter((g) => !g.started);
    window.__timeline = timeline;
    window.__counts.gets = 0;
    window.__counts.getMs = 0;
    const calls = [];
    const t = performance.now();
    for (let i = from; i < to; i++) {
      const start = performance.now();
      await window.tabnode.execute(ctx, 'set', { key: key(i), value: value(i) });
      calls.push({ start, end: performance.now() });
    }
    return { ms: performance.now() - t, tx: window.__tx.slice(), counts: { ...window.__counts }, calls, guest: window.__guest.filter((g) => g.started >= t).sort((a, b) => a.started - b.started) };
  }, { ctx, timeline: !!process.env.TIMELINE, ...args });

  let filled = 0;
  for (const size of sizes) {
    await sets({ from: filled, to: size });
    if (process.env.RELOAD) {
      // As bench/scale.mjs does between windows: the node starts again on the same store.
      await page.reload();
      await waitForNode(page);
    }
    await sets({ from: size, to: size + 10 }); // warm-up: V8's tiers
    // NO_PROFILE=1: no CPU profile (sampling slows the page's native calls), timings only.
    const profiling = !process.env.NO_PROFILE;
    if (profiling) await cdp.send('Profiler.start');
    const { ms, tx, counts, calls, guest } = await sets({ from: size + 10, to: size + 10 + window_ });
    const { profile } = profiling ? await cdp.send('Profiler.stop') : { profile: { nodes: [], samples: [], timeDeltas: [] } };
    // PROFILE_OUT=dir: the raw profile of each size, for DevTools or a script (`<size>.cpuprofile`).
    if (profiling && process.env.PROFILE_OUT) await writeFile(`${process.env.PROFILE_OUT}/${size}.cpuprofile`, JSON.stringify(profile));
    filled = size + 10 + window_;

    // Self time per node: samples × their intervals.
    const self = new Map();
    const dt = profile.timeDeltas;
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i];
      self.set(id, (self.get(id) || 0) + (dt[i + 1] ?? 0) / 1000);
    }
    const byPart = new Map();
    const byFunction = new Map();
    for (const node of profile.nodes) {
      const t = self.get(node.id) || 0;
      if (!t) continue;
      const p = part(node.callFrame);
      byPart.set(p, (byPart.get(p) || 0) + t);
      const f = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.split('/').pop()}`;
      byFunction.set(f, (byFunction.get(f) || 0) + t);
    }
    // Inclusive time: each sample counts once for every function on its stack.
    const parent = new Map();
    for (const node of profile.nodes) for (const child of node.children || []) parent.set(child, node.id);
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const inclusive = new Map();
    for (let i = 0; i < profile.samples.length; i++) {
      const seen = new Set();
      for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id).callFrame;
        const name = frame.functionName.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{16}\]/g, '');
        if (!frame.url.includes('tabnode_web') || seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) || 0) + (dt[i + 1] ?? 0) / 1000);
      }
    }
    const perSet = (t) => (t / window_).toFixed(3).padStart(7);
    const total = [...byPart.values()].reduce((a, b) => a + b, 0);
    console.log(`\n## ${size} keys: ${window_} sets in ${ms.toFixed(0)} ms, ${(ms / window_).toFixed(2)} ms a set (${((window_ * 1000) / ms).toFixed(1)}/s); profiled ${total.toFixed(0)} ms`);
    console.log('\n| part | ms a set |\n|---|---|');
    for (const [p, t] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`| ${p} | ${perSet(t)} |`);
    console.log(`\n| function (self) | ms a set |\n|---|---|`);
    for (const [f, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${f.slice(0, 140)} | ${perSet(t)} |`);
    if (process.env.INCLUSIVE) {
      console.log(`\n| node function (inclusive) | ms a set |\n|---|---|`);
      for (const [f, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.INCLUSIVE))) console.log(`| ${f.slice(0, 150)} | ${perSet(t)} |`);
    }
    const done = tx.filter((e) => e.complete);
    const avg = (f) => (done.reduce((a, e) => a + f(e), 0) / done.length).toFixed(3);
    console.log(`\nIndexedDB: ${tx.length} readwrite transactions (${(tx.length / window_).toFixed(2)} a set), ${avg((e) => e.puts)} puts and ${avg((e) => e.bytes)} bytes each; `
      + `put() ${avg((e) => e.putMs)} ms, last put → complete ${avg((e) => e.complete - e.lastPut)} ms, made → complete ${avg((e) => e.complete - e.made)} ms`);
    // Each set's one transaction, against the call: before it (the guest, signing, building
    // the batch), while it commits, and after it until the call's promise resolved.
    if (tx.length === calls.length) {
      const mean = (f) => (calls.reduce((a, c, i) => a + f(c, tx[i]), 0) / calls.length).toFixed(3);
      console.log(`a set: call → transaction made ${mean((c, x) => x.made - c.start)} ms, made → last put issued ${mean((c, x) => x.lastPut - x.made)} ms, `
        + `last put → complete ${mean((c, x) => x.complete - x.lastPut)} ms, complete → call resolved ${mean((c, x) => c.end - x.complete)} ms`);
    }
    // TIMELINE=1: each set from its call to its answer, in steps (the guest's instance wrapped
    // to time its exports: a few µs more per call).
    if (guest.length === calls.length && tx.length === calls.length) {
      const steps = [
        ['call → guest run starts', (c, x, g) => g.started - c.start],
        ['instantiation (before the call when made ahead)', (c, x, g) => g.instantiated - g.made],
        ['the guest run (its exports)', (c, x, g) => g.returned - g.started],
        ['guest returned → transaction made', (c, x, g) => x.made - g.returned],
        ['transaction made → last put issued', (c, x) => x.lastPut - x.made],
        ['last put → complete', (c, x) => x.complete - x.lastPut],
        ['complete → call resolved', (c, x) => c.end - x.complete],
      ];
      const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
      console.log('\n| step of a set (TIMELINE) | mean ms | median ms |\n|---|---|---|');
      for (const [name, f] of steps) {
        const v = calls.map((c, i) => f(c, tx[i], guest[i]));
        console.log(`| ${name} | ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3)} | ${median(v).toFixed(3)} |`);
      }
    }
    const ahead = guest.filter((g, i) => calls[i] && g.instantiated <= calls[i].start).length;
    console.log(`guest instances ${(counts.instances / window_).toFixed(2)} a set (${ahead} of ${guest.length} runs on one made before its call), IndexedDB reads ${(counts.gets / window_).toFixed(2)} a set (issued → success ${(counts.getMs / Math.max(1, counts.gets)).toFixed(3)} ms each)`);
    if (process.env.ROWS) for (const e of tx.slice(-3)) console.log(JSON.stringify(e.rows));
  }
} finally {
  await browser.close();
  await stack.stop();
}
