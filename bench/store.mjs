// Persistence benchmark (issue 4), in headless Chromium, every ratio from the same run:
//   1. durable kv-store `set` calls per second through the node (`window.tabnode.execute`);
//   2. raw IndexedDB transactions per second that write what one `set` writes (same object
//      stores, record count, key and value sizes, transaction mode and durability option), in a
//      scratch database of the same page, and the ratio node / raw;
//   3. bytes the node stores per kv entry, per object store, against the entry's key + value.
// Figures, not a test: nothing here passes or fails on a threshold. `make bench-store` runs it;
// `node bench/store.mjs [N]` sets the number of calls (default 300).
//
// It runs twice: in a fresh browser context, as the end-to-end tests do (Chromium keeps an
// off-the-record context's IndexedDB in memory), and in a persistent profile in a temporary
// directory, where IndexedDB is on disk; only the second is durable across a browser restart.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startStack } from '../scripts/serve.mjs';
import { CHROMIUM_ARGS, installKvStore, launchChromium, waitForNode } from '../tests/e2e/browser.mjs';

const calls = Number(process.argv[2] || 300);
if (!Number.isInteger(calls) || calls < 1) throw new Error(`usage: node bench/store.mjs [calls >= 1], not ${process.argv[2]}`);
/** Instrumented calls after the timed run: their writes give the raw benchmark its shape. */
const PROBES = 10;

// kv entries: a 10-byte key and a 32-byte value, as strings (what the app's JSON args carry).
const key = (i) => `key-${String(i).padStart(6, '0')}`;
const value = (i) => `value-${String(i).padStart(6, '0')}-`.padEnd(32, 'x');
const range = (from, count) => Array.from({ length: count }, (_, i) => from + i);

