//! Messages members exchange on a context's topic.

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{AppId, ContextId, DeltaId, Hash, PublicKey, Signature};

use crate::delta::Delta;
use crate::log::Share;
use crate::membership::MemberCert;

/// Everything that travels on a context topic, borsh-encoded.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WireMessage {
    /// New deltas, in causal order (parents before children).
    Deltas(Vec<Delta>),
    /// "These are my heads, and my root there": members who know more answer with the deltas
    /// the asker lacks; a member with the same heads and another root has diverged (see
    /// [`crate::NodeEvent::RootMismatch`]). Signed by a member (its certificate and signature
    /// over [`WireMessage::sync_request_message`]): a request from anyone the log does not
    /// count as a member is answered with nothing, and each member's requests are rate-limited.
    SyncRequest {
        context_id: ContextId,
        heads: Vec<DeltaId>,
        root_hash: Option<Hash>,
        requester: Box<MemberCert>,
        signature: Signature,
    },
    /// A joiner asks to be admitted with `cert`, which it redeemed from an invitation (the
    /// invite key signed its key). Sealed with the context's handshake key
    /// ([`crate::context_handshake_key`]), since the joiner holds no secret yet.
    JoinRequest {
        context_id: ContextId,
        cert: Box<MemberCert>,
    },
    /// A member's answer to a join it admitted (`admit`, the operation in the membership log):
    /// the context's current secret sealed to the joiner's key, signed by the member over
    /// [`WireMessage::welcome_message`]. Sealed with the handshake key, like the request.
    Welcome {
        context_id: ContextId,
        admit: DeltaId,
        share: Share,
        from: Box<MemberCert>,
        signature: Signature,
    },
    /// An admin gives a member the secret the operation `by` made, sealed to the member's key:
    /// for one admitted concurrently with `by`, which carries no share for it. Sent under the
    /// secret `by` replaced, which such a member holds.
    Share {
        context_id: ContextId,
        /// The operation (a removal, leave, revocation or rotation) that made this secret: the
        /// share counts only if that operation stands in the receiver's log and made its
        /// latest secret.
        by: DeltaId,
        share: Share,
        /// The admin's certificate and signature over `(context_id, by, share)`.
        from: Box<MemberCert>,
        signature: Signature,
    },
    /// A member asks the author of an event for the payload it withheld (see
    /// [`crate::Disclosure`]), proving who it is.
    PayloadRequest {
        context_id: ContextId,
        hash: Hash,
        requester: Box<MemberCert>,
        signature: Signature,
    },
    /// The author's answer: the payload sealed to the requester's key.
    Payload {
        context_id: ContextId,
        hash: Hash,
        to: PublicKey,
        sealed: Vec<u8>,
    },
    /// One part of a member's state snapshot, for a joiner (see [`crate::snapshot`]): the
    /// snapshot's encoding split in `parts`, whose blake3 `digest` the provider signed.
    SnapshotPart {
        context_id: ContextId,
        digest: Hash,
        index: u32,
        parts: u32,
        chunk: Vec<u8>,
        provider: Box<MemberCert>,
        signature: Signature,
    },
    /// A joiner that lacks the app its invitation names asks the members for it (see
    /// `node/app_fetch.rs`): the parts `missing` (all when empty), signed by the joiner over
    /// [`WireMessage::app_request_message`]. Sealed with the handshake key, like a join.
    AppRequest {
        context_id: ContextId,
        requester: Box<MemberCert>,
        missing: Vec<u32>,
        signature: Signature,
    },
    /// A member's answer: part `index` of the app binary of `size` bytes, sealed to the joiner
    /// `to`, with the chaining values of every part in blake3's tree (they make `app_id`), and
    /// the member's certificate and signature over [`WireMessage::app_part_message`].
    AppPart {
        context_id: ContextId,
        app_id: AppId,
        size: u64,
        index: u32,
        hashes: Vec<[u8; 32]>,
        to: PublicKey,
        sealed: Vec<u8>,
        provider: Box<MemberCert>,
        signature: Signature,
    },
    /// A member that lacks a blob announced to the context asks the members for it (see
    /// `node/blob_fetch.rs`): the parts `missing` (all when empty), signed by the member over
    /// [`WireMessage::blob_request_message`]. Sealed with the context's secret.
    BlobRequest {
        context_id: ContextId,
        blob_id: Hash,
        requester: Box<MemberCert>,
        missing: Vec<u32>,
        signature: Signature,
    },
    /// A member's answer, as [`WireMessage::AppPart`] is for an app: part `index` of the blob,
    /// sealed to `to`, signed over [`WireMessage::blob_part_message`].
    BlobPart {
        context_id: ContextId,
        blob_id: Hash,
        size: u64,
        index: u32,
        hashes: Vec<[u8; 32]>,
        to: PublicKey,
        sealed: Vec<u8>,
        provider: Box<MemberCert>,
        signature: Signature,
    },
}

