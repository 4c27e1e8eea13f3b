// Every tab of an app on one node (tabnode-web/tabs): three tabs of one origin and one store, the
// host tab closed in the middle of a burst of writes from every tab. Driven with the package's
// own kit (pkg/testing, as `make pkg` builds it) on Debian's Chromium.
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

/** `tabnode.<method>(...args)` in the tab: `{ok, value}` or `{ok: false, name, message}`. */
const attempt = (tab, method, ...args) =>
  tab.page.evaluate(async ({ method, args }) => {
    try {
      return { ok: true, value: await window.tabnode[method](...args) };
    } catch (e) {
      return { ok: false, name: e.name, message: e.message };
    }
  }, { method, args });

const isHost = (tab) => tab.page.evaluate(() => window.tabnode.isHost);

/** The keys of kv-store `Inserted` events the tab heard since `watch`. */
const insertedKeys = async (tab) =>
  new Set((await tab.events()).filter((e) => e.type === 'event' && e.kind === 'Inserted').map((e) => e.data.key));

/** kv-store's entries as the tab reads them. */
const entriesOf = (tab, ctx) => tab.execute(ctx, 'entries');

test('three tabs share one node; the host tab closes mid-burst, another takes over, and no acknowledged write is lost', async () => {
  const { tabs, openTab, stop } = await openTabs(browser, { tabs: 3, dbName: 'tabs-burst' });
  try {
    const [host, ...followers] = tabs;
    assert.deepEqual(await Promise.all(tabs.map(isHost)), [true, false, false], 'the first tab hosts');
    const keys = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.tabnode.publicKey)));
    assert.equal(new Set(keys).size, 1, 'every tab is the same node');

    const appId = await followers[0].installApp(kvStore);
    const ctx = await followers[1].call('createContext', appId, {});
    await Promise.all(tabs.map((t) => t.watch(ctx)));

    // One write from each tab: every tab hears all three.
    for (const tab of tabs) await tab.execute(ctx, 'set', { key: `hello-${tab.name}`, value: 'hi' });
    for (const tab of tabs) {
      await eventually(`${tab.name} to hear every tab's write`, async () => {
        const heard = await insertedKeys(tab);
        return tabs.every((t) => heard.has(`hello-${t.name}`));
      }, { timeoutMs: 10_000 });
    }

    // A burst from every tab; the host tab is closed once 20 writes are acknowledged.
    const acked = new Map();
    // Writes the closed host had applied before it went: the next host answered their retry
    // with the stored answer, and their events went with the closed tab if it had not passed
    // them on yet.
    const repeated = new Set();
    const failed = [];
    let closedAt;
    let firstAckAfterClose;
    const burst = async (tab, writes) => {
      for (let n = 0; n < writes; n++) {
        const key = `${tab.name}-${n}`;
        const sentAt = Date.now();
        let result;
        try {
          result = await attempt(tab, 'execute', ctx, 'set', { key, value: `v${n}` });
        } catch (err) {
          if (tab.page.isClosed()) return; // the closed host's own call: never acknowledged
          throw err;
        }
        if (result.ok) {
          acked.set(key, `v${n}`);
          if (result.value.repeated) repeated.add(key);
          if (closedAt && sentAt > closedAt && !firstAckAfterClose) firstAckAfterClose = Date.now();
        } else {
          failed.push({ tab: tab.name, key, name: result.name, message: result.message });
        }
      }
    };
    // Reads from the followers all the while: one in flight when the host goes is sent to the
    // next host, as a write is (it changes nothing, so it may run twice).
    let bursting = true;
    let reads = 0;
    const readOn = async (tab) => {
      while (bursting) {
        const result = await attempt(tab, reads % 2 ? 'members' : 'contexts', ...(reads % 2 ? [ctx] : []));
        reads++;
        if (!result.ok) failed.push({ tab: tab.name, read: true, name: result.name, message: result.message });
      }
    };
    const closeHost = (async () => {
      await eventually('20 acknowledged writes', () => acked.size >= 20, { timeoutMs: 30_000, everyMs: 5 });
      closedAt = Date.now();
      await host.page.close();
    })();
    const reading = followers.map(readOn);
    await Promise.all([closeHost, ...tabs.map((tab) => burst(tab, 40))]);
    bursting = false;
    await Promise.all(reading);

    // No call fails: a write in flight when the host went is sent to the next host under its
    // call id (below: and applied once), a read as it is.
    assert.deepEqual(failed, [], 'calls failed');
    const writesAfterClose = [...acked.keys()].filter((k) => followers.some((f) => k.startsWith(`${f.name}-`)));
    assert.ok(writesAfterClose.length > 0 && firstAckAfterClose, 'the followers wrote on after the host closed');
    console.log(`# ${acked.size} writes acknowledged (${repeated.size} by the stored answer of a retry), ${reads} reads; a write sent after the host tab closed acknowledged ${firstAckAfterClose - closedAt} ms after the close`);

    const hosts = await Promise.all(followers.map(isHost));
    assert.equal(hosts.filter(Boolean).length, 1, `exactly one follower took over: ${hosts}`);

    // Every acknowledged write is there, and every tab (a new one too) reads the same.
    const late = await openTab();
    for (const tab of [...followers, late]) {
      const entries = await entriesOf(tab, ctx);
      for (const [key, value] of acked) assert.equal(entries[key], value, `${tab.name} lacks acknowledged ${key}`);
    }
    const views = await Promise.all([...followers, late].map((t) => entriesOf(t, ctx)));
    for (const view of views) assert.deepEqual(view, views[0], 'the tabs disagree');

    // Every surviving tab heard an event for every acknowledged write (the old host's too, but
    // for a retried write the closed host had applied, see `repeated`), and
    // no write ran twice: a second `set` of a key would be heard as `Updated`.
    for (const tab of followers) {
      const twice = (await tab.events()).filter((e) => e.type === 'event' && e.kind === 'Updated').map((e) => e.data.key);
      assert.deepEqual(twice, [], `${tab.name} heard writes applied twice`);
      const heard = await insertedKeys(tab);
      const missing = [...acked.keys()].filter((k) => !heard.has(k) && !repeated.has(k));
      assert.deepEqual(missing, [], `${tab.name} heard no event for these acknowledged writes`);
    }
  } finally {
    await stop();
  }
});

