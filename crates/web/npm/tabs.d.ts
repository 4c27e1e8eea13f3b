// tabnode-web/tabs: every tab of an app on one node (docs/api.md, "Every tab of an app").
import type { BrowserNode, Connection, NodeEvent, NodeOptions } from './tabnode_web.js';

/** BrowserNode's methods, each returning a Promise (a TabNode forwards them to the host tab). */
type Forwarded = {
  [K in Exclude<keyof BrowserNode, symbol> as BrowserNode[K] extends (...args: any[]) => any ? K : never]: BrowserNode[K] extends (
    ...args: infer A
  ) => infer R
    ? (...args: A) => R extends Promise<any> ? R : Promise<R>
    : never;
};

/**
 * Another tab now hosts the node, or this one does (to `subscribe(null, …)` only). The node is the
 * same (same store, key and peer id); its connections start anew in the new host.
 */
export interface HostChanged { type: 'hostChanged'; isHost: boolean; peerId: string; publicKey: string; engine: string; }

export interface TabNodeOptions extends NodeOptions {
  /** How long a call (and `open`) waits for a host tab to take it before `NoHost`, ms (default 10000). */
  hostTimeoutMs?: number;
}

/**
 * A node shared by the tabs of one origin that open the same `dbName`: one tab (elected with a
 * Web Lock) hosts the BrowserNode, the others reach it over a BroadcastChannel. Calls fail with
 * `NoHost` (no host took the call within `hostTimeoutMs`: not applied) or `HostLost` (the host
 * tab went while the call was in flight: it may or may not have been applied). `execute` is
 * never `HostLost`: it goes to the next host under a call id and is applied at most once; nor
 * are the methods that change nothing more when run twice (the reads, `installApp`,
 * `checkpoint`, `dialPeer`), which go to the next host as they are.
 */
export declare class TabNode {
  private constructor();
  /** Joins the tabs on `options.dbName`; `init()` must have run. */
  static open(options?: TabNodeOptions): Promise<TabNode>;
  /** Whether this tab hosts the node now (a follower takes over when the host tab closes). */
  readonly isHost: boolean;
  readonly peerId: string;
  readonly publicKey: string;
  readonly engine: string;
  readonly durability: string;
  /** The host's peers and connections, as it last announced them. */
  peers(): string[];
  connections(): Connection[];
  /**
   * The host's events for `contextId` (null: every context and peers, and `hostChanged`);
   * returns the unsubscribe.
   */
  subscribe(contextId: string | null, callback: (event: NodeEvent | HostChanged) => void): () => void;
  /** `BrowserNode.<method>(...args)` on the host's node. */
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
}
export interface TabNode extends Omit<Forwarded, 'free' | 'subscribe' | 'peers' | 'connections'> {}