/** Installs `window.__bench` in the page: sizing, snapshots and a write tracer for IndexedDB. */
function pageLib() {
  const req = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const done = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = tx.onerror = () => reject(tx.error || new Error('transaction aborted'));
  });
  /** Bytes of a stored key or value as IndexedDB hands it back. */
  const size = (v) => {
    if (v instanceof ArrayBuffer) return v.byteLength;
    if (ArrayBuffer.isView(v)) return v.byteLength;
    if (typeof v === 'string') return new TextEncoder().encode(v).length;
    if (typeof v === 'number') return 8;
    if (Array.isArray(v)) return v.reduce((n, x) => n + size(x), 0);
    return new TextEncoder().encode(JSON.stringify(v) ?? '').length;
  };
  const bytesOf = (v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : ArrayBuffer.isView(v)
    ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new TextEncoder().encode(JSON.stringify(v)));
  const hex = (v) => Array.from(bytesOf(v), (b) => b.toString(16).padStart(2, '0')).join('');
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  /** Every record of every object store of `name`, keyed by hex key: {keyBytes, bytes, fresh}. */
  async function snapshot(name) {
    const db = await req(indexedDB.open(name));
    try {
      const out = {};
      for (const store of Array.from(db.objectStoreNames)) {
        const tx = db.transaction([store], 'readonly');
        const os = tx.objectStore(store);
        const [keys, values] = await Promise.all([req(os.getAllKeys()), req(os.getAll())]);
        out[store] = new Map(keys.map((k, i) => [hex(k), { keySize: size(k), valueSize: size(values[i]), bytes: bytesOf(values[i]) }]));
      }
      return out;
    } finally {
      db.close();
    }
  }

  /** Per store: records, key bytes, value bytes. */
  const totals = (snap) => Object.fromEntries(Object.entries(snap).map(([store, m]) => {
    let keys = 0, values = 0;
    for (const r of m.values()) { keys += r.keySize; values += r.valueSize; }
    return [store, { records: m.size, keys, values }];
  }));

  /** What changed between two snapshots: added, changed (value differs) and removed records. */
  function diff(a, b) {
    const out = [];
    for (const store of Object.keys(b)) {
      for (const [k, r] of b[store]) {
        const old = a[store]?.get(k);
        if (!old) out.push({ store, key: k, change: 'added', keySize: r.keySize, valueSize: r.valueSize });
        else if (!same(old.bytes, r.bytes)) out.push({ store, key: k, change: 'changed', keySize: r.keySize, valueSize: r.valueSize });
      }
      for (const [k, r] of a[store] ?? []) {
        if (!b[store].has(k)) out.push({ store, key: k, change: 'removed', keySize: r.keySize, valueSize: r.valueSize });
      }
    }
    return out;
  }

  /**
   * Traces IndexedDB from this page while `fn` runs: every transaction (stores, mode, durability,
   * time from creation to complete) and every put/delete/read in it. Wraps the prototypes, which
   * wasm-bindgen's glue calls through, and restores them afterwards.
   */
  async function trace(fn) {
    const txs = [];
    const byTx = new WeakMap();
    const saved = [];
    const wrap = (proto, name, wrapper) => {
      const original = proto[name];
      saved.push(() => { proto[name] = original; });
      proto[name] = wrapper(original);
    };
    wrap(IDBDatabase.prototype, 'transaction', (original) => function (...args) {
      const tx = original.apply(this, args);
      const rec = { db: this.name, stores: Array.from(tx.objectStoreNames), mode: tx.mode, durability: tx.durability,
        start: performance.now(), end: null, puts: [], deletes: [], reads: 0 };
      tx.addEventListener('complete', () => { rec.end = performance.now(); });
      tx.addEventListener('abort', () => { rec.end = performance.now(); rec.aborted = true; });
      byTx.set(tx, rec);
      txs.push(rec);
      return tx;
    });
    // A task posted at each put runs once the page's thread is free again: after the last put,
    // that tells time the call still spends computing from time spent waiting for IndexedDB.
    const channel = new MessageChannel();
    const freeAt = [];
    channel.port1.onmessage = ({ data }) => { freeAt[data] = performance.now(); };
    wrap(IDBObjectStore.prototype, 'put', (original) => function (v, k) {
      const rec = byTx.get(this.transaction);
      if (rec) {
        rec.puts.push({ store: this.name, key: k === undefined ? null : hex(k), keySize: size(k), valueSize: size(v), at: performance.now() });
        rec.freeSlot ??= freeAt.push(null) - 1;
        channel.port2.postMessage(rec.freeSlot);
      }
      return original.apply(this, arguments);
    });
    wrap(IDBObjectStore.prototype, 'delete', (original) => function (k) {
      byTx.get(this.transaction)?.deletes.push({ store: this.name, keySize: size(k) });
      return original.apply(this, arguments);
    });
    for (const name of ['get', 'getAll', 'getAllKeys', 'openCursor', 'count']) {
      wrap(IDBObjectStore.prototype, name, (original) => function () {
        const rec = byTx.get(this.transaction);
        if (rec) rec.reads++;
        return original.apply(this, arguments);
      });
    }
    try {
      const t0 = performance.now();
      const result = await fn();
      txs.forEach((t) => { t.freeAt = t.freeSlot === undefined ? null : freeAt[t.freeSlot]; });
      return { result, ms: performance.now() - t0, t0, txs };
    } finally {
      saved.reverse().forEach((restore) => restore());
      channel.port1.close();
    }
  }

  /**
   * `n` readwrite transactions on a scratch database, each putting `shape`'s records (object
   * store, key and value sizes; keys new in every transaction where the node's were new, the same
   * key where the node overwrote one), created like the node's: no durability option, unless
   * `durability` is given.
   */
  async function rawWrites(shape, n, durability) {
    const name = 'tabnode-bench-scratch';
    await req(indexedDB.deleteDatabase(name));
    const stores = [...new Set(shape.map((r) => r.store))];
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => stores.forEach((s) => open.result.createObjectStore(s));
    const db = await req(open);
    const random = (len) => crypto.getRandomValues(new Uint8Array(len));
    // Keys and values are made before the clock starts. Values are random (the node's are
    // mostly ciphertext, signatures and hashes); fresh keys share a prefix and end in a
    // big-endian counter, like the node's sequence-numbered delta and audit keys.
    const prefix = shape.map((r) => random(r.keySize));
    const keyAt = (j, i) => {
      const k = new Uint8Array(prefix[j]);
      if (shape[j].fresh) new DataView(k.buffer).setUint32(Math.max(0, k.length - 4), i);
      return k;
    };
    const plan = Array.from({ length: n }, (_, i) => shape.map((r, j) => [keyAt(j, i), random(r.valueSize)]));
    const options = durability ? [{ durability }] : [];
    let seen;
    const t0 = performance.now();
    for (const records of plan) {
      const tx = db.transaction(stores, 'readwrite', ...options);
      seen = tx.durability;
      records.forEach(([k, v], j) => tx.objectStore(shape[j].store).put(v, k));
      await done(tx);
    }
    const ms = performance.now() - t0;
    db.close();
    await req(indexedDB.deleteDatabase(name));
    return { ms, perSec: (n * 1000) / ms, durability: seen, stores };
  }

  const usage = async () => (navigator.storage?.estimate ? (await navigator.storage.estimate()).usage : null);

  window.__bench = { snapshot, totals, diff, trace, rawWrites, usage };
}

