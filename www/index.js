// The node console: starts a BrowserNode for this page and shows what it does. The node is
// `window.tabnode` for devtools and tests. Everything here is a view; rules live in the node.

const $ = (id) => document.getElementById(id);
const text = (id, value) => { $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); };
const short = (id) => (id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '–');

function alertUser(message) {
  const line = document.createElement('div');
  line.textContent = `${new Date().toLocaleTimeString()}  ${message}`;
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

/** Runs an action; a failure becomes an alert (with the error's kind) and is rethrown. */
async function guarded(what, action) {
  try {
    return await action();
  } catch (err) {
    alertUser(`${what} failed: ${err.name}: ${err.message}`);
    throw err;
  }
}

const current = () => $('context-select').value;

async function refreshContext(node) {
  const ids = await node.contexts();
  const select = $('context-select');
  const selected = select.value;
  select.replaceChildren(...ids.map((id) => new Option(short(id), id)));
  if (ids.includes(selected)) select.value = selected;
  if (!select.value) return;
  const members = await node.members(select.value);
  text('members', members.map((m) => `${short(m.key)} ${m.role}${m.key === node.publicKey ? ' (this node)' : ''}`).join(' · '));
  // Heads and root only: a checkpoint's Merkle root would read a reopened context's whole state.
  const cp = await node.position(select.value);
  text('heads', cp.heads.length ? cp.heads.map(short).join(', ') : '(none yet: waiting for a member)');
  text('root', cp.rootHash || '–');
}

async function refreshAudit(node) {
  if (!current()) return;
  const records = await node.audit(current());
  $('audit').replaceChildren(
    ...records.slice(-200).reverse().map((r) => {
      const row = document.createElement('tr');
      for (const [value, cls] of [
        [r.seq, ''], [r.kind, ''], [r.method, ''], [r.outcome, r.outcome === 'ok' ? 'ok' : 'bad'],
        [short(r.executor), ''], [short(r.rootHash), ''],
      ]) {
        const cell = document.createElement('td');
        cell.textContent = value;
        if (cls) cell.className = cls;
        row.append(cell);
      }
      return row;
    }),
  );
}

function showEvent(event) {
  const log = $('events');
  log.textContent = `${JSON.stringify(event)}\n${log.textContent}`.slice(0, 20000);
}

async function main() {
  const { BrowserNode } = await import('../pkg/tabnode_web.js');
  const options = await loadConfig();
  const node = await BrowserNode.create(options);
  window.tabnode = node;
  text('peer-id', node.peerId || '(offline: no relay configured)');
  text('public-key', node.publicKey);
  text('status', `ready · store "${options.dbName}" · relays: ${options.relays.join(', ') || 'none'}`);

  node.subscribe(null, (event) => {
    switch (event.type) {
      case 'peerConnected':
      case 'peerDisconnected': {
        const peers = node.peers();
        text('peer-count', String(peers.length));
        text('peers', peers.map(short).join(' '));
        return;
      }
      case 'syncRejected':
        alertUser(`refused a remote update: ${event.reason}`);
        break;
      case 'divergence':
        alertUser(`divergence in ${short(event.contextId)} at delta ${short(event.deltaId)}: root differs from its author's`);
        break;
      default:
    }
    showEvent(event);
    if (event.contextId === current()) {
      refreshContext(node).catch(() => {});
      refreshAudit(node).catch(() => {});
    }
  });

  const showIdentity = (identity) =>
    text('account', identity ? `${identity.accountId} (until ${new Date(identity.expiresAt).toLocaleDateString()})` : 'nobody');
  showIdentity(await node.identity());
  $('sign-in').addEventListener('click', async () => {
    showIdentity(await guarded('sign-in', () => node.signIn()));
  });

  const install = async (bytes) => {
    const appId = await guarded('install', () => node.installApp(bytes));
    text('app-id', appId);
    return appId;
  };
  $('app-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (file) await install(new Uint8Array(await file.arrayBuffer()));
  });
  $('install-demo').addEventListener('click', async () => {
    const response = await fetch('apps/kv_store.wasm');
    if (!response.ok) return alertUser('the demo app is not served here (make run builds it)');
    await install(new Uint8Array(await response.arrayBuffer()));
  });
  $('create-context').addEventListener('click', async () => {
    const appId = $('app-id').textContent;
    if (appId === '–') return alertUser('install an app first');
    const id = await guarded('create context', () => node.createContext(appId, {}));
    await refreshContext(node);
    $('context-select').value = id;
    await refreshContext(node);
    await refreshAudit(node);
  });
  $('context-select').addEventListener('change', () => {
    refreshContext(node).catch(() => {});
    refreshAudit(node).catch(() => {});
  });
  $('invite').addEventListener('click', async () => {
    const invitation = await guarded('invite', () => node.inviteAs(current(), { role: $('invite-role').value }));
    text('invite-out', invitation);
    navigator.clipboard?.writeText(invitation).catch(() => {});
  });
  $('join').addEventListener('click', async () => {
    const id = await guarded('join', () => node.join($('invitation').value));
    await refreshContext(node);
    $('context-select').value = id;
    await refreshContext(node);
  });
  $('call').addEventListener('click', async () => {
    let args;
    try {
      args = JSON.parse($('args').value || '{}');
    } catch (err) {
      return alertUser(`the arguments are not JSON: ${err.message}`);
    }
    try {
      text('call-out', await node.execute(current(), $('method').value, args));
    } catch (err) {
      text('call-out', `${err.name}: ${err.message}`);
      if (err.name === 'Unauthorized') alertUser(`unauthorized call: ${err.message}`);
    }
    await refreshContext(node);
    await refreshAudit(node);
  });
  $('audit-refresh').addEventListener('click', () => refreshAudit(node));
  $('audit-verify').addEventListener('click', async () => {
    const report = await guarded('verify', () => node.verifyAudit(current()));
    $('audit-result').className = report.ok ? 'ok' : 'bad';
    text('audit-result', report.ok
      ? `✓ ${report.records} records, chain intact`
      : `✗ record ${report.badSeq}: ${report.reason}`);
    if (!report.ok) alertUser(`the audit trail of ${short(current())} was tampered with at record ${report.badSeq}`);
  });
  $('replay').addEventListener('click', async () => {
    const report = await guarded('replay', () => node.replay(current()));
    $('audit-result').className = report.matches ? 'ok' : 'bad';
    text('audit-result', `${report.matches ? '✓' : '✗'} replayed ${report.deltas} deltas to root ${short(report.rootHash)}`);
  });
  await refreshContext(node);
  await refreshAudit(node);
}

main().catch((err) => {
  text('status', `the node failed to start: ${err.name}: ${err.message}`);
  $('status').className = 'bad';
  window.tabnodeError = err;
});
