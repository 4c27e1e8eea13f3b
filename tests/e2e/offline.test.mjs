// Offline first: the relay goes away, or one page's network does (Playwright's setOffline), the
// pages keep editing (the same keys too), and they converge when it is back; a page that joins
// late catches up from any member online.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkpoint, entries, eventually, installKvStore, openNode, sharedContext, useStack } from './browser.mjs';

// The relay restarts under the same peer id: it keeps its key in a file.
const env = useStack(async () => ({
  relayKeyFile: path.join(await mkdtemp(path.join(tmpdir(), 'tabnode-offline-')), 'relay.key'),
}));

// The relay is the only path here (`?direct=off`: no WebRTC between the pages), so stopping it
// takes both pages offline; direct links have their own test (peering.test.mjs).
const url = () => `${env.stack.url}?direct=off`;

const set = (page, ctx, key, value) => page.evaluate(({ ctx, key, value }) => window.tabnode.execute(ctx, 'set', { key, value }), { ctx, key, value });

test('pages edit while the relay is down and converge when it is back; a late joiner catches up', async () => {
  const a = await openNode(env.browser, url(), { name: 'A' });
  const b = await openNode(env.browser, url(), { name: 'B' });
  const appId = await installKvStore(a.page);
  await installKvStore(b.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  await b.page.evaluate((inv) => window.tabnode.join(inv), await a.page.evaluate((c) => window.tabnode.invite(c), ctx));
  await eventually('B to have the state', async () => (await checkpoint(b.page, ctx)).heads.length > 0);

  // The relay goes down: both pages are offline, and calls keep working on each.
  await env.stack.stopRelay();
  await eventually('both pages to see the relay go', async () => {
    const peers = await Promise.all([a, b].map((p) => p.page.evaluate(() => window.tabnode.peers().length)));
    return peers.every((n) => n === 0);
  }, { ms: 30_000 });
  for (let i = 0; i < 5; i++) {
    await set(b.page, ctx, `offline-${i}`, 'written by B');
    await set(a.page, ctx, `online-${i}`, 'written by A');
  }
  await set(a.page, ctx, 'shared', 'from A');
  await set(b.page, ctx, 'shared', 'from B');
  assert.equal(Object.keys(await entries(b.page, ctx)).length, 6, 'B has only its own writes meanwhile');
  await env.stack.startRelay();

  const both = await eventually('A and B to converge after B is back', async () => {
    const [ea, eb] = [await entries(a.page, ctx), await entries(b.page, ctx)];
    const [ca, cb] = [await checkpoint(a.page, ctx), await checkpoint(b.page, ctx)];
    const ok = Object.keys(ea).length === 11 && JSON.stringify(ea) === JSON.stringify(eb) && JSON.stringify(ca.heads) === JSON.stringify(cb.heads);
    return { ok, ea, eb };
  }, { ms: 90_000 });
  assert.equal(both.ea['offline-4'], 'written by B');
  assert.equal(both.eb['online-4'], 'written by A');
  assert.ok(['from A', 'from B'].includes(both.ea.shared), 'one value wins the same key on both');

  const late = await openNode(env.browser, url(), { name: 'late' });
  await installKvStore(late.page);
  await late.page.evaluate((inv) => window.tabnode.join(inv), await a.page.evaluate((c) => window.tabnode.invite(c), ctx));
  await eventually('the late joiner to catch up', async () => {
    const e = await entries(late.page, ctx).catch(() => ({}));
    return { ok: JSON.stringify(e) === JSON.stringify(both.ea), size: Object.keys(e).length };
  }, { ms: 60_000 });
  for (const p of [a, b, late]) await p.context.close();
});

test('a page that goes offline (setOffline) edits the keys another edits; all converge when it is back, and a fourth page catches up late', async () => {
  const pages = [];
  for (const name of ['A', 'B', 'C']) pages.push(await openNode(env.browser, url(), { name }));
  const [pa, pb, pc] = pages;
  const ctx = await sharedContext(pages.map((p) => p.page));
  await eventually('B and C to have the state', async () => {
    const heads = await Promise.all([pb, pc].map(async (p) => (await checkpoint(p.page, ctx)).heads.length));
    return heads.every((n) => n > 0);
  });

  // B's browser context goes offline: what A writes meanwhile does not reach it.
  await pb.context.setOffline(true);
  for (let i = 0; i < 5; i++) {
    await set(pa.page, ctx, `k${i}`, `A${i}`);
    await set(pb.page, ctx, `k${i}`, `B${i}`);
  }
  await set(pb.page, ctx, 'only-b', 'written offline');
  await eventually('C to have A\'s writes', async () => (await entries(pc.page, ctx)).k4 === 'A4');
  await new Promise((r) => setTimeout(r, 2_000));
  const bOffline = await entries(pb.page, ctx);
  assert.equal(bOffline.k4, 'B4', 'B sees its own write while offline');
  assert.equal((await entries(pa.page, ctx))['only-b'], undefined, 'nothing of B\'s reached A');

  await pb.context.setOffline(false);
  const all = await eventually('A, B and C to converge', async () => {
    const es = await Promise.all(pages.map((p) => entries(p.page, ctx)));
    const cs = await Promise.all(pages.map((p) => checkpoint(p.page, ctx)));
    const same = es.every((e) => JSON.stringify(e) === JSON.stringify(es[0])) && cs.every((cp) => JSON.stringify(cp.heads) === JSON.stringify(cs[0].heads) && cp.rootHash === cs[0].rootHash);
    return { ok: same && es[0]['only-b'] === 'written offline', es };
  }, { ms: 90_000 });
  for (let i = 0; i < 5; i++) assert.ok([`A${i}`, `B${i}`].includes(all.es[0][`k${i}`]), `k${i} holds one of the two writes`);

  const late = await openNode(env.browser, url(), { name: 'D' });
  await installKvStore(late.page);
  await late.page.evaluate((inv) => window.tabnode.join(inv), await pa.page.evaluate((c) => window.tabnode.invite(c), ctx));
  await eventually('the fourth page to catch up', async () => {
    const e = await entries(late.page, ctx).catch(() => ({}));
    return { ok: JSON.stringify(e) === JSON.stringify(all.es[0]), size: Object.keys(e).length };
  }, { ms: 60_000 });
  for (const p of [...pages, late]) await p.context.close();
});
