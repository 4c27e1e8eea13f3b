// The membership log across three pages and a real relay: an admin removes a member and
// changes a role; every page applies it, the removed member's node refuses its writes and
// reads nothing written after its removal, and the others keep converging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpoint, entries, eventually, failure, openNode, sharedContext, useStack } from './browser.mjs';
import { nearRpcDouble } from './near-rpc-double.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const env = useStack();

const call = (page, ctx, method, args) =>
  page.evaluate(({ c, method, args }) => window.tabnode.execute(c, method, args), { c: ctx, method, args });

const members = (page, ctx) => page.evaluate((c) => window.tabnode.members(c), ctx);

test('an admin removes a member and changes a role; every page follows the log, the removed one reads nothing new', async () => {
  const [a, b, c] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
    await openNode(env.browser, env.stack.url, { name: 'C' }),
  ];
  const ctx = await sharedContext([a, b, c].map((p) => p.page));
  const keyOf = (p) => p.page.evaluate(() => window.tabnode.publicKey);
  const [keyA, keyB, keyC] = [await keyOf(a), await keyOf(b), await keyOf(c)];

  // Joiners announce themselves once they have the state: A knows all three.
  await eventually('A to know B and C as members', async () => {
    const list = await members(a.page, ctx);
    return { ok: list.length === 3, list };
  });
  await call(b.page, ctx, 'set', { key: 'k1', value: 'by B, before' });
  await eventually('everyone to have k1', async () => {
    const all = await Promise.all([a, b, c].map((p) => entries(p.page, ctx)));
    return { ok: all.every((e) => e.k1 === 'by B, before'), all };
  });

  await b.page.evaluate((x) => {
    window.membershipEvents = [];
    window.tabnode.subscribe(x, (e) => e.type === 'membership' && window.membershipEvents.push(e));
  }, ctx);
  await a.page.evaluate(({ x, member }) => window.tabnode.removeMember(x, member), { x: ctx, member: keyB });
  const told = await eventually('B to hear it was removed', async () => {
    const events = await b.page.evaluate(() => window.membershipEvents);
    return { ok: events.some((e) => e.op.op === 'remove' && e.op.member === keyB && e.by === keyA && e.counted), events };
  });
  assert.ok(told.events.length >= 1);
  const refused = await failure(b.page, ctx, 'set', { key: 'k2', value: 'by B, after' });
  assert.equal(refused?.name, 'Unauthorized', JSON.stringify(refused));
  assert.match(refused.message, /removed/);
  assert.deepEqual((await members(a.page, ctx)).map((m) => m.key).sort(), [keyA, keyC].sort());

  // A makes C a reader: C's writes are refused; made a member again, C writes and all converge.
  await a.page.evaluate(({ x, member }) => window.tabnode.setRole(x, member, 'reader'), { x: ctx, member: keyC });
  await eventually('C to be a reader', async () => {
    const f = await failure(c.page, ctx, 'set', { key: 'k3', value: 'by C' });
    return { ok: f?.name === 'Unauthorized', f };
  });
  await a.page.evaluate(({ x, member }) => window.tabnode.setRole(x, member, 'member'), { x: ctx, member: keyC });
  await eventually('C to write again', async () => ({ ok: (await failure(c.page, ctx, 'set', { key: 'k3', value: 'by C' })) === null }));
  const settled = await eventually('A and C to converge', async () => {
    const cps = await Promise.all([a, c].map((p) => checkpoint(p.page, ctx)));
    const all = await Promise.all([a, c].map((p) => entries(p.page, ctx)));
    const same = cps[0].rootHash === cps[1].rootHash && JSON.stringify(cps[0].heads) === JSON.stringify(cps[1].heads);
    return { ok: same && all.every((e) => e.k3 === 'by C'), cps, all };
  });
  assert.deepEqual(settled.all[0], { k1: 'by B, before', k3: 'by C' });
  // The removal gave the context a new secret, sealed to A and C only: B, still listening
  // through the relay, reads nothing written after it.
  assert.deepEqual(await entries(b.page, ctx), { k1: 'by B, before' });
  for (const p of [a, b, c]) {
    assert.equal((await p.page.evaluate((x) => window.tabnode.verifyAudit(x), ctx)).ok, true);
    await p.context.close();
  }
});

