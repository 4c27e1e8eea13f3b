// Cold-start benchmark (issue 4), in headless Chromium with a persistent profile (IndexedDB on
// disk), every figure from the same run:
//   1. the console: install kv-store, create a context, `set` 20 keys through `window.tabnode`;
//   2. from the page, ROWS extra rows (default 100,000) written straight into the node's `state`
//      object store under the context's 32-byte prefix: random 32-byte row keys (calimero-storage
//      keys rows by sha256) and 100-byte values, 5,000 per transaction. They stand in for a large
//      app state: building a real 100,000-entry kv-store map through calls is O(n²) in
//      calimero-storage 0.10, whose map index lists every child and is rewritten on every insert;
//   3. cold starts on that profile: navigation start → `window.tabnode` set, then the first
//      `execute(ctx, 'get', {key: 'k7'})` (its value checked), `memory(ctx)` and the JS heap;
//   4. baselines in the same page: reading the context's whole state with one `getAll` over its
//      key range (what the eager start did), the first `checkpoint(ctx)` (which reads every row
//      once to build the Merkle tree) and `memory(ctx)` after it; then, both warm, the `getAll`
//      again and the store's own scan shape (getAllKeys + getAll in one transaction).
// Figures, not a test: nothing passes or fails on a threshold, but a wrong `get` value, a missing
// row count or a node error stops the run. `make bench-store` runs it after bench/store.mjs;
// `node bench/cold-start.mjs [ROWS]` alone.
//
// The cold starts, in order: (a) a reload into a bare page of the same origin that starts the
// node and does nothing else (what an app embedding the node sees); (b) the same page reloaded
// again; (c) the console itself reloaded — its start-up refresh calls `checkpoint()` on the
// selected context, so it reads the whole state right after the node is ready; (d) the browser
// closed and started again on the same profile, then the bare page. The bare page is served by
// this harness (Playwright routes under /__bench/ on the console's origin, so it opens the same
// IndexedDB database) and loads `pkg/` — the same wasm as `www/dist` (checked below).
import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../scripts/serve.mjs';
import { CHROMIUM_ARGS, installKvStore, waitForNode } from '../tests/e2e/browser.mjs';
import { routeBare } from './bare-node.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rows = Number(process.argv[2] || 100_000);
if (!Number.isInteger(rows) || rows < 0) throw new Error(`usage: node bench/cold-start.mjs [rows >= 0], not ${process.argv[2]}`);
const KEYS = 20;
const BATCH = 5_000;
const VALUE_BYTES = 100;
const PROBE = 'k7';
const valueOf = (k) => `value of ${k}`;


/**
 * Runs in every document before its scripts: records when `window.tabnode` is set (ms since
 * navigation start, performance.now()'s origin) and counts IndexedDB read requests per object
 * store (wasm-bindgen's glue calls through these prototypes).
 */
function initScript() {
  let node;
  Object.defineProperty(window, 'tabnode', {
    configurable: true,
    get: () => node,
    set: (value) => {
      node = value;
      window.__tabnodeReadyAt = performance.now();
    },
  });
  const reads = (window.__idbReads = {});
  for (const name of ['get', 'getAll', 'getAllKeys', 'openCursor', 'count']) {
    const original = IDBObjectStore.prototype[name];
    IDBObjectStore.prototype[name] = function () {
      const k = `${this.name}.${name}`;
      reads[k] = (reads[k] || 0) + 1;
      return original.apply(this, arguments);
    };
  }
}

