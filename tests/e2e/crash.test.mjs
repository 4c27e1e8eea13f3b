// Nothing acknowledged is lost: a page is closed, or its renderer crashes, in the middle of a
// burst of writes; after reopening, every acknowledged call is there and none is there in part.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entries, installKvStore, useStack, waitForNode } from './browser.mjs';

const env = useStack();

/** Starts a burst of writes in the page; `acked` collects each key once its call resolved. */
async function burst(page, ctx, acked) {
  await page.exposeFunction('acknowledged', (key) => acked.push(key));
  await page.evaluate((c) => {
    (async () => {
      for (let i = 0; i < 500; i++) {
        const key = `burst-${i}`;
        await window.tabnode.execute(c, 'set', { key, value: `value ${i}` });
        await window.acknowledged(key);
      }
    })();
  }, ctx);
}

async function waitFor(acked, n) {
  const deadline = Date.now() + 60_000;
  while (acked.length < n) {
    if (Date.now() > deadline) throw new Error(`only ${acked.length} writes acknowledged`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function reopenAndCheck(context, ctx, acked) {
  const page = await context.newPage();
  await page.goto(env.stack.url);
  await waitForNode(page);
  const stored = await entries(page, ctx);
  for (const key of acked) assert.ok(key in stored, `acknowledged ${key} is there`);
  const report = await page.evaluate((c) => window.tabnode.verifyAudit(c), ctx);
  assert.equal(report.ok, true, JSON.stringify(report));
  const replay = await page.evaluate((c) => window.tabnode.replay(c), ctx);
  assert.equal(replay.matches, true, 'heads, deltas and root agree: no call is there in part');
  assert.equal(replay.deltas, Object.keys(stored).length + 1, 'one delta per stored write, plus init');
  return { page, stored };
}

for (const how of ['closed', 'crashed']) {
  test(`a page ${how} mid-burst loses no acknowledged write`, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    await page.goto(env.stack.url);
    await waitForNode(page);
    const ctx = await page.evaluate(async (id) => window.tabnode.createContext(id, {}), await installKvStore(page));
    const acked = [];
    await burst(page, ctx, acked);
    await waitFor(acked, 40);
    if (how === 'closed') {
      await page.close({ runBeforeUnload: false });
    } else {
      // Crash the renderer where it stands (DevTools' Page.crash), mid-call.
      const cdp = await context.newCDPSession(page);
      const crashed = new Promise((resolve) => page.once('crash', () => resolve(true)));
      cdp.send('Page.crash').catch(() => {});
      assert.equal(await Promise.race([crashed, new Promise((r) => setTimeout(() => r(false), 10_000))]), true, 'the renderer crashed');
      await page.close().catch(() => {});
    }
    const before = acked.length;
    const { page: again, stored } = await reopenAndCheck(context, ctx, acked);
    assert.ok(Object.keys(stored).length >= before, `${Object.keys(stored).length} stored, ${before} acknowledged`);
    console.log(`${how}: ${before} acknowledged, ${Object.keys(stored).length} stored`);
    await again.close();
    await context.close();
  });
}