test('an anchored context refuses a member the anchor does not list, and reports it', async () => {
  const [a, b] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
  ];
  const ctx = await sharedContext([a.page, b.page]);
  const keyOf = (p) => p.page.evaluate(() => window.tabnode.publicKey);
  const [keyA, keyB] = [await keyOf(a), await keyOf(b)];
  await eventually('B to have the state', async () => ({ ok: (await failure(b.page, ctx, 'get', { key: 'x' })) === null }));

  await a.page.evaluate(({ x, members }) => {
    window.anchorEvents = [];
    window.tabnode.subscribe(x, (e) => e.type === 'anchorMismatch' && window.anchorEvents.push(e));
    return window.tabnode.setAnchor(x, { members, appMatches: true });
  }, { x: ctx, members: [keyA] });
  await call(b.page, ctx, 'set', { key: 'k', value: 'from B' });
  const reported = await eventually('A to refuse and report B', async () => {
    const events = await a.page.evaluate(() => window.anchorEvents);
    return { ok: events.some((e) => e.reason.includes(keyB)), events };
  });
  assert.ok(reported.events.length >= 1);
  assert.equal((await call(a.page, ctx, 'get', { key: 'k' })).output, null);

  await a.page.evaluate(({ x, members }) => window.tabnode.setAnchor(x, { members, appMatches: true }), { x: ctx, members: [keyA, keyB] });
  await eventually('B\'s write to reach A once the anchor lists B', async () => {
    const got = (await call(a.page, ctx, 'get', { key: 'k' })).output;
    return { ok: got === 'from B', got };
  });
  await a.page.evaluate((x) => window.tabnode.setAnchor(x, { members: [], appMatches: false }), ctx);
  const refused = await failure(a.page, ctx, 'get', { key: 'k' });
  assert.equal(refused?.name, 'Unauthorized', JSON.stringify(refused));
  await a.context.close();
  await b.context.close();
});

test('a context recorded on a context-config contract (a NEAR JSON-RPC test double) is anchored there', async () => {
  const wasm = await readFile(path.join(root, 'tests/apps/dist/kv_store.wasm'));
  const contexts = new Map();
  const rpc = await nearRpcDouble({ keys: new Map(), contexts });
  const url = `${env.stack.url}?nearRpc=${encodeURIComponent(rpc.url)}&nearContract=config.test.near&anchorRefreshMs=300`;
  const [a, b] = [await openNode(env.browser, url, { name: 'A' }), await openNode(env.browser, url, { name: 'B' })];
  try {
    const ctx = await sharedContext([a.page, b.page]);
    const keyOf = (p) => p.page.evaluate(() => window.tabnode.publicKey);
    const [keyA, keyB] = [await keyOf(a), await keyOf(b)];
    await eventually('B to have the state', async () => ({ ok: (await failure(b.page, ctx, 'get', { key: 'x' })) === null }));

    // The contract records the context with A alone: B's own node refuses B's calls.
    contexts.set(ctx, { members: [keyA], wasm });
    const refused = await eventually('B to read the anchor and refuse its calls', async () => {
      const f = await failure(b.page, ctx, 'get', { key: 'k' });
      return { ok: f?.name === 'Unauthorized', f };
    });
    assert.equal((await failure(b.page, ctx, 'set', { key: 'k', value: 'from B' }))?.name, 'Unauthorized');
    assert.match(refused.f.message, /not a member .* on its anchor/);
    assert.equal((await call(a.page, ctx, 'get', { key: 'k' })).output, null);
    // The contract adds B: it writes, and A takes it.
    contexts.set(ctx, { members: [keyA, keyB], wasm });
    await eventually('B\'s write to reach A', async () => {
      await failure(b.page, ctx, 'set', { key: 'k', value: 'from B' });
      const got = (await call(a.page, ctx, 'get', { key: 'k' })).output;
      return { ok: got === 'from B', got };
    });
    // The contract records another binary: the app does not run.
    contexts.set(ctx, { members: [keyA, keyB], wasm: Buffer.concat([wasm, Buffer.from([0])]) });
    await eventually('A to refuse its own calls', async () => {
      const f = await failure(a.page, ctx, 'get', { key: 'k' });
      return { ok: f?.name === 'Unauthorized' && /anchor/.test(f.message), f };
    });
  } finally {
    await a.context.close();
    await b.context.close();
    await rpc.close();
  }
});

