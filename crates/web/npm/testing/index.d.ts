// tabnode-web/testing: nodes in headless browser pages, driven from a Node test.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { NodeEvent } from '../tabnode_web.js';

export interface Relay {
  /** The relay's WebSocket multiaddr, to give to `startNodes({ relays })`. */
  address: string;
  stop(): Promise<void>;
}
/** Starts a `tabnode-relay` binary on free loopback ports. */
export function startRelay(options: { binary: string; timeoutMs?: number }): Promise<Relay>;

export interface TestNode {
  readonly name: string;
  readonly context: BrowserContext;
  readonly page: Page;
  /** `BrowserNode.<method>(...args)` in the page; arguments and result go as JSON. */
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  /** A guest call's `output`. */
  execute<T = unknown>(ctx: string, method: string, args?: Record<string, unknown>): Promise<T>;
  /** Installs a guest app; resolves to its id. */
  installApp(wasm: Uint8Array): Promise<string>;
  /** Records the node's events for `ctx` from now on (null: every context, and peers). */
  watch(ctx?: string | null): Promise<void>;
  /** The events recorded since `watch`, oldest first. */
  events(): Promise<NodeEvent[]>;
}

/**
 * Starts N nodes, each in its own browser context (its own IndexedDB store); with
 * `allowGuestRequests`, each page's `guestConsent` consents to every guest request.
 */
export function startNodes(
  browser: Browser,
  options?: { nodes?: number; relays?: string[]; allowGuestRequests?: boolean; timeoutMs?: number },
): Promise<{ nodes: TestNode[]; stop(): Promise<void> }>;

/** Creates a context on the first node and has the others join it; resolves to its id. */
export function shareContext(nodes: TestNode[], appId: string): Promise<string>;

/** Waits until every node has `ctx` at the same non-empty root hash; resolves to it. */
export function converged(nodes: TestNode[], ctx: string, options?: { timeoutMs?: number; everyMs?: number }): Promise<string>;

/** Polls `check` until it returns a truthy value other than `{ ok: false }` (a `NotSynced` error counts as not yet). */
export function eventually<T>(what: string, check: () => Promise<T> | T, options?: { timeoutMs?: number; everyMs?: number }): Promise<T>;

/** Launches headless Chromium at `executablePath` (playwright-core, a peer dependency), in up to `attempts` tries (default 3). */
export function launchChromium(options: { executablePath: string; args?: string[]; attempts?: number }): Promise<Browser>;

/**
 * Opens `tabs` tabs of one app in one browser context (one origin: one IndexedDB, one set of Web
 * Locks), each with `TabNode.open` (tabnode-web/tabs): the first hosts the node, the others reach
 * it through it. `url` is the tabs' page; `openTab()` opens one more; `stop()` closes them and
 * the server.
 */
export function openTabs(
  browser: Browser,
  options?: { tabs?: number; dbName?: string; relays?: string[]; hostTimeoutMs?: number; timeoutMs?: number },
): Promise<{ tabs: TestNode[]; context: BrowserContext; url: string; openTab(): Promise<TestNode>; stop(): Promise<void> }>;
