// The node console: starts a BrowserNode for this page and shows what it does.
// The node is `window.tabnode` for devtools and tests.

const $ = (id) => document.getElementById(id);
const show = (id, value) => { $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); };

function alertUser(message) {
  const line = document.createElement('div');
  line.textContent = `${new Date().toLocaleTimeString()} ${message}`;
  $('alerts').prepend(line);
}

async function loadConfig() {
  const params = new URLSearchParams(location.search);
  const config = await fetch('config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  return {
    dbName: params.get('db') || config.dbName || 'tabnode',
    relays: params.getAll('relay').length ? params.getAll('relay') : config.relays || [],
  };
}

async function guarded(what, action) {
  try {
    return await action();
  } catch (err) {
    alertUser(`${what} failed: ${err.name}: ${err.message}`);
    throw err;
  }
}

async function refreshContexts(node) {
  const ids = await node.contexts();
  const select = $('context-select');
  const current = select.value;
  select.replaceChildren(...ids.map((id) => new Option(id, id)));
  if (ids.includes(current)) select.value = current;
  if (select.value) show('checkpoint', await node.checkpoint(select.value));
}

async function main() {
  const { BrowserNode } = await import('../pkg/tabnode_web.js');
  const options = await loadConfig();
  const node = await BrowserNode.create(options);
  window.tabnode = node;
  show('peer-id', node.peerId || '(offline: no relay configured)');
  show('public-key', node.publicKey);
  show('status', `ready · store "${options.dbName}" · relays: ${options.relays.join(', ') || 'none'}`);

  node.subscribe(null, (event) => {
    if (event.type === 'peerConnected' || event.type === 'peerDisconnected') {
      show('peers', String(node.peers().length));
      return;
    }
    if (event.type === 'syncRejected') alertUser(`refused a remote update: ${event.reason}`);
    if (event.type === 'divergence') alertUser(`divergence in ${event.contextId} at delta ${event.deltaId}`);
    const log = $('events');
    log.textContent = `${JSON.stringify(event)}\n${log.textContent}`.slice(0, 20000);
    refreshContexts(node).catch(() => {});
  });

  const install = async (bytes) => {
    const appId = await guarded('install', () => node.installApp(bytes));
    show('app-id', appId);
    return appId;
  };
  $('app-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (file) await install(new Uint8Array(await file.arrayBuffer()));
  });
  $('install-demo').addEventListener('click', async () => {
    const response = await fetch('apps/kv_store.wasm');
    if (!response.ok) return alertUser('the demo app is not served here (build it with make run)');
    await install(new Uint8Array(await response.arrayBuffer()));
  });
  $('create-context').addEventListener('click', async () => {
    const appId = $('app-id').textContent;
    const id = await guarded('create context', () => node.createContext(appId, {}));
    await refreshContexts(node);
    $('context-select').value = id;
  });
  $('invite').addEventListener('click', async () => {
    show('invite-out', await guarded('invite', () => node.invite($('context-select').value)));
  });
  $('join').addEventListener('click', async () => {
    const id = await guarded('join', () => node.join($('invitation').value));
    await refreshContexts(node);
    $('context-select').value = id;
  });
  $('call').addEventListener('click', async () => {
    let args;
    try {
      args = JSON.parse($('args').value || '{}');
    } catch (err) {
      return alertUser(`args are not JSON: ${err.message}`);
    }
    const out = await guarded('call', () => node.execute($('context-select').value, $('method').value, args));
    show('call-out', out);
    await refreshContexts(node);
  });
  await refreshContexts(node);
}

main().catch((err) => {
  show('status', `the node failed to start: ${err.name}: ${err.message}`);
  window.tabnodeError = err;
});
