// WebRTC-direct to the relay: two pages given only the relay's /webrtc-direct/certhash/ address
// (no WebSocket) connect to it over WebRTC, hold reservations, and converge through it. Direct
// page-to-page links are off, so every message crosses the relay, a burst of 200 calls included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entries, eventually, openNode, sharedContext, useStack } from './browser.mjs';

const env = useStack();

const set = (page, ctx, key, value) => page.evaluate(({ ctx, key, value }) => window.tabnode.execute(ctx, 'set', { key, value }), { ctx, key, value });
const connections = (page) => page.evaluate(() => window.tabnode.connections());

test('two pages reach the relay over WebRTC-direct and converge through it', async () => {
  const addr = env.stack.relayWebrtcAddr;
  assert.match(addr, /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/webrtc-direct\/certhash\/[^/]+\/p2p\/[^/]+$/);
  const relayId = addr.split('/p2p/')[1];
  const url = `${env.stack.url}?direct=off&relay=${encodeURIComponent(addr)}`;
  const pages = [await openNode(env.browser, url, { name: 'A' }), await openNode(env.browser, url, { name: 'B' })];
  const [a, b] = pages.map((p) => p.page);
  for (const page of [a, b]) {
    const list = await eventually('a WebRTC-direct connection to the relay with a reservation', async () => {
      const list = await connections(page);
      return list.some((c) => c.peer === relayId && c.via === 'webrtc-direct' && c.reservation) && list;
    }, { ms: 30_000 });
    assert.deepEqual(list.map((c) => c.via), ['webrtc-direct'], `no other connection: ${JSON.stringify(list)}`);
  }
  const ctx = await sharedContext([a, b]);
  await set(a, ctx, 'from-a', 'A');
  await eventually('B to have the state and A\'s write', async () => (await entries(b, ctx).catch(() => ({})))['from-a'] === 'A', { ms: 60_000 });
  await set(b, ctx, 'from-b', 'B');
  await eventually('A to hear B', async () => (await entries(a, ctx))['from-b'] === 'B', { ms: 30_000 });
  // A burst: 200 calls in a row from A. Over libp2p-webrtc-websys this wedged the relay's gossip
  // from A (a stream reset past 16 KiB unread, and gossipsub gives up on a connection after a
  // few); the page's own data channels keep up.
  await a.evaluate(async (ctx) => {
    for (let i = 0; i < 200; i++) await window.tabnode.execute(ctx, 'set', { key: `burst-${i}`, value: `${i}` });
  }, ctx);
  await eventually('B to hear the whole burst over WebRTC-direct', async () => {
    const got = await entries(b, ctx);
    return Array.from({ length: 200 }, (_, i) => got[`burst-${i}`] === `${i}`).every(Boolean);
  }, { ms: 60_000 });
  const [ea, eb] = await Promise.all([entries(a, ctx), entries(b, ctx)]);
  assert.deepEqual(ea, eb);
  // The console says how it reaches the relay.
  await a.waitForFunction(() => document.querySelector('#peers li.via-webrtc-direct') !== null);
  for (const p of pages) await p.context.close();
});
