//! NEAR anchoring for tabnode: a JSON-RPC client that works in the page and natively, and
//! Calimero's context-config contract read through it, behind a small [`anchor::Anchor`] trait.
//!
//! - [`rpc`]: sans-IO request bodies and answer parsers for `query` (`call_function`,
//!   `view_access_key`) and `block`, in NEAR's exact formats, with one typed error enum.
//! - [`client`]: an async client over a [`client::Transport`], with failover across several RPC
//!   URLs and a per-request timeout; [`web::FetchTransport`] in the page (wasm32),
//!   [`native::ReqwestTransport`] natively.
//! - [`calimero`]: Calimero's chain-neutral types (application, capability) and how it derives
//!   application and blob ids, to check an anchored application against a wasm.
//! - [`context_config`]: the NEAR contract's views, typed, and its signed `mutate` request as
//!   a function call for the user's wallet.
//! - [`proxy`]: a context's proxy contract, which runs its proposals' chain actions: the
//!   answer of its `mutate`, sent like an anchor write through the user's wallet.
//! - [`anchor`]: what a node needs from a chain (members, privileges, application), with the
//!   NEAR implementation.
//! - [`write`]: the writing side: the `mutate` requests (with their signers and nonces) that
//!   make the contract record what the membership log says, as one transaction for the wallet,
//!   and how to read its outcome.
//!
//! The node enforces what an anchor says (it is given [`anchor::Anchored`] by the embedding
//! layer); this crate reads and writes the chain, and never holds a context's keys: the node
//! signs the payloads [`write::PlannedRequest::payload`] gives.

pub mod anchor;
pub mod calimero;
pub mod client;
pub mod context_config;
pub mod proxy;
pub mod rpc;
pub mod write;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use anchor::{
    Anchor, AnchorSnapshot, Anchored, AnchoredRole, NearAnchor, NoQuorum, QuorumAnchor,
    QuorumError, Revisions, UNKNOWN_CONTEXT_PANIC,
};
pub use calimero::{AppMismatch, Application, Capability};
pub use client::{
    Answer, Attempt, CallError, HttpAnswer, KeyCheckError, RpcClient, Transport, TransportError,
};
pub use context_config::{
    ContextConfig, ContextRequest, ContextRequestKind, FunctionCall, SignedRequest,
};
pub use proxy::{read_proxy_outcome, ProxyState};
pub use rpc::{AccessKeyView, BlockInfo, BlockRef, CallResult, RpcError};
pub use write::{
    plan, plan_write, read_outcome, Intended, PlanError, PlannedRequest, Recorded, RequestSigner,
    TransactionDone, TransactionFailed, WritePlan, MAX_TRANSACTION_GAS,
};
