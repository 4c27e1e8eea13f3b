//! What the node hands its driver: messages to send ([`Outgoing`]) and what subscribers are told
//! ([`NodeEvent`]).

use super::*;

/// What the node wants the network layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Subscribe {
        topic: String,
        /// The key of the topic's envelopes ([`crate::context_topic_key`]).
        key: [u8; 32],
    },
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    /// For one member (by its network peer id) only: an answer to its request. Sent to it
    /// alone where the network can (a direct link), published on the topic where it cannot.
    Reply {
        peer: String,
        topic: String,
        data: Vec<u8>,
    },
}

/// What subscribers of a context are told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum NodeEvent {
    /// An event a guest emitted, here or on another member's node.
    #[serde(rename_all = "camelCase")]
    Event {
        context_id: ContextId,
        kind: String,
        data: serde_json::Value,
        author: PublicKey,
        delta_id: Option<DeltaId>,
        local: bool,
        /// The hash of the full payload when `data` is only what its author disclosed: ask
        /// for the rest with [`Node::request_payload`].
        withheld: Option<Hash>,
    },
    /// A handler that an event named (`emit_with_handler`) ran on this node, as this node's
    /// member: after this node's own call that emitted the event, or once a delta of an older
    /// build that names it was applied here (see `handlers`). `handler_delta` is the delta its
    /// writes made; `error` says why it failed (it then changed nothing, and the call or delta
    /// that named it stands all the same).
    #[serde(rename_all = "camelCase")]
    Handler {
        context_id: ContextId,
        /// The delta whose event named the handler (`None`: a call of this node's that wrote
        /// nothing).
        delta_id: Option<DeltaId>,
        handler: String,
        handler_delta: Option<DeltaId>,
        error: Option<String>,
    },
    /// The context's anchor disagrees with this node: its app is not the anchored one, or a
    /// member acted who is not on the anchor.
    #[serde(rename_all = "camelCase")]
    AnchorMismatch {
        context_id: ContextId,
        reason: String,
    },
    /// A withheld payload a member asked for arrived and matches its hash.
    #[serde(rename_all = "camelCase")]
    Payload {
        context_id: ContextId,
        hash: Hash,
        data: serde_json::Value,
    },
    /// A part of the app this node's join lacks came from a member and matched the app id:
    /// `received` of its `total` bytes are here (see [`Node::join`]). Once all are, the app is
    /// installed and the join goes on.
    #[serde(rename_all = "camelCase")]
    AppProgress {
        context_id: ContextId,
        app_id: AppId,
        received: u64,
        total: u64,
    },
    /// A part of a blob this node fetches for a context's guests came from a member and
    /// matched the blob id: `received` of its `total` bytes are here (see [`Node::fetch_blob`]).
    /// Once all are, the blob is stored and guests open it.
    #[serde(rename_all = "camelCase")]
    BlobProgress {
        context_id: ContextId,
        blob_id: Hash,
        received: u64,
        total: u64,
    },
    /// A member admitted this node's join and gave it the context's secret: it now asks for
    /// the state (calls answer [`NodeError::NotSynced`] until it arrives).
    #[serde(rename_all = "camelCase")]
    Joined {
        context_id: ContextId,
        admitted_by: PublicKey,
    },
    /// A remote delta was verified and merged.
    #[serde(rename_all = "camelCase")]
    DeltaApplied {
        context_id: ContextId,
        delta_id: DeltaId,
        author: PublicKey,
        root_hash: Option<Hash>,
    },
    /// A remote message was refused; nothing changed. `kind` is the [`NodeError::kind`] of
    /// the refusal, `ChainTooDeep` for a message carrying a certificate nested too deep (see
    /// [`crate::ChainTooDeep`]), or `BadMessage` for one that is not a valid message.
    #[serde(rename_all = "camelCase")]
    SyncRejected {
        context_id: Option<ContextId>,
        kind: String,
        reason: String,
    },
    /// An admin's membership operation was applied (`counted`: it took effect under the log's
    /// rule; see [`crate::MemberOp`]).
    #[serde(rename_all = "camelCase")]
    Membership {
        context_id: ContextId,
        delta_id: DeltaId,
        by: PublicKey,
        op: MemberOp,
        counted: bool,
    },
    /// A member's delta does not stand under the membership log (its author, or a key its
    /// authority depends on, was removed, or its role does not allow it): kept in the DAG,
    /// not applied to the state.
    #[serde(rename_all = "camelCase")]
    Voided {
        context_id: ContextId,
        delta_id: DeltaId,
        author: PublicKey,
    },
    /// After applying a delta on exactly its parents, our root differs from its author's.
    #[serde(rename_all = "camelCase")]
    Divergence {
        context_id: ContextId,
        delta_id: DeltaId,
        expected: Hash,
        actual: Option<Hash>,
    },
    /// A member announced the same heads with another root. With `repaired`, this node rebuilt
    /// its state from the deltas in their canonical order (which every member that holds them
    /// reaches alike; `ours` is the root after); without, it had already, so the states differ
    /// for another reason.
    #[serde(rename_all = "camelCase")]
    RootMismatch {
        context_id: ContextId,
        ours: Option<Hash>,
        theirs: Hash,
        repaired: bool,
    },
}

impl NodeEvent {
    pub fn context_id(&self) -> Option<ContextId> {
        match self {
            Self::Event { context_id, .. }
            | Self::DeltaApplied { context_id, .. }
            | Self::Joined { context_id, .. }
            | Self::AppProgress { context_id, .. }
            | Self::BlobProgress { context_id, .. }
            | Self::Membership { context_id, .. }
            | Self::Voided { context_id, .. }
            | Self::Payload { context_id, .. }
            | Self::Handler { context_id, .. }
            | Self::AnchorMismatch { context_id, .. }
            | Self::Divergence { context_id, .. }
            | Self::RootMismatch { context_id, .. } => Some(*context_id),
            Self::SyncRejected { context_id, .. } => *context_id,
        }
    }
}
