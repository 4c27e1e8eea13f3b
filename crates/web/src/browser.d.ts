// The TypeScript declarations of BrowserNode's option, result and event types; wasm-bindgen
// appends them to the package's .d.ts (see `TS_TYPES` in browser.rs).
/** Options of BrowserNode.create. */
export interface NodeOptions {
  dbName?: string; relays?: string[];
  /** NEAR JSON-RPC URLs: sign-in then checks the key is on the account. */ nearRpc?: string[];
  /** A Calimero context-config contract (with nearRpc): contexts it records are anchored there. */ nearContract?: string;
  /** How often anchors are read again, ms (default 30000). */ anchorRefreshMs?: number;
  /** How many nearRpc endpoints must give the same anchor (default 1: one, with failover). */ nearRpcQuorum?: number;
  /** Sites besides this page's origin whose NEAR signatures members' root statements may carry. */ nearRecipients?: string[];
  /** Direct WebRTC links to other pages (default true). */ direct?: boolean;
  /** STUN/TURN URLs for direct links (default none: host candidates). */ iceServers?: string[];
  /** From how many deltas a context is offered to a joiner as a verified state snapshot (default 500; 0: never). */
  snapshotThreshold?: number;
  /** Which engine runs guest apps: "browser" (the page's own WebAssembly engine, the default)
   * or "wasmi" (the interpreter). Both give the same results; see docs/performance.md. */
  engine?: "browser" | "wasmi";
  /** What a write survives once its call resolves (IndexedDB's transaction durability; see
   * docs/storage.md): "relaxed" (the default, as merod's RocksDB writes: a crash of the tab or
   * the browser loses nothing, a crash of the OS or a power loss may lose the last writes) or
   * "strict" (flushed to disk before the call resolves: survives a power loss too; costs a
   * flush per write, about 1 ms a call on an SSD). */
  durability?: "relaxed" | "strict";
  /** Who sends this member's part of a proposal with a chain action (`Transfer`,
   * `ExternalFunctionCall`) to the context's proxy contract: "manual" (the default: the app calls
   * sendProposalToChain) or "auto" (the node sends it after each of its own proposals and
   * approvals, guests' included, as merod does; each is one wallet transaction, and subscribers
   * hear `proposalSent` or `proposalNotSent`). Needs `nearRpc` and `nearContract` to send. */
  proposalsToChain?: "manual" | "auto";
  /** Asked before a guest app deletes a context or adds or removes a member of its own
   * (`context_delete`, `context_add_member`, `context_remove_member`), or xcalls into a context
   * of this node that it neither is nor created: return `true` to allow.
   * Called synchronously, in the middle of the guest's call (e.g. `window.confirm`); anything
   * but `true`, a promise included, refuses with `NoConsent`. Without it each is refused. */
  guestConsent?: (request: GuestRequest) => boolean;
}
/** What a guest asks that needs the user's consent (see `NodeOptions.guestConsent`). */
export interface GuestRequest {
  /** As the call's `contextRequests[i].request` names it. */
  kind: "delete" | "addMember" | "removeMember" | "xcall";
  /** The context it deletes, whose membership it changes, or it xcalls into. */ context: string;
  /** The member added or removed (null for a deletion or an xcall). */ member: string | null;
  /** The context whose guest asks. */ caller: string;
}
/** What a call returns. */
export interface ExecuteResult {
  output: unknown; logs: string[]; events: { kind: string; data: unknown }[];
  rootHash: string | null; deltaId: string | null; blobs: string[];
  /** The stored answer of an earlier call with the same `callId`: nothing ran or changed now. */
  repeated: boolean;
  xcalls: { contextId: string; function: string; error: string | null; errorKind: string | null }[];
  contextRequests: { request: "addMember" | "removeMember" | "create" | "delete" | "propose" | "approve";
    proposal: string | null; member: string | null;
    contextId: string | null; op: string | null; error: string | null; errorKind: string | null }[];
}
/** One action of a proposal, as merod's admin API shows it: calimero-sdk 0.10's name and
 * fields; amounts are decimal strings, keys and values arrays of bytes. */