test('an admin upgrades the app with a migration; the other page gets the binary, migrates and keeps its data, a member may not', async () => {
  const [a, b] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
  ];
  const ctx = await sharedContext([a.page, b.page]);
  await call(a.page, ctx, 'set', { key: 'kept', value: 'from version 1' });
  // (B's calls fail with NotSynced until the state arrives.)
  await eventually('B to have A\'s item', async () => (await entries(b.page, ctx).catch(() => ({}))).kept === 'from version 1');
  assert.equal((await call(b.page, ctx, 'schema', {})).output, '1');

  const upgrade = (page, migrate) =>
    page.evaluate(async ({ c, migrate }) => {
      const bytes = new Uint8Array(await (await fetch('apps/kv_store_v2.wasm')).arrayBuffer());
      try {
        return { op: await window.tabnode.upgradeApp(c, bytes, migrate) };
      } catch (e) {
        return { name: e.name, message: e.message };
      }
    }, { c: ctx, migrate });
  const refused = await upgrade(b.page, 'migrate_v1_to_v2');
  assert.equal(refused.name, 'Unauthorized', `a member may not upgrade: ${JSON.stringify(refused)}`);
  const wrong = await upgrade(a.page, 'no_such_export');
  assert.equal(wrong.name, 'MethodNotFound', JSON.stringify(wrong));
  assert.equal((await call(a.page, ctx, 'schema', {})).output, '1', 'a refused upgrade changes nothing');

  const done = await upgrade(a.page, 'migrate_v1_to_v2');
  assert.ok(done.op, JSON.stringify(done));
  assert.equal((await call(a.page, ctx, 'schema', {})).output, '2');
  await eventually('B to run version 2 on the migrated state', async () => {
    const schema = await call(b.page, ctx, 'schema', {}).then((r) => r.output, () => null);
    return { ok: schema === '2', schema };
  });
  assert.deepEqual(await entries(b.page, ctx), { kept: 'from version 1' });
  await call(b.page, ctx, 'set', { key: 'new', value: 'from version 2' });
  await eventually('A and B to converge on version 2', async () => {
    const [ea, eb] = [await entries(a.page, ctx), await entries(b.page, ctx)];
    const [ca, cb] = [await checkpoint(a.page, ctx), await checkpoint(b.page, ctx)];
    return { ok: ea.new === 'from version 2' && JSON.stringify(ea) === JSON.stringify(eb) && ca.rootHash === cb.rootHash, ea, eb };
  });
  for (const p of [a, b]) await p.context.close();
});

test('selective disclosure across pages: a member sees only the hash of a withheld payload, asks for it, and gets the payload that hashes to it', async () => {
  const [a, b] = [
    await openNode(env.browser, env.stack.url, { name: 'A' }),
    await openNode(env.browser, env.stack.url, { name: 'B' }),
  ];
  const ctx = await sharedContext([a.page, b.page]);
  await eventually('B to have the state', async () => (await checkpoint(b.page, ctx)).heads.length > 0);
  await b.page.evaluate((c) => {
    window.heard = [];
    window.tabnode.subscribe(c, (e) => window.heard.push(e));
  }, ctx);
  await a.page.evaluate((c) => window.tabnode.setDisclosure(c, 'Inserted', { mode: 'hash' }), ctx);
  await call(a.page, ctx, 'set', { key: 'salary', value: '123456' });

  const seen = await eventually('B to hear the event without its payload', () =>
    b.page.evaluate(() => window.heard.find((e) => e.type === 'event' && e.kind === 'Inserted') ?? null));
  assert.ok(seen.withheld, `the event names the payload's hash: ${JSON.stringify(seen)}`);
  assert.ok(!JSON.stringify(seen.data ?? null).includes('123456'), `B is not given the payload: ${JSON.stringify(seen)}`);
  // The state itself is shared (disclosure is about events): B reads the value by calling get.
  assert.equal((await call(b.page, ctx, 'get', { key: 'salary' })).output, '123456');

  await b.page.evaluate(({ c, h }) => window.tabnode.requestPayload(c, h), { c: ctx, h: seen.withheld });
  const payload = await eventually('the owner to answer B', () =>
    b.page.evaluate(() => window.heard.find((e) => e.type === 'payload') ?? null));
  assert.equal(payload.hash, seen.withheld);
  assert.deepEqual(payload.data, { key: 'salary', value: '123456' });
  for (const p of [a, b]) await p.context.close();
});
