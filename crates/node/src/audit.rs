//! The audit trail: one signed, hash-chained record per call and per applied or refused delta.
//!
//! Each record carries the previous record's hash and the node's signature, so a changed,
//! deleted or reordered record is found by [`verify_chain`], with its sequence number.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;
use tabnode_types::{verify_signature, DeltaId, Hash, PublicKey, SecretKey, Signature};

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuditKind {
    /// A call made on this node.
    Call,
    /// A member's delta, verified and merged.
    RemoteDelta,
    /// A member's delta (or a message claiming to be one), refused.
    Refused,
}

/// One entry: what happened, chained after the previous record; `signature` covers the rest.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub prev: Hash,
    pub entry: AuditEntry,
    pub signature: Signature,
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditEntry {
    pub kind: AuditKind,
    /// Who called: `executor_id` for a call, the author for a delta.
    pub executor: PublicKey,
    pub method: String,
    /// blake3 of the call's input (the JSON args, or the delta's artifact).
    pub args_hash: Hash,
    /// `ok`, or the kind of the error.
    pub outcome: String,
    pub root_hash: Option<Hash>,
    /// The recorded non-deterministic inputs.
    pub time: u64,
    pub random_seed: [u8; 32],
    pub delta_id: Option<DeltaId>,
}

impl AuditEntry {
    /// A call, or an action of this node's own (a repair, a membership operation): no
    /// randomness recorded and no delta (set them with struct update where there are).
    pub fn call(
        executor: PublicKey,
        method: &str,
        args_hash: Hash,
        outcome: &str,
        root_hash: Option<Hash>,
        time: u64,
    ) -> Self {
        Self {
            kind: AuditKind::Call,
            executor,
            method: method.to_owned(),
            args_hash,
            outcome: outcome.to_owned(),
            root_hash,
            time,
            random_seed: [0; 32],
            delta_id: None,
        }
    }

    /// A remote delta (`id`) refused before it was applied, with the kind of error.
    pub fn refused_delta(
        delta: &crate::Delta,
        id: DeltaId,
        error_kind: &str,
        root_hash: Option<Hash>,
        time: u64,
    ) -> Self {
        Self {
            kind: AuditKind::Refused,
            executor: delta.body.author,
            method: "delta".into(),
            args_hash: Hash(*blake3::hash(&delta.body.artifact).as_bytes()),
            outcome: error_kind.to_owned(),
            root_hash,
            time,
            random_seed: [0; 32],
            delta_id: Some(id),
        }
    }
}

/// Where a context's chain stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditHead {
    pub next_seq: u64,
    pub last_hash: Hash,
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub ok: bool,
    pub records: u64,
    /// The first record that fails, and why.
    pub bad_seq: Option<u64>,
    pub reason: Option<String>,
}

impl AuditRecord {
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.signature = Signature([0; 64]);
        borsh::to_vec(&copy).expect("borsh encoding cannot fail")
    }

    /// The hash the next record chains to.
    pub fn hash(&self) -> Hash {
        Hash(*blake3::hash(&borsh::to_vec(self).expect("encode")).as_bytes())
    }

    /// Chains `entry` after `head` and signs it with the node's key.
    pub fn seal(entry: AuditEntry, head: &AuditHead, key: &SecretKey) -> Self {
        let mut record = Self {
            seq: head.next_seq,
            prev: head.last_hash,
            entry,
            signature: Signature([0; 64]),
        };
        record.signature = key.sign(&record.unsigned_bytes());
        record
    }

    /// The head after this record.
    pub fn next_head(&self) -> AuditHead {
        AuditHead {
            next_seq: self.seq + 1,
            last_hash: self.hash(),
        }
    }

    /// The record as JSON for people and tools.
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.entry;
        serde_json::json!({
            "seq": self.seq,
            "prev": self.prev,
            "kind": e.kind,
            "executor": e.executor,
            "method": e.method,
            "argsHash": e.args_hash,
            "outcome": e.outcome,
            "rootHash": e.root_hash,
            // ns since the epoch, as text: JSON numbers lose precision past 2^53.
            "time": e.time.to_string(),
            "randomSeed": bs58::encode(e.random_seed).into_string(),
            "deltaId": e.delta_id,
        })
    }
}

/// Checks records (as stored, in key order) were signed by the node and form one unbroken
/// chain. `keys` are the node's keys in the order it used them (it rotates): each record is
/// signed by the key of the one before it or a later one, never an earlier one, so a retired
/// key cannot add records after its successor signed.
pub fn verify_chain(
    records: impl IntoIterator<Item = Result<AuditRecord, (u64, String)>>,
    keys: &[PublicKey],
) -> AuditReport {
    let mut in_use = 0;
    let mut head = AuditHead::default();
    let mut count = 0;
    let fail = |seq: u64, reason: String, count: u64| AuditReport {
        ok: false,
        records: count,
        bad_seq: Some(seq),
        reason: Some(reason),
    };
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err((seq, why)) => return fail(seq, why, count),
        };
        if record.seq != head.next_seq {
            return fail(
                head.next_seq,
                format!(
                    "record {} found where {} belongs (deleted or reordered)",
                    record.seq, head.next_seq
                ),
                count,
            );
        }
        if record.prev != head.last_hash {
            return fail(
                record.seq,
                "its previous-hash does not match the record before it".into(),
                count,
            );
        }
        let bytes = record.unsigned_bytes();
        let signer = (in_use..keys.len())
            .find(|i| verify_signature(&keys[*i], &bytes, &record.signature).is_ok());
        let Some(signer) = signer else {
            return fail(
                record.seq,
                "its signature does not verify (the record was changed)".into(),
                count,
            );
        };
        in_use = signer;
        head = record.next_head();
        count += 1;
    }
    AuditReport {
        ok: true,
        records: count,
        bad_seq: None,
        reason: None,
    }
}