impl WireMessage {
    /// Every context the message names (each delta's, or the one it is about): a message must
    /// name only the context of the topic it came on, whose secret opened it.
    pub fn contexts(&self) -> Vec<ContextId> {
        match self {
            Self::Deltas(deltas) => deltas.iter().map(|d| d.body.context_id).collect(),
            Self::SyncRequest { context_id, .. }
            | Self::JoinRequest { context_id, .. }
            | Self::Welcome { context_id, .. }
            | Self::Share { context_id, .. }
            | Self::PayloadRequest { context_id, .. }
            | Self::Payload { context_id, .. }
            | Self::SnapshotPart { context_id, .. }
            | Self::AppRequest { context_id, .. }
            | Self::AppPart { context_id, .. }
            | Self::BlobRequest { context_id, .. }
            | Self::BlobPart { context_id, .. } => vec![*context_id],
        }
    }

    /// What the requester of a [`WireMessage::PayloadRequest`] signs.
    pub fn payload_request_message(context_id: &ContextId, hash: &Hash) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-payload-request-v1", context_id, hash)).expect("encode")
    }

    /// What the requester of a [`WireMessage::SyncRequest`] signs.
    pub fn sync_request_message(
        context_id: &ContextId,
        heads: &[DeltaId],
        root_hash: &Option<Hash>,
    ) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-sync-request-v1", context_id, heads, root_hash)).expect("encode")
    }

    /// What the joiner of a [`WireMessage::AppRequest`] signs.
    pub fn app_request_message(context_id: &ContextId, missing: &[u32]) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-app-request-v1", context_id, missing)).expect("encode")
    }

    /// What the member of a [`WireMessage::AppPart`] signs: the context, the app, its size,
    /// the part's index, the joiner it is sealed to and the sealed bytes.
    pub fn app_part_message(
        (context_id, app_id, size, index, to, sealed): (
            &ContextId,
            &AppId,
            u64,
            u32,
            &PublicKey,
            &Vec<u8>,
        ),
    ) -> Vec<u8> {
        let signed = (context_id, &app_id.0, size, index, to, sealed);
        part_message(b"tabnode-app-part-v1", signed)
    }

    /// What the requester of a [`WireMessage::BlobRequest`] signs.
    pub fn blob_request_message(
        context_id: &ContextId,
        blob_id: &Hash,
        missing: &[u32],
    ) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-blob-request-v1", context_id, blob_id, missing)).expect("encode")
    }

    /// What the member of a [`WireMessage::BlobPart`] signs, as for an app's part.
    pub fn blob_part_message(
        (context_id, blob_id, size, index, to, sealed): (
            &ContextId,
            &Hash,
            u64,
            u32,
            &PublicKey,
            &Vec<u8>,
        ),
    ) -> Vec<u8> {
        let signed = (context_id, &blob_id.0, size, index, to, sealed);
        part_message(b"tabnode-blob-part-v1", signed)
    }

    /// What the member of a [`WireMessage::Welcome`] signs.
    pub fn welcome_message(context_id: &ContextId, admit: &DeltaId, share: &Share) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-welcome-v1", context_id, admit, share)).expect("encode")
    }

    /// What the admin of a [`WireMessage::Share`] signs.
    pub fn share_message(context_id: &ContextId, by: &DeltaId, share: &Share) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-share-v2", context_id, by, share)).expect("encode")
    }
}

impl WireMessage {
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("borsh encoding cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, borsh::io::Error> {
        borsh::from_slice(bytes)
    }
}

/// What the member of a part of content addressed by its blake3 signs, under `tag`: the
/// context, the id, the size, the part's index, the receiver it is sealed to and the sealed
/// bytes' hash.
fn part_message<const N: usize>(
    tag: &[u8; N],
    (context_id, id, size, index, to, sealed): (
        &ContextId,
        &[u8; 32],
        u64,
        u32,
        &PublicKey,
        &Vec<u8>,
    ),
) -> Vec<u8> {
    let sealed = blake3::hash(sealed);
    let signed = (context_id, id, size, index, to, sealed.as_bytes());
    borsh::to_vec(&(tag, signed)).expect("encode")
}
