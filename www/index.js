// The node console: opens the browser's node and shows what it does. Every tab of the console is
// one node (tabnode-web/tabs): one tab hosts it, the others reach it through that tab, and another
// takes over when the host tab closes. The node is `window.tabnode` for devtools and tests. Everything here is a view; rules live in the node.
import QRCode from 'qrcode';
import { coalesce, demoAppBytes, invitationLink, joinDisclosure, joinFromLink, loadConfig, short, takeInvitationFromFragment, urlSettingsNote } from './shared.js';

const $ = (id) => document.getElementById(id);
const text = (id, value) => { $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); };
/** A new element with properties (`aria` for an aria-label) and children. */
const el = (tag, { aria, ...props } = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  if (aria) e.setAttribute('aria-label', aria);
  e.append(...children);
  return e;
};

// ---- alerts: a list under the header, a counter and the latest one in the (sticky) header ----

let unread = 0;
function alertUser(message, { severe = false, header = true } = {}) {
  const line = document.createElement('div');
  line.textContent = `${new Date().toLocaleTimeString()}  ${message}`;
  if (severe) line.className = 'bad';
  $('alerts').prepend(line);
  while ($('alerts').childElementCount > 200) $('alerts').lastElementChild.remove();
  unread += 1;
  text('alert-count', String(unread));
  $('alert-badge').classList.add('unread');
  if (header) text('alert-latest', message);
}

/** Contexts this node was removed from: what it can no longer open there is expected. */
const removedFrom = new Set();
$('alert-badge').addEventListener('click', () => {
  unread = 0;
  text('alert-count', '0');
  $('alert-badge').classList.remove('unread');
  text('alert-latest', '');
  $('alerts').scrollIntoView({ block: 'center' });
});

/** Runs an action; a failure becomes an alert (with the error's kind) and is rethrown. */
async function guarded(what, action) {
  try {
    return await action();
  } catch (err) {
    if (err.name === 'Unauthorized') alertUser(`unauthorized: ${what} refused: ${err.message}`, { severe: true });
    else alertUser(`${what} failed: ${err.name}: ${err.message}`);
    throw err;
  }
}

const current = () => $('context-select').value;

// ---- per-context sync figures gathered from events (the node keeps no such counters) ----

const syncStats = new Map();
const statsOf = (ctx) => {
  if (!syncStats.has(ctx)) syncStats.set(ctx, { divergences: [], rejected: [], heard: new Map(), checkpoint: null });
  return syncStats.get(ctx);
};
const rejectedWithoutContext = [];

function renderSyncStats() {
  const stats = current() ? statsOf(current()) : null;
  const rejected = [...rejectedWithoutContext, ...(stats?.rejected ?? [])];
  const div = stats?.divergences ?? [];
  $('divergence').className = div.length ? 'bad' : 'ok';
  text('divergence', div.length
    ? `${div.length}; last at delta ${short(div.at(-1).deltaId)} (${div.at(-1).at.toLocaleTimeString()}): root ${short(div.at(-1).actual)} ≠ author's ${short(div.at(-1).expected)}`
    : 'none seen');
  $('sync-failures').className = rejected.length ? 'bad' : 'ok';
  text('sync-failures', rejected.length ? `${rejected.length}; last: ${rejected.at(-1).reason}` : 'none');
  const heard = [...(stats?.heard ?? new Map())].sort((a, b) => b[1] - a[1]);
  $('heard').replaceChildren(...(heard.length
    ? heard.map(([author, at]) => el('li', { title: author }, `${short(author)} · last delta ${at.toLocaleTimeString()}`))
    : [el('li', { className: 'muted' }, 'nobody yet')]));
  const cp = stats?.checkpoint;
  text('merkle-root', cp ? cp.merkleRoot || '–' : '–');
  text('checkpoint-time', cp ? `taken ${cp.at.toLocaleTimeString()} over ${cp.heads.length} head(s)` : 'no checkpoint taken in this page');
}

// ---- views ----

