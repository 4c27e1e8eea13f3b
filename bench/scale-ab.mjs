// Two builds of the node against each other and the bare host, call by call (issue 15): on a
// machine shared with other work the load swings within seconds, so windows measured one after
// another (bench/scale.mjs) can differ 2-5x for no reason of their own. Here page A (the node from
// PKG_A), page B (from PKG_B) and the bare host (bench/bare-host.js) each fill a kv-store context
// to N keys, the node pages are reloaded (as bench/scale.mjs does: the context then reads its rows
// as calls touch them) and warmed up, and then their durable `set`s of the same new keys take
// turns, one call each, timed in the page (after one set each outside the window: the first set
// after a restart lists the context's keys). Prints per size the median ms of a set (and the mean
// of the middle 80%) and the ratios of the sums (calls/s against the bare host). Figures, not a test:
// `PKG_A=/tmp/pkg-before PKG_B=pkg node bench/scale-ab.mjs [SIZES] [WINDOW]`, e.g. `100,1000 60`.
// `QUERY_A` and `QUERY_B` add to each node page's query (e.g. `QUERY_A=durability=strict`);
// `PERSISTENT=1` runs every page in one persistent profile (IndexedDB on disk, as in a user's
// browser) instead of fresh browser contexts (IndexedDB in memory). `NO_RELOAD=B` keeps page B
// running after filling, instead of restarting it on its store.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startStack } from '../scripts/serve.mjs';
import { CHROMIUM_ARGS, launchChromium, waitForNode } from '../tests/e2e/browser.mjs';
import { routeBare } from './bare-node.mjs';

const sizes = (process.argv[2] || '100,1000').split(',').map(Number);
const window_ = Number(process.argv[3] || 60);
const builds = { A: process.env.PKG_A, B: process.env.PKG_B };
const queries = { A: process.env.QUERY_A || '', B: process.env.QUERY_B || '' };
const persistent = process.env.PERSISTENT === '1';
if (!builds.A || !builds.B) throw new Error('usage: PKG_A=<dir> PKG_B=<dir> node bench/scale-ab.mjs [SIZES] [WINDOW]');

const key = (i) => `key-${String(i).padStart(6, '0')}`;
const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');

/** In a page: sets of keys `from` to `to`, through the node (`ctx`) or the bare host; the ms of each. */
async function sets({ ctx, from, to }) {
  const key = (i) => `key-${String(i).padStart(6, '0')}`;
  const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');
  const ms = [];
  for (let i = from; i < to; i++) {
    const t = performance.now();
    if (ctx) await window.tabnode.execute(ctx, 'set', { key: key(i), value: value(i) });
    else window.bare.call('set', { key: key(i), value: value(i) });
    ms.push(performance.now() - t);
  }
  return ms;
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const profile = persistent ? await mkdtemp(path.join(os.tmpdir(), 'tabnode-scale-ab-')) : null;
const browser = persistent
  ? await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      // The pages are tabs of one window here: none may be throttled as a background tab.
      args: [...CHROMIUM_ARGS, '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
    })
  : await launchChromium();
const newContext = () => (persistent ? browser : browser.newContext());
try {
  const nodes = {};
  for (const [name, dir] of Object.entries(builds)) {
    // A page each, routed to its own pkg/ and with its own IndexedDB database (in a context of
    // its own unless PERSISTENT).
    const page = await (await newContext()).newPage();
    await routeBare(page, stack.url, dir);
    page.on('pageerror', (err) => console.log(`[${name}] ${err.message}`));
    const open = async () => {
      await page.goto(`${stack.url}__bench/cold.html?db=scale-ab-${name}&relay=&engine=browser&${queries[name]}`);
      await waitForNode(page);
    };
    await open();
    const appId = await page.evaluate(async (url) => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      return window.tabnode.installApp(bytes);
    }, `${stack.url}apps/kv_store.wasm`);
    const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
    nodes[name] = { page, ctx, open };
  }
  const bare = await (await newContext()).newPage();
  await bare.setContent('<!doctype html><title>bare host</title>');
  await bare.addScriptTag({ path: new URL('./bare-host.js', import.meta.url).pathname });
  const wasm = await readFile(new URL('../tests/apps/dist/kv_store.wasm', import.meta.url));
  await bare.evaluate(async (b64) => {
    window.bare = await window.bareHost(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }, wasm.toString('base64'));

  let filled = 0;
  for (const size of sizes) {
    for (const [name, { page, ctx, open }] of Object.entries(nodes)) {
      await page.evaluate(sets, { ctx, from: filled, to: size });
      // Started again on the same store (unless NO_RELOAD names it: a node that made its
      // context knows every row), and warmed up (V8 compiles wasm in tiers).
      if (process.env.NO_RELOAD !== name) await open();
      // The first set after a restart lists the context's keys (tens of ms): one set of a key
      // of its own before the window, so the window times sets as they run from then on.
      await page.evaluate(async ({ c, size }) => {
        const until = performance.now() + 1500;
        while (performance.now() < until) await window.tabnode.execute(c, 'get', { key: 'key-000000' });
        await window.tabnode.execute(c, 'set', { key: `warm-up-${size}`, value: 'x' });
      }, { c: ctx, size });
    }
    await bare.evaluate(sets, { ctx: null, from: filled, to: size });
    const ms = { A: [], B: [], bare: [] };
    for (let i = size; i < size + window_; i++) {
      for (const [name, { page, ctx }] of Object.entries(nodes)) ms[name].push(...(await page.evaluate(sets, { ctx, from: i, to: i + 1 })));
      ms.bare.push(...(await bare.evaluate(sets, { ctx: null, from: i, to: i + 1 })));
    }
    filled = size + window_;
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    // The page's clock is coarsened to 0.1 ms, so medians move in steps of 0.1: the mean of the
    // middle 80% (the fastest and slowest tenth dropped) is as robust and finer.
    const trimmed = (a) => {
      const s = [...a].sort((x, y) => x - y);
      const cut = Math.floor(s.length / 10);
      const mid = s.slice(cut, s.length - cut);
      return mid.reduce((x, y) => x + y, 0) / mid.length;
    };
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    const perSecond = (a) => (a.length * 1000) / sum(a);
    console.log(`${size} keys, ${window_} sets each, taking turns, IndexedDB ${persistent ? 'on disk' : 'in memory'}, A ?${queries.A} B ?${queries.B} (load ${(await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ').slice(0, 3).join(' ')}):`);
    for (const name of ['A', 'B', 'bare']) {
      console.log(`  ${name.padEnd(4)} median ${median(ms[name]).toFixed(2)} ms a set, middle 80% mean ${trimmed(ms[name]).toFixed(2)} (first ${ms[name][0].toFixed(1)}, slowest ${Math.max(...ms[name]).toFixed(1)}), ${perSecond(ms[name]).toFixed(1)} sets/s${name === 'bare' ? '' : `, / bare ${(perSecond(ms[name]) / perSecond(ms.bare)).toFixed(2)}`}`);
    }
    const byMedian = (name) => (median(ms.bare) / median(ms[name])).toFixed(2);
    const byTrimmed = (name, of = 'bare') => (trimmed(ms[of]) / trimmed(ms[name])).toFixed(3);
    console.log(`  B / A ${(perSecond(ms.B) / perSecond(ms.A)).toFixed(2)}; by medians: A / bare ${byMedian('A')}, B / bare ${byMedian('B')}; `
      + `by middle 80% means: B / A ${byTrimmed('B', 'A')}, A / bare ${byTrimmed('A')}, B / bare ${byTrimmed('B')}`);
  }
} finally {
  await browser.close();
  await stack.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
}
