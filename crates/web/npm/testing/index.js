// tabnode-web/testing: run tabnode nodes in a headless browser from a Node test. Starts (optionally)
// a relay, serves a bare page with this package's node, opens N pages each in its own browser
// context (so its own IndexedDB store), drives them, waits for convergence, collects their
// events, and stops everything (also when a test fails: call `stop()` from `after`/`finally`).
// Needs playwright-core (a peer dependency) and a Chromium the caller names.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This package's folder: the page loads the node from here. */
const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };

/**
 * The page each node runs in: `?db=` names its store, `?relay=` its relays; with
 * `?allowGuestRequests`, its `guestConsent` consents to every guest request; with `?tabs`, the
 * page is a tab of an app sharing one node (`tabnode-web/tabs`), `?hostTimeoutMs=` its bound.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>tabnode test node</title><script type="module">
  import init, { BrowserNode } from './tabnode_web.js';
  try {
    await init();
    const params = new URLSearchParams(location.search);
    window.__events = [];
    const options = { dbName: params.get('db'), relays: params.getAll('relay') };
    if (params.has('allowGuestRequests')) options.guestConsent = () => true;
    if (params.has('tabs')) {
      const { TabNode } = await import('./tabs.js');
      window.tabnode = await TabNode.open({ ...options, hostTimeoutMs: Number(params.get('hostTimeoutMs')) || undefined });
    } else {
      window.tabnode = await BrowserNode.create(options);
    }
  } catch (err) {
    window.tabnodeError = err;
  }
</script>`;

/** Serves this package and the node page on 127.0.0.1. */
function servePackage() {
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    if (pathname === '/' || pathname === '/node.html') {
      res.writeHead(200, { 'content-type': TYPES['.html'] });
      return res.end(PAGE);
    }
    const file = path.join(PACKAGE, path.normalize(decodeURIComponent(pathname)));
    if (!file.startsWith(PACKAGE + path.sep)) {
      res.writeHead(403);
      return res.end();
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Starts a `tabnode-relay` binary on free loopback ports; resolves to `{address, stop}` once it
 * prints its WebSocket multiaddr (within `timeoutMs`).
 */
export async function startRelay({ binary, timeoutMs = 30_000 }) {
  const child = spawn(binary, ['--listen', '/ip4/127.0.0.1/tcp/0/ws'], { stdio: ['ignore', 'pipe', 'inherit'], env: { RUST_LOG: 'warn', ...process.env } });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(kill);
  };
  try {
    const address = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the relay did not print its address within ${timeoutMs} ms`)), timeoutMs);
      child.once('error', (err) => reject(new Error(`cannot start the relay ${binary}: ${err.message}`)));
      exited.then((code) => reject(new Error(`the relay exited early (code ${code})`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const [key, value] = line.trim().split(/=(.*)/s);
        if (key === 'RELAY_MULTIADDR' && value.includes('/ws/')) {
          clearTimeout(timer);
          resolve(value);
        }
      });
    });
    return { address, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Polls `check` until it returns a truthy value other than `{ok: false, …}` (which says "not yet",
 * with details for the failure message); fails with `what` and the last value after `timeoutMs`.
 * A `NotSynced` error (a joiner before the context's state arrives) counts as not yet.
 */
export async function eventually(what, check, { timeoutMs = 60_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
    } catch (err) {
      if (!/NotSynced/.test(String(err?.message))) throw err;
      last = { ok: false, notSynced: true };
    }
    if (last && last.ok !== false) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)?.slice(0, 500)}`);
}

/** One node in its own page and browser context. */
class TestNode {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
  }

  /** Calls `BrowserNode.<method>(...args)` in the page; arguments and result go as JSON. */
  call(method, ...args) {
    return this.page.evaluate(({ method, args }) => window.tabnode[method](...args), { method, args });
  }

  /** Runs a guest method: `execute(ctx, method, args)`, resolving to its `output`. */
  async execute(ctx, method, args = {}) {
    return (await this.call('execute', ctx, method, args)).output;
  }

  /** Installs a guest app from its bytes; resolves to the app id. */
  installApp(wasm) {
    return this.page.evaluate((bytes) => window.tabnode.installApp(new Uint8Array(bytes)), [...wasm]);
  }

  /** From now on, records the node's events for `ctx` (null: every context, and peers). */
  watch(ctx = null) {
    return this.page.evaluate((c) => void window.tabnode.subscribe(c, (event) => window.__events.push(event)), ctx);
  }

  /** The events recorded since `watch`, oldest first. */
  events() {
    return this.page.evaluate(() => window.__events);
  }
}