test('a follower call fails with NoHost within its bound while the host tab is busy, and the host does not apply it after', async () => {
  const { tabs, stop } = await openTabs(browser, { tabs: 2, dbName: 'tabs-busy', hostTimeoutMs: 1_500 });
  try {
    const [host, follower] = tabs;
    const appId = await follower.installApp(kvStore);
    const ctx = await follower.call('createContext', appId, {});
    // Only BrowserNode's API crosses to the host: not `free`, which would drop its node.
    assert.equal((await attempt(follower, 'call', 'free')).name, 'BadArgs');
    // The host's page runs one 4 s task (as a hung or frozen tab would): it holds its locks and
    // answers nothing until the task ends.
    await host.page.evaluate(() => void setTimeout(() => {
      for (const end = Date.now() + 4_000; Date.now() < end; );
    }));
    const started = Date.now();
    const busy = await attempt(follower, 'execute', ctx, 'set', { key: 'while-busy', value: 'x' });
    const elapsed = Date.now() - started;
    assert.equal(busy.name, 'NoHost', JSON.stringify(busy));
    assert.ok(elapsed >= 1_400 && elapsed < 3_500, `NoHost after ${elapsed} ms, the bound is 1500`);

    await host.page.evaluate(() => true); // runs once the long task is over
    // The host reads the channel in order: once this call is answered, it has seen the other.
    const later = await attempt(follower, 'execute', ctx, 'set', { key: 'after', value: 'y' });
    assert.ok(later.ok, JSON.stringify(later));
    assert.deepEqual(await entriesOf(follower, ctx), { after: 'y' }, 'the call that got NoHost was applied');
    assert.equal(await isHost(host), true);
  } finally {
    await stop();
  }
});

test('a tab opens with NoHost, not a hang, when the tab holding the host lock never answers', async () => {
  const { context, url, openTab, stop } = await openTabs(browser, { tabs: 0, dbName: 'tabs-nohost', hostTimeoutMs: 1_000 });
  try {
    // TEST DOUBLE of a hung host: a page of the same origin holding the host lock with no node.
    const hung = await context.newPage();
    await hung.goto(new URL('/tabnode_web.js', url).href);
    await hung.evaluate(() => new Promise((held) => navigator.locks.request('tabnode-host:tabs-nohost', () => (held(), new Promise(() => {})))));
    const started = Date.now();
    await assert.rejects(openTab(), /did not start: NoHost: no tab hosting the node "tabs-nohost" answered within 1000 ms/);
    assert.ok(Date.now() - started < 10_000, 'open waited past its bound');
  } finally {
    await stop();
  }
});

test('a BrowserNode opened on a store a tab already runs fails with StoreLocked, and the tab\'s node goes on', async () => {
  const { tabs, context, url, stop } = await openTabs(browser, { tabs: 1, dbName: 'tabs-locked' });
  try {
    // A bare `BrowserNode.create` on the same store.
    const { error } = await openBarePage(context, url);
    assert.equal(error?.name, 'StoreLocked', JSON.stringify(error));
    assert.match(error.message, /another tab/);
    const appId = await tabs[0].installApp(kvStore);
    assert.match(appId, /\w{32,}/, 'the tab that runs the node still answers');
  } finally {
    await stop();
  }
});
