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
        /// What the secret is made of: each of the latest secret-giving operations that count
        /// in the member's log, with the secret it made sealed to the joiner (in id order; they
        /// make `share`'s secret, one alone or combined, [`crate::seal::combine_secrets`]).
        /// So when an operation concurrent with them joins them, the joiner combines the secret
        /// on its own. Empty before any such operation, or when the member lacks a part.
        parts: Vec<(DeltaId, Share)>,
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
    /// A member's answer to a joiner: a part of the app binary `app_id`.
    AppPart {
        context_id: ContextId,
        app_id: AppId,
        part: SealedPart,
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
    /// A member's answer, as [`WireMessage::AppPart`] is for an app: a part of the blob.
    BlobPart {
        context_id: ContextId,
        blob_id: Hash,
        part: SealedPart,
    },
}

/// What content a [`SealedPart`] is of: it names the errors (`AppHashMismatch`,
/// `BlobHashMismatch`, ...) and the tag its sender signs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    App,
    Blob,
}

impl std::fmt::Display for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::App => "app",
            Self::Blob => "blob",
        })
    }
}

/// Part `index` of content addressed by its blake3 (an app's binary, a blob) of `size` bytes,
/// sealed to the member `to`, with the chaining values of every part in blake3's tree (they
/// make the id), and the certificate and signature of the member that sent it over
/// [`SealedPart::signed_message`]. The id and the context travel beside it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SealedPart {
    pub size: u64,
    pub index: u32,
    pub hashes: Vec<[u8; 32]>,
    pub to: PublicKey,
    pub sealed: Vec<u8>,
    pub provider: Box<MemberCert>,
    pub signature: Signature,
}

impl SealedPart {
    /// What the sender of a part of `content` `id` in `context_id` signs: the context, the id,
    /// the size, the part's index, the receiver it is sealed to and the sealed bytes' hash.
    pub fn signed_message(
        content: Content,
        (context_id, id): (&ContextId, &[u8; 32]),
        (size, index, to, sealed): (u64, u32, &PublicKey, &[u8]),
    ) -> Vec<u8> {
        let sealed = blake3::hash(sealed);
        let signed = (context_id, id, size, index, to, sealed.as_bytes());
        match content {
            Content::App => borsh::to_vec(&(b"tabnode-app-part-v1", signed)),
            Content::Blob => borsh::to_vec(&(b"tabnode-blob-part-v1", signed)),
        }
        .expect("encode")
    }
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

    /// What the requester of a [`WireMessage::BlobRequest`] signs.
    pub fn blob_request_message(
        context_id: &ContextId,
        blob_id: &Hash,
        missing: &[u32],
    ) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-blob-request-v1", context_id, blob_id, missing)).expect("encode")
    }

    /// What the member of a [`WireMessage::Welcome`] signs.
    pub fn welcome_message(
        context_id: &ContextId,
        admit: &DeltaId,
        share: &Share,
        parts: &[(DeltaId, Share)],
    ) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-welcome-v2", context_id, admit, share, parts)).expect("encode")
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

#[cfg(test)]
mod tests {
    use super::*;
    use tabnode_types::SecretKey;

    /// A part's fields moved into [`SealedPart`] in one piece: the bytes on the wire are those
    /// of the fields laid out flat in the variant, as before, so older nodes read them.
    #[test]
    fn an_app_part_encodes_as_its_fields_laid_out_flat() {
        let key = SecretKey::from_seed([1; 32]);
        let (context_id, app_id) = (ContextId([2; 32]), AppId([3; 32]));
        let part = SealedPart {
            size: 5,
            index: 0,
            hashes: vec![[4; 32]],
            to: key.public(),
            sealed: vec![6; 7],
            provider: Box::new(MemberCert::genesis(&key, key.public())),
            signature: key.sign(b"part"),
        };
        let message = WireMessage::AppPart {
            context_id,
            app_id,
            part: part.clone(),
        }
        .encode();
        let flat = borsh::to_vec(&(
            context_id,
            app_id,
            part.size,
            part.index,
            &part.hashes,
            part.to,
            &part.sealed,
            &part.provider,
            part.signature,
        ))
        .unwrap();
        assert_eq!(message[1..], flat[..]);
        assert_eq!(WireMessage::decode(&message).unwrap().encode(), message);
    }
}
