// Calimero parity across two pages and a real relay (docs/parity.md). Event handlers: a write's
// event names a handler (`emit_with_handler`, the handler-counter guest); the page that wrote it
// runs it after the write, the page that applies it does not (merod 0.10's rule), a failing
// handler is reported and loses nothing, and both pages end on one root. User and frozen storage (the
// user-notes guest): each page's own note, signed by its node, and frozen notes reach the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpoint, eventually, openNode, useStack } from './browser.mjs';

const env = useStack();

const call = (page, ctx, method, args) =>
  page.evaluate(({ c, method, args }) => window.tabnode.execute(c, method, args), { c: ctx, method, args });

/** Handler runs by every member, and by the page asked; null before it has the state. */
const counts = async (page, ctx) => {
  const output = (method) => call(page, ctx, method, {}).then((r) => r.output, () => null);
  return { all: await output('handled'), here: await output('handled_here') };
};

/** Installs the guest `apps/NAME.wasm` (tests/apps/dist) in the page; resolves to its app id. */
const install = (page, name) =>
  page.evaluate(async (n) => {
    const bytes = new Uint8Array(await (await fetch(`apps/${n}.wasm`)).arrayBuffer());
    return window.tabnode.installApp(bytes);
  }, name);

/** A context of the guest NAME created in A's page and joined by B's; resolves to its id. */
async function contextOf(name, a, b) {
  const app = await install(a.page, name);
  await install(b.page, name);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), app);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
  await b.page.evaluate((inv) => window.tabnode.join(inv), invitation);
  return ctx;
}

/** Collects this page's `handler` events of `ctx` in `window.handlerRuns`. */
const recordHandlerRuns = (page, ctx) =>
  page.evaluate((c) => {
    window.handlerRuns = [];
    window.tabnode.subscribe(c, (e) => e.type === 'handler' && window.handlerRuns.push(e));
  }, ctx);

const handlerRuns = (page) => page.evaluate(() => window.handlerRuns);

test('a write\'s handlers run on the page that wrote it, not on the page that applies it; a failing one is reported', async () => {
  const [a, b] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
  ];
  const ctx = await contextOf('handler_counter', a, b);
  await eventually('B to have the state', async () => (await counts(b.page, ctx)).all === 0);
  for (const page of [a.page, b.page]) await recordHandlerRuns(page, ctx);

  for (const i of [1, 2, 3]) await call(a.page, ctx, 'set', { key: `k${i}`, value: `v${i}` });
  assert.deepEqual(await counts(a.page, ctx), { all: 3, here: 3 }, 'A ran count after each of its writes');
  await eventually('B to have A\'s writes and A\'s handler runs', async () => {
    const cb = await counts(b.page, ctx);
    return { ok: cb.all === 3, cb };
  });
  assert.deepEqual(await counts(b.page, ctx), { all: 3, here: 0 }, 'the page that applies them runs none');
  assert.deepEqual((await call(b.page, ctx, 'seen', {})).output, { k1: 'v1', k2: 'v2', k3: 'v3' });

  await call(a.page, ctx, 'set_refused', { key: 'r', value: 'kept' });
  const runs = await handlerRuns(a.page);
  assert.equal(runs.length, 5);
  const [refused, counted] = runs.slice(3);
  assert.equal(refused.handler, 'refuse');
  assert.equal(refused.handlerDelta, null);
  assert.match(refused.error, /^AppError/);
  assert.equal(counted.handler, 'count');
  assert.equal(counted.error, null);
  await eventually('A and B on one root, the write that named the failed handler kept', async () => {
    const [pa, pb] = [await checkpoint(a.page, ctx), await checkpoint(b.page, ctx)];
    const kept = (await call(b.page, ctx, 'get', { key: 'r' })).output === 'kept';
    const [ca, cb] = [await counts(a.page, ctx), await counts(b.page, ctx)];
    return { ok: kept && ca.all === 4 && cb.all === 4 && pa.rootHash === pb.rootHash, ca, cb };
  });
  assert.deepEqual(await handlerRuns(b.page), [], 'B wrote none of them: it ran none');
  for (const p of [a, b]) await p.context.close();
});

test('each page\'s user-storage note and the frozen notes reach the other page', async () => {
  const [a, b] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
  ];
  const ctx = await contextOf('user_notes', a, b);
  const keyOf = (page) => page.evaluate(() => window.tabnode.publicKey);
  const [keyA, keyB] = [await keyOf(a.page), await keyOf(b.page)];
  const noteOf = (page, owner) => call(page, ctx, 'note_of', { owner }).then((r) => r.output, () => undefined);
  await eventually('B to have the state', async () => (await noteOf(b.page, keyA)) === null);
  await call(a.page, ctx, 'set_mine', { note: 'from A' });
  const hash = (await call(a.page, ctx, 'freeze', { note: 'pinned' })).output;
  await call(b.page, ctx, 'set_mine', { note: 'from B' });
  await eventually('each page to hold the other\'s note, and the frozen one', async () => {
    const [onB, onA] = [await noteOf(b.page, keyA), await noteOf(a.page, keyB)];
    const frozen = await call(b.page, ctx, 'frozen', { hash }).then((r) => r.output, () => null);
    const [pa, pb] = [await checkpoint(a.page, ctx), await checkpoint(b.page, ctx)];
    return { ok: onB === 'from A' && onA === 'from B' && frozen === 'pinned' && pa.rootHash === pb.rootHash, onB, onA, frozen };
  });
  for (const p of [a, b]) await p.context.close();
});
