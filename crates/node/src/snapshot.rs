//! State snapshots: how a member that joins late skips running every delta through the guest.
//!
//! A member that holds many deltas answers a joiner's first sync request with its state at its
//! heads, besides the deltas. The joiner checks the snapshot before it uses anything of it:
//! - the provider's certificate makes it a member, and it signed the snapshot's digest;
//! - the rows are exactly a calimero-storage state whose hashes add up to the snapshot's root
//!   ([`tabnode_runtime::verify_rows`]: the root members sign in deltas and announce);
//! - the deltas still come, and each is verified as always (signature, certificate, the
//!   membership log), but those the snapshot covers are recorded without running the guest;
//! - once the joiner holds exactly the deltas the snapshot covers, its heads must be the
//!   snapshot's and the provider must still stand in the membership log; only then does the
//!   snapshot become the joiner's state.
//!
//! If any check fails the snapshot is dropped, and a joiner that had recorded covered deltas
//! rebuilds its state from them: a bad snapshot costs time, never correctness. What rows cannot
//! prove (calimero-storage's metadata is outside its hashes) comes from the provider; if it
//! leads to another root later, the root comparison between members finds it and the repair
//! rebuilds from the deltas, which the joiner holds.

use std::collections::{BTreeMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{verify_signature, ContextId, DeltaId, Hash, PublicKey, SecretKey, Signature};

use crate::membership::MemberCert;
use crate::wire::WireMessage;

/// A member's shared state at its heads.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Snapshot {
    pub context_id: ContextId,
    pub heads: Vec<DeltaId>,
    /// calimero-storage's root of `rows`.
    pub root_hash: Hash,
    /// Every delta in the provider's DAG at `heads`: the joiner must end with exactly these.
    pub covered: Vec<DeltaId>,
    /// The rows the state's tree reaches, by key (without the context prefix).
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Bytes of an encoded snapshot per message: well under the gossip limit, with room for the rest.
pub const PART_BYTES: usize = 192 * 1024;
/// The largest snapshot a node assembles: past this it catches up by deltas.
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;
/// How long (ns) a snapshot may take to arrive whole before its parts are dropped.
pub const ASSEMBLY_NANOS: u64 = 120_000_000_000;

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("a snapshot of {0} parts ({1} bytes) is over the limit")]
    TooLarge(u32, usize),
    #[error("a snapshot part that does not belong: {0}")]
    BadPart(String),
    #[error("the snapshot's signature or certificate does not hold: {0}")]
    Unauthenticated(String),
    #[error("the snapshot's bytes do not match its digest")]
    Digest,
    #[error("the snapshot does not decode: {0}")]
    Undecodable(String),
    #[error("the snapshot's rows do not verify: {0}")]
    Rows(String),
    #[error("the snapshot does not match the deltas: {0}")]
    Mismatch(String),
}

/// What the provider signs: the digest names every byte of the snapshot.
pub fn signed_message(context_id: &ContextId, digest: &Hash, parts: u32) -> Vec<u8> {
    borsh::to_vec(&(b"tabnode-snapshot-v1", context_id, digest, parts)).expect("encode")
}

/// Encodes and signs a snapshot as the messages that carry it.
pub fn split(snapshot: &Snapshot, key: &SecretKey, cert: &MemberCert) -> Vec<WireMessage> {
    let bytes = borsh::to_vec(snapshot).expect("encode");
    let digest = Hash(*blake3::hash(&bytes).as_bytes());
    let chunks: Vec<&[u8]> = bytes.chunks(PART_BYTES).collect();
    let parts = chunks.len() as u32;
    let signature = key.sign(&signed_message(&snapshot.context_id, &digest, parts));
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| WireMessage::SnapshotPart {
            context_id: snapshot.context_id,
            digest,
            index: index as u32,
            parts,
            chunk: chunk.to_vec(),
            provider: Box::new(cert.clone()),
            signature,
        })
        .collect()
}

/// A snapshot arriving part by part, from one provider.
#[derive(Debug)]
pub struct Assembly {
    pub digest: Hash,
    pub provider: PublicKey,
    parts: u32,
    signature: Signature,
    received: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    pub started: u64,
}

