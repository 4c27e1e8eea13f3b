// `make bench-tabs`: what sharing one node between the tabs of an app costs (tabnode-web/tabs), in
// headless Chromium: CALLS sequential kv-store `set`s in the host tab and through a follower tab
// (in-page loops: no driver round trips counted), ROUNDS times; then, ROUNDS times, the host tab
// closed and the time until the next tab hosts the node and answers its first call. Figures, not
// a test. `node bench/tabs.mjs [CALLS] [ROUNDS]`.
import { readFile } from 'node:fs/promises';
import { openTabs } from '../pkg/testing/index.js';
import { launchChromium } from '../tests/e2e/browser.mjs';

const calls = Number(process.argv[2] || 100);
const rounds = Number(process.argv[3] || 3);
const kvStore = await readFile(new URL('../tests/apps/dist/kv_store.wasm', import.meta.url));

/** `calls` sequential sets from `tab`'s page; resolves to ms per call. */
const burst = (tab, ctx, prefix) =>
  tab.page.evaluate(async ({ ctx, calls, prefix }) => {
    const started = performance.now();
    for (let i = 0; i < calls; i++) await window.tabnode.execute(ctx, 'set', { key: `${prefix}${i}`, value: 'v' });
    return (performance.now() - started) / calls;
  }, { ctx, calls, prefix });

const browser = await launchChromium();
try {
  console.log(`# ${calls} sequential sets per round: ms per call in the host tab, and through a follower tab`);
  {
    const { tabs: [host, follower], stop } = await openTabs(browser, { tabs: 2, dbName: 'bench-calls' });
    try {
      const ctx = await follower.call('createContext', await follower.installApp(kvStore), {});
      await burst(host, ctx, 'warm-');
      for (let round = 0; round < rounds; round++) {
        const inHost = await burst(host, ctx, `h${round}-`);
        const viaFollower = await burst(follower, ctx, `f${round}-`);
        console.log(`round ${round}: host ${inHost.toFixed(2)} ms, follower ${viaFollower.toFixed(2)} ms (+${(viaFollower - inHost).toFixed(2)})`);
      }
    } finally {
      await stop();
    }
  }
  console.log('# takeover: from closing the host tab to the next tab hosting, and to its first call answered');
  for (let round = 0; round < rounds; round++) {
    const { tabs: [host, next], stop } = await openTabs(browser, { tabs: 2, dbName: `bench-takeover-${round}` });
    try {
      const ctx = await next.call('createContext', await next.installApp(kvStore), {});
      await burst(next, ctx, 'before-');
      const closed = Date.now();
      await host.page.close();
      await next.page.waitForFunction(() => window.tabnode.isHost, null, { polling: 5 });
      const hosting = Date.now() - closed;
      await next.execute(ctx, 'set', { key: 'after', value: 'v' });
      console.log(`round ${round}: hosting after ${hosting} ms, first call answered after ${Date.now() - closed} ms`);
    } finally {
      await stop();
    }
  }
} finally {
  await browser.close();
}
