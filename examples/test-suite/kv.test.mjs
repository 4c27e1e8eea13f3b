// A headless test suite built on tabnode-web/testing: three nodes, each in its own page and
// IndexedDB store, share a kv-store context through a relay, write concurrently and converge.
// Names what it needs from the environment: CHROMIUM (default /usr/bin/chromium), TABNODE_RELAY
// (a tabnode-relay binary) and KV_STORE (the guest app); the defaults are this repository's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { converged, eventually, launchChromium, shareContext, startNodes, startRelay } from 'tabnode-web/testing';

const repo = (rel) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RELAY = process.env.TABNODE_RELAY || repo('target/release/tabnode-relay');
const KV_STORE = process.env.KV_STORE || repo('tests/apps/dist/kv_store.wasm');

let relay;
let browser;
let run;
before(async () => {
  relay = await startRelay({ binary: RELAY });
  browser = await launchChromium({ executablePath: CHROMIUM });
  run = await startNodes(browser, { nodes: 3, relays: [relay.address] });
});
// Everything started is stopped, also when a test failed.
after(async () => {
  await run?.stop();
  await browser?.close();
  await relay?.stop();
});

test('three nodes write concurrently and converge', async () => {
  const { nodes } = run;
  const wasm = await readFile(KV_STORE);
  const [appId] = await Promise.all(nodes.map((n) => n.installApp(wasm)));
  const ctx = await shareContext(nodes, appId);
  await nodes[2].watch(ctx);
  await Promise.all(nodes.map((n, i) =>
    eventually(`${n.name} to be able to write`, () => n.execute(ctx, 'set', { key: `from-${i}`, value: `v${i}` }).then(() => true))));
  await converged(nodes, ctx);
  for (const node of nodes) {
    for (let i = 0; i < nodes.length; i++) assert.equal(await node.execute(ctx, 'get', { key: `from-${i}` }), `v${i}`);
  }
  const fromOthers = (await nodes[2].events()).filter((e) => e.type === 'deltaApplied');
  assert.ok(fromOthers.length >= 2, `node2 applied the others' deltas: ${JSON.stringify(fromOthers)}`);
});