/** The whole measurement in one page whose node is up; returns the figures. */
async function measure(page, n) {
  await page.evaluate(pageLib);
  const appId = await installKvStore(page);
  const ctx = await page.evaluate((a) => window.tabnode.createContext(a, {}), appId);
  const databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  // The node's store: the console opens `tabnode` unless told otherwise; the vault holds one key.
  const dbName = databases.includes('tabnode') ? 'tabnode' : databases.find((d) => d !== 'tabnode-vault');

  const before = await page.evaluate(async (db) => {
    const snap = await window.__bench.snapshot(db);
    return { totals: window.__bench.totals(snap), usage: await window.__bench.usage() };
  }, dbName);

  // 1. N sequential durable calls; each resolves once its transaction has committed.
  const node = await page.evaluate(async ({ ctx, n, keys, values }) => {
    const each = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await window.tabnode.execute(ctx, 'set', { key: keys[i], value: values[i] });
      each.push(performance.now() - t);
    }
    return { ms: performance.now() - t0, each };
  }, { ctx, n, keys: range(0, n).map(key), values: range(0, n).map(value) });

  // 3. What the N entries occupy (before any probe adds more).
  const after = await page.evaluate(async (db) => {
    const snap = await window.__bench.snapshot(db);
    return { totals: window.__bench.totals(snap), usage: await window.__bench.usage() };
  }, dbName);

  // What one `set` writes: traced calls, and the database compared before and after the first.
  const probe = await page.evaluate(async ({ db, ctx, probes, keys, values }) => {
    const calls = [];
    let diff;
    for (let i = 0; i < probes; i++) {
      const a = i === 0 ? await window.__bench.snapshot(db) : null;
      const traced = await window.__bench.trace(() => window.tabnode.execute(ctx, 'set', { key: keys[i], value: values[i] }));
      if (a) diff = window.__bench.diff(a, await window.__bench.snapshot(db));
      const mine = traced.txs.filter((t) => t.db === db);
      calls.push({
        ms: traced.ms,
        writeTxs: mine.filter((t) => t.mode === 'readwrite').map(({ stores, durability, start, end, freeAt, puts, deletes, aborted }) =>
          ({ stores, durability, start: start - traced.t0, end: end - traced.t0, freeAt: freeAt - traced.t0, puts: puts.map((p) => ({ ...p, at: p.at - traced.t0 })), deletes, aborted })),
        readTxs: mine.filter((t) => t.mode !== 'readwrite').length,
        reads: mine.reduce((s, t) => s + t.reads, 0),
      });
    }
    return { calls, diff };
  }, { db: dbName, ctx, probes: PROBES, keys: range(n, PROBES).map(key), values: range(n, PROBES).map(value) });

  // 2. The raw rate for writes shaped like the first probe call's (the database diff tells new keys from overwritten ones).
  const first = probe.calls[0];
  if (first.writeTxs.length !== 1) throw new Error(`expected one readwrite transaction per set, saw ${first.writeTxs.length}`);
  if (first.writeTxs[0].deletes.length) throw new Error('a set deleted records; the raw shape does not model deletes');
  const added = new Set(probe.diff.filter((d) => d.change === 'added').map((d) => `${d.store}/${d.key}`));
  const shape = first.writeTxs[0].puts.map((p) =>
    ({ store: p.store, keySize: p.keySize, valueSize: p.valueSize, fresh: added.has(`${p.store}/${p.key}`) }));
  const raw = await page.evaluate(({ shape, n }) => window.__bench.rawWrites(shape, n), { shape, n });
  // For reference: the same with every transaction flushed to disk before it completes.
  const strict = await page.evaluate(({ shape, n }) => window.__bench.rawWrites(shape, n, 'strict'), { shape, n });
  return { dbName, databases, node, before, after, probe, shape, raw, strict };
}