/** Opens the node page at `url` in `context` and waits for its node; throws what stopped it. */
async function openNodePage(context, name, url, timeoutMs) {
  const page = await context.newPage();
  const node = new TestNode(name, context, page);
  await page.goto(url);
  await page.waitForFunction(() => window.tabnode || window.tabnodeError, null, { timeout: timeoutMs });
  const error = await page.evaluate(() => window.tabnodeError && `${window.tabnodeError.name}: ${window.tabnodeError.message}`);
  if (error) throw new Error(`${name} did not start: ${error}`);
  return node;
}

/** Stops the package server and drops its open connections. */
async function closeServer(server) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/**
 * Starts `nodes` nodes in `browser` pages (each its own context, so its own IndexedDB), all given
 * `relays` (and, with `allowGuestRequests`, a `guestConsent` that consents to every guest request). Returns `{nodes, stop}`; `stop()` closes the pages and the server.
 */
export async function startNodes(browser, { nodes: count = 2, relays = [], allowGuestRequests = false, timeoutMs = 60_000 } = {}) {
  const server = await servePackage();
  const url = `http://127.0.0.1:${server.address().port}/node.html`;
  const contexts = [];
  const nodes = [];
  const stop = async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await closeServer(server);
  };
  try {
    for (let i = 0; i < count; i++) {
      const context = await browser.newContext();
      contexts.push(context);
      const query = new URLSearchParams([['db', `tabnode-test-${i}`], ...relays.map((r) => ['relay', r])]);
      if (allowGuestRequests) query.set('allowGuestRequests', '');
      nodes.push(await openNodePage(context, `node${i}`, `${url}?${query}`, timeoutMs));
    }
    return { nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Opens `tabs` tabs of one app in one browser context (one origin: one IndexedDB, one set of
 * Web Locks), each with `TabNode.open({ dbName, relays, hostTimeoutMs })`: the first hosts the
 * node, the others reach it through it. Returns `{tabs, context, url, openTab, stop}` (`url`:
 * the tabs' page); `openTab()` opens one more; `stop()` closes them and the server.
 */
export async function openTabs(browser, { tabs: count = 3, dbName = 'tabnode-tabs', relays = [], hostTimeoutMs, timeoutMs = 60_000 } = {}) {
  const server = await servePackage();
  const query = new URLSearchParams([['tabs', ''], ['db', dbName], ...relays.map((r) => ['relay', r])]);
  if (hostTimeoutMs) query.set('hostTimeoutMs', String(hostTimeoutMs));
  const url = `http://127.0.0.1:${server.address().port}/node.html?${query}`;
  const context = await browser.newContext();
  const tabs = [];
  const openTab = async () => {
    const tab = await openNodePage(context, `tab${tabs.length}`, url, timeoutMs);
    tabs.push(tab);
    return tab;
  };
  const stop = async () => {
    await context.close().catch(() => {});
    await closeServer(server);
  };
  try {
    for (let i = 0; i < count; i++) await openTab();
    return { tabs, context, url, openTab, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Creates a context on the first node and has every other join it; resolves to its id. */
export async function shareContext(nodes, appId) {
  const [first, ...others] = nodes;
  const ctx = await first.call('createContext', appId, {});
  for (const node of others) await node.call('join', await first.call('invite', ctx));
  return ctx;
}

/** Waits until every node has `ctx` at the same non-empty root hash; resolves to that hash. */
export function converged(nodes, ctx, options) {
  return eventually(`${nodes.length} nodes to converge on ${ctx}`, async () => {
    const roots = await Promise.all(nodes.map(async (n) => (await n.call('checkpoint', ctx)).rootHash));
    return roots[0] && roots.every((r) => r === roots[0]) ? roots[0] : undefined;
  }, options);
}

/**
 * Launches headless Chromium at `executablePath` with playwright-core (a peer dependency). A
 * launch is tried `attempts` times: on CI machines Chromium has been seen to die with SIGSEGV while
 * starting, before any page exists, which says nothing about the node; the last try's failure
 * is thrown with every try's error.
 */
export async function launchChromium({ executablePath, args = [], attempts = 3 } = {}) {
  if (!executablePath) throw new Error('launchChromium needs the executablePath of a Chromium');
  const { chromium } = await import('playwright-core');
  const errors = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--allow-loopback-in-peer-connection', ...args] });
    } catch (err) {
      errors.push(err);
      if (attempt < attempts) await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  throw new AggregateError(errors, `chromium did not start in ${attempts} tries: ${errors.at(-1).message}`);
}
