// A shared list on the kv-store test app: one context per list, one key per item, the item's
// text and whether it is done as the value. Share it with a link; both sides add, edit, check
// and remove items, also offline (a write succeeds in this tab and reaches the other when a
// connection is back). The page is a view of its own node: rules live in the node.
import QRCode from 'qrcode';
import { coalesce, demoAppBytes, invitationLink, joinDisclosure, joinFromLink, loadConfig, short, takeInvitationFromFragment, urlSettingsNote } from './shared.js';

const $ = (id) => document.getElementById(id);

function say(message, { bad = false } = {}) {
  $('message').textContent = message;
  $('message').className = bad ? 'bad' : '';
}

/** An item's value: `{text, done}` as JSON (a plain string reads as undone text). */
const parse = (value) => {
  try {
    const item = JSON.parse(value);
    if (item && typeof item.text === 'string') return { text: item.text, done: !!item.done };
  } catch {
    // not ours: show it as it is
  }
  return { text: String(value), done: false };
};
/** Keys sort by creation time, so the list keeps its order on every member. */
const newKey = () => `item-${Date.now().toString(36).padStart(9, '0')}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;

let node;
let options;
let list = null; // the context id of the list shown
let unsubscribe = () => {};
let removed = false;

const remember = (id) => localStorage.setItem(`tabnode-board:${options.dbName}`, id);
const remembered = () => localStorage.getItem(`tabnode-board:${options.dbName}`);

async function call(method, args) {
  try {
    return (await node.execute(list, method, args)).output;
  } catch (err) {
    if (err.name === 'Unauthorized') say(`This list no longer accepts your changes: ${err.message}`, { bad: true });
    else if (err.name === 'NotSynced') say('The list has not arrived yet: it comes from someone who has it, once you are both online.');
    else say(`${method} failed: ${err.message}`, { bad: true });
    throw err;
  }
}

async function render() {
  if (!list) return;
  let entries;
  try {
    entries = await node.execute(list, 'entries', {}).then((r) => r.output);
  } catch (err) {
    if (err.name === 'NotSynced') return say('Waiting for the list from someone who has it: it arrives once you are both online.');
    return say(`cannot read the list: ${err.message}`, { bad: true });
  }
  if (/^Waiting for the list/.test($('message').textContent)) say('The list is here.');
  const ul = $('items');
  const existing = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  const keys = Object.keys(entries).sort();
  for (const key of keys) {
    const item = parse(entries[key]);
    let li = existing.get(key);
    if (!li) li = itemRow(key);
    existing.delete(key);
    const [box, input] = [li.querySelector('input[type=checkbox]'), li.querySelector('input.text')];
    box.checked = item.done;
    li.classList.toggle('done', item.done);
    // Never overwrite what someone is typing; the change they make next wins or merges.
    if (document.activeElement !== input) input.value = item.text;
    li.dataset.value = entries[key];
    ul.append(li);
  }
  for (const li of existing.values()) li.remove();
  $('empty').hidden = keys.length > 0;
}
const renderSoon = coalesce(render, 200);

function itemRow(key) {
  const li = document.createElement('li');
  li.dataset.key = key;
  const box = Object.assign(document.createElement('input'), { type: 'checkbox' });
  box.setAttribute('aria-label', 'done');
  const input = Object.assign(document.createElement('input'), { className: 'text' });
  input.setAttribute('aria-label', 'item');
  const remove = Object.assign(document.createElement('button'), { className: 'remove', textContent: '×', title: 'remove' });
  remove.setAttribute('aria-label', 'remove item');
  const current = () => parse(li.dataset.value);
  box.addEventListener('change', async () => {
    await call('set', { key, value: JSON.stringify({ ...current(), done: box.checked }) }).catch(() => {});
    renderSoon();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') input.blur();
    if (e.key === 'Escape') {
      input.value = current().text;
      input.blur();
    }
  });
  input.addEventListener('change', async () => {
    const text = input.value.trim();
    if (!text) {
      input.value = current().text;
      return;
    }
    await call('set', { key, value: JSON.stringify({ ...current(), text }) }).catch(() => {});
    renderSoon();
  });
  remove.addEventListener('click', async () => {
    await call('remove', { key }).catch(() => {});
    renderSoon();
  });
  li.append(box, input, remove);
  return li;
}

function showNet() {
  const peers = node.connections().length;
  const net = $('net');
  if (!options.relays.length) {
    net.textContent = 'this tab only (no relay)';
    net.className = 'pill offline';
  } else if (peers) {
    net.textContent = 'online';
    net.className = 'pill online';
  } else {
    net.textContent = 'offline: changes are kept here';
    net.className = 'pill offline';
  }
}

async function open(id, message) {
  unsubscribe();
  list = id;
  removed = false;
  remember(id);
  $('start').hidden = true;
  $('board').hidden = false;
  $('share-panel').hidden = true;
  $('share').setAttribute('aria-expanded', 'false');
  $('items').replaceChildren();
  unsubscribe = node.subscribe(id, (event) => {
    if (event.type === 'membership' && event.op.op === 'remove' && event.op.member === node.publicKey && event.counted) {
      removed = true;
      say('You were removed from this list: you keep what you see, but your changes no longer reach the others.', { bad: true });
    }
    if (['event', 'deltaApplied', 'membership', 'voided'].includes(event.type)) renderSoon();
  });
  const ids = await node.contexts();
  $('lists').hidden = ids.length < 2;
  $('lists').replaceChildren(...ids.map((c, i) => new Option(`list ${i + 1} (${short(c)})`, c, false, c === id)));
  if (message) say(message);
  await render();
}

async function createList() {
  say('Creating a list…');
  const bytes = await demoAppBytes();
  if (!bytes) return say('The kv-store app is not served here (make run builds it).', { bad: true });
  const appId = await node.installApp(bytes);
  const id = await node.createContext(appId, {});
  await open(id, 'A new list. Share it with the button above: it works offline too.');
  $('new-item').focus();
}

async function joinList(invitation) {
  say('Opening the shared list…');
  try {
    const contextId = await joinFromLink(node, invitation);
    await open(contextId, 'You joined a shared list: your changes reach everyone who has the link.');
  } catch (err) {
    say(`This link does not open a list: ${err.name}: ${err.message}`, { bad: true });
    $('start').hidden = false;
  }
}

async function main() {
  const { default: initWasm } = await import('tabnode-web');
  const { TabNode } = await import('tabnode-web/tabs');
  await initWasm();
  options = await loadConfig('tabnode-board');
  const invitation = takeInvitationFromFragment();
  // Every tab of the board is one node: one tab hosts it, the others reach it (tabnode-web/tabs).
  node = await TabNode.open(options);
  window.tabnode = node;
  const dev = urlSettingsNote(options);
  $('who').textContent = `you are ${node.publicKey} · store "${options.dbName}"${dev ? ` · ${dev}` : ''}`;
  node.subscribe(null, (event) => {
    if (['peerConnected', 'peerDisconnected', 'directOpened', 'directClosed'].includes(event.type)) showNet();
  });
  showNet();

  $('create').addEventListener('click', () => createList().catch((err) => say(`${err.name}: ${err.message}`, { bad: true })));
  $('new-list').addEventListener('click', () => createList().catch((err) => say(`${err.name}: ${err.message}`, { bad: true })));
  $('join').addEventListener('click', () => joinList($('join-input').value));
  $('lists').addEventListener('change', () => open($('lists').value));
  $('add-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('new-item').value.trim();
    if (!text || !list) return;
    $('add').disabled = true;
    try {
      await call('set', { key: newKey(), value: JSON.stringify({ text, done: false }) });
      $('new-item').value = '';
      if (!removed && !/^The list has not arrived/.test($('message').textContent)) say('');
    } catch {
      // said already
    } finally {
      $('add').disabled = false;
      $('new-item').focus();
    }
    renderSoon();
  });
  $('share').addEventListener('click', async () => {
    const panel = $('share-panel');
    panel.hidden = !panel.hidden;
    $('share').setAttribute('aria-expanded', String(!panel.hidden));
    if (panel.hidden) return;
    try {
      const link = invitationLink(await node.invite(list), 'board.html');
      $('share-link').value = link;
      $('copied').textContent = '';
      await QRCode.toCanvas($('share-qr'), link, { errorCorrectionLevel: 'L', margin: 2, scale: 3 });
    } catch (err) {
      $('share-link').value = '';
      say(err.name === 'Unauthorized' ? 'Only the list\'s admins can share it.' : `cannot share: ${err.message}`, { bad: true });
    }
  });
  $('copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('share-link').value);
      $('copied').textContent = 'copied';
    } catch {
      $('share-link').select();
      $('copied').textContent = 'selected: copy it with your keyboard';
    }
  });

  if (invitation) return offerToJoin(invitation);
  showLists();
}

/** The list last open, or the start card. */
async function showLists() {
  const ids = await node.contexts();
  const last = remembered();
  if (ids.length) return open(ids.includes(last) ? last : ids.at(-1), '');
  $('start').hidden = false;
  say('');
}

/**
 * A link's invitation is joined only when the person says so: joining makes this tab a member
 * and shows the members its key (and the NEAR account it is signed in with), which a link
 * someone else crafted must not do on its own.
 */
async function offerToJoin(invitation) {
  $('join-disclosure').textContent = await joinDisclosure(node);
  $('join-offer').hidden = false;
  say('');
  $('accept-join').focus();
  $('accept-join').onclick = () => {
    $('join-offer').hidden = true;
    joinList(invitation);
  };
  $('decline-join').onclick = () => {
    $('join-offer').hidden = true;
    showLists();
  };
}

main().catch((err) => {
  say(err.name === 'NoHost'
    ? 'Another tab of this browser holds the lists but does not answer: close it, or reload this one.'
    : `The node failed to start: ${err.name}: ${err.message}`, { bad: true });
  window.tabnodeError = err;
});
