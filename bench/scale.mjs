// Scale benchmark (issue 15), in headless Chromium, every ratio from the same run: kv-store
// `set` (durable: each returns once its IndexedDB transaction has committed) and `get` calls
// per second through a BrowserNode once its context holds N keys, on each guest engine; the same
// kv-store binary on the browser's engine with a minimal JS host (bench/bare-host.js: the limit,
// no metering, no signing, no storage); and raw IndexedDB put transactions per second.
// Figures, not a test. `make bench-scale` runs it; `node bench/scale.mjs [SIZES] [WINDOW]`, e.g.
// `node bench/scale.mjs 100,1000 20` (default 100,1000,10000 and windows of 20 sets, 5x as many
// gets). `PKG_DIR=...` runs the node from another build of pkg/ (a before/after in one session).
//
// The node runs in a page with nothing else (bench/bare-node.mjs: no console, no relay), as an
// app embedding it would. How: that page, on the browser engine, fills its context up to each size; at each size
// it measures a window, then is reloaded on wasmi (same IndexedDB, so the same context) to
// measure the same window, and reloaded on the browser engine again to go on. A blank page
// runs the bare host through the same sizes and windows.
import { readFile } from 'node:fs/promises';
import { startStack } from '../scripts/serve.mjs';
import { launchChromium, waitForNode } from '../tests/e2e/browser.mjs';
import { routeBare } from './bare-node.mjs';

const sizes = (process.argv[2] || '100,1000,10000').split(',').map(Number);
const window_ = Number(process.argv[3] || 20);
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(window_) || window_ < 1) {
  throw new Error('usage: node bench/scale.mjs [SIZES, e.g. 100,1000] [WINDOW >= 1]');
}
const gets = window_ * 5;
/**
 * In the page: `count` sets of new keys from `from` (timed), then `gets` gets of keys below
 * `from`, through the node (`ctx` given) or the bare host.
 */
async function measureWindow({ ctx, from, count, gets }) {
  const key = (i) => `key-${String(i).padStart(6, '0')}`;
  const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');
  const run = ctx
    ? async (method, args) => (await window.tabnode.execute(ctx, method, args)).output
    : async (method, args) => window.bare.call(method, args);
  let t = performance.now();
  for (let i = from; i < from + count; i++) await run('set', { key: key(i), value: value(i) });
  const setMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < gets; i++) {
    const k = (i * 7919) % from;
    const out = await run('get', { key: key(k) });
    if (out !== value(k)) throw new Error(`get ${key(k)}: ${JSON.stringify(out)}`);
  }
  const getMs = performance.now() - t;
  return { set: (count * 1000) / setMs, get: (gets * 1000) / getMs };
}

