// Two browser tabs converge on a calimero-sdk app (kv-store) through a real relay.
// Real parts only: the native relay process, two headless Chromium contexts with their own
// IndexedDB, the wasm node in each page, the guest app built from source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkpoint,
  entries,
  eventually,
  installKvStore,
  openNode,
  percentile,
  useStack,
  waitForNode,
} from './browser.mjs';

const KEYS_EACH = 100;
const env = useStack();

/** Records, in the page, when each remote `Inserted`/`Updated` event arrives (ms since epoch). */
const recordArrivals = (page, ctx) =>
  page.evaluate((c) => {
    window.arrivals = {};
    window.tabnode.subscribe(c, (event) => {
      if (event.type === 'event' && !event.local && event.data && event.data.key !== undefined) {
        window.arrivals[event.data.key] ??= performance.timeOrigin + performance.now();
      }
    });
  }, ctx);

/** Writes `count` keys `${prefix}${i}` one call after another; resolves to each call's start time. */
const writeKeys = (page, ctx, prefix, count) =>
  page.evaluate(
    async ({ c, prefix, count }) => {
      const started = {};
      for (let i = 0; i < count; i++) {
        const key = `${prefix}${i}`;
        started[key] = performance.timeOrigin + performance.now();
        await window.tabnode.execute(c, 'set', { key, value: `value of ${key}` });
      }
      return started;
    },
    { c: ctx, prefix, count },
  );

test('two tabs converge on kv-store through the relay, and a reload loses nothing', async () => {
  const a = await openNode(env.browser, env.stack.url, { name: 'A' });
  const b = await openNode(env.browser, env.stack.url, { name: 'B' });
  assert.notEqual(await a.page.evaluate(() => window.tabnode.peerId), await b.page.evaluate(() => window.tabnode.peerId));

  const appId = await installKvStore(a.page);
  assert.equal(await installKvStore(b.page), appId, 'the app id is the hash of the same binary');
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
  assert.equal(await b.page.evaluate((inv) => window.tabnode.join(inv), invitation), ctx);

  // B catches up with A's initial state before writing.
  const aStart = await checkpoint(a.page, ctx);
  await eventually('B to receive the context state', async () => {
    const cp = await checkpoint(b.page, ctx);
    return { ok: cp.rootHash === aStart.rootHash, cp };
  });

  await recordArrivals(a.page, ctx);
  await recordArrivals(b.page, ctx);
  const [sentByA] = await Promise.all([
    writeKeys(a.page, ctx, 'a', KEYS_EACH),
    writeKeys(b.page, ctx, 'b', KEYS_EACH),
  ]);

  const converged = await eventually('both tabs to hold the same 200 entries and root', async () => {
    const [ca, cb] = [await checkpoint(a.page, ctx), await checkpoint(b.page, ctx)];
    const [ea, eb] = [await entries(a.page, ctx), await entries(b.page, ctx)];
    const ok =
      Object.keys(ea).length === 2 * KEYS_EACH &&
      Object.keys(eb).length === 2 * KEYS_EACH &&
      ca.rootHash === cb.rootHash &&
      JSON.stringify(ca.heads) === JSON.stringify(cb.heads);
    return { ok, ca, cb, ea, eb, sizes: [Object.keys(ea).length, Object.keys(eb).length] };
  });
  assert.deepEqual(converged.ea, converged.eb);
  for (const prefix of ['a', 'b']) {
    for (let i = 0; i < KEYS_EACH; i++) {
      assert.equal(converged.ea[`${prefix}${i}`], `value of ${prefix}${i}`);
    }
  }
  assert.ok(converged.ca.rootHash, 'the context has a root hash');

  // Latency from A's execute to B's event for the same key.
  const arrivedAtB = await b.page.evaluate(() => window.arrivals);
  const latencies = Object.keys(sentByA)
    .filter((k) => arrivedAtB[k] !== undefined)
    .map((k) => arrivedAtB[k] - sentByA[k]);
  assert.equal(latencies.length, KEYS_EACH, 'B saw an event for every key A wrote');
  console.log(
    `A execute -> B event over ${latencies.length} keys: median ${percentile(latencies, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(latencies, 95).toFixed(1)} ms`,
  );

  // B reloads: everything is read back from IndexedDB, and A's next write still reaches it.
  await b.page.reload();
  await waitForNode(b.page);
  assert.deepEqual(await checkpoint(b.page, ctx), converged.cb, 'checkpoint restored from IndexedDB');
  assert.deepEqual(await entries(b.page, ctx), converged.ea, 'entries restored from IndexedDB');
  await a.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'after-reload', value: 'still here' }), ctx);
  const after = await eventually('A write after the reload to reach B', async () => {
    const e = await entries(b.page, ctx);
    return { ok: e['after-reload'] === 'still here', size: Object.keys(e).length };
  });
  assert.equal(after.size, 2 * KEYS_EACH + 1);

  await a.context.close();
  await b.context.close();
});