export type ProposalAction =
  | { scope: "ExternalFunctionCall"; params: { receiver_id: string; method_name: string; args: string; deposit: string } }
  | { scope: "Transfer"; params: { receiver_id: string; amount: string } }
  | { scope: "SetNumApprovals"; params: { num_approvals: number } }
  | { scope: "SetActiveProposalsLimit"; params: { active_proposals_limit: number } }
  | { scope: "SetContextValue"; params: { key: number[]; value: number[] } }
  | { scope: "DeleteProposal"; params: { proposal_id: string } };
/** A proposal and what became of it (see docs/proposals.md). */
export type Proposal = { id: string; author: string; actions: ProposalAction[]; approvers: string[];
  proposedIn: string } & (
  | { status: "active" }
  | { status: "executed"; at: string }
  | { status: "needsChain"; action: "Transfer" | "ExternalFunctionCall" }
  | { status: "onChain"; action: "Transfer" | "ExternalFunctionCall" }
  | { status: "deleted"; by: string }
  | { status: "tooManyActive"; limit: number });
/** A context's proxy: the approvals a proposal needs, the active proposals an author may have. */
export interface ProxyState { numApprovals: number; activeProposalsLimit: number; proposals: Proposal[]; }
/** `callId` (1 to 128 bytes): the call runs at most once; the same id again gets its first
 * answer for an hour (a write's answer is stored with its writes). */
export interface ExecuteOptions { callId?: string; }
/** A context's position: members with equal heads have equal rootHash. */
export interface Checkpoint { heads: string[]; rootHash: string | null; merkleRoot: string | null; }
export interface AuditRecord {
  seq: number; prev: string; kind: "call" | "remoteDelta" | "refused"; executor: string; method: string;
  argsHash: string; outcome: string; rootHash: string | null; time: string; randomSeed: string; deltaId: string | null;
}
export interface AuditReport { ok: boolean; records: number; badSeq: number | null; reason: string | null; }
export interface ReplayReport { deltas: number; rootHash: string | null; matches: boolean; }
/** How a kind of event leaves this node (selective disclosure). */
export type Disclosure = { mode: "full" } | { mode: "hash" } | { mode: "redact"; fields: string[] };
/** Rows of a context's state held in memory, and the node's wasm memory in bytes. */
export interface MemoryUse { rows: number; wasmBytes: number; }
/** What an `.mpk` bundle says of itself (`bundleInfo`): the app id its wasm installs as, and
 * `signerId`, the did:key that signed its manifest (null: unsigned). */
export interface BundleInfo { appId: string; package: string; appVersion: string; signerId: string | null; abi: boolean; }
/** `uses`: how many keys may join with the invitation (default 1). */
export interface InviteOptions { role?: "admin" | "member" | "reader"; expiresInMs?: number; uses?: number; }
export interface Identity { accountId: string; rootPublicKey: string; clientKey: string; expiresAt: number; }
/** What sendProposalToChain sent the context's proxy contract, and what the proxy answered. It
 * rejects with an Error whose `name` is the kind: `NeedsChain`, `BadProposal`, `UnknownProposal`,
 * `RpcUnavailable`, `AnchorReadFailed`, `AnchorNoQuorum`, the wallet's (`WalletNotFound`,
 * `WalletRejected`, `WalletTimeout`, `ProxySendFailed`: it could not send the part) or
 * `ProxyRefused` (the proxy contract's panic message). */
