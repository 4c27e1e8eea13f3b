// What the console and the demo board share: configuration, invitation links, joining with the
// demo app, and a refresh that coalesces bursts of events. Views only: rules live in the node.

export const short = (id) => (id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '–');

/**
 * The node's options. Those that decide what the node trusts and where its keys live (`db`,
 * `relay`, `nearRpc`, `nearContract`, `nearRpcQuorum`, `ice`, `snapshot`, `anchorRefreshMs`,
 * `durability`) are
 * the app's own: they come from `config.json`, which the site serves, never from the page's URL,
 * which anyone can put in a link. DEVELOPMENT ONLY: a `config.json` with `"devUrlSettings": true`
 * (as `scripts/serve.mjs` serves it) lets the URL's query override them, and `urlSettings` then
 * names those taken, which the page shows. `?direct=off` (fewer connections) and `?engine=` are
 * no security settings and always apply.
 */
export async function loadConfig(defaultDb = 'tabnode') {
  const params = new URLSearchParams(location.search);
  const config = await fetch('config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  const urlSettings = [];
  const fromUrl = (name, all = false) => {
    const values = config.devUrlSettings === true ? params.getAll(name) : [];
    if (!values.length) return undefined;
    urlSettings.push(name);
    return all ? values : values[0];
  };
  const snapshot = fromUrl('snapshot');
  return {
    dbName: fromUrl('db') || config.dbName || defaultDb,
    relays: fromUrl('relay', true) || config.relays || [],
    // NEAR JSON-RPC URLs: sign-in then checks with NEAR that the wallet's key is on the account.
    nearRpc: fromUrl('nearRpc', true) || config.nearRpc || [],
    // A Calimero context-config contract on NEAR: the contexts it records are anchored there.
    nearContract: fromUrl('nearContract') || config.nearContract || undefined,
    // How many of those RPC endpoints must agree on an anchor (default 1).
    nearRpcQuorum: Number(fromUrl('nearRpcQuorum')) || config.nearRpcQuorum || undefined,
    anchorRefreshMs: Number(fromUrl('anchorRefreshMs')) || config.anchorRefreshMs || undefined,
    // Direct WebRTC links to other pages (on unless `?direct=off`): traffic skips the relay.
    direct: params.get('direct') !== 'off' && config.direct !== false,
    iceServers: fromUrl('ice', true) || config.iceServers || [],
    // From how many deltas a context is offered to a joiner as a state snapshot (0: never).
    snapshotThreshold: snapshot !== undefined ? Number(snapshot) : config.snapshotThreshold,
    // The engine that runs guest apps: the page's own (default) or `?engine=wasmi`.
    engine: params.get('engine') || config.engine || undefined,
    // What an acknowledged write survives: "relaxed" (default) or "strict" (docs/storage.md).
    durability: fromUrl('durability') || config.durability || undefined,
    urlSettings,
  };
}

/** A line saying which settings a development server let the URL set, or ''. */
export function urlSettingsNote(options) {
  return options.urlSettings.length ? `development: ${options.urlSettings.join(', ')} from the URL` : '';
}

/**
 * What joining shows the context's members, for the page to ask before it joins: this node's key
 * always, and the NEAR account it is signed in with (the node shows it in every context it holds).
 */
export async function joinDisclosure(node) {
  const identity = await node.identity().catch(() => null);
  return identity
    ? `Joining shows its members this device's key and your NEAR account ${identity.accountId}.`
    : "Joining shows its members this device's key.";
}

/**
 * A link to `page` that carries the invitation in its fragment (`#join=…`): browsers do not send
 * a fragment to the server, so the context's secret in it stays between the two people.
 */
export function invitationLink(invitation, page) {
  const url = new URL(page, location.href);
  url.hash = `join=${encodeURIComponent(invitation)}`;
  return url.href;
}

/** An invitation from a pasted link (`…#join=…`) or the invitation itself. */
export function invitationFrom(textOrLink) {
  const match = /#join=([^&\s]+)/.exec(textOrLink);
  return match ? decodeURIComponent(match[1]) : textOrLink.trim();
}

/** The invitation in this page's URL fragment, if any; the fragment is cleared at once. */
export function takeInvitationFromFragment() {
  if (!location.hash.startsWith('#join=')) return null;
  const invitation = invitationFrom(location.hash);
  history.replaceState(null, '', location.pathname + location.search);
  return invitation || null;
}

/** The demo kv-store's bytes as the server has them, or null. */
export async function demoAppBytes() {
  const response = await fetch('apps/kv_store.wasm').catch(() => null);
  return response?.ok ? new Uint8Array(await response.arrayBuffer()) : null;
}

/**
 * Joins from an invitation (a link or its text); resolves to the context id. A node that lacks
 * the invitation's app fetches it from the members first (`appProgress` events), whatever app.
 */
export const joinFromLink = (node, invitation) => node.join(invitationFrom(invitation));

/**
 * Wraps an async refresh so that a burst of requests runs it at most once per `gapMs`, never two
 * at a time, and always once more after the last request.
 */
export function coalesce(refresh, gapMs) {
  let timer = null;
  let running = false;
  let again = false;
  let last = -Infinity;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = performance.now();
    try {
      await refresh();
    } catch {
      // the next request tries again
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      request();
    }
  };
  const request = () => {
    if (timer !== null) return;
    timer = setTimeout(run, Math.max(0, last + gapMs - performance.now()));
  };
  return request;
}
