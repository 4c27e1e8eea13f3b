// Two pages, one running guests on the browser's own WebAssembly engine and one on wasmi,
// write concurrently to one context through a real relay and converge on the same entries,
// heads and root: the engines agree on every call and every merge (docs/engines.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpoint, entries, eventually, installKvStore, openNode, useStack } from './browser.mjs';

const KEYS_EACH = 40;
const env = useStack();

const writeKeys = (page, ctx, prefix) =>
  page.evaluate(
    async ({ c, prefix, count }) => {
      for (let i = 0; i < count; i++) {
        // Every third key is written by both pages: concurrent writes to one key merge alike.
        const key = i % 3 === 0 ? `both${i}` : `${prefix}${i}`;
        await window.tabnode.execute(c, 'set', { key, value: `${prefix} wrote ${i}` });
        if (i % 10 === 9) await window.tabnode.execute(c, 'remove', { key: `${prefix}${i - 1}` });
      }
    },
    { c: ctx, prefix, count: KEYS_EACH },
  );

test('a page on the browser engine and a page on wasmi converge on one root', async () => {
  const fast = await openNode(env.browser, `${env.stack.url}?engine=browser`, { name: 'browser' });
  const slow = await openNode(env.browser, `${env.stack.url}?engine=wasmi`, { name: 'wasmi' });
  assert.equal(await fast.page.evaluate(() => window.tabnode.engine), 'browser');
  assert.equal(await slow.page.evaluate(() => window.tabnode.engine), 'wasmi');
  assert.match(await fast.page.textContent('#engine'), /browser/);

  const appId = await installKvStore(fast.page);
  await installKvStore(slow.page);
  const ctx = await fast.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  const invitation = await fast.page.evaluate((c) => window.tabnode.invite(c), ctx);
  await slow.page.evaluate((inv) => window.tabnode.join(inv), invitation);
  const start = await checkpoint(fast.page, ctx);
  await eventually('the wasmi page to have the state', async () => ({
    ok: (await checkpoint(slow.page, ctx)).rootHash === start.rootHash,
  }));

  await Promise.all([writeKeys(fast.page, ctx, 'f'), writeKeys(slow.page, ctx, 's')]);

  const end = await eventually('both pages to hold the same entries, heads and root', async () => {
    const [cf, cs] = [await checkpoint(fast.page, ctx), await checkpoint(slow.page, ctx)];
    const [ef, es] = [await entries(fast.page, ctx), await entries(slow.page, ctx)];
    const ok = cf.rootHash === cs.rootHash && JSON.stringify(cf.heads) === JSON.stringify(cs.heads)
      && JSON.stringify(ef) === JSON.stringify(es);
    return { ok, cf, cs, sizes: [Object.keys(ef).length, Object.keys(es).length], ef };
  }, { ms: 120_000 });
  // Each page's own keys, minus its removals, plus the shared ones.
  assert.ok(Object.keys(end.ef).some((k) => k.startsWith('f')) && Object.keys(end.ef).some((k) => k.startsWith('s')));
  assert.ok(Object.keys(end.ef).some((k) => k.startsWith('both')));
  assert.ok(!('f8' in end.ef) && !('s8' in end.ef), 'removals reached both');

  await fast.context.close();
  await slow.context.close();
});