export interface ProxySend {
  contextId: string; proposal: string; request: "propose" | "approve";
  action: "Transfer" | "ExternalFunctionCall"; proxyContract: string; transactionHash: string | null;
  /** The proposal on the proxy now (null when the wallet's answer does not say). */
  onChain: { status: "pending"; approvals: number } | { status: "ran" } | null;
}
/** What writeAnchor wrote to the context-config contract, and the anchor read back after. */
export interface AnchorWrite {
  contextId: string;
  /** In transaction order; empty when the contract already recorded what the log says. */
  requests: { kind: "Add" | "AddMembers" | "RemoveMembers" | "UpdateApplication"; signer: string; nonce: number;
    members?: string[]; application?: { id: string; blob: string; size: number } }[];
  /** The transaction's hash (base58), or null when nothing was sent. */
  transactionHash: string | null;
  /** What the contract records now, as the node was told (null if it could not be read back). */
  anchor: { members: string[]; appMatches: boolean } | null;
}
/** What subscribers hear. */
export type NodeEvent =
  | { type: "event"; contextId: string; kind: string; data: unknown; author: string; deltaId: string | null; local: boolean;
      /** The full payload's hash when `data` is only what the author disclosed (see setDisclosure). */
      withheld: string | null }
  | { type: "payload"; contextId: string; hash: string; data: unknown }
  | { type: "anchorMismatch"; contextId: string; reason: string }
  | { type: "deltaApplied"; contextId: string; deltaId: string; author: string; rootHash: string | null }
  /** Part of the app a join lacks came from a member and matched the app id: `received` of
   * `total` bytes; once all have, the app is installed and the join goes on. */
  | { type: "appProgress"; contextId: string; appId: string; received: number; total: number }
  /** Part of a blob a guest here opened and lacks came from a member and matched the blob id:
   * `received` of `total` bytes; once all have, the blob is stored and guests open it. */
  | { type: "blobProgress"; contextId: string; blobId: string; received: number; total: number }
  /** A member admitted this node's join and gave it the context's secret. */
  | { type: "joined"; contextId: string; admittedBy: string }
  | { type: "syncRejected"; contextId: string | null; kind: string; reason: string }
  | { type: "divergence"; contextId: string; deltaId: string; expected: string; actual: string | null }
  /** A member announced the same heads with another root; `repaired`: rebuilt in canonical order. */
  | { type: "rootMismatch"; contextId: string; ours: string | null; theirs: string; repaired: boolean }
  | { type: "membership"; contextId: string; deltaId: string; by: string; counted: boolean;
      op: { op: "remove"; member: string } | { op: "setRole"; member: string; role: "admin" | "member" | "reader" } | { op: "join" }
        | { op: "leave" } | { op: "bind"; root: string } | { op: "revoke"; key: string; root: string }
        | { op: "rotate"; new: string; root: string }
        | { op: "setApp"; appId: string; migrate: string | null }
        | { op: "admit"; member: string } | { op: "revokeInvitation"; invitation: string }
        | { op: "propose"; proposal: string; actions: ProposalAction[] } | { op: "approve"; proposal: string } }
  | { type: "voided"; contextId: string; deltaId: string; author: string }
  /** A handler an event named ran here (`emit_with_handler`), after this node's call that emitted
   * it (`deltaId`: that call's delta, null if it wrote nothing) or after an older build's delta
   * that names it was applied: `handlerDelta` is the delta its writes made, `error` why it failed
   * (it then changed nothing). */
  | { type: "handler"; contextId: string; deltaId: string | null; handler: string; handlerDelta: string | null; error: string | null }
  | { type: "peerConnected" | "peerDisconnected" | "directOpened" | "directClosed"; peer: string }
  /** With `proposalsToChain: "auto"`: this member's part of a proposal went to the proxy contract. */
  | ({ type: "proposalSent" } & ProxySend)
  /** With `proposalsToChain: "auto"`: this member's part was not sent (`error.name` as
   * sendProposalToChain's rejections: `NeedsChain`, `ProxyRefused`, the wallet's, ...). */
  | { type: "proposalNotSent"; contextId: string; proposal: string; error: { name: string; message: string } }
  /** The page's node task panicked: every call fails `Crashed` from now on (to every subscriber). */
  | { type: "crashed"; message: string };
/** A connection of this node: to a relay over WebSocket or WebRTC-direct, or straight to another
 * page over WebRTC. */
export interface Connection { peer: string; via: "websocket" | "webrtc-direct" | "webrtc" | "circuit";
  /** A relay holding a reservation for this node: others can dial it through the relay. */ reservation?: boolean; }
