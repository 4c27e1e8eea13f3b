// tabnode-web/tabs: every tab of an app on one node. One tab, elected with a Web Lock, hosts the
// BrowserNode; the app's other tabs reach it over a BroadcastChannel with the same API and the
// same events; when the host tab goes, the next tab in the lock's queue opens the node from the
// same IndexedDB store. Why this shape, and what a call in flight gets when the host goes:
// docs/api.md ("Every tab of an app").
import { BrowserNode } from './tabnode_web.js';

/** Events about the network: a follower's `peers()` / `connections()` must be current when it hears one. */
const PEER_EVENTS = new Set(['peerConnected', 'peerDisconnected', 'directOpened', 'directClosed']);

/** BrowserNode methods a TabNode answers itself (the rest are forwarded to the host). */
const OWN = new Set(['constructor', 'free', '__destroy_into_raw', 'subscribe', 'peers', 'connections']);
/** What the host's node says of itself: followers read these without a round trip. */
const INFO = ['peerId', 'publicKey', 'engine', 'durability'];
/** The BrowserNode methods a tab may call on the host's node (filled in at the end). */
const FORWARDED = new Set();

/**
 * Methods that change nothing, or nothing more when they run twice (`installApp` stores by
 * content hash, `checkpoint` writes the state as it is, `dialPeer` dials a peer already dialled):
 * one in flight when its host tab goes is sent to the next host, as `execute` is under its call
 * id. Every other method fails `HostLost` then, since running it twice could differ.
 */
const SAFE_TO_RESEND = new Set([
  'appAbi', 'audit', 'bundleInfo', 'checkpoint', 'connections', 'contexts', 'dialPeer', 'identity', 'installApp',
  'members', 'memory', 'peers', 'position', 'replay', 'verifyAudit',
]);

/** An `Error` whose `name` says the kind, as BrowserNode's errors are. */
function typedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** What a failed call sends back: structured clone keeps only the standard error names. */
const errorData = (err) => ({ name: err?.name || 'Error', message: err?.message ?? String(err) });

const noHost = (db, ms) =>
  typedError('NoHost', `no tab hosting the node ${JSON.stringify(db)} answered within ${ms} ms; the call was not applied and may be retried`);

const hostLost = (db) =>
  typedError('HostLost', `the tab hosting the node ${JSON.stringify(db)} went away while this call was in flight: it may or may not have been applied`);

/**
 * A node shared by the tabs of one origin that open the same `dbName`. `TabNode.open` resolves
 * once this tab hosts the node or has heard from the tab that does; `isHost` says which.
 * Every `BrowserNode` method is here (forwarded methods always return a Promise).
 */
export class TabNode {
  #db;
  #options;
  #timeoutMs;
  #tab = crypto.randomUUID();
  #channel;
  /** This tab's BrowserNode while it hosts. */
  #node = null;
  /** The host this tab calls: `{id}`, or null while none is known. */
  #host = null;
  /** Calls waiting for an answer, by id: `{method, args, resolve, reject, sentTo, accepted, timer}`. */
  #pending = new Map();
  #nextCall = 0;
  #subscribers = new Set();
  /** `open`'s promise while it waits: `{resolve, reject}`. */
  #ready = null;
  /** This tab is opening the node, having been given the host lock. */
  #starting = false;
  /** `open` failed: a host lock granted later is let go at once. */
  #closed = false;
  /** This tab's node crashed (see #abdicate): the tab never hosts again, and calls another. */
  #crashed = false;
  /** Let go of the host lock and of this tab's alive lock, while it hosts. */
  #releaseHost = null;
  #releaseAlive = null;
  /** What the host's node last said of itself: `{peerId, publicKey, engine, durability, peers, connections}`. */
  #hostInfo = null;
  #announceSoon = null;

  /**
   * Joins the tabs that open `options.dbName` (BrowserNode's options, the same in every tab;
   * `init()` must have run). `hostTimeoutMs` (default 10000): how long a call, and `open`
   * itself, waits for a host to take it before failing with `NoHost`.
   */
  static async open(options = {}) {
    const tab = new TabNode(options);
    await tab.#start();
    return tab;
  }

  constructor(options) {
    const { hostTimeoutMs = 10_000, ...nodeOptions } = options;
    this.#db = nodeOptions.dbName ?? 'tabnode';
    this.#options = nodeOptions;
    this.#timeoutMs = hostTimeoutMs;
  }

