// A node in the page: install a calimero-sdk app (kv-store, served beside this page), create a
// context, write a key and read it back.
import init, { BrowserNode } from 'tabnode-web';

const status = document.getElementById('status');
try {
  await init(); // fetches node_modules/tabnode-web/tabnode_web_bg.wasm
  const node = await BrowserNode.create({ dbName: 'plain-esm-example' });
  window.tabnode = node;
  const wasm = new Uint8Array(await (await fetch('./kv_store.wasm')).arrayBuffer());
  const ctx = await node.createContext(await node.installApp(wasm), {});
  await node.execute(ctx, 'set', { key: 'greeting', value: 'hello from a tab' });
  const { output } = await node.execute(ctx, 'get', { key: 'greeting' });
  status.textContent = `node ${node.publicKey} read back: ${output}`;
} catch (err) {
  window.tabnodeError = err;
  status.textContent = `${err.name}: ${err.message}`;
}
