// Circuit relay v2: a page holds a reservation at the relay, so another page can dial it
// through the relay (`dialPeer`), and both list the connection as `circuit`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, openNode, useStack } from './browser.mjs';

const env = useStack();
const connections = (page) => page.evaluate(() => window.tabnode.connections());

test('a page is dialled through its reservation at the relay', async () => {
  const url = `${env.stack.url}?direct=off`;
  const pages = [await openNode(env.browser, url, { name: 'A' }), await openNode(env.browser, url, { name: 'B' })];
  const [a, b] = pages.map((p) => p.page);
  await eventually('A to hold a reservation', async () => (await connections(a)).some((c) => c.reservation));
  const [idA, idB] = await Promise.all([a, b].map((p) => p.evaluate(() => window.tabnode.peerId)));

  // The console's node is a TabNode: every forwarded method (dialPeer too) returns a Promise.
  const bad = await b.evaluate(async () => { try { await window.tabnode.dialPeer('not a peer'); return null; } catch (e) { return e.name; } });
  assert.equal(bad, 'BadPeerId');
  await b.evaluate((id) => window.tabnode.dialPeer(id), idA);
  await eventually('B to be connected to A through the relay', async () => (await connections(b)).some((c) => c.peer === idA && c.via === 'circuit'), { ms: 30_000 });
  await eventually('A to see B come in through its reservation', async () => (await connections(a)).some((c) => c.peer === idB && c.via === 'circuit'), { ms: 30_000 });
  for (const p of pages) await p.context.close();
});
