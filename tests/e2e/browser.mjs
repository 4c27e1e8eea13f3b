// Shared set-up for end-to-end tests: Debian's Chromium driven by playwright-core, pages of the
// served console, and small helpers that wait for a condition instead of sleeping. Launching and
// waiting are the package kit's (tabnode-web/testing); what is the console's stays here.
import { before, after } from 'node:test';
// The package's test kit, from its source: these helpers need no built package.
import * as kit from '../../crates/web/npm/testing/index.js';
import { startStack } from '../../scripts/serve.mjs';
import { base58InitScript } from './base58.mjs';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Direct WebRTC links between pages need an ICE candidate both can reach; on a machine whose
  // only interface is loopback, Chromium offers none unless told it may use it.
  '--allow-loopback-in-peer-connection',
];

/** Launches Debian's Chromium (or `$CHROMIUM`) with the package kit's launcher (it retries). */
export const launchChromium = () =>
  kit.launchChromium({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });

/** Opens the console in a fresh browser context (its own IndexedDB) and waits for the node. */
export async function openNode(browser, url, { name } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[${name} console] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.log(`[${name} pageerror] ${err.message}`));
  await page.goto(url);
  await waitForNode(page);
  return { context, page };
}

export async function waitForNode(page) {
  await page.waitForFunction(() => window.tabnode || window.tabnodeError, null, { timeout: 60_000 });
  const error = await page.evaluate(() => window.tabnodeError && `${window.tabnodeError.name}: ${window.tabnodeError.message}`);
  if (error) throw new Error(`the node did not start: ${error}`);
}

/**
 * The kit's `eventually` with this suite's option names: polls `check` until it returns a truthy
 * value other than `{ok: false, …}`; a `NotSynced` error counts as not yet.
 */
export const eventually = (what, check, { ms = 60_000, every = 100 } = {}) =>
  kit.eventually(what, check, { timeoutMs: ms, everyMs: every });

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Starts a relay + console on free ports and a browser before the file's tests, and stops both
 * after them, also when a test fails. `stackOptions` may be a function (for async set-up).
 * Returns `{stack, browser}`, filled in once the tests start.
 */
export function useStack(stackOptions = {}) {
  const env = {};
  before(async () => {
    const options = typeof stackOptions === 'function' ? await stackOptions() : stackOptions;
    env.stack = await startStack({ port: 0, relayPort: 0, relayLogLevel: 'warn', ...options });
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.stack?.stop();
  });
  return env;
}

/** Installs kv-store (served from tests/apps/dist) in the page; resolves to its app id. */
export const installKvStore = (page) =>
  page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch('apps/kv_store.wasm')).arrayBuffer());
    return window.tabnode.installApp(bytes);
  });

/**
 * Installs kv-store in every page, creates a context in the first, and has the others join it
 * with invitations from the first; resolves to the context id (the joiners may not have its
 * state yet).
 */
export async function sharedContext(pages) {
  const [first, ...others] = pages;
  const appId = await installKvStore(first);
  for (const page of others) await installKvStore(page);
  const ctx = await first.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  for (const page of others) {
    const invitation = await first.evaluate((c) => window.tabnode.invite(c), ctx);
    await page.evaluate((inv) => window.tabnode.join(inv), invitation);
  }
  return ctx;
}

/** The error a call fails with in the page, as `{name, message}`, or null if it succeeds. */
export const failure = (page, ctx, method, args) =>
  page.evaluate(
    async ({ c, method, args }) => {
      try {
        await window.tabnode.execute(c, method, args);
        return null;
      } catch (e) {
        return { name: e.name, message: e.message };
      }
    },
    { c: ctx, method, args },
  );

export const checkpoint = (page, ctx) => page.evaluate((c) => window.tabnode.checkpoint(c), ctx);

export const entries = (page, ctx) =>
  page.evaluate(async (c) => (await window.tabnode.execute(c, 'entries', {})).output, ctx);

const walletDouble = new URL('./wallet-double.js', import.meta.url).pathname;

/**
 * Injects the injected-NEAR-wallet TEST DOUBLE (tests/e2e/wallet-double.js, with the shared
 * base58 it needs) into every page of a browser context, before the page's own scripts.
 */
export async function addWalletDouble(context) {
  await context.addInitScript(base58InitScript);
  await context.addInitScript({ path: walletDouble });
}

/**
 * The kit's node page without `?tabs` (a bare `BrowserNode.create`) on the store of `openTabs`'
 * `url`, in its browser `context`: `{page, error}`, `error` being `{name, message}` of what
 * stopped the node, or null.
 */
export async function openBarePage(context, url) {
  const bare = new URL(url);
  bare.searchParams.delete('tabs');
  const page = await context.newPage();
  await page.goto(bare.href);
  await page.waitForFunction(() => window.tabnode || window.tabnodeError, null, { timeout: 60_000 });
  const error = await page.evaluate(() => window.tabnodeError && { name: window.tabnodeError.name, message: window.tabnodeError.message });
  return { page, error: error || null };
}