  /** Whether this tab hosts the node (it may come to, when the host tab closes). */
  get isHost() {
    return this.#node !== null;
  }

  get peerId() {
    return this.#info().peerId;
  }

  get publicKey() {
    return this.#info().publicKey;
  }

  get engine() {
    return this.#info().engine;
  }

  get durability() {
    return this.#info().durability;
  }

  /** The host's peers, as it last announced them. */
  peers() {
    return this.#node ? this.#node.peers() : this.#hostInfo.peers;
  }

  /** The host's connections, as it last announced them. */
  connections() {
    return this.#node ? this.#node.connections() : this.#hostInfo.connections;
  }

  /** As `BrowserNode.subscribe`: the host's events for `contextId` (null: every context and peers). */
  subscribe(contextId, callback) {
    if (contextId !== null && contextId !== undefined && typeof contextId !== 'string') {
      throw typedError('BadArgs', 'contextId must be a string or null');
    }
    if (typeof callback !== 'function') throw typedError('BadArgs', 'callback must be a function');
    const subscriber = { context: contextId ?? null, callback };
    this.#subscribers.add(subscriber);
    return () => void this.#subscribers.delete(subscriber);
  }

  /** `BrowserNode.<method>(...args)` on the host's node. */
  call(method, ...args) {
    if (!FORWARDED.has(method)) return Promise.reject(typedError('BadArgs', `a node has no method ${JSON.stringify(method)}`));
    if (this.#node) return this.#onHost(method, args);
    return new Promise((resolve, reject) => {
      const id = `${this.#tab}:${this.#nextCall++}`;
      // A call sent to another tab runs at most once (its call id, see BrowserNode.execute), so
      // it can be sent again when that tab goes mid-call instead of failing `HostLost`; so can
      // a call that changes nothing more when it runs twice.
      const retryable = method === 'execute' || SAFE_TO_RESEND.has(method);
      if (method === 'execute' && !args[3]?.callId) args = [...args.slice(0, 3), { ...args[3], callId: id }];
      const call = { method, args, resolve, reject, retryable, sentTo: null, accepted: false };
      this.#pending.set(id, call);
      this.#arm(id, call);
    });
  }

  /** Sends `call` to the host (when one is known), to be taken within the bound. */
  #arm(id, call) {
    call.deadline = Date.now() + this.#timeoutMs;
    call.sentTo = null;
    call.accepted = false;
    clearTimeout(call.timer);
    // Not taken within the bound: the host drops it from then on (see #serve), so it was not applied.
    call.timer = setTimeout(() => {
      if (!call.accepted) this.#settle(id, false, noHost(this.#db, this.#timeoutMs));
    }, this.#timeoutMs);
    if (this.#host) this.#send(id, call);
  }

  #info() {
    return this.#node ? this.#node : this.#hostInfo;
  }

  async #start() {
    const locks = globalThis.navigator?.locks;
    if (!locks || typeof BroadcastChannel === 'undefined') {
      console.warn('tabnode: no Web Locks or BroadcastChannel here (not a secure context?): this tab opens the node alone');
      this.#node = await BrowserNode.create(this.#options);
      this.#node.subscribe(null, (event) => this.#deliver(event));
      return;
    }
    this.#channel = new BroadcastChannel(`tabnode:${this.#db}`);
    this.#channel.onmessage = ({ data }) => this.#receive(data);
    const ready = new Promise((resolve, reject) => (this.#ready = { resolve, reject }));
    this.#elect(locks);
    this.#channel.postMessage({ t: 'who' });
    // A tab busy opening the node itself is not timed out: its own start decides.
    const timer = setTimeout(() => this.#starting || this.#ready?.reject(noHost(this.#db, this.#timeoutMs)), this.#timeoutMs);
    try {
      await ready;
    } catch (err) {
      this.#closed = true;
      this.#channel.close();
      throw err;
    } finally {
      clearTimeout(timer);
      this.#ready = null;
    }
  }

  /**
   * Queues for the host lock; once granted (the previous host's tab is gone), opens the node and
   * serves it until the tab goes. A failed start while `open` waits fails `open`; a failed
   * takeover gives the lock to the next tab and queues again.
   */
  #elect(locks) {
    locks.request(`tabnode-host:${this.#db}`, async () => {
      if (this.#closed || this.#crashed) return;
      this.#starting = true;
      try {
        await this.#becomeHost(locks);
      } catch (err) {
        if (this.#ready) return this.#ready.reject(err);
        console.error(`tabnode: this tab could not take over the node ${JSON.stringify(this.#db)}:`, err);
        setTimeout(() => this.#elect(locks), 1_000);
        return;
      } finally {
        this.#starting = false;
      }
      // Held for as long as the tab lives, or until its node crashes (#abdicate).
      return new Promise((release) => (this.#releaseHost = release));
    });
  }

  async #becomeHost(locks) {
    // The previous host's page lets go of the store's own lock as it goes, a moment after this one.
    let node;
    for (const until = Date.now() + this.#timeoutMs; ; ) {
      try {
        node = await BrowserNode.create(this.#options);
        break;
      } catch (err) {
        if (err?.name !== 'StoreLocked' || Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Followers learn of this host's end from this lock (see #watch), held as long as the tab.
    await new Promise((granted) => locks.request(`tabnode-alive:${this.#db}:${this.#tab}`, () => (granted(), new Promise((release) => (this.#releaseAlive = release)))));
    this.#lostHost(this.#host?.id);
    this.#node = node;
    this.#host = null;
    node.subscribe(null, (event) => {
      this.#deliver(event);
      if (event.type === 'crashed') return this.#abdicate();
      // The host's peers go first, so a follower that renders them on this event sees them.
      if (PEER_EVENTS.has(event.type)) this.#announce();
      this.#channel.postMessage({ t: 'event', host: this.#tab, event });
      this.#announceLater();
    });
    this.#announce();
    this.#deliver(this.#hostChanged());
    this.#ready?.resolve();
    for (const [id, call] of this.#pending) {
      clearTimeout(call.timer);
      this.#pending.delete(id);
      this.call(call.method, ...call.args).then(call.resolve, call.reject);
    }
  }

  /**
   * A call on this tab's own node. One that finds the node crashed goes to the next host when
   * running it twice could not differ (`SAFE_TO_RESEND`); any other fails `Crashed` (it may or
   * may not have been applied).
   */
  #onHost(method, args) {
    return Promise.resolve()
      .then(() => this.#node[method](...args))
      .catch((err) => {
        if (err?.name !== 'Crashed') throw err;
        this.#abdicate();
        if (SAFE_TO_RESEND.has(method)) return this.call(method, ...args);
        throw err;
      });
  }

  /**
   * This tab's node crashed (a panic aborts the page's wasm; BrowserNode has let go of the store
   * by now): the tab lets go of its locks, so the next tab in the queue opens the node from the
   * same store and followers re-send their calls in flight as when a host tab closes; this tab
   * then calls that host as any follower does. With no other tab, its calls fail `NoHost`.
   */
  #abdicate() {
    const node = this.#node;
    if (!node) return;
    // The node is the same in the next host (the same store): what it says of itself stands.
    this.#hostInfo = { peerId: node.peerId, publicKey: node.publicKey, engine: node.engine, durability: node.durability, peers: [], connections: [] };
    this.#node = null;
    this.#crashed = true;
    this.#releaseAlive?.();
    this.#releaseHost?.();
    this.#releaseAlive = this.#releaseHost = null;
    this.#deliver(this.#hostChanged());
  }

  #announce() {
    const info = { peerId: this.#node.peerId, publicKey: this.#node.publicKey, engine: this.#node.engine, durability: this.#node.durability, peers: this.#node.peers(), connections: this.#node.connections() };
    this.#channel.postMessage({ t: 'host', host: this.#tab, info });
  }

  /** Tells followers what changed (keys, peers) once a burst of calls or events has passed. */
  #announceLater() {
    if (this.#announceSoon) return;
    this.#announceSoon = setTimeout(() => {
      this.#announceSoon = null;
      this.#announce();
    }, 50);
  }

  #receive(msg) {
    if (this.#node) return this.#serve(msg);
    switch (msg.t) {
      case 'host':
        if (this.#host?.id !== msg.host) {
          this.#lostHost(this.#host?.id);
          this.#host = { id: msg.host };
          this.#watch(msg.host);
          for (const [id, call] of this.#pending) if (!call.sentTo) this.#send(id, call);
          this.#hostInfo = msg.info;
          this.#ready?.resolve();
          this.#deliver(this.#hostChanged());
        }
        this.#hostInfo = msg.info;
        break;
      case 'event':
        if (msg.host === this.#host?.id) this.#deliver(msg.event);
        break;
      case 'accepted': {
        const call = msg.to === this.#tab && this.#pending.get(msg.id);
        if (call) call.accepted = true;
        break;
      }
      case 'result':
        if (msg.to === this.#tab) this.#settle(msg.id, msg.ok, msg.ok ? msg.value : typedError(msg.error.name, msg.error.message));
        break;
    }
  }

  /** The host's side: runs a follower's call on the node and answers. */
  async #serve(msg) {
    if (msg.t === 'who') return this.#announce();
    // A call past its deadline minus a margin is dropped unrun: its caller reports `NoHost`
    // (not applied) by then, and an answer could cross that report.
    const margin = Math.min(1_000, this.#timeoutMs / 4);
    if (msg.t !== 'call' || msg.to !== this.#tab || !FORWARDED.has(msg.method) || Date.now() > msg.deadline - margin) return;
    this.#channel.postMessage({ t: 'accepted', id: msg.id, to: msg.from });
    let answer;
    try {
      answer = { ok: true, value: await this.#node[msg.method](...msg.args) };
    } catch (err) {
      // No answer from a crashed node: the caller hears this host is gone, and re-sends what
      // may be re-sent (#lostHost), as when a host tab closes.
      if (err?.name === 'Crashed') return this.#abdicate();
      answer = { ok: false, error: errorData(err) };
    }
    // What the node says of itself goes before the answer when the call may have changed it (a
    // new key after `rotateKey`), so the caller reads it current; `execute` changes none of it.
    if (msg.method !== 'execute') this.#announce();
    try {
      this.#channel.postMessage({ t: 'result', id: msg.id, to: msg.from, ...answer });
    } catch (err) {
      this.#channel.postMessage({ t: 'result', id: msg.id, to: msg.from, ok: false, error: errorData(err) });
    }
    this.#announceLater();
  }

  #send(id, call) {
    call.sentTo = this.#host.id;
    const { method, args, deadline } = call;
    try {
      this.#channel.postMessage({ t: 'call', id, from: this.#tab, to: call.sentTo, method, args, deadline });
    } catch (err) {
      this.#settle(id, false, typedError('BadArgs', `the arguments of ${method} cannot be sent to the host tab: ${err.message}`));
    }
  }

  /** Learns of host `id`'s end: its lock is granted to us once its tab has gone. */
  #watch(id) {
    navigator.locks.request(`tabnode-alive:${this.#db}:${id}`, { mode: 'shared' }, () => this.#lostHost(id));
  }

  /**
   * Host `id` is gone: a call sent to it goes to the next host, `execute` under its call id (it
   * runs there only if the gone host had not applied it) and `SAFE_TO_RESEND` as they are;
   * others fail with `HostLost`. Unsent calls wait for the next host.
   */
  #lostHost(id) {
    if (!id) return;
    if (this.#host?.id === id) this.#host = null;
    for (const [callId, call] of this.#pending) {
      if (call.sentTo !== id) continue;
      if (call.retryable) this.#arm(callId, call);
      else this.#settle(callId, false, hostLost(this.#db));
    }
  }

  #settle(id, ok, value) {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    clearTimeout(call.timer);
    if (ok) call.resolve(value);
    else call.reject(value);
  }

  /**
   * The event that says another tab now hosts the node, or this one does. The node is the same
   * (each host opens the same store: same key, same peer id), but its connections start anew in
   * the new host, and a tab that shows whether it hosts has changed.
   */
  #hostChanged() {
    const { peerId, publicKey, engine } = this.#info();
    return { type: 'hostChanged', isHost: this.isHost, peerId, publicKey, engine };
  }

  #deliver(event) {
    for (const { context, callback } of [...this.#subscribers]) {
      if (context !== null && context !== event.contextId) continue;
      try {
        callback(event);
      } catch (err) {
        console.error('tabnode: a subscriber threw', err);
      }
    }
  }
}

// Every other BrowserNode method, forwarded: the API follows the node's without a list here.
for (const name of Object.getOwnPropertyNames(BrowserNode.prototype)) {
  const descriptor = Object.getOwnPropertyDescriptor(BrowserNode.prototype, name);
  if (OWN.has(name) || INFO.includes(name) || typeof descriptor.value !== 'function') continue;
  FORWARDED.add(name);
  Object.defineProperty(TabNode.prototype, name, {
    value(...args) {
      return this.call(name, ...args);
    },
    writable: true,
    configurable: true,
  });
}