test('bad input gets a clear, typed error and changes nothing', async () => {
  const { page, context } = await openNode(env.browser, env.stack.url, { name: 'C' });
  const appId = await installKvStore(page);
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  const before = await checkpoint(page, ctx);
  const failure = (fn, arg) =>
    page.evaluate(
      async ({ fn, arg }) => {
        try {
          await new Function('node', 'arg', fn)(window.tabnode, arg);
          return null;
        } catch (e) {
          return { name: e.name, message: e.message };
        }
      },
      { fn, arg },
    );

  const badInvite = await failure('return node.join("not an invitation")');
  assert.equal(badInvite?.name, 'BadInvitation', JSON.stringify(badInvite));
  const noMethod = await failure('return node.execute(arg, "no_such_method", {})', ctx);
  assert.equal(noMethod?.name, 'MethodNotFound', JSON.stringify(noMethod));
  assert.match(noMethod.message, /no_such_method/);
  const notObject = await failure('return node.execute(arg, "set", [1, 2])', ctx);
  assert.equal(notObject?.name, 'BadArgs', JSON.stringify(notObject));
  const badApp = await failure('return node.installApp(new Uint8Array([0, 97, 115, 109, 9, 9]))');
  assert.equal(badApp?.name, 'InvalidApp', JSON.stringify(badApp));
  const badId = await failure('return node.execute("nope", "get", {})');
  assert.equal(badId?.name, 'BadId', JSON.stringify(badId));
  assert.deepEqual(await checkpoint(page, ctx), before, 'failed calls changed nothing');
  await context.close();
});

test('the audit trail in IndexedDB finds a flipped byte, and replay reaches the same root', async () => {
  const { page, context } = await openNode(env.browser, env.stack.url, { name: 'D' });
  const appId = await installKvStore(page);
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  for (let i = 0; i < 4; i++) {
    await page.evaluate(({ c, i }) => window.tabnode.execute(c, 'set', { key: `k${i}`, value: 'v' }), { c: ctx, i });
  }
  const records = await page.evaluate((c) => window.tabnode.audit(c), ctx);
  assert.deepEqual(records.map((r) => r.method), ['init', 'set', 'set', 'set', 'set']);
  assert.ok(records.every((r) => r.outcome === 'ok' && r.executor === records[0].executor));
  assert.deepEqual(await page.evaluate((c) => window.tabnode.verifyAudit(c), ctx), {
    ok: true,
    records: 5,
    badSeq: null,
    reason: null,
  });
  const replay = await page.evaluate((c) => window.tabnode.replay(c), ctx);
  assert.equal(replay.matches, true, JSON.stringify(replay));
  assert.equal(replay.rootHash, (await checkpoint(page, ctx)).rootHash);

  // Reads' records are shown at once, and in IndexedDB within about 100 ms, chained after the rest.
  for (let i = 0; i < 3; i++) await page.evaluate((c) => window.tabnode.execute(c, 'get', { key: 'k0' }), ctx);
  const shown = (await page.evaluate((c) => window.tabnode.audit(c), ctx)).map((r) => r.method);
  assert.deepEqual(shown.slice(-3), ['get', 'get', 'get']);
  await page.waitForFunction(async (n) => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('tabnode');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const stored = await new Promise((resolve) => {
      const request = db.transaction('audit').objectStore('audit').count();
      request.onsuccess = () => resolve(request.result);
    });
    db.close();
    return stored === n;
  }, shown.length, { timeout: 5_000 });
  const verified = await page.evaluate((c) => window.tabnode.verifyAudit(c), ctx);
  assert.ok(verified.ok && verified.records === shown.length, JSON.stringify(verified));

  // Flip one byte of record 2, directly in IndexedDB, from another connection.
  await page.evaluate(async () => {
    const done = (request) =>
      new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const db = await done(indexedDB.open('tabnode'));
    const tx = db.transaction('audit', 'readwrite');
    const store = tx.objectStore('audit');
    const [keys, values] = [await done(store.getAllKeys()), await done(store.getAll())];
    const value = new Uint8Array(values[2]);
    value[value.length - 70] ^= 1;
    store.put(value, keys[2]);
    await new Promise((resolve) => (tx.oncomplete = resolve));
    db.close();
  });
  const report = await page.evaluate((c) => window.tabnode.verifyAudit(c), ctx);
  assert.equal(report.ok, false);
  assert.equal(report.badSeq, 2, JSON.stringify(report));
  await context.close();
});

