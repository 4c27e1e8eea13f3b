// Peering: three pages in isolated browser contexts and a real relay. Pages on the same
// context open direct WebRTC connections to each other (libp2p's private-to-private transport,
// signalled over a relayed connection) and send over them: with every pair linked the relay
// receives no gossip; a page on another context finds none of them; the relay is stopped and a
// directly linked page still gets what is written; the relay comes back and every page
// converges. Two relays: one stops for good, the other carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { entries, eventually, openNode, sharedContext, useStack } from './browser.mjs';
import { startRelay } from '../../scripts/serve.mjs';

const env = useStack(async () => ({
  relayKeyFile: path.join(await mkdtemp(path.join(tmpdir(), 'tabnode-peering-')), 'relay.key'),
}));

const set = (page, ctx, key, value) => page.evaluate(({ ctx, key, value }) => window.tabnode.execute(ctx, 'set', { key, value }), { ctx, key, value });
const connections = (page) => page.evaluate(() => window.tabnode.connections());
const peerId = (page) => page.evaluate(() => window.tabnode.peerId);

/** Three pages on one context; resolves when all have its state. */
async function threePages(url) {
  const pages = [];
  for (const name of ['A', 'B', 'C']) pages.push(await openNode(env.browser, url, { name }));
  const [a, b, c] = pages;
  const ctx = await sharedContext(pages.map((p) => p.page));
  await set(a.page, ctx, 'start', 'A');
  for (const p of [b, c]) await eventually('every page to have the state', async () => (await entries(p.page, ctx).catch(() => ({}))).start === 'A');
  return { pages, ctx };
}