let lastMembers = '';
async function refreshContext(node) {
  const ids = await node.contexts();
  const select = $('context-select');
  const selected = select.value;
  if (ids.join() !== [...select.options].map((o) => o.value).join()) {
    select.replaceChildren(...ids.map((id) => new Option(short(id), id)));
  }
  if (ids.includes(selected)) select.value = selected;
  if (!select.value) return;
  const ctx = select.value;
  const members = await node.members(ctx);
  renderMembers(node, ctx, members);
  // Heads and root only: a checkpoint's Merkle root would read a reopened context's whole state.
  const cp = await node.position(ctx);
  text('heads', cp.heads.length ? cp.heads.map(short).join(', ') : '(none yet: waiting for a member)');
  text('root', cp.rootHash || '–');
  renderSyncStats();
}

function renderMembers(node, ctx, members) {
  const key = JSON.stringify([ctx, members]);
  if (key === lastMembers) return;
  lastMembers = key;
  const me = members.find((m) => m.key === node.publicKey);
  const admin = me?.role === 'admin';
  text('my-role', me ? `you: ${me.role}` : 'you: not a member (removed, or not yet verified)');
  $('members').replaceChildren(...members.map((m) => {
    const row = el('tr');
    row.dataset.key = m.key;
    row.append(el('td', { title: m.key }, el('code', {}, short(m.key))));
    if (m.key === node.publicKey || !admin) {
      row.append(el('td', {}, `${m.role}${m.key === node.publicKey ? ' (this node)' : ''}`), el('td'));
    } else {
      const role = el('select', { className: 'member-role', aria: `role of ${short(m.key)}` },
        ...['admin', 'member', 'reader'].map((r) => new Option(r, r, false, r === m.role)));
      role.addEventListener('change', async () => {
        role.disabled = true;
        try {
          await guarded('role change', () => node.setRole(ctx, m.key, role.value));
          alertUser(`${short(m.key)} is now ${role.value} in ${short(ctx)}`);
        } catch {
          role.value = m.role;
        } finally {
          role.disabled = false;
        }
      });
      // Two steps: the first press asks, the second removes.
      const remove = el('button', { className: 'danger member-remove', title: 'remove this member: revokes its device key in this context' }, 'remove (revoke device)');
      let armed = false;
      remove.addEventListener('click', async () => {
        if (!armed) {
          armed = true;
          remove.textContent = 'confirm removal';
          setTimeout(() => { armed = false; remove.textContent = 'remove (revoke device)'; }, 8000);
          return;
        }
        remove.disabled = true;
        try {
          await guarded('removal', () => node.removeMember(ctx, m.key));
          alertUser(`removed ${short(m.key)} from ${short(ctx)}: its device key is revoked there`);
        } catch {
          remove.disabled = false;
        }
        refreshContext(node).catch(() => {});
      });
      row.append(el('td', {}, role), el('td', {}, remove));
    }
    return row;
  }));
}

const PAGE = 25;
let auditRecords = [];
let auditPage = 0;
async function refreshAudit(node) {
  auditRecords = current() ? (await node.audit(current())).reverse() : [];
  renderAudit();
}
function renderAudit() {
  const pages = Math.max(1, Math.ceil(auditRecords.length / PAGE));
  auditPage = Math.min(auditPage, pages - 1);
  const shown = auditRecords.slice(auditPage * PAGE, (auditPage + 1) * PAGE);
  $('audit').replaceChildren(...shown.map((r) => {
    const row = el('tr');
    for (const [value, cls] of [
      [r.seq, ''], [r.kind, ''], [r.method, ''], [r.outcome, r.outcome === 'ok' ? 'ok' : 'bad'],
      [short(r.executor), ''], [short(r.rootHash), ''],
    ]) row.append(el('td', { className: cls }, String(value)));
    return row;
  }));
  text('audit-page', auditRecords.length
    ? `${auditPage * PAGE + 1}–${auditPage * PAGE + shown.length} of ${auditRecords.length} (newest first)`
    : 'no records');
  $('audit-newer').disabled = auditPage === 0;
  $('audit-older').disabled = auditPage >= pages - 1;
}

function showEvent(event) {
  const log = $('events');
  log.textContent = `${new Date().toLocaleTimeString()} ${JSON.stringify(event)}\n${log.textContent}`.slice(0, 20000);
}

