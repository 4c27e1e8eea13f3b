// Joining from a link alone: a page that never installed the app an invitation names joins
// through a real relay; its node fetches the app from the member, part by part (progress in
// `appProgress` events), checks it against the app id, installs it and converges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpoint, entries, eventually, installKvStore, openNode, useStack } from './browser.mjs';

const env = useStack();

test('a page that never installed the app joins from a link and converges', async () => {
  const a = await openNode(env.browser, env.stack.url, { name: 'A' });
  const b = await openNode(env.browser, env.stack.url, { name: 'B' });
  const appId = await installKvStore(a.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  await a.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'k', value: 'from A' }), ctx);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);

  // B has no app: creating a context with A's fails as it would before the join.
  const before = await b.page.evaluate(async (id) => {
    try {
      await window.tabnode.createContext(id, {});
      return null;
    } catch (e) {
      return e.name;
    }
  }, appId);
  assert.equal(before, 'AppNotInstalled');

  await b.page.evaluate(() => {
    window.appProgress = [];
    window.tabnode.subscribe(null, (e) => e.type === 'appProgress' && window.appProgress.push(e));
  });
  assert.equal(await b.page.evaluate((inv) => window.tabnode.join(inv), invitation), ctx);
  const settled = await eventually('B to hold the app and the state', async () => {
    const [ea, eb] = await Promise.all([a, b].map((p) => entries(p.page, ctx)));
    return { ok: JSON.stringify(ea) === JSON.stringify(eb) && eb.k === 'from A', ea, eb };
  });
  assert.deepEqual(settled.eb, { k: 'from A' });

  const progress = await b.page.evaluate(() => window.appProgress);
  assert.ok(progress.length >= 2, `part by part: ${JSON.stringify(progress)}`);
  const last = progress.at(-1);
  assert.equal(last.appId, appId);
  assert.equal(last.contextId, ctx);
  assert.equal(last.received, last.total);
  assert.ok(progress.every((p, i) => i === 0 || p.received > progress[i - 1].received));

  // A member now: B writes, and A sees it.
  await b.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'b', value: 'from B' }), ctx);
  await eventually('A and B to converge', async () => {
    const cps = await Promise.all([a, b].map((p) => checkpoint(p.page, ctx)));
    const ea = await entries(a.page, ctx);
    return { ok: ea.b === 'from B' && cps[0].rootHash === cps[1].rootHash, cps, ea };
  });
  for (const p of [a, b]) await p.context.close();
});
