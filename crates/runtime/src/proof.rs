//! Checks a calimero-storage 0.10 state from its rows alone, without running the guest: that
//! every entity's hashes add up to the root hash the state claims, and which rows the tree
//! reaches. A node uses this to verify a state snapshot from another member before it uses
//! it (the root it checks against is the one members sign and announce), and to choose the rows
//! a snapshot sends.
//!
//! calimero-storage keeps, per entity `id`, an `EntityIndex` under `sha256(0x00 ++ id)` and the
//! entity's data under `sha256(0x01 ++ id)`. In the index, `own_hash` is `sha256(data)`,
//! `full_hash` is `sha256(own_hash ++ the children's merkle hashes, in order)`, and each child's
//! merkle hash is the child's own `full_hash`. The root entity's id is the context id, and its
//! `full_hash` is the state root the guest commits.
//!
//! Not covered: an index's metadata (timestamps, CRDT type, field name) is outside
//! calimero-storage's hashes, so rows cannot prove it; and a removed entity's tombstone is
//! outside the tree, so a snapshot leaves it out, as calimero's network snapshots do.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::root::{entry_key, index_key, EntityIndex};
use crate::StateView;

/// Why rows do not make a verified calimero-storage state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the index of entity {0} is missing")]
    MissingIndex(String),
    #[error("the index of entity {0} is not calimero-storage 0.10's")]
    Malformed(String),
    #[error("the data of entity {0} is missing")]
    MissingData(String),
    #[error("entity {0}'s data does not hash to its own hash")]
    OwnHash(String),
    #[error("entity {0}'s full hash does not match its own hash and children")]
    FullHash(String),
    #[error("entity {parent} records a hash for child {child} that is not the child's")]
    ChildHash { parent: String, child: String },
    #[error("row {0} is not part of the state's tree")]
    Unreached(String),
    #[error("the state has {0} rows, more than a snapshot may carry")]
    TooLarge(usize),
}

/// The most entities a proof walks: far above any state a browser keeps, it bounds the work a
/// malicious snapshot can cause.
const MAX_ENTITIES: usize = 10_000_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A state whose hashes add up: its root hash and the keys of every row its tree reaches (each
/// entity's index and its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenState {
    pub root_hash: [u8; 32],
    pub rows: BTreeSet<[u8; 32]>,
}

/// A child's parent and the merkle hashes the parent's listings of it record.
type Listings = ([u8; 32], Vec<[u8; 32]>);

/// Walks the tree from the root entity (`context_id`) through `rows` and checks every hash.
/// `None` if the state has no root yet.
///
/// A child is normally listed once, with its full hash. Concurrent inserts of one key can leave
/// calimero-storage listing a child twice (under two creation times), one listing with a hash
/// it no longer updates; the parent's hash covers both. So each child's full hash must be among
/// the hashes its listings record, which still catches any change to its data or subtree.
pub fn prove_state(
    rows: &dyn StateView,
    context_id: &[u8; 32],
) -> Result<Option<ProvenState>, ProofError> {
    let get = |key: &[u8; 32]| rows.get(key).ok().flatten();
    if get(&index_key(context_id)).is_none() {
        return Ok(None);
    }
    let mut reached = BTreeSet::new();
    // Every entity's full hash once checked, and what its parent's listings record for it.
    let mut checked: BTreeMap<[u8; 32], [u8; 32]> = BTreeMap::new();
    let mut listed: BTreeMap<[u8; 32], Listings> = BTreeMap::new();
    let mut stack = vec![*context_id];
    while let Some(id) = stack.pop() {
        let key = index_key(&id);
        reached.insert(key);
        if reached.len() > 2 * MAX_ENTITIES {
            return Err(ProofError::TooLarge(reached.len()));
        }
        let bytes = get(&key).ok_or_else(|| ProofError::MissingIndex(hex(&id)))?;
        let index = EntityIndex::parse(&bytes).ok_or_else(|| ProofError::Malformed(hex(&id)))?;
        if index.id != id {
            return Err(ProofError::Malformed(hex(&id)));
        }
        let data_key = entry_key(&id);
        let data = get(&data_key).ok_or_else(|| ProofError::MissingData(hex(&id)))?;
        if <[u8; 32]>::from(Sha256::digest(&data)) != index.own_hash {
            return Err(ProofError::OwnHash(hex(&id)));
        }
        reached.insert(data_key);
        let mut hasher = Sha256::new();
        hasher.update(index.own_hash);
        for (_, merkle_hash) in &index.children {
            hasher.update(merkle_hash);
        }
        if <[u8; 32]>::from(hasher.finalize()) != index.full_hash {
            return Err(ProofError::FullHash(hex(&id)));
        }
        checked.insert(id, index.full_hash);
        for (child, merkle_hash) in index.children {
            let (parent, hashes) = listed.entry(child).or_insert((id, Vec::new()));
            if *parent != id || child == *context_id {
                return Err(ProofError::Malformed(hex(&child))); // two parents, or a loop
            }
            if hashes.is_empty() {
                stack.push(child);
            }
            hashes.push(merkle_hash);
        }
    }
    for (child, (parent, hashes)) in &listed {
        if !hashes.contains(&checked[child]) {
            return Err(ProofError::ChildHash {
                parent: hex(parent),
                child: hex(child),
            });
        }
    }
    Ok(Some(ProvenState {
        root_hash: checked[context_id],
        rows: reached,
    }))
}

/// Checks that `rows` are exactly a verified state: the tree from `context_id` reaches every
/// row and its hashes add up. Returns the state's root hash.
pub fn verify_rows(
    rows: &BTreeMap<Vec<u8>, Vec<u8>>,
    context_id: &[u8; 32],
) -> Result<Option<[u8; 32]>, ProofError> {
    let Some(proven) = prove_state(rows, context_id)? else {
        return match rows.keys().next() {
            Some(key) => Err(ProofError::Unreached(hex(key))),
            None => Ok(None),
        };
    };
    if let Some(extra) = rows
        .keys()
        .find(|k| <[u8; 32]>::try_from(k.as_slice()).map_or(true, |k| !proven.rows.contains(&k)))
    {
        return Err(ProofError::Unreached(hex(extra)));
    }
    Ok(Some(proven.root_hash))
}