/** Runs `measure` in a page of `context` opened on the console; closes the context. */
async function inContext(context, url, n) {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[pageerror] ${err.message}`));
  await page.goto(url);
  await waitForNode(page);
  return measure(page, n);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));

function report(label, f, n) {
  const entry = key(0).length + value(0).length;
  const nodeRate = (n * 1000) / f.node.ms;
  const tenth = Math.max(1, Math.floor(n / 10));
  const rate = (xs) => (xs.length * 1000) / xs.reduce((a, b) => a + b, 0);
  console.log(`\n## ${label}: ${n} kv-store set calls, one after another (database "${f.dbName}" of ${f.databases.join(', ')})\n`);
  console.log('| what | figure |');
  console.log('|---|---|');
  console.log(`| node: durable set/s | ${fmt(nodeRate, 1)} (first ${tenth}: ${fmt(rate(f.node.each.slice(0, tenth)), 1)}, last ${tenth}: ${fmt(rate(f.node.each.slice(-tenth)), 1)}) |`);
  console.log(`| raw IndexedDB: set-equivalent tx/s | ${fmt(f.raw.perSec, 1)} |`);
  console.log(`| node / raw | ${fmt(nodeRate / f.raw.perSec, 3)} |`);
  console.log(`| raw IndexedDB, durability "strict" (reference) | ${fmt(f.strict.perSec, 1)} tx/s |`);

  // Where a call's time goes, from the traced calls (medians): before its one readwrite
  // transaction, issuing its puts, waiting for the commit, and returning after it.
  const calls = f.probe.calls;
  const phase = (fn) => fmt(median(calls.map((c) => fn(c, c.writeTxs[0]))), 1);
  console.log(`| a traced set, ms (median of ${calls.length}) | ${phase((c) => c.ms)}: ${phase((c, t) => t.start)} before its transaction, ${phase((c, t) => t.puts.at(-1).at - t.start)} issuing its puts, ${phase((c, t) => t.freeAt - t.puts.at(-1).at)} the page busy after them, ${phase((c, t) => t.end - t.freeAt)} waiting for the commit, ${phase((c, t) => c.ms - t.end)} after it (a raw tx: ${fmt(f.raw.ms / n, 2)}) |`);

  // What one set writes.
  const tx = calls[0].writeTxs[0];
  const byStore = {};
  for (const p of tx.puts) {
    const s = (byStore[p.store] ??= { puts: 0, keys: 0, values: 0, sizes: [] });
    s.puts++;
    s.keys += p.keySize;
    s.values += p.valueSize;
    s.sizes.push(`${p.keySize}+${p.valueSize}`);
  }
  const shapes = new Set(calls.map((c) => c.writeTxs.map((t) => t.puts.map((p) => p.store).join(',')).join('|')));
  const total = tx.puts.reduce((s, p) => s + p.keySize + p.valueSize, 0);
  console.log(`\nOne set = ${calls[0].writeTxs.length} readwrite transaction (durability "${tx.durability}"; raw: "${f.raw.durability}") over [${tx.stores.join(', ')}], ${tx.puts.length} puts, ${tx.deletes.length} deletes, ${total} bytes; ${calls[0].readTxs} read-only transactions, ${calls[0].reads} reads; ${shapes.size === 1 ? `the same stores and counts in all ${calls.length} traced calls` : `${shapes.size} different shapes in ${calls.length} traced calls`}.`);
  console.log('\n| store | puts | key + value bytes (each put) | database diff: new / changed / put again unchanged |');
  console.log('|---|---|---|---|');
  for (const [store, s] of Object.entries(byStore)) {
    const d = f.probe.diff.filter((x) => x.store === store);
    const count = (c) => d.filter((x) => x.change === c).length;
    console.log(`| ${store} | ${s.puts} | ${s.sizes.join(', ')} | ${count('added')} / ${count('changed')} / ${s.puts - count('added') - count('changed')}${count('removed') ? `, ${count('removed')} removed` : ''} |`);
  }
  const untraced = f.probe.diff.filter((d) => !byStore[d.store]);
  if (untraced.length) console.log(`(the diff also shows ${untraced.length} records in stores no put was traced to: ${[...new Set(untraced.map((d) => d.store))].join(', ')})`);

  // Bytes stored per entry: the whole database / N, and its growth over the N calls / N.
  console.log(`\nStored bytes per kv entry (key + value = ${entry} bytes), after ${n} sets: whole database / ${n}, and growth during the ${n} sets / ${n}\n`);
  console.log('| store | records | bytes / entry (all) | bytes / entry (growth) | growth / entry size |');
  console.log('|---|---|---|---|---|');
  let all = 0, grown = 0;
  for (const [store, t] of Object.entries(f.after.totals)) {
    const b = f.before.totals[store] ?? { records: 0, keys: 0, values: 0 };
    const bytes = t.keys + t.values, growth = bytes - (b.keys + b.values);
    all += bytes;
    grown += growth;
    if (!t.records) continue;
    console.log(`| ${store} | ${t.records} | ${fmt(bytes / n, 1)} | ${fmt(growth / n, 1)} | ${fmt(growth / n / entry, 1)} |`);
  }
  console.log(`| total | | ${fmt(all / n, 1)} | ${fmt(grown / n, 1)} | ${fmt(grown / n / entry, 1)} |`);
  const usage = f.before.usage !== null && f.after.usage !== null ? f.after.usage - f.before.usage : null;
  console.log(`\nnavigator.storage.estimate().usage: ${f.before.usage ?? '–'} → ${f.after.usage ?? '–'} bytes (${usage === null ? 'not available' : `${fmt(usage / n, 1)} bytes / entry`})`);
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
let browser, persistent, profile;
try {
  browser = await launchChromium();
  console.log(`# persistence benchmark: ${calls} calls, Chromium ${browser.version()}, ${os.cpus().length} cores`);
  // A fresh (off-the-record) browser context, as the end-to-end tests open.
  const memory = await inContext(await browser.newContext(), stack.url, calls);
  await browser.close();
  browser = undefined;
  report('fresh browser context (IndexedDB in memory)', memory, calls);

  // A persistent profile: IndexedDB on disk, as in a user's browser.
  profile = await mkdtemp(path.join(os.tmpdir(), 'tabnode-bench-'));
  persistent = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const disk = await inContext(persistent, stack.url, calls);
  report('persistent profile (IndexedDB on disk)', disk, calls);
} finally {
  await browser?.close();
  await persistent?.close();
  await stack.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
}
