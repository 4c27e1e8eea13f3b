// Catch-up benchmark in the browser (issue 7), headless Chromium and a real relay: page A makes
// DELTAS deltas (kv-store `set`, distinct keys) with nobody else in the context; then page B
// joins and catches up from A through the relay (`?direct=off`, so every byte crosses the
// WebSocket and is counted). Printed: making time (the baseline), catch-up time (join until B
// applied every delta), deltas/s both ways, and the bytes B received on its WebSocket during
// catch-up per delta (the artifact's own size is in `make bench-catchup`, natively).
// Figures, not a test. `make bench-catchup-browser` runs it; `node bench/catchup-browser.mjs [N]`.
import { startStack } from '../scripts/serve.mjs';
import { installKvStore, launchChromium, openNode, waitForNode } from '../tests/e2e/browser.mjs';

const deltas = Number(process.argv[2] || 2000);
if (!Number.isInteger(deltas) || deltas < 1) throw new Error('usage: node bench/catchup-browser.mjs [DELTAS >= 1]');

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const browser = await launchChromium();
try {
  const url = `${stack.url}?direct=off`;
  const a = await openNode(browser, url, { name: 'A' });
  const appId = await installKvStore(a.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  let t = performance.now();
  await a.page.evaluate(async ({ c, n }) => {
    let progress = performance.now();
    for (let i = 0; i < n; i++) {
      await window.tabnode.execute(c, 'set', { key: `key-${String(i).padStart(6, '0')}`, value: 'v'.repeat(32) });
      if (performance.now() - progress > 10_000) {
        console.warn(`made ${i + 1} of ${n} deltas`);
        progress = performance.now();
      }
    }
  }, { c: ctx, n: deltas });
  const makingS = (performance.now() - t) / 1000;

  // B's page counts every byte its WebSockets receive, from before the node opens them.
  const bContext = await browser.newContext();
  const b = { context: bContext, page: await bContext.newPage() };
  let received = 0;
  b.page.on('websocket', (ws) => ws.on('framereceived', (f) => { received += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length; }));
  await b.page.goto(url);
  await waitForNode(b.page);
  await installKvStore(b.page);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
  // B counts the deltas it applies from members: A's genesis and its DELTAS calls.
  await b.page.evaluate(() => {
    window.applied = 0;
    window.tabnode.subscribe(null, (e) => { if (e.type === 'deltaApplied') window.applied += 1; });
  });
  const before = received;
  t = performance.now();
  await b.page.evaluate((inv) => window.tabnode.join(inv), invitation);
  let last = performance.now();
  for (;;) {
    const applied = await b.page.evaluate(() => window.applied);
    if (applied >= deltas + 1) break;
    if (performance.now() - last > 10_000) {
      console.log(`catching up: ${applied} of ${deltas + 1} deltas after ${((performance.now() - t) / 1000).toFixed(0)} s`);
      last = performance.now();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const catchupS = (performance.now() - t) / 1000;
  const bytes = received - before;
  const entries = await b.page.evaluate(async (c) => Object.keys((await window.tabnode.execute(c, 'entries', {})).output).length, ctx);
  console.log(`\nbrowser catch-up over ${deltas} deltas (kv-store set, distinct keys), through the relay:`);
  console.log('| what | figure |');
  console.log('|---|---|');
  console.log(`| making them on A (one call at a time) | ${makingS.toFixed(1)} s, ${(deltas / makingS).toFixed(0)} deltas/s |`);
  console.log(`| B joining late, until it applied every delta | ${catchupS.toFixed(1)} s, ${(deltas / catchupS).toFixed(0)} deltas/s |`);
  console.log(`| catch-up / making | ${(catchupS / makingS).toFixed(2)} |`);
  console.log(`| bytes B received on its WebSocket meanwhile | ${(bytes / 1e6).toFixed(2)} MB, ${(bytes / deltas).toFixed(0)} B per delta |`);
  console.log(`| B's entries after | ${entries} (of ${deltas}) |`);
} finally {
  await browser.close();
  await stack.stop();
}