impl Assembly {
    /// Starts on a first part: checks the provider's certificate and signature, and the size.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        context_id: &ContextId,
        digest: Hash,
        parts: u32,
        provider: &MemberCert,
        signature: Signature,
        now: u64,
    ) -> Result<Self, SnapshotError> {
        let most = MAX_SNAPSHOT_BYTES.div_ceil(PART_BYTES) as u32;
        if parts == 0 || parts > most {
            return Err(SnapshotError::TooLarge(parts, parts as usize * PART_BYTES));
        }
        provider
            .authenticate(context_id, &provider.member)
            .map_err(|e| SnapshotError::Unauthenticated(e.to_string()))?;
        verify_signature(
            &provider.member,
            &signed_message(context_id, &digest, parts),
            &signature,
        )
        .map_err(|e| SnapshotError::Unauthenticated(e.to_string()))?;
        Ok(Self {
            digest,
            provider: provider.member,
            parts,
            signature,
            received: BTreeMap::new(),
            bytes: 0,
            started: now,
        })
    }

    /// Adds a part of this snapshot; the whole snapshot once every part is in.
    pub fn add(
        &mut self,
        index: u32,
        parts: u32,
        chunk: Vec<u8>,
        signature: &Signature,
    ) -> Result<Option<Vec<u8>>, SnapshotError> {
        if parts != self.parts || index >= parts || *signature != self.signature {
            return Err(SnapshotError::BadPart(format!(
                "part {index} of {parts} for a snapshot of {} parts",
                self.parts
            )));
        }
        if chunk.len() > PART_BYTES {
            return Err(SnapshotError::BadPart(format!(
                "a part of {} bytes",
                chunk.len()
            )));
        }
        if self.received.contains_key(&index) {
            return Ok(None); // a duplicate
        }
        self.bytes += chunk.len();
        self.received.insert(index, chunk);
        if self.received.len() < self.parts as usize {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.received)
            .into_values()
            .collect::<Vec<_>>()
            .concat();
        if blake3::hash(&bytes).as_bytes() != self.digest.as_bytes() {
            return Err(SnapshotError::Digest);
        }
        Ok(Some(bytes))
    }
}

/// Decodes an assembled snapshot and checks that its rows are the state its root names.
pub fn open(bytes: &[u8], context_id: &ContextId) -> Result<Snapshot, SnapshotError> {
    let snapshot =
        Snapshot::try_from_slice(bytes).map_err(|e| SnapshotError::Undecodable(e.to_string()))?;
    if snapshot.context_id != *context_id {
        return Err(SnapshotError::Mismatch(format!(
            "it is of context {}",
            snapshot.context_id
        )));
    }
    if snapshot.heads.is_empty() || snapshot.covered.len() < snapshot.heads.len() {
        return Err(SnapshotError::Mismatch("it covers no deltas".into()));
    }
    let rows: BTreeMap<Vec<u8>, Vec<u8>> = snapshot.rows.iter().cloned().collect();
    if rows.len() != snapshot.rows.len() {
        return Err(SnapshotError::Rows("a row appears twice".into()));
    }
    match tabnode_runtime::verify_rows(&rows, context_id.as_bytes()) {
        Ok(Some(root)) if root == snapshot.root_hash.0 => Ok(snapshot),
        Ok(_) => Err(SnapshotError::Rows(format!(
            "they do not make the root {}",
            snapshot.root_hash
        ))),
        Err(e) => Err(SnapshotError::Rows(e.to_string())),
    }
}

/// Where a context stands with a snapshot.
#[derive(Debug, Default)]
pub enum Phase {
    #[default]
    Idle,
    /// Parts are arriving.
    Assembling(Assembly),
    /// Verified; the deltas it covers are being recorded without running the guest, and the
    /// state is not usable until it is installed.
    Covering(Covering),
}

/// A verified snapshot waiting for the deltas it covers (see the module's description).
#[derive(Debug, Clone)]
pub struct Covering {
    pub snapshot: Snapshot,
    pub covered: HashSet<DeltaId>,
    pub provider: PublicKey,
    /// What the provider signed: the blake3 hash of the snapshot's encoding.
    pub digest: Hash,
    /// When this node began waiting for the deltas it covers (ns since the epoch).
    pub since: u64,
}

impl Covering {
    pub fn new(snapshot: Snapshot, provider: PublicKey, digest: Hash, since: u64) -> Self {
        let covered = snapshot.covered.iter().copied().collect();
        Self {
            snapshot,
            covered,
            provider,
            digest,
            since,
        }
    }
}
