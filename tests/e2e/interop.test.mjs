// Interop with an independent implementation: a js-libp2p node (`@libp2p/webrtc`, in its own
// page) dials a tabnode page through the relay over libp2p's WebRTC (private-to-private)
// transport. Signalling on `/webrtc-signaling/0.0.1`, DTLS and the data channels must all agree
// for the connection to open on both sides. The page then closes it, since that peer refuses
// the direct links' frames protocol (a tabnode page would take it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { eventually, openNode, useStack } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = useStack();

test('a js-libp2p node dials a page over libp2p WebRTC (private-to-private) through the relay', async () => {
  const bundle = path.join(await mkdtemp(path.join(tmpdir(), 'tabnode-interop-')), 'js-libp2p.js');
  await build({ entryPoints: [path.join(here, 'js-libp2p/dial.js')], bundle: true, format: 'iife', platform: 'browser', outfile: bundle, logLevel: 'warning' });

  const a = await openNode(env.browser, env.stack.url, { name: 'A' });
  const aId = await a.page.evaluate(() => window.tabnode.peerId);
  await a.page.waitForFunction(() => window.tabnode.connections().some((c) => c.reservation), null, { timeout: 30_000 });
  await a.page.evaluate(() => {
    window.seen = [];
    window.tabnode.subscribe(null, (e) => window.seen.push({ ...e, connections: window.tabnode.connections() }));
  });

  // The js-libp2p bundle goes in as an inline script, which the page's CSP forbids.
  const context = await env.browser.newContext({ bypassCSP: true });
  const js = await context.newPage();
  js.on('pageerror', (err) => console.log(`[js-libp2p pageerror] ${err.message}`));
  await js.goto(`${env.stack.url}board.html`); // any page of the origin: only the script runs
  if (process.env.JS_LIBP2P_DEBUG) { js.on('console', (m) => console.log('[js]', m.text().slice(0, 300))); await js.evaluate((d) => localStorage.setItem('debug', d), process.env.JS_LIBP2P_DEBUG); }
  await js.addScriptTag({ path: bundle });
  const dialled = await js.evaluate(({ relay, target }) => window.jsLibp2pDial(relay, target), { relay: env.stack.relayAddr, target: aId });
  assert.equal(dialled.status, 'open');
  assert.match(dialled.remoteAddr, new RegExp(`/p2p-circuit/webrtc/p2p/${aId}$`));

  // The page saw the same connection open, over WebRTC...
  await eventually('the page to report the js-libp2p peer over WebRTC', async () =>
    (await a.page.evaluate(() => window.seen)).some((e) => e.type === 'peerConnected' && e.peer === dialled.peerId
      && e.connections.some((c) => c.peer === e.peer && c.via === 'webrtc')));
  // ...and closes it: that peer speaks none of tabnode's protocols (its frames stream is refused).
  await eventually('the page to close the stranger\'s connection', async () =>
    (await a.page.evaluate(() => window.seen)).some((e) => e.type === 'peerDisconnected' && e.peer === dialled.peerId));
  assert.ok(!(await a.page.evaluate(() => window.tabnode.connections())).some((c) => c.peer === dialled.peerId));
  await context.close();
  await a.context.close();
});
