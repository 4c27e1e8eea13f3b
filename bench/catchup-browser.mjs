// Catch-up benchmark in the browser (issue 7), headless Chromium and a real relay: page A makes
// DELTAS deltas (kv-store `set`, distinct keys) with nobody else in the context; then a page
// joins and catches up from A through the relay (`?direct=off`, so every byte crosses the
// WebSocket and is counted), once by deltas alone and once taking A's state snapshot. Printed:
// making time (the baseline), each catch-up time (join until the joiner has every entry),
// deltas/s, and the bytes each joiner received on its WebSocket per delta (the artifact's own
// size is in `make bench-catchup`, natively).
// Figures, not a test. `make bench-catchup-browser` runs it; `node bench/catchup-browser.mjs [N]`.
import { startStack } from '../scripts/serve.mjs';
import { installKvStore, launchChromium, openNode, waitForNode } from '../tests/e2e/browser.mjs';

const deltas = Number(process.argv[2] || 2000);
// Keys written: distinct by default; KEYS=100 writes over 100 keys, as the native benchmark
// does, so the map (whose index calimero-storage rewrites on every insert) stays small.
const keys = Number(process.env.KEYS || deltas);
if (!Number.isInteger(deltas) || deltas < 1 || !(keys >= 1)) throw new Error('usage: [KEYS=N] node bench/catchup-browser.mjs [DELTAS >= 1]');

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const browser = await launchChromium();
try {
  const url = `${stack.url}?direct=off`;
  const a = await openNode(browser, `${url}&snapshot=0`, { name: 'A' });
  const appId = await installKvStore(a.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  let t = performance.now();
  await a.page.evaluate(async ({ c, n, keys }) => {
    let progress = performance.now();
    for (let i = 0; i < n; i++) {
      await window.tabnode.execute(c, 'set', { key: `key-${String(i % keys).padStart(6, '0')}`, value: `${i}`.padStart(32, 'v') });
      if (performance.now() - progress > 10_000) {
        console.warn(`made ${i + 1} of ${n} deltas`);
        progress = performance.now();
      }
    }
  }, { c: ctx, n: deltas, keys });
  const heads = async (page) => JSON.stringify((await page.evaluate((c) => window.tabnode.position(c), ctx)).heads);
  const makingS = (performance.now() - t) / 1000;

  // A late joiner, from the moment it joins until it has A's heads and every entry; its page
  // counts every byte its WebSockets receive, from before the node opens them.
  const lateJoiner = async (name) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    let received = 0;
    page.on('websocket', (ws) => ws.on('framereceived', (f) => { received += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length; }));
    await page.goto(url);
    await waitForNode(page);
    await installKvStore(page);
    const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
    const before = received;
    const started = performance.now();
    await page.evaluate((inv) => {
      window.seen = {};
      window.refused = [];
      window.tabnode.subscribe(null, (e) => {
        window.seen[e.type] = (window.seen[e.type] || 0) + 1;
        if (e.type === 'syncRejected' && window.refused.length < 20) window.refused.push(`${e.kind}: ${e.reason}`);
      });
    }, null);
    await page.evaluate((inv) => window.tabnode.join(inv), invitation);
    let last = performance.now();
    let entries = 0;
    for (;;) {
      entries = await page.evaluate(async (c) => {
        try {
          return Object.keys((await window.tabnode.execute(c, 'entries', {})).output).length;
        } catch {
          return 0; // NotSynced: the state has not arrived yet
        }
      }, ctx);
      // The joiner's announcement of itself is a delta too: A's heads move with it.
      if (entries >= keys && (await heads(page)) === (await heads(a.page))) break;
      if (performance.now() - last > 10_000) {
        console.log(`${name} catching up: ${entries} of ${keys} entries after ${((performance.now() - started) / 1000).toFixed(0)} s`);
        if (process.env.TRACE) console.log(JSON.stringify(await page.evaluate(() => ({ seen: window.seen, refused: window.refused }))));
        last = performance.now();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const secs = (performance.now() - started) / 1000;
    const methods = await page.evaluate(async (c) => (await window.tabnode.audit(c)).map((r) => r.method), ctx);
    await context.close();
    return { secs, bytes: received - before, entries, snapshot: methods.includes('sync.snapshot') };
  };

  // First by deltas alone (A offers no snapshot), then A reloads with the default threshold
  // and a second joiner takes its snapshot.
  const byDeltas = await lateJoiner('by deltas');
  await a.page.goto(`${stack.url}?direct=off`);
  await waitForNode(a.page);
  const bySnapshot = await lateJoiner('by snapshot');
  if (byDeltas.snapshot || !bySnapshot.snapshot) throw new Error('the joiners did not catch up the way they were meant to');

  const row = (what, f) => `| ${what} | ${f(byDeltas)} | ${f(bySnapshot)} |`;
  console.log(`\nbrowser catch-up over ${deltas} deltas (kv-store set over ${keys} keys), through the relay:`);
  console.log('| what | by deltas | by snapshot |');
  console.log('|---|---|---|');
  console.log(`| making them on A (one call at a time) | ${makingS.toFixed(1)} s, ${(deltas / makingS).toFixed(0)} deltas/s | |`);
  console.log(row('a late joiner, from join until it has every entry', (j) => `${j.secs.toFixed(1)} s, ${(deltas / j.secs).toFixed(0)} deltas/s`));
  console.log(row('catch-up / making', (j) => (j.secs / makingS).toFixed(3)));
  console.log(row('bytes the joiner received on its WebSocket meanwhile', (j) => `${(j.bytes / 1e6).toFixed(2)} MB, ${(j.bytes / deltas).toFixed(0)} B per delta`));
  console.log(row("the joiner's entries after", (j) => `${j.entries} (of ${keys})`));
  console.log(`\ncatch-up by snapshot / by deltas: ${(bySnapshot.secs / byDeltas.secs).toFixed(3)}`);
} finally {
  await browser.close();
  await stack.stop();
}
