// A panic in the page's node (BrowserNode.crashForTesting, as a bug would panic): wasm32 cannot
// unwind, so the node's task is gone. What the page gets then: every call fails `Crashed` at once
// (none hangs), subscribers hear `{type: "crashed"}`, the store's lock is let go, and another page
// (or, with TabNode, another tab) opens the node from the same IndexedDB with every acknowledged
// write. Real pages on Debian's Chromium, driven with the package's kit (pkg/testing).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { eventually, openTabs } from '../../pkg/testing/index.js';
import { launchChromium, openBarePage } from './browser.mjs';

const kvStore = await readFile(new URL('../apps/dist/kv_store.wasm', import.meta.url));

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/**
 * `tabnode.<method>(...args)` in the page: `{ok, value}`, `{ok: false, name, message}`, or
 * `{hung: true}` if it has not settled within `ms`.
 */
const attempt = (page, method, args = [], ms = 10_000) =>
  page.evaluate(async ({ method, args, ms }) => {
    const hung = new Promise((resolve) => setTimeout(() => resolve({ hung: true }), ms));
    const call = (async () => {
      try {
        return { ok: true, value: await window.tabnode[method](...args) };
      } catch (e) {
        return { ok: false, name: e.name, message: e.message };
      }
    })();
    return Promise.race([call, hung]);
  }, { method, args, ms });

/** A bare `BrowserNode` page on the tabs' store (see `openBarePage`); throws what stopped it. */
async function barePage(context, url) {
  const { page, error } = await openBarePage(context, url);
  if (error) throw new Error(`the page did not start: ${error.name}: ${error.message}`);
  return page;
}

test('a panic in the page: calls fail Crashed at once, subscribers hear it, and another page opens the store with every acknowledged write', async () => {
  const { context, url, stop } = await openTabs(browser, { tabs: 0, dbName: 'crash-bare' });
  try {
    const page = await barePage(context, url);
    const appId = await page.evaluate((bytes) => window.tabnode.installApp(new Uint8Array(bytes)), [...kvStore]);
    const ctx = (await attempt(page, 'createContext', [appId, {}])).value;
    assert.ok(ctx, 'a context was made');
    for (let n = 0; n < 5; n++) {
      const set = await attempt(page, 'execute', [ctx, 'set', { key: `k${n}`, value: `v${n}` }]);
      assert.ok(set.ok, JSON.stringify(set));
    }
    await page.evaluate(() => void window.tabnode.subscribe(null, (event) => window.__events.push(event)));

    const crash = await attempt(page, 'crashForTesting');
    assert.equal(crash.name, 'Crashed', JSON.stringify(crash));
    assert.match(crash.message, /crashForTesting/);

    // Every later call fails at once, with the panic's message; none waits forever.
    for (const [method, args] of [['contexts', []], ['execute', [ctx, 'get', { key: 'k0' }]], ['audit', [ctx]]]) {
      const after = await attempt(page, method, args, 5_000);
      assert.equal(after.name, 'Crashed', `${method} after the panic: ${JSON.stringify(after)}`);
    }
    const events = await page.evaluate(() => window.__events.filter((e) => e.type === 'crashed'));
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.match(events[0].message, /crashForTesting/);

    // This page's module cannot run a node again; it says so instead of opening one.
    const again = await page.evaluate(async (db) => {
      const { BrowserNode } = await import('./tabnode_web.js');
      try {
        await BrowserNode.create({ dbName: db });
        return { ok: true };
      } catch (e) {
        return { ok: false, name: e.name };
      }
    }, 'crash-bare');
    assert.equal(again.name, 'Crashed', JSON.stringify(again));

    // The store's lock was let go: another page opens the node there, and has every write.
    const next = await barePage(context, url);
    const entries = await attempt(next, 'execute', [ctx, 'entries']);
    assert.ok(entries.ok, JSON.stringify(entries));
    assert.deepEqual(entries.value.output, { k0: 'v0', k1: 'v1', k2: 'v2', k3: 'v3', k4: 'v4' });
    const publicKeys = await Promise.all([page, next].map((p) => p.evaluate(() => window.tabnode.publicKey)));
    assert.equal(publicKeys[0], publicKeys[1], 'the next page runs the same node');
    const audit = await attempt(next, 'verifyAudit', [ctx]);
    assert.equal(audit.value?.ok, true, JSON.stringify(audit));
  } finally {
    await stop();
  }
});

test('with TabNode, a crashed host tab hands the node to another tab, and goes on as its follower', async () => {
  const { tabs, stop } = await openTabs(browser, { tabs: 2, dbName: 'crash-tabs', hostTimeoutMs: 15_000 });
  try {
    const [host, follower] = tabs;
    assert.equal(await host.page.evaluate(() => window.tabnode.isHost), true);
    const appId = await follower.installApp(kvStore);
    const ctx = await follower.call('createContext', appId, {});
    await follower.execute(ctx, 'set', { key: 'before', value: '1' });
    await host.watch(null);

    const crash = await attempt(host.page, 'crashForTesting');
    assert.equal(crash.name, 'Crashed', JSON.stringify(crash));

    await eventually('the follower to host the node', () => follower.page.evaluate(() => window.tabnode.isHost), { timeoutMs: 30_000 });
    assert.equal(await host.page.evaluate(() => window.tabnode.isHost), false);
    const heard = (await host.events()).map((e) => e.type);
    assert.ok(heard.includes('crashed'), `the crashed tab heard ${heard}`);

    // The crashed tab's calls now go to the new host: its write lands, and both read the same.
    const write = await attempt(host.page, 'execute', [ctx, 'set', { key: 'after', value: '2' }], 30_000);
    assert.ok(write.ok, JSON.stringify(write));
    assert.deepEqual(await follower.execute(ctx, 'entries'), { before: '1', after: '2' });
    assert.deepEqual(await host.execute(ctx, 'entries'), { before: '1', after: '2' });
  } finally {
    await stop();
  }
});
