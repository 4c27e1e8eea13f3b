// A big value whole or in parts, raw IndexedDB, call by call (issue 15): readwrite transactions
// shaped like a kv-store `set` (8 puts into audit, contexts, deltas and state, one of them
// calimero-storage's index row of ROW bytes, rewritten each time) with the index row stored
// whole, or in parts as the store first wrote a value over 60 KiB: every part rewritten, of at
// most 60 KiB, under `[namespace, key, i]` in object store `parts`, its length in the row, and
// every transaction's scope naming `parts` (what set `WHOLE_MAX` and `PARTED_MAX`; the store now
// writes 4 KiB parts, and as the only writer only those that changed: docs/storage.md, *Only the
// parts that changed*, measured through the node by bench/set-profile.mjs). Chromium writes a value over 64 KiB to a blob file of
// its own; parts stay under it. The two take turns, one transaction each, durability `relaxed`
// (the node's), in a persistent profile (IndexedDB on disk, as in a user's browser) and then in a
// fresh browser context (in memory). Prints per row size and mode the median ms from
// `transaction()` to the last put issued and to `complete`. Figures, not a test:
// `node bench/parts.mjs [ROUNDS] [ROW_SIZES]`, e.g. `150 89000,890000,4000000`.
import { chromium } from 'playwright-core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM_ARGS, launchChromium } from '../tests/e2e/browser.mjs';

const rounds = Number(process.argv[2] || 150);
const rows = (process.argv[3] || '89000,890000').split(',').map(Number);
const ORIGIN = 'http://parts.test/';

/** In the page: `rounds` rounds of one transaction per mode; the ms to issue and to commit. */
async function measure({ rounds, row }) {
  const PART = 60 * 1024;
  const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const done = (tx) => new Promise((ok, fail) => { tx.oncomplete = ok; tx.onabort = tx.onerror = () => fail(tx.error); });
  const name = `tabnode-bench-parts-${row}`;
  await req(indexedDB.deleteDatabase(name));
  const open = indexedDB.open(name, 1);
  const stores = ['audit', 'contexts', 'deltas', 'state'];
  open.onupgradeneeded = () => [...stores, 'parts'].forEach((s) => open.result.createObjectStore(s));
  const db = await req(open);
  // getRandomValues fills at most 64 KiB at a time.
  const fill = (len) => { const v = new Uint8Array(len); for (let o = 0; o < len; o += 65536) crypto.getRandomValues(v.subarray(o, Math.min(len, o + 65536))); return v; };
  // A set's records (bench/set-profile.mjs): fresh audit and delta records, the context record
  // and the index row overwritten, the new entry's rows fresh.
  const shape = [
    ['audit', 330, true], ['deltas', 1250, true], ['contexts', 300, false], ['state', row, false],
    ['state', 120, true], ['state', 120, true], ['state', 200, false], ['state', 200, false],
  ];
  const modes = ['whole', 'parts'];
  const issued = Object.fromEntries(modes.map((m) => [m, []]));
  const committed = Object.fromEntries(modes.map((m) => [m, []]));
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) {
      const records = shape.map(([store, size, fresh], j) => {
        const key = new Uint8Array(40);
        key[0] = j;
        key[1] = mode === 'whole' ? 0 : 1;
        if (fresh) new DataView(key.buffer).setUint32(36, n);
        return [store, key, fill(size)];
      });
      n++;
      const t = performance.now();
      const scope = mode === 'whole' ? stores : [...stores, 'parts'];
      const tx = db.transaction(scope, 'readwrite', { durability: 'relaxed' });
      for (const [store, key, value] of records) {
        if (mode === 'whole' || value.length <= PART) {
          tx.objectStore(store).put(value.slice(), key.slice());
          continue;
        }
        const parts = tx.objectStore('parts');
        let i = 0;
        for (let at = 0; at < value.length; at += PART) parts.put(value.slice(at, at + PART), [store, key, i++]);
        parts.delete(IDBKeyRange.bound([store, key, i], [store, key, Infinity]));
        tx.objectStore(store).put(value.length, key.slice());
      }
      const t1 = performance.now();
      tx.commit();
      await done(tx);
      issued[mode].push(t1 - t);
      committed[mode].push(performance.now() - t);
    }
  }
  db.close();
  await req(indexedDB.deleteDatabase(name));
  return { issued, committed };
}

async function run(context, label) {
  await context.route(`${ORIGIN}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>parts</title>' }));
  const page = await context.newPage();
  await page.goto(ORIGIN);
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const row of rows) {
    const { issued, committed } = await page.evaluate(measure, { rounds, row });
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    console.log(`${label}: index row ${row} B, ${rounds} transactions per mode, taking turns (load ${load})`);
    for (const mode of Object.keys(issued)) {
      console.log(`  ${mode.padEnd(6)} issued in ${median(issued[mode]).toFixed(2)} ms, committed in ${median(committed[mode]).toFixed(2)} ms (medians)`);
    }
    console.log(`  parts / whole, committed: ${(median(committed.parts) / median(committed.whole)).toFixed(2)}`);
  }
}

let browser, persistent, profile;
try {
  profile = await mkdtemp(path.join(os.tmpdir(), 'tabnode-parts-'));
  persistent = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  console.log(`# a big value whole or in parts, Chromium ${persistent.browser()?.version() ?? ''}, ${os.cpus().length} cores`);
  await run(persistent, 'persistent profile (on disk)');
  await persistent.close();
  persistent = undefined;
  browser = await launchChromium();
  await run(await browser.newContext(), 'fresh browser context (in memory)');
} finally {
  await browser?.close();
  await persistent?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
}