test('pages link directly over WebRTC and send there; with the relay down a linked page still hears; all converge when it is back', async () => {
  const { pages, ctx } = await threePages(env.stack.url);
  const ids = await Promise.all(pages.map((p) => peerId(p.page)));
  // Each page holds a reservation at the relay (circuit relay v2): it can be dialled through it.
  await eventually('every page to hold a reservation at the relay', async () => {
    const all = await Promise.all(pages.map((p) => connections(p.page)));
    return all.every((list) => list.some((c) => c.via === 'websocket' && c.reservation));
  }, { ms: 30_000 });
  // Members keep announcing their heads through the relay; each pair links (the smaller peer id offers).
  const linked = await eventually('a direct WebRTC link between two pages', async () => {
    const all = await Promise.all(pages.map((p) => connections(p.page)));
    const pairs = all.flatMap((list, i) => list.filter((c) => c.via === 'webrtc' && ids.includes(c.peer)).map((c) => [i, ids.indexOf(c.peer)]));
    return pairs.length ? { pairs, all } : null;
  }, { ms: 60_000 });
  const [from, to] = linked.pairs[0];
  console.log(`direct links: ${JSON.stringify(linked.pairs.map(([i, j]) => `${'ABC'[i]}-${'ABC'[j]}`))}`);

  // Once every pair is linked, traffic moves off the relay: a write reaches both other pages
  // and the relay receives no gossip message meanwhile (its own count, from its metrics).
  await eventually('every pair of pages linked', async () => {
    const all = await Promise.all(pages.map((p) => connections(p.page)));
    return all.every((list, i) => ids.every((id, j) => i === j || list.some((c) => c.via === 'webrtc' && c.peer === id)));
  }, { ms: 60_000 });
  // No duplicate connections: each pair's relayed connection (the signalling's) is closed once
  // its WebRTC one is up, so the relay holds no circuit.
  await eventually('the relay to hold no circuit', async () => (await env.stack.relayMetric('tabnode_relay_circuits')) === 0, { ms: 30_000 });
  assert.ok(await env.stack.relayMetric('tabnode_relay_circuits_opened_total') >= 3, 'each pair signalled over a circuit');
  const relayed = 'tabnode_relay_gossip_messages_received_total';
  const before = await env.stack.relayMetric(relayed);
  await set(pages[0].page, ctx, 'all-linked', 'direct');
  for (const p of pages.slice(1)) {
    await eventually('the write over the links', async () => (await entries(p.page, ctx))['all-linked'] === 'direct', { ms: 30_000 });
  }
  assert.equal(await env.stack.relayMetric(relayed), before, 'the relay carried gossip while every pair was linked');

  // A page on another context, on the same relay, finds none of them and none finds it: links
  // are made only to peers heard on a context's topic, and topics name a hash of the context.
  const d = await openNode(env.browser, env.stack.url, { name: 'D' });
  const other = await sharedContext([d.page]);
  // The window for a wrong link: D's write and then one round of its heads announcements, as
  // the relay counts them (the linked pages' gossip does not pass the relay, see above).
  const dBefore = await env.stack.relayMetric(relayed);
  await set(d.page, other, 'elsewhere', 'D');
  await eventually('D\'s write and its next announcement at the relay', async () => (await env.stack.relayMetric(relayed)) >= dBefore + 2, { ms: 30_000 });
  const dId = await peerId(d.page);
  const dKnows = (await connections(d.page)).map((c) => c.peer);
  assert.ok(!dKnows.some((p) => ids.includes(p)), `D connected to a page of another context: ${JSON.stringify(dKnows)}`);
  for (const p of pages) {
    assert.ok(!(await connections(p.page)).some((c) => c.peer === dId), 'a page connected to D');
  }
  await d.context.close();

  // The relay goes away: a page linked straight to the writer still gets the write.
  await env.stack.stopRelay();
  await eventually('the pages to lose the relay', async () => {
    const all = await Promise.all(pages.map((p) => connections(p.page)));
    return all.every((list) => !list.some((c) => c.via === 'websocket'));
  }, { ms: 30_000 });
  const stillLinked = (await connections(pages[from].page)).some((c) => c.via === 'webrtc' && c.peer === ids[to]);
  assert.ok(stillLinked, 'the direct link outlives the relay');
  await set(pages[from].page, ctx, 'while-the-relay-is-down', `from ${'ABC'[from]}`);
  await eventually(`${'ABC'[to]} to hear ${'ABC'[from]} with no relay`, async () =>
    (await entries(pages[to].page, ctx))['while-the-relay-is-down'] === `from ${'ABC'[from]}`, { ms: 30_000 });

  // Every page writes; the relay comes back; all converge.
  for (const [i, p] of pages.entries()) await set(p.page, ctx, `k${i}`, `from ${'ABC'[i]}`);
  await env.stack.startRelay();
  const all = await eventually('all three pages to converge', async () => {
    const list = await Promise.all(pages.map((p) => entries(p.page, ctx)));
    const same = list.every((e) => JSON.stringify(e) === JSON.stringify(list[0]));
    return { ok: same && Object.keys(list[0]).length === 6, list };
  }, { ms: 90_000 });
  assert.equal(all.list[0]['while-the-relay-is-down'], `from ${'ABC'[from]}`);
  // The console lists how each connection runs.
  await pages[from].page.waitForFunction(() => document.querySelector('#peers li.via-webrtc') !== null);
  for (const p of pages) await p.context.close();
});

test('with two relays, pages carry on through the second when the first stays down', async () => {
  const second = startRelay({});
  try {
    const addr2 = await second.address;
    const url = `${env.stack.url}?direct=off&relay=${encodeURIComponent(env.stack.relayAddr)}&relay=${encodeURIComponent(addr2)}`;
    const { pages, ctx } = await threePages(url);
    await env.stack.stopRelay();
    const [a, b, c] = pages;
    await set(a.page, ctx, 'after', 'the first relay stopped');
    for (const p of [b, c]) {
      await eventually('the write to arrive through the second relay', async () => (await entries(p.page, ctx)).after === 'the first relay stopped', { ms: 60_000 });
    }
    const relays = await a.page.evaluate(() => window.tabnode.connections());
    assert.deepEqual(relays.map((r) => r.via), ['websocket'], `one relay left: ${JSON.stringify(relays)}`);
    await env.stack.startRelay();
    for (const p of pages) await p.context.close();
  } finally {
    await second.stop();
  }
});
