// IndexedDB's durability hint, raw, call by call (issue 15): readwrite transactions shaped like a
// kv-store `set` at 1,000 keys (8 puts into audit, contexts, deltas and state, one of them
// calimero-storage's 85 KB index row, rewritten each time) with `durability` left out, `relaxed`,
// `strict`, and `relaxed` with `tx.commit()` after the last put, taking turns one transaction
// each, so all see the same load. Once in a fresh
// (off-the-record) browser context, where Chromium keeps IndexedDB in memory, as the other
// benchmarks' pages do, and once in a persistent profile (on disk, as in a user's browser).
// Prints per mode the median ms of a transaction (from `transaction()` to `complete`), its
// calls/s, and what `tx.durability` reads back. Figures, not a test:
// `node bench/durability.mjs [ROUNDS] [INDEX_ROW_BYTES]`, e.g. `300 85000`.
import { chromium } from 'playwright-core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM_ARGS, launchChromium } from '../tests/e2e/browser.mjs';

const rounds = Number(process.argv[2] || 300);
const indexRow = Number(process.argv[3] || 85000);
const ORIGIN = 'http://durability.test/';

/** In the page: `rounds` rounds of one transaction per mode; the ms of each, per mode. */
async function measure({ rounds, indexRow }) {
  const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const done = (tx) => new Promise((ok, fail) => { tx.oncomplete = ok; tx.onabort = tx.onerror = () => fail(tx.error); });
  const name = 'tabnode-bench-durability';
  await req(indexedDB.deleteDatabase(name));
  const open = indexedDB.open(name, 1);
  const stores = ['audit', 'contexts', 'deltas', 'state'];
  open.onupgradeneeded = () => stores.forEach((s) => open.result.createObjectStore(s));
  const db = await req(open);
  // getRandomValues fills at most 64 KiB at a time.
  const fill = (len) => { const v = new Uint8Array(len); for (let o = 0; o < len; o += 65536) crypto.getRandomValues(v.subarray(o, Math.min(len, o + 65536))); return v; };
  // A set's records at 1,000 keys (bench/set-profile.mjs): fresh audit and delta records, the
  // context record and the index row overwritten, the new entry's rows fresh.
  const shape = [
    ['audit', 330, true], ['deltas', 1250, true], ['contexts', 300, false], ['state', indexRow, false],
    ['state', 120, true], ['state', 120, true], ['state', 200, false], ['state', 200, false],
  ];
  // 'relaxed+commit': relaxed, and `tx.commit()` right after the last put, not waiting for
  // the puts' success events before IndexedDB commits on its own.
  const modes = ['default', 'relaxed', 'strict', 'relaxed+commit'];
  const ms = Object.fromEntries(modes.map((m) => [m, []]));
  const seen = {};
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) {
      const records = shape.map(([store, size, fresh], j) => {
        const key = new Uint8Array(40);
        key[0] = j;
        if (fresh) new DataView(key.buffer).setUint32(36, n);
        return [store, key, fill(size)];
      });
      n++;
      const t = performance.now();
      const durability = mode.split('+')[0];
      const tx = durability === 'default' ? db.transaction(stores, 'readwrite') : db.transaction(stores, 'readwrite', { durability });
      seen[mode] = tx.durability;
      for (const [store, key, value] of records) tx.objectStore(store).put(value, key);
      if (mode.endsWith('+commit')) tx.commit();
      await done(tx);
      ms[mode].push(performance.now() - t);
    }
  }
  db.close();
  await req(indexedDB.deleteDatabase(name));
  return { ms, seen };
}

async function run(context, label) {
  await context.route(`${ORIGIN}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>durability</title>' }));
  const page = await context.newPage();
  await page.goto(ORIGIN);
  const { ms, seen } = await page.evaluate(measure, { rounds, indexRow });
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  console.log(`${label}: ${rounds} transactions per mode, taking turns, index row ${indexRow} B (load ${load})`);
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const p90 = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.9)];
  const perSecond = (a) => (a.length * 1000) / a.reduce((x, y) => x + y, 0);
  for (const mode of Object.keys(ms)) {
    console.log(`  ${mode.padEnd(8)} (tx.durability "${seen[mode]}") median ${median(ms[mode]).toFixed(2)} ms, p90 ${p90(ms[mode]).toFixed(2)} ms, ${perSecond(ms[mode]).toFixed(1)} tx/s`);
  }
}

let browser, persistent, profile;
try {
  browser = await launchChromium();
  console.log(`# IndexedDB durability, Chromium ${browser.version()}, ${os.cpus().length} cores`);
  await run(await browser.newContext(), 'fresh browser context (IndexedDB in memory)');
  await browser.close();
  browser = undefined;
  profile = await mkdtemp(path.join(os.tmpdir(), 'tabnode-durability-'));
  persistent = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  await run(persistent, `persistent profile (IndexedDB on disk, ${profile})`);
} finally {
  await browser?.close();
  await persistent?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
}
