//! The node's logic, free of I/O: apps, contexts, execution, signed deltas and their merge.
//!
//! The node is driven from outside (sans-IO): callers invoke its async methods with a [`Store`]
//! for persistence, and feed it messages from the network with [`Node::handle_message`]. What it
//! wants sent comes out of [`Node::take_outgoing`], and what subscribers should see comes out of
//! [`Node::take_events`]. Time and randomness come in through [`Env`], so tests are deterministic
//! and a call can be replayed.
//!
//! [`Store`]: tabnode_store::Store

mod audit;
mod chain_request;
mod delta;
mod disclosure;
mod env;
mod error;
mod log;
mod membership;
mod node;
mod rows;
mod seal;
pub mod snapshot;
mod wire;

pub use audit::{AuditEntry, AuditKind, AuditRecord, AuditReport};
pub use chain_request::ChainSigner;
pub use delta::{Delta, DeltaBody, EventRecord, Genesis};
pub use disclosure::{Disclosure, REDACTED};
pub use env::{Env, FixedEnv};
pub use error::NodeError;
pub use log::MemberOp;
pub use membership::{Invitation, InvitationGrant, Issuance, MemberCert, Role};
pub use node::{
    AnchorView, Checkpoint, ContextRequestResult, ExecuteResult, Node, NodeEvent, Outgoing,
    ReplayReport, XCallResult, ANNOUNCE_NANOS, DEFAULT_INVITATION_NANOS,
    DEFAULT_SNAPSHOT_THRESHOLD, MAX_MESSAGE_BYTES,
};
pub use tabnode_store::MerkleTree;
pub use wire::WireMessage;

/// What every context topic starts with; the context id follows.
pub const CONTEXT_TOPIC_PREFIX: &str = "/tabnode/context/";

/// The gossip topic of a context: every member subscribes to it.
pub fn context_topic(context_id: &tabnode_types::ContextId) -> String {
    format!("{CONTEXT_TOPIC_PREFIX}{context_id}")
}
