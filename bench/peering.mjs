// Peering benchmark (issue 8), in headless Chromium with a real relay, every ratio from the
// same run: two pages on one context, once with a direct WebRTC link between them, and then with
// the relay as the only path (`?direct=off`), reached over WebSocket and over WebRTC-direct
// (`?relay=<its /webrtc-direct/certhash/ address>`). For each path:
//   1. latency of one small delta page to page: A's `set` until B's node emits the guest event
//      (one call at a time, CALLS of them; p50 and p99);
//   2. deltas per second page to page: a burst of BURST calls on A until B has them all;
//   3. set-up: from B's node being up until it holds a reservation at the relay (over the path's
//      transport), and from B having the context's state until the direct link is open.
// Figures, not a test. `make bench-peering` runs it; `node bench/peering.mjs [CALLS] [BURST]`.
import { startStack } from '../scripts/serve.mjs';
import { installKvStore, launchChromium, openNode, percentile } from '../tests/e2e/browser.mjs';

const calls = Number(process.argv[2] || 100);
const burst = Number(process.argv[3] || 200);
for (const n of [calls, burst]) {
  if (!Number.isInteger(n) || n < 1) throw new Error('usage: node bench/peering.mjs [CALLS >= 1] [BURST >= 1]');
}

const now = () => performance.timeOrigin + performance.now();

/** Two pages on one context, B listening for guest events (with their arrival times). */
async function pair(browser, url) {
  const a = await openNode(browser, url, { name: 'A' });
  const b = await openNode(browser, url, { name: 'B' });
  const up = now();
  await b.page.waitForFunction(() => window.tabnode.connections().some((c) => c.reservation), null, { timeout: 60_000, polling: 5 });
  const relaySetupMs = now() - up;
  const appId = await installKvStore(a.page);
  await installKvStore(b.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  await b.page.evaluate((inv) => window.tabnode.join(inv), await a.page.evaluate((c) => window.tabnode.invite(c), ctx));
  await b.page.evaluate((c) => {
    window.arrived = new Map();
    window.tabnode.subscribe(c, (e) => {
      if (e.type === 'event' && !e.local && e.data?.key) window.arrived.set(e.data.key, performance.timeOrigin + performance.now());
    });
  }, ctx);
  await a.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'hello', value: 'x' }), ctx);
  await b.page.waitForFunction(() => window.arrived.has('hello'), null, { timeout: 60_000 });
  const ready = now();
  return { a, b, ctx, ready, relaySetupMs };
}

async function measure(browser, url, direct) {
  const { a, b, ctx, ready, relaySetupMs } = await pair(browser, url);
  let setupMs = null;
  if (direct) {
    await b.page.waitForFunction(() => window.tabnode.connections().some((c) => c.via === 'webrtc'), null, { timeout: 60_000, polling: 20 });
    setupMs = now() - ready;
  }
  const latencies = [];
  for (let i = 0; i < calls; i++) {
    const key = `one-${i}`;
    const sent = await a.page.evaluate(async ({ c, key }) => {
      const t = performance.timeOrigin + performance.now();
      await window.tabnode.execute(c, 'set', { key, value: 'v' });
      return t;
    }, { c: ctx, key });
    const got = await b.page.waitForFunction((k) => window.arrived.get(k), key, { timeout: 30_000, polling: 'raf' }).then((h) => h.jsonValue());
    latencies.push(got - sent);
  }
  const start = now();
  await a.page.evaluate(async ({ c, burst }) => {
    for (let i = 0; i < burst; i++) await window.tabnode.execute(c, 'set', { key: `burst-${i}`, value: 'v' });
  }, { c: ctx, burst });
  const arrived = () => b.page.evaluate(() => [...window.arrived.keys()].filter((k) => k.startsWith('burst-')).length);
  // A path that stalls under the burst is reported with what got through, not as a crash.
  const stalled = await b.page.waitForFunction((n) => [...window.arrived.keys()].filter((k) => k.startsWith('burst-')).length === n, burst, { timeout: 120_000, polling: 50 })
    .then(() => null, async () => `stalled: ${await arrived()} of ${burst} after 120 s`);
  const perSecond = stalled ? null : burst / ((now() - start) / 1000);
  const links = await b.page.evaluate(() => window.tabnode.connections().map((c) => c.via));
  await a.context.close();
  await b.context.close();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), perSecond, stalled, setupMs, relaySetupMs, links };
}

const stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn' });
const browser = await launchChromium();
try {
  const direct = await measure(browser, stack.url, true);
  const relay = await measure(browser, `${stack.url}?direct=off`, false);
  const webrtcDirect = await measure(browser, `${stack.url}?direct=off&relay=${encodeURIComponent(stack.relayWebrtcAddr)}`, false);
  const f = (n) => (n == null ? '–' : n.toFixed(1));
  console.log(`\npage to page, ${calls} single calls and a burst of ${burst} (kv-store set), one machine:`);
  console.log('| path | p50 ms | p99 ms | deltas/s | relay set-up ms | link set-up ms | connections of B |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, r] of [['direct WebRTC', direct], ['relay (WebSocket)', relay], ['relay (WebRTC-direct)', webrtcDirect]]) {
    console.log(`| ${name} | ${f(r.p50)} | ${f(r.p99)} | ${r.stalled ?? f(r.perSecond)} | ${f(r.relaySetupMs)} | ${f(r.setupMs)} | ${r.links.join(', ')} |`);
  }
  console.log(`\nratio relay/direct: p50 ${(relay.p50 / direct.p50).toFixed(2)}, deltas/s ${(direct.perSecond / relay.perSecond).toFixed(2)} (direct/relay)`);
  console.log(`relay over WebRTC-direct / over WebSocket: p50 ${(webrtcDirect.p50 / relay.p50).toFixed(2)}, p99 ${(webrtcDirect.p99 / relay.p99).toFixed(2)}, deltas/s ${webrtcDirect.stalled ? '–' : (webrtcDirect.perSecond / relay.perSecond).toFixed(2)}`);
} finally {
  await browser.close();
  await stack.stop();
}