async function openProfile(profile, url) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Precise heap figures (not bucketed) and `gc()` to collect before reading them. The bare
    // page is a response Playwright fulfils, with no address of its own, so Chromium's local
    // network access checks would block its WebSocket to the relay on 127.0.0.1 (the console,
    // served over HTTP from 127.0.0.1, is let through); off, every page connects alike.
    args: [...CHROMIUM_ARGS, '--enable-precise-memory-info', '--js-flags=--expose-gc', '--disable-features=LocalNetworkAccessChecks'],
  });
  await context.addInitScript(initScript);
  await routeBare(context, url);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => console.log(`[pageerror] ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`[console ${new URL(page.url()).pathname}] ${msg.text()}`);
  });
  return { context, page };
}

// --- Base58 (Bitcoin alphabet), to check the prefix read from the store against the context id. ---
const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(text) {
  let n = 0n;
  for (const c of text) {
    const d = ALPHABET.indexOf(c);
    if (d < 0) throw new Error(`not base58: ${text}`);
    n = n * 58n + BigInt(d);
  }
  const out = [];
  for (; n > 0n; n >>= 8n) out.unshift(Number(n & 0xffn));
  for (const c of text) {
    if (c !== '1') break;
    out.unshift(0);
  }
  return out;
}

/** In the page: the first 32 bytes of the `state` store's keys (one context: they are all its). */
const readPrefix = (page, db) => page.evaluate(async (db) => {
  const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const conn = await req(indexedDB.open(db));
  try {
    const keys = await req(conn.transaction('state').objectStore('state').getAllKeys());
    const prefixes = new Set(keys.map((k) => Array.from(new Uint8Array(k.buffer ?? k).slice(0, 32)).join(',')));
    return { prefixes: [...prefixes].map((p) => p.split(',').map(Number)), keys: keys.length };
  } finally {
    conn.close();
  }
}, db);

/** In the page: `count` rows of random 32-byte keys and VALUE_BYTES random values under `prefix`. */
const injectRows = (page, db, prefix, count) => page.evaluate(async ({ db, prefix, count, batch, valueBytes }) => {
  const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const conn = await req(indexedDB.open(db));
  const t0 = performance.now();
  try {
    for (let done = 0; done < count; done += batch) {
      const tx = conn.transaction('state', 'readwrite');
      const store = tx.objectStore('state');
      for (let i = done; i < Math.min(count, done + batch); i++) {
        const key = new Uint8Array(64);
        key.set(prefix);
        crypto.getRandomValues(key.subarray(32));
        store.put(crypto.getRandomValues(new Uint8Array(valueBytes)), key);
      }
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onabort = tx.onerror = () => reject(tx.error || new Error('transaction aborted'));
      });
    }
    return performance.now() - t0;
  } finally {
    conn.close();
  }
}, { db, prefix, count, batch: BATCH, valueBytes: VALUE_BYTES });

/**
 * After a cold start: when the node was ready, the first `get` (issued at once), memory and heap;
 * with `baselines`, then one `getAll` over the context's state, the first checkpoint, memory
 * after it, and the `getAll` again (now that the checkpoint has read every row).
 */
const measure = (page, { db, ctx, prefix, baselines }) => page.evaluate(async ({ db, ctx, prefix, probe, expected, baselines }) => {
  const heap = async () => {
    const seen = [];
    for (let i = 0; i < 4; i++) {
      window.gc?.();
      seen.push(performance.memory?.usedJSHeapSize ?? null);
      await new Promise((r) => setTimeout(r, 250));
    }
    return seen.at(-1);
  };
  const reads = () => ({ ...window.__idbReads });
  const readsSince = (before) => Object.fromEntries(Object.entries(reads())
    .map(([k, n]) => [k, n - (before[k] || 0)]).filter(([, n]) => n > 0));
  const out = {
    readyAt: window.__tabnodeReadyAt,
    wasmReadyAt: window.__coldStart?.wasmReady ?? null,
    nav: (({ responseEnd, domContentLoadedEventEnd, loadEventEnd }) => ({ responseEnd, domContentLoadedEventEnd, loadEventEnd }))(performance.getEntriesByType('navigation')[0]),
  };
  const before = reads();
  out.getIssuedAt = performance.now();
  const result = await window.tabnode.execute(ctx, 'get', { key: probe });
  out.getMs = performance.now() - out.getIssuedAt;
  out.getReads = readsSince(before);
  out.getOutput = result.output;
  if (result.output !== expected) throw new Error(`get ${probe} returned ${JSON.stringify(result.output)}, not ${JSON.stringify(expected)}`);
  out.afterGet = { memory: await window.tabnode.memory(ctx), heap: await heap() };
  if (!baselines) return out;

  // (a) The whole state in one getAll over the context's key range, as the eager start read it.
  const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const end = Uint8Array.from(prefix);
  end[31]++; // the context id's last byte is not 0xff in any run that gets here (checked in Node)
  const range = IDBKeyRange.bound(Uint8Array.from(prefix), end, false, true);
  const conn = await req(indexedDB.open(db));
  const getAll = async () => {
    const t = performance.now();
    const values = await req(conn.transaction('state').objectStore('state').getAll(range));
    return { ms: performance.now() - t, rows: values.length, bytes: values.reduce((s, v) => s + v.byteLength, 0) };
  };
  try {
    out.getAll = await getAll();
    // (b) The first checkpoint: reads every row (getAllKeys + getAll) and builds the Merkle tree.
    const t = performance.now();
    const cp = await window.tabnode.checkpoint(ctx);
    out.checkpointMs = performance.now() - t;
    out.merkleRoot = cp.merkleRoot;
    out.afterCheckpoint = { memory: await window.tabnode.memory(ctx), heap: await heap() };
    out.getAllAgain = await getAll();
    // The checkpoint's own read, for reference: getAllKeys + getAll in one transaction.
    const t2 = performance.now();
    const store = conn.transaction('state').objectStore('state');
    const [keys] = await Promise.all([req(store.getAllKeys(range)), req(store.getAll(range))]);
    out.scan = { ms: performance.now() - t2, rows: keys.length };
  } finally {
    conn.close();
  }
  return out;
}, { db, ctx, prefix, probe: PROBE, expected: valueOf(PROBE), baselines });

/** Navigates to `url`, or reloads when the page is there already (a cold start of the node in the new document), and measures. */
async function coldStart(page, url, args) {
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await waitForNode(page);
  return measure(page, args);
}

const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const mb = (bytes) => (bytes === null || bytes === undefined ? '–' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

function report(runs, setup) {
  const cols = Object.keys(runs);
  const row = (what, f) => console.log(`| ${what} | ${cols.map((c) => f(runs[c]) ?? '–').join(' | ')} |`);
  console.log(`\n## cold start: ${KEYS} kv-store keys + ${rows} rows of ${VALUE_BYTES} B injected (${fmt(setup.injectMs)} ms to write, ${BATCH} per transaction)\n`);
  console.log(`| what | ${cols.join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---').join('|')}|`);
  row('navigation start → `window.tabnode` set, ms', (r) => `${fmt(r.readyAt)}${r.wasmReadyAt ? ` (wasm ready at ${fmt(r.wasmReadyAt)})` : ''}`);
  row('first `get k7`, ms (issued at ms)', (r) => `${fmt(r.getMs, 1)} (${fmt(r.getIssuedAt)})`);
  row('IndexedDB reads while it ran', (r) => Object.entries(r.getReads).map(([k, n]) => `${k} ${n}`).join(', ') || 'none');
  row('`memory()` after it: rows, wasm', (r) => `${r.afterGet.memory.rows}, ${mb(r.afterGet.memory.wasmBytes)}`);
  row('JS heap after it (after gc)', (r) => mb(r.afterGet.heap));
  row('(a) one `getAll` of the context\'s state, ms (rows)', (r) => r.getAll && `${fmt(r.getAll.ms)} (${r.getAll.rows}, ${mb(r.getAll.bytes)} of values)`);
  row('(b) first `checkpoint()`, ms', (r) => r.checkpointMs !== undefined ? fmt(r.checkpointMs) : undefined);
  row('`memory()` after it: rows, wasm', (r) => r.afterCheckpoint && `${r.afterCheckpoint.memory.rows}, ${mb(r.afterCheckpoint.memory.wasmBytes)}`);
  row('JS heap after it (after gc)', (r) => r.afterCheckpoint && mb(r.afterCheckpoint.heap));
  row('(a) again after the checkpoint, ms', (r) => r.getAllAgain && fmt(r.getAllAgain.ms));
  row('getAllKeys + getAll in one transaction (the store\'s scan, which the checkpoint runs), ms', (r) => r.scan && fmt(r.scan.ms));
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
let profile, session;
try {
  // The bare page loads pkg/; the console www/dist. Say so if they are not the same build.
  const distWasm = (await readdir(path.join(ROOT, 'www/dist'))).find((f) => f.endsWith('.wasm'));
  const digest = async (file) => createHash('sha256').update(await readFile(file)).digest('hex').slice(0, 12);
  const [pkgHash, distHash] = [await digest(path.join(ROOT, 'pkg/tabnode_web_bg.wasm')), await digest(path.join(ROOT, 'www/dist', distWasm))];

  profile = await mkdtemp(path.join(os.tmpdir(), 'tabnode-cold-'));
  session = await openProfile(profile, stack.url);

  // 1. The console: app, context, KEYS keys.
  let { page } = session;
  await page.goto(stack.url);
  await waitForNode(page);
  const version = await page.evaluate(() => /Chrom(?:e|ium)\/([\d.]+)/.exec(navigator.userAgent)?.[1]);
  console.log(`# cold-start benchmark: ${rows} rows, Chromium ${version}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; wasm pkg ${pkgHash}, www/dist ${distHash}${pkgHash === distHash ? ' (the same)' : ' (DIFFERENT builds)'}`);
  const appId = await installKvStore(page);
  const ctx = await page.evaluate((a) => window.tabnode.createContext(a, {}), appId);
  await page.evaluate(async ({ ctx, keys }) => {
    for (const k of keys) await window.tabnode.execute(ctx, 'set', { key: k, value: `value of ${k}` });
  }, { ctx, keys: Array.from({ length: KEYS }, (_, i) => `k${i}`) });
  const databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  const db = databases.includes('tabnode') ? 'tabnode' : databases.find((d) => d !== 'tabnode-vault');

  // 2. The context's prefix, from the store (checked against the base58 id), and the extra rows.
  const found = await readPrefix(page, db);
  if (found.prefixes.length !== 1) throw new Error(`expected one context prefix in "state", found ${found.prefixes.length}`);
  const prefix = found.prefixes[0];
  if (base58(ctx).join(',') !== prefix.join(',')) throw new Error(`the state prefix is not the context id ${ctx}`);
  if (prefix[31] === 0xff) throw new Error('the context id ends in 0xff; run again (the range end is computed simply)');
  const before = await page.evaluate((c) => window.tabnode.memory(c), ctx);
  const injectMs = await injectRows(page, db, prefix, rows);
  const stored = (await readPrefix(page, db)).keys;
  console.log(`# context ${ctx} in "${db}": ${found.keys} state rows after ${KEYS} sets (in memory: ${before.rows}), ${stored} after writing ${rows}`);
  if (stored !== found.keys + rows) throw new Error(`expected ${found.keys + rows} state rows, found ${stored}`);

  // 3, 4. Cold starts.
  const args = { db, ctx, prefix };
  const bare = `${stack.url}__bench/cold.html`;
  const runs = {};
  runs['bare page, 1st load'] = await coldStart(page, bare, { ...args, baselines: true });
  runs['bare page, reloaded'] = await coldStart(page, bare, { ...args, baselines: true });
  runs['console reloaded'] = await coldStart(page, stack.url, { ...args, baselines: false });
  // The browser closed and started again on the same profile.
  await session.context.close();
  session = await openProfile(profile, stack.url);
  page = session.page;
  runs['browser restarted, bare page'] = await coldStart(page, bare, { ...args, baselines: true });
  report(runs, { injectMs });
  const roots = new Set(Object.values(runs).map((r) => r.merkleRoot).filter(Boolean));
  if (runs['console reloaded']) console.log('\n(console: its start-up refresh calls checkpoint(), which reads the whole state; a get issued while that runs waits for it, and the reads listed are the checkpoint\'s)');
  console.log(`\n(the ${rows === 0 ? '' : 'injected rows are in the Merkle tree: '}checkpoints agree on one Merkle root: ${roots.size === 1 ? 'yes' : `no, ${roots.size}`})`);
} finally {
  await session?.context.close();
  await stack.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
}