/** In the page: sets of keys `from` to `to` (not timed), through the node or the bare host. */
async function fill({ ctx, from, to }) {
  const key = (i) => `key-${String(i).padStart(6, '0')}`;
  const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');
  for (let i = from; i < to; i++) {
    if (ctx) await window.tabnode.execute(ctx, 'set', { key: key(i), value: value(i) });
    else window.bare.call('set', { key: key(i), value: value(i) });
  }
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const browser = await launchChromium();
const rows = [];
try {
  const context = await browser.newContext();
  await routeBare(context, stack.url, process.env.PKG_DIR);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[page] ${err.message}`));
  const open = async (engine, ctx) => {
    await page.goto(`${stack.url}__bench/cold.html?db=scale&relay=&engine=${engine}`);
    await waitForNode(page);
    const running = await page.evaluate(() => window.tabnode.engine);
    if (running !== engine) throw new Error(`asked for ${engine}, the node runs ${running}`);
    // Warm up (untimed): V8 compiles wasm in tiers, and wasmi's interpreter loop (itself wasm)
    // runs at a third of its speed for about its first second.
    if (ctx) {
      await page.evaluate(async (c) => {
        const until = performance.now() + 1500;
        while (performance.now() < until) await window.tabnode.execute(c, 'get', { key: 'key-000000' });
      }, ctx);
    }
  };
  await open('browser');
  const appId = await page.evaluate(async (url) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    return window.tabnode.installApp(bytes);
  }, `${stack.url}apps/kv_store.wasm`);
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);

  // The bare host, in a blank page, given the binary.
  const bare = await context.newPage();
  await bare.setContent('<!doctype html><title>bare host</title>');
  await bare.addScriptTag({ path: new URL('./bare-host.js', import.meta.url).pathname });
  const wasm = await readFile(new URL('../tests/apps/dist/kv_store.wasm', import.meta.url));
  await bare.evaluate(async (b64) => {
    window.bare = await window.bareHost(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }, wasm.toString('base64'));

  let filled = 0;
  for (const size of sizes) {
    const t0 = Date.now();
    // Fill up to `size` keys (not timed): the node on the browser engine, and the bare host.
    await page.evaluate(fill, { ctx, from: filled, to: size });
    await bare.evaluate(fill, { ctx: null, from: filled, to: size });
    console.error(`filled ${size} keys in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // The same window of keys for the node on the browser engine and the bare host; the next
    // window for the node on wasmi (which the bare host then writes untimed).
    const node = {};
    node.browser = await page.evaluate(measureWindow, { ctx, from: size, count: window_, gets });
    const bareFigures = await bare.evaluate(measureWindow, { ctx: null, from: size, count: window_, gets });
    await open('wasmi', ctx);
    node.wasmi = await page.evaluate(measureWindow, { ctx, from: size + window_, count: window_, gets });
    await open('browser', ctx);
    await bare.evaluate(fill, { ctx: null, from: size + window_, to: size + 2 * window_ });
    filled = size + 2 * window_;
    rows.push({ size, node, bare: bareFigures });
    console.error(`${size}: ${JSON.stringify(rows.at(-1))}`);
  }

  // Raw IndexedDB: one readwrite transaction per put of a set-sized record (1.2 KB), awaited.
  const raw = await page.evaluate(async (count) => {
    const req = (r) => new Promise((ok, err) => { r.onsuccess = () => ok(r.result); r.onerror = () => err(r.error); });
    const open = indexedDB.open('scale-raw', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('s');
    const db = await req(open);
    const t = performance.now();
    for (let i = 0; i < count; i++) {
      const tx = db.transaction(['s'], 'readwrite');
      tx.objectStore('s').put(new Uint8Array(1200).fill(i & 255), `k${i}`);
      await new Promise((ok, err) => { tx.oncomplete = ok; tx.onerror = () => err(tx.error); });
    }
    const ms = performance.now() - t;
    db.close();
    return (count * 1000) / ms;
  }, 300);

  const f = (n) => n.toFixed(1).padStart(7);
  const r = (n) => n.toFixed(2).padStart(6);
  console.log(`kv-store at N keys, windows of ${window_} sets and ${gets} gets (calls/second); raw IndexedDB: ${raw.toFixed(0)} put tx/s\n`);
  console.log('| keys | node set/s: browser | wasmi | bare | browser/wasmi | node/bare | node get/s: browser | wasmi | bare | browser/wasmi | node/bare |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const { size, node, bare } of rows) {
    console.log(`| ${size} | ${f(node.browser.set)} | ${f(node.wasmi.set)} | ${f(bare.set)} | ${r(node.browser.set / node.wasmi.set)} | ${r(node.browser.set / bare.set)} `
      + `| ${f(node.browser.get)} | ${f(node.wasmi.get)} | ${f(bare.get)} | ${r(node.browser.get / node.wasmi.get)} | ${r(node.browser.get / bare.get)} |`);
  }
  console.log(`\nnode set on the browser engine / raw IndexedDB put: ${rows.map((x) => `${x.size}: ${(x.node.browser.set / raw).toFixed(3)}`).join(', ')}`);
} finally {
  await browser.close();
  await stack.stop();
}
