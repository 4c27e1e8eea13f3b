// A page that joins late a context with more deltas than the snapshot threshold takes a
// member's state snapshot (verified in the page before use) instead of running every delta
// through the guest, keeps it across a reload, and writes on from there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpoint, entries, eventually, installKvStore, openNode, sharedContext, useStack, waitForNode } from './browser.mjs';

const env = useStack();
// A threshold of 20 deltas, so the test makes few; the relay is the path (no direct links).
const url = () => `${env.stack.url}?direct=off&snapshot=20`;

const set = (page, ctx, key, value) => page.evaluate(({ ctx, key, value }) => window.tabnode.execute(ctx, 'set', { key, value }), { ctx, key, value });
const auditMethods = (page, ctx) => page.evaluate(async (c) => (await window.tabnode.audit(c)).map((r) => r.method), ctx);

test('a late joiner takes a verified snapshot, keeps it across a reload and writes on', async () => {
  const a = await openNode(env.browser, url(), { name: 'A' });
  const ctx = await sharedContext([a.page]);
  for (let i = 0; i < 30; i++) await set(a.page, ctx, `k${i}`, `v${i}`);
  const want = await entries(a.page, ctx);

  const late = await openNode(env.browser, url(), { name: 'late' });
  await installKvStore(late.page);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
  await late.page.evaluate((inv) => window.tabnode.join(inv), invitation);
  await eventually('the late joiner to have A\'s state', async () => {
    const e = await entries(late.page, ctx).catch(() => ({}));
    return { ok: JSON.stringify(e) === JSON.stringify(want), size: Object.keys(e).length };
  }, { ms: 60_000 });

  const methods = await auditMethods(late.page, ctx);
  assert.ok(methods.includes('sync.snapshot'), `the joiner took the snapshot: ${methods.join(', ')}`);
  assert.ok(!methods.includes('__calimero_sync_next'), 'no covered delta ran in the guest');
  const [ca, cl] = [await checkpoint(a.page, ctx), await checkpoint(late.page, ctx)];
  assert.deepEqual(cl.heads, ca.heads);
  assert.equal(cl.rootHash, ca.rootHash);
  assert.ok((await late.page.evaluate((c) => window.tabnode.verifyAudit(c), ctx)).ok);

  // The snapshot is the joiner's stored state: a reload reads it back from IndexedDB.
  await late.page.reload();
  await waitForNode(late.page);
  assert.deepEqual(await entries(late.page, ctx), want);
  const replay = await late.page.evaluate((c) => window.tabnode.replay(c), ctx);
  assert.ok(replay.matches, 'every delta is there too: replaying them gives the same root');

  await set(late.page, ctx, 'from-late', 'hello');
  await eventually('A to get the joiner\'s write', async () => (await entries(a.page, ctx))['from-late'] === 'hello', { ms: 60_000 });
  for (const p of [a, late]) await p.context.close();
});
