//! The node's logic, free of I/O: apps, contexts, execution, signed deltas and their merge.
//!
//! The node is driven from outside (sans-IO): [`machine::Core`] takes its inputs (an operation,
//! a message from the network, a timeout, the store's answers) and gives its outputs (store
//! requests, messages to send, events), and the page's and the CLI's driver carry them out.
//! Its logic is [`Node`]'s async methods over a [`Store`] (the core's store is requests and
//! answers); tests also call them directly on a real store. What it
//! wants sent comes out of [`Node::take_outgoing`], and what subscribers should see comes out of
//! [`Node::take_events`]. Time is an input: the driver gives it before each input
//! ([`Node::advance_to`], [`Node::handle_timeout`]) from its own [`Clock`], and the node reads
//! none; randomness comes in through [`Env`]. So tests are deterministic and a call can be
//! replayed.
//!
//! [`Store`]: tabnode_store::Store

mod audit;
mod chain_request;
mod delta;
mod disclosure;
mod env;
mod error;
mod log;
pub mod machine;
mod membership;
mod node;
pub mod proposals;
mod rows;
mod seal;
pub mod snapshot;
mod wire;

pub use audit::{AuditEntry, AuditKind, AuditRecord, AuditReport};
pub use chain_request::ChainSigner;
pub use delta::{Delta, DeltaBody, EventRecord, Genesis};
pub use disclosure::{Disclosure, REDACTED};
pub use env::{Clock, Env, FixedEnv};
pub use error::NodeError;
pub use log::{latest_secret_ops_computed, MemberOp, Share};
pub use membership::{
    ChainTooDeep, Invitation, InvitationGrant, Issuance, MemberCert, Role, MAX_CHAIN,
};
pub use node::{
    AnchorView, AppPartError, Checkpoint, Content, ContextRequestResult, ExecuteResult,
    GuestPolicy, GuestRequest, Node, NodeEvent, Outgoing, PartError, PartPacing, ReplayReport,
    XCallResult, ANNOUNCE_NANOS, APP_PART_BYTES, BLOB_ASKS, DEFAULT_INVITATION_NANOS,
    DEFAULT_SNAPSHOT_THRESHOLD, FORMAT_BEFORE_VERSIONS, HANDLER_DEPTH, KEEP_ANSWERS_NANOS,
    MAX_CALL_ID_BYTES, MAX_CLOCK_SKEW_NANOS, MAX_FETCHED_APP_BYTES, MAX_MESSAGE_BYTES,
    MOST_WAITING_PART_BYTES, READ_AUDITS_WAIT_NANOS, REFUSED_DELTAS, STORE_FORMAT,
    VOID_BYTES_PER_CONTEXT, VOID_BYTES_PER_KEY, VOID_DELTAS_PER_CONTEXT, VOID_DELTAS_PER_KEY,
};
pub use proposals::{
    chain_action, proxy_payload, Outcome as ProposalOutcome, Proposal, ProposalAction, ProposalId,
    Proxy, ProxyRequest, ProxyScope,
};
/// Sealing to a member's key: tools and tests craft shares with it.
pub use seal::seal_to;
pub use tabnode_store::MerkleTree;
pub use wire::{SealedPart, WireMessage};

/// What every context topic starts with; a hash of the context id follows.
pub const CONTEXT_TOPIC_PREFIX: &str = "/tabnode/context/";

/// The gossip topic of a context: every member subscribes to it. It names a hash of the
/// context id, not the id: a relay tells every peer connected to it which topics it carries,
/// and a peer that does not already know a context's id learns nothing from that list.
pub fn context_topic(context_id: &tabnode_types::ContextId) -> String {
    let hash = blake3::derive_key("tabnode context topic v1", context_id.as_bytes());
    format!("{CONTEXT_TOPIC_PREFIX}{}", bs58::encode(hash).into_string())
}

/// The key the network seals a context topic's envelopes under (who sent a message): derived
/// from the context id, so members have it and a peer that saw only the topic does not.
pub fn context_topic_key(context_id: &tabnode_types::ContextId) -> [u8; 32] {
    blake3::derive_key("tabnode context topic key v1", context_id.as_bytes())
}

/// The key a joiner and the members seal the join handshake under ([`WireMessage::JoinRequest`],
/// [`WireMessage::Welcome`]): derived from the context id, which the invitation names, so a
/// joiner that holds no context secret yet can speak. It hides the handshake from a relay, not
/// from link holders; nothing in it is secret (a certificate chain, and the context secret
/// sealed to the joiner's own key).
pub fn context_handshake_key(context_id: &tabnode_types::ContextId) -> [u8; 32] {
    blake3::derive_key("tabnode context handshake v1", context_id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabnode_types::ContextId;

    #[test]
    fn a_context_topic_is_fixed_per_context_and_hides_its_id() {
        let (a, b) = (
            ContextId::from_bytes([7; 32]),
            ContextId::from_bytes([8; 32]),
        );
        let topic = context_topic(&a);
        assert!(topic.starts_with(CONTEXT_TOPIC_PREFIX));
        assert!(!topic.contains(&a.to_string()), "{topic} names the context");
        assert_eq!(topic, context_topic(&a));
        assert_ne!(topic, context_topic(&b));
        assert_ne!(context_topic_key(&a), context_topic_key(&b));
        assert!(!topic.contains(&bs58::encode(context_topic_key(&a)).into_string()));
    }
}
