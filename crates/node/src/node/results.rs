//! What the node's public operations return.

use super::*;

/// What a local call returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResult {
    pub output: serde_json::Value,
    pub logs: Vec<String>,
    pub events: Vec<serde_json::Value>,
    pub root_hash: Option<Hash>,
    pub delta_id: Option<DeltaId>,
    /// Ids (base58) of the blobs the call stored.
    pub blobs: Vec<String>,
    /// This is the stored answer of a call made before under the same call id, not run again
    /// (see [`Node::execute_once`]).
    pub repeated: bool,
    /// The cross-context calls the call asked for, each run after it, in order.
    pub xcalls: Vec<XCallResult>,
    #[serde(skip)]
    pub(super) queued_xcalls: Vec<XCallRequest>,
    /// What the call asked the node to do to contexts and membership (`context_create`,
    /// `context_delete`, `context_add_member`, `context_remove_member`), each done after it,
    /// in order.
    pub context_requests: Vec<ContextRequestResult>,
    #[serde(skip)]
    pub(super) queued_context_requests: Vec<ContextRequest>,
}

/// How one request of a call to the node went (the calling call stays committed either way).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextRequestResult {
    /// `addMember`, `removeMember`, `create`, `delete`, `propose` or `approve`.
    pub request: &'static str,
    /// The proposal sent or approved.
    pub proposal: Option<ProposalId>,
    /// The member added or removed.
    pub member: Option<PublicKey>,
    /// The context created or deleted.
    pub context_id: Option<ContextId>,
    /// The operation made, for `addMember`, `removeMember`, `propose` and `approve`.
    pub op: Option<DeltaId>,
    pub error: Option<String>,
    /// The error's kind ([`NodeError::kind`]).
    pub error_kind: Option<&'static str>,
}

/// How one `xcall` went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct XCallResult {
    pub context_id: ContextId,
    pub function: String,
    /// The error, if the call was refused or failed (the calling call stays committed).
    pub error: Option<String>,
    /// The error's kind ([`NodeError::kind`]).
    pub error_kind: Option<&'static str>,
}

/// A context's position: members with equal heads must have equal roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub heads: Vec<DeltaId>,
    /// The app's own root (calimero-storage's Merkle root).
    pub root_hash: Option<Hash>,
    /// The node's blake3 Merkle root over the stored shared state (see [`MerkleTree`]); `None`
    /// from [`Node::position`] while the context's tree is not built yet.
    pub merkle_root: Option<Hash>,
}

/// What a context's anchor says (a chain's record of the context, e.g. NEAR's context-config
/// contract, read by the embedding layer: see `tabnode-chain`): who its members are, and whether
/// this node's app binary is the anchored one. With an anchor, a member must be on it as well as
/// in the membership log.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AnchorView {
    pub members: BTreeSet<PublicKey>,
    pub app_matches: bool,
}

/// What [`Node::replay`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub deltas: usize,
    pub root_hash: Option<Hash>,
    pub matches: bool,
}
