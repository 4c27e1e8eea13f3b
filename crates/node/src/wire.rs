//! Messages members exchange on a context's topic.

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{ContextId, DeltaId};

use crate::delta::Delta;

/// Everything that travels on a context topic, borsh-encoded.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WireMessage {
    /// New deltas, in causal order (parents before children).
    Deltas(Vec<Delta>),
    /// "These are my heads": members who know more answer with the deltas the asker lacks.
    SyncRequest {
        context_id: ContextId,
        heads: Vec<DeltaId>,
    },
}

impl WireMessage {
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("borsh encoding cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, borsh::io::Error> {
        borsh::from_slice(bytes)
    }
}