function renderPeers(node, relays) {
  const connections = node.connections();
  text('peer-count', String(connections.length));
  const relayOf = new Map(relays.map((addr) => [/\/p2p\/([^/]+)/.exec(addr)?.[1], addr]));
  const how = ({ peer, via, reservation }) => (via === 'webrtc'
    ? 'another page, straight over WebRTC: what this node sends that page goes there, not through the relay'
    : relayOf.has(peer)
      ? `relay, ${via === 'webrtc-direct' ? 'WebRTC-direct' : 'WebSocket'} ${relayOf.get(peer).replace(/\/p2p\/.*/, '')}: members' sealed gossip goes through it${reservation ? '; it holds a reservation for this node' : ''}`
      : via);
  $('peers').replaceChildren(...(connections.length
    ? connections.map((c) => el('li', { title: c.peer, className: `via-${c.via}` }, `${short(c.peer)} · ${how(c)}`))
    : [el('li', { className: 'muted' }, relays.length ? 'none: offline or still connecting; calls still work and sync when a connection is back' : 'none: no relay configured')]));
}

function showInvite(invitation) {
  const link = invitationLink(invitation, './');
  text('invite-out', invitation);
  $('invite-link').href = link;
  text('invite-link', link);
  text('copy-result', '');
  $('invite-share').hidden = false;
  QRCode.toCanvas($('invite-qr'), link, { errorCorrectionLevel: 'L', margin: 2, scale: 3 })
    .catch((err) => alertUser(`QR code: ${err.message}`));
}