test('a second console tab on the same store is the same node, through the first; another store name is another node', async () => {
  const context = await env.browser.newContext();
  const first = await context.newPage();
  await first.goto(env.stack.url);
  await waitForNode(first);
  const second = await context.newPage();
  await second.goto(env.stack.url);
  await waitForNode(second); // no StoreLocked: the console opens the node with tabnode-web/tabs
  const key = (page) => page.evaluate(() => window.tabnode.publicKey);
  const hosts = (page) => page.evaluate(() => window.tabnode.isHost);
  assert.equal(await key(second), await key(first), 'the same store is the same node');
  assert.deepEqual([await hosts(first), await hosts(second)], [true, false], 'the first tab runs it');

  const third = await context.newPage();
  await third.goto(`${env.stack.url}?db=second`);
  await waitForNode(third);
  // A development server (scripts/serve.mjs) lets the URL set the store, and the page says so.
  assert.match(await third.textContent('#status'), /store "second" .*development: db from the URL/);
  assert.notEqual(await key(third), await key(first), 'another store is another node');
  assert.equal(await hosts(third), true, 'a store of its own: this tab runs it');

  const firstKey = await key(first);
  await first.close(); // releases the host lock
  await eventually('the second tab to run the node', () => hosts(second));
  assert.equal(await key(second), firstKey, 'the same node, now in this tab');
  await context.close();
});

test('secret keys are sealed at rest under a non-extractable WebCrypto key, and a reload opens them', async () => {
  const { page, context } = await openNode(env.browser, env.stack.url, { name: 'E' });
  const appId = await installKvStore(page);
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  const publicKey = await page.evaluate(() => window.tabnode.publicKey);
  const atRest = await page.evaluate(async () => {
    const done = (request) =>
      new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const db = await done(indexedDB.open('tabnode'));
    const values = await done(db.transaction('keys').objectStore('keys').getAll());
    db.close();
    const vault = await done(indexedDB.open('tabnode-vault'));
    const key = await done(vault.transaction('keys').objectStore('keys').get('tabnode'));
    vault.close();
    const exported = await crypto.subtle.exportKey('raw', key).then(() => 'exported', (e) => e.name);
    return { lengths: values.map((v) => v.length), extractable: key.extractable, type: key.type, exported };
  });
  // node key, context key and context secret: 32 bytes each, sealed as 12 (iv) + 32 + 16 (tag).
  assert.deepEqual(atRest.lengths, [60, 60, 60], JSON.stringify(atRest));
  assert.equal(atRest.extractable, false);
  assert.equal(atRest.type, 'secret');
  assert.equal(atRest.exported, 'InvalidAccessError', 'the vault key cannot be read out');
  await page.reload();
  await waitForNode(page);
  assert.equal(await page.evaluate(() => window.tabnode.publicKey), publicKey, 'the sealed node key opens again');
  assert.ok((await checkpoint(page, ctx)).rootHash);
  await context.close();
});