async function main() {
  const [{ default: initWasm }, { TabNode }] = await Promise.all([import('tabnode-web'), import('tabnode-web/tabs')]);
  await initWasm();
  const options = await loadConfig();
  const invitationInLink = takeInvitationFromFragment();
  const node = await TabNode.open(options);
  window.tabnode = node;
  const dev = urlSettingsNote(options);
  const showNode = () => {
    text('peer-id', node.peerId || '(offline: no relay configured)');
    text('public-key', node.publicKey);
    text('engine', node.engine === 'browser' ? "the browser's WebAssembly engine" : 'wasmi (interpreter)');
    text('host-tab', node.isHost ? 'this tab' : 'another tab of this browser; this one reaches the node through it');
    text('status', `ready · store "${options.dbName}" · relays: ${options.relays.join(', ') || 'none'}${dev ? ` · ${dev}` : ''}`);
    $('status').title = $('status').textContent;
  };
  showNode();

  const refreshViews = coalesce(() => refreshContext(node), 250);
  const refreshAuditSoon = coalesce(() => refreshAudit(node), 1000);

  node.subscribe(null, (event) => {
    switch (event.type) {
      case 'hostChanged':
        showNode();
        renderPeers(node, options.relays);
        if (event.isHost) alertUser('the tab that ran the node closed: this tab runs it now', { header: false });
        break;
      case 'peerConnected':
      case 'peerDisconnected':
      case 'directOpened':
      case 'directClosed':
        renderPeers(node, options.relays);
        return;
      case 'appProgress':
        text('join-progress', event.received < event.total
          ? `fetching app ${short(event.appId)} from the members: ${Math.round(event.received / 1024)} of ${Math.round(event.total / 1024)} KiB`
          : `fetched app ${short(event.appId)} from the members (${Math.round(event.total / 1024)} KiB), checked against its id and installed`);
        return;
      case 'syncRejected': {
        const entry = { reason: event.reason, at: new Date() };
        (event.contextId ? statsOf(event.contextId).rejected : rejectedWithoutContext).push(entry);
        // After a removal, messages this node cannot open are its consequence: listed, but they
        // do not take the removal's place in the header.
        alertUser(`failed sync${event.contextId ? ` in ${short(event.contextId)}` : ''}: refused a remote update: ${event.reason}`,
          { severe: true, header: !removedFrom.has(event.contextId) });
        renderSyncStats();
        break;
      }
      case 'rootMismatch':
        if (!event.repaired) statsOf(event.contextId).divergences.push({ ...event, deltaId: '(heads)', at: new Date() });
        alertUser(event.repaired
          ? `${short(event.contextId)}: a member had the same deltas with another root; rebuilt in canonical order (root ${short(event.ours)})`
          : `divergence in ${short(event.contextId)}: same deltas as a member, another root, and a rebuild did not settle it`, { severe: !event.repaired });
        renderSyncStats();
        break;
      case 'divergence':
        statsOf(event.contextId).divergences.push({ ...event, at: new Date() });
        alertUser(`divergence in ${short(event.contextId)} at delta ${short(event.deltaId)}: root differs from its author's`, { severe: true });
        renderSyncStats();
        break;
      case 'voided':
        alertUser(`delta ${short(event.deltaId)} by ${short(event.author)} voided in ${short(event.contextId)}: its author was removed from the context (or lost the right to write)`, { severe: true });
        break;
      case 'membership':
        if (event.op.op === 'remove' && event.op.member === node.publicKey && event.counted) {
          removedFrom.add(event.contextId);
          alertUser(`you were removed from context ${short(event.contextId)} by ${short(event.by)}: this node can no longer write there nor read what is written after`, { severe: true });
        }
        break;
      case 'deltaApplied':
        if (event.author !== node.publicKey) {
          statsOf(event.contextId).heard.set(event.author, new Date());
          if (event.contextId === current()) renderSyncStats();
        }
        break;
      default:
    }
    showEvent(event);
    if (event.contextId === current()) {
      refreshViews();
      refreshAuditSoon();
    }
  });
  renderPeers(node, options.relays);

  const showIdentity = (identity) => {
    text('account', identity ? `${identity.accountId} (until ${new Date(identity.expiresAt).toLocaleDateString()})` : 'nobody');
    text('client-key', identity ? identity.clientKey : '– (sign in to have a wallet grant this node\'s key)');
  };
  showIdentity(await node.identity());
  $('sign-in').addEventListener('click', async () => {
    showIdentity(await guarded('sign-in', () => node.signIn({})));
  });
  $('rotate-key').addEventListener('click', async () => {
    const identity = await guarded('key rotation', () => node.rotateKey()).catch(() => null);
    if (!identity) return;
    showIdentity(identity);
    text('public-key', node.publicKey);
    alertUser(`this node's key is now ${short(node.publicKey)}: it took the old key's place in every context`);
  });
  $('upgrade').addEventListener('click', async () => {
    const file = $('upgrade-file').files[0];
    const ctx = current();
    if (!file || !ctx) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const migrate = $('upgrade-migrate').value.trim() || undefined;
    const op = await guarded('upgrade', () => node.upgradeApp(ctx, bytes, migrate)).catch(() => null);
    if (op) alertUser(`${short(ctx)} now runs the app ${file.name}; every member migrates the same way`);
  });
  $('revoke').addEventListener('click', async () => {
    const key = $('revoke-key').value.trim();
    if (!key) return;
    const contexts = await guarded('revoke', () => node.revokeKey(key)).catch(() => null);
    if (contexts) alertUser(`key ${short(key)} revoked in ${contexts.length} context(s): its later writes are refused`);
  });

  const install = async (bytes, name) => {
    const appId = await guarded('install', () => node.installApp(bytes));
    text('app-id', appId);
    $('app-verified').className = 'ok';
    text('app-verified', `✓ ${name}, ${bytes.length.toLocaleString()} bytes: validated by the node (ABI imports, memory, size); its id is the blake3 hash of these bytes`);
    return appId;
  };
  $('app-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (file) await install(new Uint8Array(await file.arrayBuffer()), file.name).catch(() => {});
  });
  $('install-demo').addEventListener('click', async () => {
    const bytes = await demoAppBytes();
    if (!bytes) return alertUser('the demo app is not served here (make run builds it)');
    await install(bytes, 'kv_store.wasm').catch(() => {});
  });
  const select = async (id) => {
    await refreshContext(node);
    $('context-select').value = id;
    auditPage = 0;
    await refreshContext(node);
    await refreshAudit(node);
  };
  $('create-context').addEventListener('click', async () => {
    const appId = $('app-id').textContent;
    if (appId === '–') return alertUser('install an app first');
    const id = await guarded('create context', () => node.createContext(appId, {}));
    await select(id);
  });
  $('context-select').addEventListener('change', () => {
    auditPage = 0;
    refreshContext(node).catch(() => {});
    refreshAudit(node).catch(() => {});
  });
  $('write-anchor').hidden = !(options.nearRpc.length && options.nearContract);
  $('write-anchor').addEventListener('click', async () => {
    const ctx = current();
    if (!ctx) return;
    const done = await guarded('write to NEAR', () => node.writeAnchor(ctx)).catch(() => null);
    if (done) alertUser(done.requests.length ? `${short(ctx)} written to NEAR: ${done.requests.map((r) => r.kind).join(', ')}` : `${short(ctx)}: NEAR already records it as the log says`);
  });
  $('invite').addEventListener('click', async () => {
    const invitation = await guarded('invite', () => node.inviteAs(current(), { role: $('invite-role').value }));
    showInvite(invitation);
  });
  $('copy-invite').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('invite-link').href);
      text('copy-result', 'copied');
    } catch (err) {
      text('copy-result', `could not copy (${err.name}): select the link instead`);
    }
  });

  const join = async (invitation) => {
    const contextId = await guarded('join', () => joinFromLink(node, invitation));
    await select(contextId);
    const cp = await node.position(contextId);
    text('join-result', `joined context ${short(contextId)}; ${cp.heads.length ? 'its state is here' : 'its state arrives from the members online'}`);
    return contextId;
  };
  $('join').addEventListener('click', async () => {
    await join($('invitation').value.trim()).catch(() => {});
  });

  const offerToJoin = async (invitation) => {
    text('join-disclosure', await joinDisclosure(node));
    $('join-offer').hidden = false;
    $('accept-invite').focus();
    $('accept-invite').onclick = async () => {
      $('accept-invite').disabled = true;
      try {
        await join(invitation);
        $('join-offer').hidden = true;
      } catch {
        $('accept-invite').disabled = false;
      }
    };
    $('dismiss-invite').onclick = () => { $('join-offer').hidden = true; };
  };
  if (invitationInLink) offerToJoin(invitationInLink);
  window.addEventListener('hashchange', () => {
    const invitation = takeInvitationFromFragment();
    if (invitation) offerToJoin(invitation);
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
      if (err.name === 'Unauthorized') alertUser(`unauthorized call of ${$('method').value}: ${err.message}`, { severe: true });
    }
    await refreshContext(node);
    await refreshAudit(node);
  });
  $('checkpoint').addEventListener('click', async () => {
    const ctx = current();
    if (!ctx) return alertUser('no context selected');
    const cp = await guarded('checkpoint', () => node.checkpoint(ctx));
    statsOf(ctx).checkpoint = { ...cp, at: new Date() };
    text('heads', cp.heads.length ? cp.heads.map(short).join(', ') : '(none yet: waiting for a member)');
    text('root', cp.rootHash || '–');
    renderSyncStats();
  });
  $('audit-refresh').addEventListener('click', () => refreshAudit(node));
  $('audit-newer').addEventListener('click', () => { auditPage = Math.max(0, auditPage - 1); renderAudit(); });
  $('audit-older').addEventListener('click', () => { auditPage += 1; renderAudit(); });
  $('audit-verify').addEventListener('click', async () => {
    const report = await guarded('verify', () => node.verifyAudit(current()));
    $('audit-result').className = report.ok ? 'ok' : 'bad';
    text('audit-result', report.ok
      ? `✓ ${report.records} records, chain intact`
      : `✗ record ${report.badSeq}: ${report.reason}`);
    if (!report.ok) alertUser(`the audit trail of ${short(current())} was tampered with at record ${report.badSeq}`, { severe: true });
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
  text('status', err.name === 'NoHost'
    ? 'another tab of this browser holds the node but does not answer: close it, or reload this one'
    : `the node failed to start: ${err.name}: ${err.message}`);
  $('status').className = 'bad';
  window.tabnodeError = err;
});
